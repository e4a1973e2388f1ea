// The README's quick tour, step by step, with the answers it shows.
import { expect, it } from "vitest"
import { SELF } from "cloudflare:test"
import { BASE, freshId, get, json, readSse, send } from "./helpers.js"

it("the README tour", async () => {
  const visits = freshId("visits")
  expect((await json(await get("/health"))).body).toMatchObject({ status: "ok", version: expect.any(String) })
  expect((await json(await send("counter", visits, { type: "Increment", by: 5 }))).body).toMatchObject({
    version: 1,
    events: [
      {
        seq: 1,
        type: "Incremented",
        schemaVersion: 2,
        data: { by: 5, reason: null },
        meta: { causationId: null, principal: "anonymous" },
      },
    ],
    state: { value: 5 },
  })
  const keyed = { type: "Increment", by: 2, reason: "checkout" }
  const first = (await json(await send("counter", visits, keyed, { "Idempotency-Key": "order-42" }))).body
  const again = await send("counter", visits, keyed, { "Idempotency-Key": "order-42" })
  expect(again.headers.get("Idempotent-Replayed")).toBe("true")
  expect((await json(again)).body).toEqual(first)
  expect(first).toMatchObject({ version: 2, events: [{ seq: 2 }], state: { value: 7 } })
  expect((await json(await get(`/v1/counter/${visits}`))).body).toEqual({
    kind: "counter",
    id: visits,
    version: 2,
    state: { value: 7 },
  })
  expect((await json(await get(`/v1/counter/${visits}?at=1`))).body).toEqual({
    kind: "counter",
    id: visits,
    version: 1,
    state: { value: 5 },
  })
  expect((await json(await get(`/v1/counter/${visits}?asOf=2020-01-01T00:00:00Z`))).body.version).toBe(0)
  expect((await json(await get(`/v1/counter/${visits}/events?after=0&limit=1`))).body).toMatchObject({
    events: [{ seq: 1 }],
    next: 1,
  })
  expect((await json(await get(`/v1/counter/${visits}/verify`))).body).toMatchObject({ ok: true, events: 2 })
  expect(await json(await send("counter", visits, { type: "Reset" }, { "If-Match": "1" }))).toEqual({
    status: 409,
    body: {
      error: {
        code: "version_conflict",
        message: "If-Match names version 1 but the actor is at version 2",
        details: { expected: 1, current: 2 },
      },
    },
  })
  expect(await json(await send("counter", visits, { type: "Increment", by: -1 }))).toEqual({
    status: 400,
    body: {
      error: {
        code: "invalid_command",
        message: 'Expected a value greater than 0 at ["by"]',
        details: { issues: [{ path: ["by"], message: "Expected a value greater than 0" }] },
      },
    },
  })
  const stream = await readSse(await SELF.fetch(`${BASE}/v1/counter/${visits}/events/stream?after=1`), 1)
  expect(stream[0]).toMatchObject({
    id: "2",
    event: "Incremented",
    data: { seq: 2, type: "Incremented", data: { by: 2, reason: "checkout" } },
  })

  // The topic fills from the actor's outbox (its alarm); wait for both events to arrive.
  let entries: Array<any> = []
  for (let i = 0; i < 200 && entries.filter((e) => e.source.id === visits).length < 2; i++) {
    entries = (await json(await get(`/v1/topics/counter/events?after=0&limit=1000`))).body.entries
    await new Promise((r) => setTimeout(r, 10))
  }
  expect(entries.filter((e) => e.source.id === visits).map((e) => e.event.seq)).toEqual([1, 2])
  const totals = (await json(await get("/v1/projections/counter-totals"))).body
  expect(totals).toMatchObject({
    counters: new Set(entries.map((e) => e.source.id)).size,
    lastUpdate: expect.any(Number),
  })
  expect(totals.total).toBeGreaterThanOrEqual(7)
  expect(
    (
      await json(
        await SELF.fetch(`${BASE}/broadcast`, {
          method: "POST",
          body: JSON.stringify({ room: freshId("empty"), type: "news", payload: {} }),
        }),
      )
    ).body.error.code,
  ).toBe("unknown_room")

  const submitted = (
    await json(
      await SELF.fetch(`${BASE}/api/generate-from-description`, {
        method: "POST",
        body: JSON.stringify({ description: "Users API: GET /users and POST /users" }),
      }),
    )
  ).body
  expect(submitted).toMatchObject({ status: "pending", jobId: expect.any(String) })
  let job: any = {}
  for (let i = 0; i < 200 && job.status !== "completed"; i++) {
    job = (await json(await get(`/api/jobs/${submitted.jobId}`))).body
    await new Promise((r) => setTimeout(r, 10))
  }
  expect(job).toMatchObject({ status: "completed", attempts: 1, events: 5, result: { language: "typescript" } })
  expect(
    (await readSse(await SELF.fetch(`${BASE}/v1/job/${submitted.jobId}/events/stream?after=0`), 5)).map((e) => e.event),
  ).toEqual(["Submitted", "Started", "Progressed", "Progressed", "Completed"])

  const memories = freshId("memories")
  const stored = (
    await json(
      await send("memory", memories, {
        type: "Store",
        content: "Durable Objects give each actor strong consistency",
        tags: ["cloudflare"],
        memoryType: "note",
      }),
    )
  ).body
  const hash = stored.events[0].data.hash
  expect(stored.events[0]).toMatchObject({
    type: "Stored",
    data: { tags: ["cloudflare"], memoryType: "note", size: 50 },
  })
  const found = (await json(await get(`/v1/memory/${memories}/search?q=durable%20actor&tags=cloudflare`))).body
  expect(found).toMatchObject({
    items: [{ hash, content: "Durable Objects give each actor strong consistency", type: "note" }],
    next: null,
  })
  expect((await json(await get(`/v1/memory/${memories}/items/${hash}`))).body.content).toContain("Durable Objects")

  const notes = freshId("notes")
  await send("document", notes, { type: "Create", title: "Notes", content: "hello world" })
  await send("document", notes, { type: "Edit", baseVersion: 1, ops: [{ op: "insert", at: 0, text: "Oh, " }] })
  const last = (
    await json(
      await send("document", notes, { type: "Edit", baseVersion: 1, ops: [{ op: "insert", at: 11, text: "!" }] }),
    )
  ).body
  expect(last.state.content).toBe("Oh, hello world!")
})
