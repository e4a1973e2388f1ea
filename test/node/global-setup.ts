// One `wrangler dev` Worker with the default settings (auth off), shared by every file of the node
// projects (`node`, and `conformance`, which runs last) that needs no settings of its own: starting
// one per file cost seconds of CPU each. Vitest runs each project's global setup in its own main
// process, so the second project finds the first one's worker here and the last teardown stops it.
import type { TestProject } from "vitest/node"
import { startWorker } from "./dev-worker.js"

declare module "vitest" {
  export interface ProvidedContext {
    sharedWorkerBase: string
  }
}

type Started = Awaited<ReturnType<typeof startWorker>>
const shared = globalThis as { emberlogSharedWorker?: { started: Promise<Started>; users: number } }

export default async function setup(project: TestProject) {
  // For the Durable Streams suite: long-polls answer 204 after 1 s instead of 30 s (three of its tests
  // wait for that 204; its slowest wake-up, an append 50 ms after the poll, needs far less), and its
  // CORS preflight comes from https://example.com.
  shared.emberlogSharedWorker ??= {
    started: startWorker({ STREAM_LONG_POLL_MS: "1000", CORS_ORIGINS: "https://example.com", REQUEST_LOGS: "off" }),
    users: 0,
  }
  const entry = shared.emberlogSharedWorker
  entry.users++
  const { worker, base } = await entry.started
  project.provide("sharedWorkerBase", base)
  return async () => {
    if (--entry.users > 0) return
    shared.emberlogSharedWorker = undefined
    await worker.stop()
  }
}
