import { SELF, env, runDurableObjectAlarm } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { actorObject, BASE, freshId, get, json, send } from "./helpers.js"

const SPEC =
  "openapi: 3.0.0\ninfo:\n  title: Tiny\n  version: '1'\npaths:\n  /ping:\n    get:\n      operationId: ping\n      responses:\n        '200':\n          description: pong\n"

const api = (path: string, init: RequestInit = {}) =>
  SELF.fetch(`${BASE}${path}`, { ...init, headers: { "content-type": "application/json", ...init.headers } })

/** Waits for the job's alarm to carry it to `status` (running it directly when due). */
const until = async (jobId: string, status: string) => {
  for (let i = 0; i < 100; i++) {
    const job = (await json(await api(`/api/jobs/${jobId}`))).body
    if (job.status === status) return job
    await runDurableObjectAlarm(actorObject("job", jobId)).catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`job ${jobId} never reached ${status}`)
}

describe("jobs", () => {
  it("submits at once, runs on the actor's alarm, and reports progress and the result", async () => {
    const submitted = await json(
      await api("/api/generate-from-description", {
        method: "POST",
        body: JSON.stringify({ description: "Users API: GET /users and POST /users" }),
      }),
    )
    expect(submitted).toMatchObject({
      status: 202,
      body: { jobId: expect.any(String), status: "pending", estimatedMs: expect.any(Number) },
    })
    const { jobId } = submitted.body
    const done = await until(jobId, "completed")
    expect(done).toMatchObject({
      jobId,
      status: "completed",
      attempts: 1,
      progress: { percent: 100 },
      result: { language: "typescript" },
    })
    expect(done.result.endpoints.map((e: any) => e.operationId)).toEqual(["getUsers", "postUsers"])
    const events = (await json(await get(`/v1/job/${jobId}/events`))).body.events.map((e: any) => e.type)
    expect(events).toEqual(["Submitted", "Started", "Progressed", "Progressed", "Completed"])
    expect(events.filter((t: string) => t === "Completed")).toHaveLength(1)
  })

  it("runs analyze jobs, and fails an invalid spec without retrying a non-retryable failure", async () => {
    const good = freshId("job")
    await send("job", good, { type: "Submit", task: "analyze", input: { specType: "openapi", spec: SPEC } })
    expect((await until(good, "completed")).result).toMatchObject({
      title: "Tiny",
      endpoints: [{ method: "GET", path: "/ping", operationId: "ping" }],
    })
    const jobId = freshId("job")
    await send("job", jobId, { type: "Submit", task: "analyze", input: { specType: "openapi", spec: "{}" } })
    const failed = await until(jobId, "failed")
    expect(failed).toMatchObject({
      status: "failed",
      attempts: 1,
      error: expect.stringContaining("Not a valid OpenAPI document"),
    })
  })

  it("POST /api/analyze answers synchronously, cached by content hash, and names what is wrong", async () => {
    const analyze = (spec: unknown) =>
      api("/api/analyze", { method: "POST", body: JSON.stringify({ specType: "openapi", spec }) })
    const spec = SPEC.replace("Tiny", `Tiny ${freshId()}`)
    const first = await analyze(spec)
    expect(first.status).toBe(200)
    expect(first.headers.get("X-Emberlog-Cache")).toBe("miss")
    expect(await first.json()).toMatchObject({
      specVersion: "3.0.0",
      endpoints: [{ operationId: "ping" }],
      problems: [],
    })
    const second = await analyze(spec)
    expect(second.headers.get("X-Emberlog-Cache")).toBe("hit")
    expect(((await second.json()) as { endpoints: Array<unknown> }).endpoints).toHaveLength(1)
    const invalid = await json(await analyze({ openapi: "3.0.0" }))
    expect(invalid).toMatchObject({
      status: 400,
      body: {
        error: {
          code: "invalid_spec",
          details: { problems: ["info is missing", "paths is missing or not an object"] },
        },
      },
    })
    expect(
      (
        await json(
          await api("/api/analyze", { method: "POST", body: JSON.stringify({ specType: "graphql", spec: "x" }) }),
        )
      ).status,
    ).toBe(400)
  })

  it("cancels; nothing follows a terminal state; engine commands are not for clients", async () => {
    const jobId = freshId("job")
    await send("job", jobId, { type: "Submit", task: "generate", input: { description: "GET /x" } })
    expect(
      (await json(await send("job", jobId, { type: "Complete", attempt: 1, result: "forged" }))).body.error.code,
    ).toBe("internal_command")
    expect((await json(await api(`/api/jobs/${jobId}`, { method: "DELETE" }))).body).toEqual({
      jobId,
      status: "cancelled",
    })
    expect((await json(await send("job", jobId, { type: "Cancel" }))).body.error.code).toBe("job_finished")
    expect((await json(await api(`/api/jobs/${jobId}`))).body.status).toBe("cancelled")
  })

  it("refuses bad input and unknown jobs clearly", async () => {
    expect(
      (
        await json(
          await api("/api/generate-from-description", { method: "POST", body: JSON.stringify({ description: "" }) }),
        )
      ).status,
    ).toBe(400)
    expect(
      (
        await json(
          await api("/api/generate-from-description", {
            method: "POST",
            body: JSON.stringify({ description: "x".repeat(10_001) }),
          }),
        )
      ).status,
    ).toBe(400)
    expect((await json(await api(`/api/jobs/${freshId("nope")}`))).body.error.code).toBe("unknown_job")
    expect((await api(`/api/jobs/${freshId("nope")}`, { method: "DELETE" })).status).toBe(404)
    expect(
      (
        await json(
          await send("job", freshId(), {
            type: "Submit",
            task: "generate",
            input: { specType: "openapi", spec: "{}" },
          }),
        )
      ).body.error.code,
    ).toBe("invalid_input")
  })
})
