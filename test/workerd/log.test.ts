import { env, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { actorObject, appendLegacyIncremented, freshId, get, json, send } from "./helpers.js"
import { devName } from "./helpers.js"

const stub = (id: string) => actorObject("counter", id)
const exec = (id: string, query: string, ...bindings: Array<SqlStorageValue>) =>
  runInDurableObject(stub(id), (_instance, state) => state.storage.sql.exec(query, ...bindings).toArray())

describe("the log", () => {
  it("reads an Incremented v1 row written straight into SQLite as v2", async () => {
    const id = freshId()
    await send("counter", id, { type: "Increment", by: 1 })
    // Written as an old deployment would have: schema_version 1, data {by} only, a valid chain link.
    await appendLegacyIncremented(id)
    await evictDurableObject(stub(id))
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 2, state: { value: 42 } })
    const events = (await json(await get(`/v1/counter/${id}/events`))).body.events
    expect(events[1]).toMatchObject({ seq: 2, type: "Incremented", schemaVersion: 2, data: { by: 41, reason: null } })
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, events: 2 })
    // Storage keeps the row as written: upcasting happens on read only.
    expect(await exec(id, "SELECT schema_version, data FROM events WHERE seq = 2")).toEqual([
      { schema_version: 1, data: '{"by":41}' },
    ])
    // ?stored=true reads it as written, which is what the hash chain covers (emberlog export uses it).
    const stored = (await json(await get(`/v1/counter/${id}/events?stored=true`))).body.events
    expect(stored[1]).toMatchObject({ seq: 2, schemaVersion: 1, data: { by: 41 }, hash: events[1].hash })
    expect((await json(await get(`/v1/counter/${id}/events?stored=yes`))).status).toBe(400)
  })

  it("verify reports the first tampered seq", async () => {
    const id = freshId()
    for (let i = 0; i < 5; i++) await send("counter", id, { type: "Increment", by: 1 })
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({
      ok: true,
      events: 5,
      head: expect.stringMatching(/^[0-9a-f]{64}$/),
    })
    await exec(id, `UPDATE events SET data = '{"by":1000,"reason":null}' WHERE seq = 3`)
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: false, firstBadSeq: 3 })
  })

  it("verify notices a missing event and a truncated tail", async () => {
    const gap = freshId()
    for (let i = 0; i < 4; i++) await send("counter", gap, { type: "Increment", by: 1 })
    await exec(gap, "DELETE FROM events WHERE seq = 2")
    expect((await json(await get(`/v1/counter/${gap}/verify`))).body).toMatchObject({ ok: false, firstBadSeq: 2 })
    const tail = freshId()
    for (let i = 0; i < 4; i++) await send("counter", tail, { type: "Increment", by: 1 })
    await exec(tail, "DELETE FROM events WHERE seq = 4")
    expect((await json(await get(`/v1/counter/${tail}/verify`))).body).toMatchObject({ ok: false, firstBadSeq: 4 })
  })

  it("50 clients × 20 concurrent increments land exactly 1000 events", async () => {
    const id = freshId()
    const client = async () => {
      for (let i = 0; i < 20; i++) expect((await send("counter", id, { type: "Increment", by: 1 })).status).toBe(200)
    }
    await Promise.all(Array.from({ length: 50 }, client))
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 1000, state: { value: 1000 } })
    expect(await exec(id, "SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM events")).toEqual([
      { n: 1000, lo: 1, hi: 1000 },
    ])
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, events: 1000 })
  })

  it("snapshots every N events and recovers from the latest snapshot plus the tail", async () => {
    const id = freshId()
    for (let i = 0; i < 1203; i++) await send("counter", id, { type: "Increment", by: 1 })
    expect(await exec(id, "SELECT seq FROM snapshots ORDER BY seq")).toEqual([{ seq: 500 }, { seq: 1000 }])
    // Poison the events the snapshot covers: recovery must not read them.
    await exec(id, `UPDATE events SET data = '{"by":7,"reason":null}' WHERE seq <= 1000`)
    await evictDurableObject(stub(id))
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 1203, state: { value: 1203 } })
    // Time travel below the latest snapshot starts from the one under it.
    expect((await json(await get(`/v1/counter/${id}?at=600`))).body.state).toEqual({ value: 500 + 100 * 7 })
  })

  it("a retried Idempotency-Key returns the first result after a restart", async () => {
    const id = freshId()
    const first = (
      await json(await send("counter", id, { type: "Increment", by: 4 }, { "Idempotency-Key": "restart-key" }))
    ).body
    await send("counter", id, { type: "Increment", by: 1 })
    await evictDurableObject(stub(id))
    const retry = (
      await json(await send("counter", id, { type: "Increment", by: 4 }, { "Idempotency-Key": "restart-key" }))
    ).body
    expect(retry).toEqual(first)
    expect((await json(await get(`/v1/counter/${id}`))).body.version).toBe(2)
  })

  it("a failed append rolls back the whole command", async () => {
    const id = freshId()
    await send("counter", id, { type: "Increment", by: 1 }, { "Idempotency-Key": "a" })
    // Make the idempotency insert (the last write of a command) fail: events must roll back with it.
    await exec(id, "CREATE TRIGGER refuse BEFORE INSERT ON commands BEGIN SELECT RAISE(ABORT, 'refused'); END")
    expect((await send("counter", id, { type: "Increment", by: 1 }, { "Idempotency-Key": "b" })).status).toBe(500)
    expect(await exec(id, "SELECT count(*) AS n FROM events")).toEqual([{ n: 1 }])
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 1, state: { value: 1 } })
    await exec(id, "DROP TRIGGER refuse")
    expect(
      (await json(await send("counter", id, { type: "Increment", by: 1 }, { "Idempotency-Key": "b" }))).body.version,
    ).toBe(2)
  })
})
