// One `wrangler dev` Worker with the default settings (auth off) per node project (`node`, and
// `conformance`, which runs last), shared by every file of it that needs no settings of its own:
// starting one per file cost seconds of CPU each.
import type { TestProject } from "vitest/node"
import { startWorker } from "./dev-worker.js"

declare module "vitest" {
  export interface ProvidedContext {
    sharedWorkerBase: string
  }
}

export default async function setup(project: TestProject) {
  // For the Durable Streams suite: long-polls answer 204 after 1 s instead of 30 s (three of its tests
  // wait for that 204; its slowest wake-up, an append 50 ms after the poll, needs far less), and its
  // CORS preflight comes from https://example.com.
  const { worker, base } = await startWorker({
    STREAM_LONG_POLL_MS: "1000",
    CORS_ORIGINS: "https://example.com",
    REQUEST_LOGS: "off",
  })
  project.provide("sharedWorkerBase", base)
  return async () => {
    await worker.stop()
  }
}
