// The openhands executor against a real local HTTP server standing in for the service.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ExecutorFailure } from "../../src/kinds/job/job-executor.js"
import { makeOpenHandsExecutor } from "../../src/kinds/job/openhands.js"

type Handler = (request: IncomingMessage, response: ServerResponse, body: string) => void
let server: Server
let url: string
let handler: Handler = (_q, r) => r.writeHead(404).end()
const seen: Array<string> = []

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = ""
    request.on("data", (chunk) => (body += chunk))
    request.on("end", () => {
      seen.push(`${request.method} ${request.url} ${request.headers.authorization ?? ""}`)
      handler(request, response, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => void server.close())

const json = (response: ServerResponse, status: number, value: unknown) =>
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value))

const run = async (options: { requestTimeoutMs?: number } = {}) => {
  const progress: Array<string> = []
  const executor = makeOpenHandsExecutor({ url, apiKey: "secret-key", pollIntervalMs: 5, retries: 2, ...options })
  const exit = await Effect.runPromiseExit(
    executor.run("generate", { description: "GET /x" }, (percent, message) => progress.push(`${percent} ${message}`)),
  )
  return { exit, progress }
}

describe("openhands executor", () => {
  it("submits, polls progress and returns the result, with the bearer key", async () => {
    seen.length = 0
    let polls = 0
    handler = (request, response, body) => {
      if (request.method === "POST") return json(response, 201, { id: "job-1", echo: JSON.parse(body) })
      polls++
      return polls < 3
        ? json(response, 200, { status: "running", progress: polls * 40, message: `step ${polls}` })
        : json(response, 200, { status: "completed", progress: 100, result: { ok: true } })
    }
    const { exit, progress } = await run()
    expect(Exit.isSuccess(exit) && exit.value).toEqual({ ok: true })
    expect(progress).toEqual(["40 step 1", "80 step 2", "100 completed"])
    expect(seen[0]).toBe("POST /api/jobs Bearer secret-key")
  })

  it("retries a 500 and then succeeds", async () => {
    let calls = 0
    handler = (request, response) => {
      if (request.method === "POST")
        return ++calls === 1 ? json(response, 500, { error: "busy" }) : json(response, 200, { id: "job-2" })
      return json(response, 200, { status: "completed", result: 42 })
    }
    const { exit } = await run()
    expect(Exit.isSuccess(exit) && exit.value).toBe(42)
    expect(calls).toBe(2)
  })

  const failureOf = (exit: Exit.Exit<unknown, ExecutorFailure>) =>
    Exit.isFailure(exit) ? (exit.cause.reasons[0] as { error?: ExecutorFailure }).error : undefined

  it("fails retryably when the service keeps failing or is too slow", async () => {
    handler = (_request, response) => json(response, 503, { error: "down" })
    expect(failureOf((await run()).exit)).toMatchObject({ retryable: true })
    handler = (_request, response) => setTimeout(() => json(response, 200, { id: "late" }), 300)
    expect(failureOf((await run({ requestTimeoutMs: 50 })).exit)).toMatchObject({ retryable: true })
  })

  it("fails without retry on a malformed answer or a failure the service reports", async () => {
    handler = (_request, response) => json(response, 200, { unexpected: true })
    expect(failureOf((await run()).exit)).toMatchObject({
      retryable: false,
      message: expect.stringContaining("submitting the job"),
    })
    handler = (request, response) =>
      request.method === "POST"
        ? json(response, 200, { id: "job-3" })
        : json(response, 200, { status: "failed", error: "model refused" })
    expect(failureOf((await run()).exit)).toMatchObject({ retryable: false, message: "model refused" })
  })

  it("reports health", async () => {
    handler = (_request, response) => json(response, 200, { ok: true })
    expect(await Effect.runPromise(makeOpenHandsExecutor({ url }).healthy)).toBe(true)
    handler = (_request, response) => json(response, 500, {})
    expect(await Effect.runPromise(makeOpenHandsExecutor({ url, retries: 0 }).healthy)).toBe(false)
  })
})
