// The typed client in plain Node (global fetch and WebSocket) against the Worker served by wrangler.
import { afterAll, beforeAll, expect, it } from "vitest"
import type { Unstable_DevWorker } from "wrangler"
import { startWorker } from "./dev-worker.js"
import { createClient } from "../../src/client/index.js"

let worker: Unstable_DevWorker

beforeAll(async () => {
  worker = (await startWorker()).worker
}, 60_000)

afterAll(async () => {
  await worker?.stop()
})

it("sends, reads and subscribes from Node with the standard fetch and WebSocket", async () => {
  const emberlog = createClient({ baseUrl: `http://${worker.address}:${worker.port}` })
  const counter = emberlog.actor<{ value: number }>("counter", `node-${Date.now()}`)
  await counter.send({ type: "Increment", by: 2 })
  const seen: Array<number> = []
  const subscription = counter.subscribeAsync({ after: 0 })
  await counter.send({ type: "Increment", by: 3 })
  for await (const event of subscription) {
    seen.push(event.seq)
    if (seen.length === 2) break
  }
  expect(seen).toEqual([1, 2])
  expect(await counter.state()).toMatchObject({ version: 2, state: { value: 5 } })
}, 60_000)
