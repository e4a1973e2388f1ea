// Jobs run by the openhands executor inside the Worker (wrangler dev), against a local stand-in service.
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { Unstable_DevWorker } from "wrangler"
import { startWorker } from "./dev-worker.js"

let worker: Unstable_DevWorker
let service: Server
let polls = 0

beforeAll(async () => {
  service = createServer((request, response) => {
    const reply = (value: unknown) =>
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value))
    if (request.url === "/health") return reply({ ok: true })
    if (request.method === "POST") return reply({ id: "remote-1" })
    polls++
    return reply(
      polls < 2
        ? { status: "running", progress: 50, message: "thinking" }
        : { status: "completed", progress: 100, result: { connector: "remote" } },
    )
  })
  await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve))
  worker = (
    await startWorker({
      JOB_EXECUTOR: "openhands",
      OPENHANDS_API_URL: `http://127.0.0.1:${(service.address() as AddressInfo).port}`,
    })
  ).worker
}, 60_000)

afterAll(async () => {
  await worker?.stop()
  service?.close()
})

it("runs a submitted job on the configured openhands service and reports it healthy", async () => {
  const base = `http://${worker.address}:${worker.port}`
  const health = await (await fetch(`${base}/health`)).json()
  expect(health).toMatchObject({ status: "ok", executor: { name: "openhands", healthy: true } })
  const { jobId } = (await (
    await fetch(`${base}/api/generate-from-description`, {
      method: "POST",
      body: JSON.stringify({ description: "GET /things" }),
    })
  ).json()) as { jobId: string }
  let job: any = {}
  for (let i = 0; i < 200 && job.status !== "completed"; i++) {
    job = await (await fetch(`${base}/api/jobs/${jobId}`)).json()
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  expect(job).toMatchObject({ status: "completed", attempts: 1, result: { connector: "remote" } })
  const events = (
    (await (await fetch(`${base}/v1/job/${jobId}/events`)).json()) as { events: Array<{ type: string; data: any }> }
  ).events
  expect(events.filter((e) => e.type === "Progressed").map((e) => e.data.message)).toContain("thinking")
}, 60_000)
