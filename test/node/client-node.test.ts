// The typed client in plain Node (global fetch and WebSocket) against the Worker served by wrangler.
import { expect, it } from "vitest"
import { sharedWorkerBase } from "./dev-worker.js"
import { createClient } from "../../src/client/index.js"

const base = sharedWorkerBase()

it("sends, reads and subscribes from Node with the standard fetch and WebSocket", async () => {
  const emberlog = createClient({ baseUrl: base })
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

it("serves memories under wrangler dev: large content through local R2, full-text search by default", async () => {
  const ns = `node-mem-${Date.now()}`
  const large = `zebrafish ${"wrangler dev keeps this in local R2 ".repeat(40_000)}`
  const stored = await fetch(`${base}/v1/memory/${ns}/commands`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "Store", content: large }),
  })
  expect(stored.status).toBe(200)
  const hash = ((await stored.json()) as any).events[0].data.hash
  expect(((await (await fetch(`${base}/v1/memory/${ns}/items/${hash}`)).json()) as any).content).toBe(large)
  expect(((await (await fetch(`${base}/v1/memory/${ns}/search?q=zebrafish`)).json()) as any).items[0]).toMatchObject({
    hash,
    truncated: true,
  })
  const semantic = await fetch(`${base}/v1/memory/${ns}/search?q=zebrafish&mode=semantic`)
  expect(semantic.status).toBe(501)
  expect(((await semantic.json()) as any).error.code).toBe("semantic_search_unavailable")
}, 60_000)
