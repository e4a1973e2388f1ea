import { env } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { freshId, get, json, send } from "./helpers.js"

const expectError = async (response: Response, status: number, code: string) => {
  const { status: actual, body } = await json(response)
  expect({ status: actual, code: body.error?.code }).toEqual({ status, code })
  expect(typeof body.error.message).toBe("string")
  return body.error
}

const versionOf = async (kind: string, id: string) => (await json(await get(`/v1/${kind}/${id}`))).body.version

describe("HTTP surface", () => {
  it("GET /health", async () => {
    expect(await json(await get("/health"))).toEqual({
      status: 200,
      body: {
        status: "ok",
        service: "emberlog",
        environment: "development",
        version: expect.any(String),
        executor: { name: "local", healthy: true, latencyMs: expect.any(Number) },
        dependencies: {
          executor: { status: "ok", name: "local", healthy: true, latencyMs: expect.any(Number) },
          // The memory kind's part: its bucket and Workers AI.
          memoryBucket: { status: "ok", binding: "MEMORY_BUCKET", latencyMs: expect.any(Number) },
          ai: { status: "ok", binding: "AI" },
          // Probed once wrangler.toml binds the archive's bucket (the archive's branch), absent until then.
          ...(!("EMBERLOG_ARCHIVE" in env)
            ? {}
            : { archive: { status: "ok", binding: "EMBERLOG_ARCHIVE", latencyMs: expect.any(Number) } }),
        },
        outbox: expect.objectContaining({
          status: "ok",
          scope: "isolate",
          maxBehind: expect.any(Number),
          degradedAbove: 1000,
        }),
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    })
  })

  it("an actor with no events exists implicitly at version 0", async () => {
    const id = freshId()
    expect(await json(await get(`/v1/counter/${id}`))).toEqual({
      status: 200,
      body: { kind: "counter", id, version: 0, state: { value: 0 } },
    })
    expect((await json(await get(`/v1/counter/${id}/events`))).body).toEqual({ events: [], next: null })
    expect((await json(await get(`/v1/document/${id}`))).body.state.created).toBe(false)
  })

  it("200 for a command, with version, events and state", async () => {
    const id = freshId()
    const { status, body } = await json(
      await send("counter", id, { type: "Increment", by: 3 }, { "X-Correlation-Id": "corr-1" }),
    )
    expect(status).toBe(200)
    expect(body.version).toBe(1)
    expect(body.state).toEqual({ value: 3 })
    expect(body.events[0]).toMatchObject({
      seq: 1,
      type: "Incremented",
      schemaVersion: 2,
      data: { by: 3, reason: null },
    })
    expect(body.events[0].meta).toMatchObject({
      correlationId: "corr-1",
      causationId: null,
      principal: "anonymous",
      at: expect.any(Number),
    })
    expect(body.events[0].hash).toMatch(/^[0-9a-f]{64}$/)
  })

  it("400 for malformed JSON and schema-invalid commands, with the issue path, appending nothing", async () => {
    const id = freshId()
    await expectError(await send("counter", id, "{not json"), 400, "invalid_json")
    const error = await expectError(await send("counter", id, { type: "Increment", by: "two" }), 400, "invalid_command")
    expect(error.details.issues[0].path).toEqual(["by"])
    await expectError(await send("counter", id, { type: "Explode" }), 400, "invalid_command")
    await expectError(await send("counter", id, [1, 2]), 400, "invalid_command")
    await expectError(
      await send("document", id, { type: "Edit", baseVersion: 0, ops: [{ op: "insert", at: -1, text: "x" }] }),
      400,
      "invalid_command",
    )
    expect(await versionOf("counter", id)).toBe(0)
  })

  it("400 for a bad id, bad query values and bad headers", async () => {
    await expectError(await get(`/v1/counter/${"x".repeat(129)}`), 400, "invalid_id")
    await expectError(await get(`/v1/counter/bad%20id`), 400, "invalid_id")
    await expectError(await send("counter", "has$dollar", { type: "Reset" }), 400, "invalid_id")
    const id = freshId()
    await send("counter", id, { type: "Increment", by: 1 })
    await expectError(await get(`/v1/counter/${id}?at=2`), 400, "invalid_query")
    await expectError(await get(`/v1/counter/${id}?at=-1`), 400, "invalid_query")
    await expectError(await get(`/v1/counter/${id}?at=1.5`), 400, "invalid_query")
    await expectError(await get(`/v1/counter/${id}?asOf=yesterday`), 400, "invalid_query")
    await expectError(await get(`/v1/counter/${id}?at=1&asOf=2026-01-01T00:00:00Z`), 400, "invalid_query")
    await expectError(await get(`/v1/counter/${id}/events?after=x`), 400, "invalid_query")
    await expectError(await get(`/v1/counter/${id}/events?limit=0`), 400, "invalid_query")
    await expectError(await get(`/v1/counter/${id}/events?limit=10001`), 400, "invalid_query")
    await expectError(await send("counter", id, { type: "Reset" }, { "If-Match": "v1" }), 400, "invalid_header")
    await expectError(
      await send("counter", id, { type: "Reset" }, { "Idempotency-Key": "x".repeat(256) }),
      400,
      "invalid_header",
    )
    expect(await versionOf("counter", id)).toBe(1)
  })

  it("404 for an unknown kind and an unknown route", async () => {
    await expectError(await get(`/v1/spaceship/a`), 404, "unknown_kind")
    await expectError(await send("spaceship", "a", { type: "Launch" }), 404, "unknown_kind")
    await expectError(await get(`/v1/constructor/a`), 404, "unknown_kind")
    await expectError(await get(`/nowhere`), 404, "not_found")
  })

  it("409 for a stale If-Match, with the current version in details", async () => {
    const id = freshId()
    await send("counter", id, { type: "Increment", by: 1 })
    const error = await expectError(
      await send("counter", id, { type: "Increment", by: 1 }, { "If-Match": "0" }),
      409,
      "version_conflict",
    )
    expect(error.details).toEqual({ expected: 0, current: 1 })
    expect((await json(await send("counter", id, { type: "Increment", by: 1 }, { "If-Match": '"1"' }))).status).toBe(
      200,
    )
    expect(await versionOf("counter", id)).toBe(2)
  })

  it("413 for a body over 256 KiB, appending nothing", async () => {
    const id = freshId()
    const huge = JSON.stringify({ type: "Create", title: "t", content: "x".repeat(300 * 1024) })
    await expectError(await send("document", id, huge), 413, "too_large")
    expect(await versionOf("document", id)).toBe(0)
  })

  it("422 for domain rejections, appending nothing", async () => {
    const id = freshId()
    await send("counter", id, { type: "Increment", by: Number.MAX_SAFE_INTEGER })
    await expectError(await send("counter", id, { type: "Increment", by: 1 }), 422, "out_of_range")
    expect(await versionOf("counter", id)).toBe(1)
    const doc = freshId()
    await expectError(
      await send("document", doc, { type: "Edit", baseVersion: 0, ops: [{ op: "insert", at: 0, text: "x" }] }),
      422,
      "not_created",
    )
    await send("document", doc, { type: "Create", title: "t", content: "abc" })
    await expectError(await send("document", doc, { type: "Create", title: "t", content: "" }), 422, "already_created")
    await expectError(
      await send("document", doc, { type: "Edit", baseVersion: 1, ops: [{ op: "delete", at: 2, length: 5 }] }),
      422,
      "op_out_of_range",
    )
    expect(await versionOf("document", doc)).toBe(1)
  })

  it("Idempotency-Key: a retry returns the first result and appends nothing; reuse for another command is refused", async () => {
    const id = freshId()
    const first = await json(await send("counter", id, { type: "Increment", by: 2 }, { "Idempotency-Key": "k1" }))
    await send("counter", id, { type: "Increment", by: 5 })
    const retry = await send("counter", id, { type: "Increment", by: 2 }, { "Idempotency-Key": "k1" })
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true")
    expect((await json(retry)).body).toEqual(first.body)
    await expectError(
      await send("counter", id, { type: "Increment", by: 3 }, { "Idempotency-Key": "k1" }),
      422,
      "idempotency_key_reused",
    )
    expect(await versionOf("counter", id)).toBe(2)
  })

  it("pages events with next, null at the head", async () => {
    const id = freshId()
    for (let i = 0; i < 5; i++) await send("counter", id, { type: "Increment", by: 1 })
    const first = (await json(await get(`/v1/counter/${id}/events?limit=2`))).body
    expect(first.events.map((e: any) => e.seq)).toEqual([1, 2])
    expect(first.next).toBe(2)
    const last = (await json(await get(`/v1/counter/${id}/events?after=4&limit=2`))).body
    expect(last.events.map((e: any) => e.seq)).toEqual([5])
    expect(last.next).toBeNull()
    expect((await json(await get(`/v1/counter/${id}/events?after=9`))).body).toEqual({ events: [], next: null })
  })

  it("time travel with ?at= and ?asOf=", async () => {
    const id = freshId()
    for (const by of [1, 10, 100]) await send("counter", id, { type: "Increment", by })
    expect((await json(await get(`/v1/counter/${id}?at=2`))).body).toMatchObject({ version: 2, state: { value: 11 } })
    expect((await json(await get(`/v1/counter/${id}?at=0`))).body).toMatchObject({ version: 0, state: { value: 0 } })
    const events = (await json(await get(`/v1/counter/${id}/events`))).body.events
    const firstAt = new Date(events[0].meta.at).toISOString()
    const expected = events.filter((e: any) => e.meta.at <= events[0].meta.at).length
    expect((await json(await get(`/v1/counter/${id}?asOf=${firstAt}`))).body.version).toBe(expected)
    expect((await json(await get(`/v1/counter/${id}?asOf=2000-01-01T00:00:00Z`))).body).toMatchObject({
      version: 0,
      state: { value: 0 },
    })
  })
})
