// Snapshots are bound to the hash chain: verify refolds the log and checks each one, and a
// snapshot that does not match is never used for recovery or time travel.
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { actorObject, freshId, get, json, send } from "./helpers.js"

const stub = (id: string) => actorObject("counter", id)
const exec = (id: string, query: string, ...bindings: Array<SqlStorageValue>) =>
  runInDurableObject(stub(id), (_instance, state) => state.storage.sql.exec(query, ...bindings).toArray())

const legacySnapshots = `CREATE TABLE snapshots (
  seq INTEGER PRIMARY KEY, state_version INTEGER NOT NULL, state TEXT NOT NULL)`
const verify = async (id: string) => (await json(await get(`/v1/counter/${id}/verify`))).body

const counterWith = async (events: number) => {
  const id = freshId("snap")
  for (let i = 0; i < events; i++) expect((await send("counter", id, { type: "Increment", by: 1 })).status).toBe(200)
  return id
}

describe("snapshots in the chain", () => {
  it("verify checks every snapshot against the refolded log", async () => {
    const id = await counterWith(1003)
    expect(await verify(id)).toMatchObject({ ok: true, events: 1003, snapshots: 2 })
    const [row] = await exec(id, "SELECT state, head_hash, state_hash FROM snapshots WHERE seq = 500")
    const [event] = await exec(id, "SELECT hash FROM events WHERE seq = 500")
    const sha256Hex = expect.stringMatching(/^[0-9a-f]{64}$/)
    expect(row).toMatchObject({ state: '{"value":500}', head_hash: event!.hash, state_hash: sha256Hex })
  })

  it("a snapshot edited in storage is reported by verify and not used by state, at, or recovery", async () => {
    const id = await counterWith(1003)
    await exec(id, `UPDATE snapshots SET state = '{"value":9999}' WHERE seq = 1000`)
    expect(await verify(id)).toMatchObject({ ok: false, firstBadSeq: 1000, snapshotSeq: 1000 })
    await evictDurableObject(stub(id))
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 1003, state: { value: 1003 } })
    expect((await json(await get(`/v1/counter/${id}?at=1000`))).body.state).toEqual({ value: 1000 })
    expect((await json(await get(`/v1/counter/${id}?at=1002`))).body.state).toEqual({ value: 1002 })
    const next = await json(await send("counter", id, { type: "Increment", by: 1 }))
    expect(next.body).toMatchObject({ version: 1004, state: { value: 1004 } })
  })

  it("a snapshot whose hash was recomputed to match is still reported by verify", async () => {
    const id = await counterWith(503)
    await runInDurableObject(stub(id), async (_instance, state) => {
      const { sha256 } = await import("../../src/core/hash-chain.js")
      const forged = '{"value":7}'
      state.storage.sql.exec("UPDATE snapshots SET state = ?, state_hash = ? WHERE seq = 500", forged, sha256(forged))
    })
    expect(await verify(id)).toMatchObject({ ok: false, firstBadSeq: 500, snapshotSeq: 500 })
  })

  it("a snapshot moved to another seq, or past the log, is not used and is reported", async () => {
    const id = await counterWith(503)
    // Moved: its head hash names event 500, not the event at its new seq.
    await exec(id, "UPDATE snapshots SET seq = 502 WHERE seq = 500")
    expect(await verify(id)).toMatchObject({ ok: false, snapshotSeq: 502 })
    await evictDurableObject(stub(id))
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 503, state: { value: 503 } })
    expect((await json(await get(`/v1/counter/${id}?at=502`))).body.state).toEqual({ value: 502 })
    await exec(id, "UPDATE snapshots SET seq = 900 WHERE seq = 502")
    expect(await verify(id)).toMatchObject({ ok: false, snapshotSeq: 900 })
  })

  it("snapshots written before they were bound (no hashes) are ignored, and the log still verifies", async () => {
    const id = await counterWith(503)
    // The table as an older emberlog created it; the object adds the columns when it wakes.
    await exec(id, "DROP TABLE snapshots")
    await exec(id, legacySnapshots)
    await exec(id, `INSERT INTO snapshots (seq, state_version, state) VALUES (500, 1, '{"value":9999}')`)
    await evictDurableObject(stub(id))
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 503, state: { value: 503 } })
    expect((await json(await get(`/v1/counter/${id}?at=501`))).body.state).toEqual({ value: 501 })
    expect(await verify(id)).toMatchObject({ ok: true, events: 503, snapshots: 0 })
  })
})
