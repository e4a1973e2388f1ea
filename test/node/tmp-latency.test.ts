import { it } from "vitest"
import { sharedWorkerBase } from "./dev-worker.js"
const base = sharedWorkerBase()
const time = async (label: string, n: number, f: (i: number) => Promise<Response>) => {
  const t = performance.now()
  for (let i = 0; i < n; i++) await (await f(i)).arrayBuffer()
  console.log(label, ((performance.now() - t) / n).toFixed(1), "ms")
}
it("latency", async () => {
  const id = Date.now()
  await time("health", 30, () => fetch(`${base}/health`))
  await time("PUT new", 30, (i) =>
    fetch(`${base}/v1/stream/lat-${id}-${i}`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
    }),
  )
  await time("POST", 60, () =>
    fetch(`${base}/v1/stream/lat-${id}-0`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: "abc",
    }),
  )
  await time("GET", 60, () => fetch(`${base}/v1/stream/lat-${id}-0`))
  await time("HEAD", 60, () => fetch(`${base}/v1/stream/lat-${id}-0`, { method: "HEAD" }))
  await time("counter cmd", 30, () =>
    fetch(`${base}/v1/counter/lat-${id}/commands`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: '{"type":"Increment","by":1}',
    }),
  )
}, 120_000)
