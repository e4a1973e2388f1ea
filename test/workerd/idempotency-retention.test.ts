// An Idempotency-Key answers retries for a day (IDEMPOTENCY_RETENTION_MS); older records are
// forgotten at snapshots, the oldest first and a bounded number at a time, so a day of keys is
// never scanned whole on the command path.
import { runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { IDEMPOTENCY_RETENTION_MS } from "../../src/actors/actor-core.js"
import { actorObject, freshId, send } from "./helpers.js"

const INCREMENT = { type: "Increment", by: 1 }
const stub = (id: string) => actorObject("counter", id)
const exec = (id: string, query: string, ...bindings: Array<SqlStorageValue>) =>
  runInDurableObject(stub(id), (_instance, state) => state.storage.sql.exec(query, ...bindings).toArray())
/** Commands run inside the object (the host's own command path), without a request each. */
const commitInObject = (id: string, count: number) =>
  runInDurableObject(stub(id), (instance: unknown) => {
    const host = instance as HostInternals
    for (let i = 0; i < count; i++) expect(host.commit({ command: INCREMENT }).ok).toBe(true)
    return host.core.currentVersion
  })
interface HostInternals {
  commit(request: { command: unknown }): { ok: boolean }
  readonly core: { readonly currentVersion: number }
}
const keyed = (id: string, key: string) => send("counter", id, INCREMENT, { "Idempotency-Key": key })
const dayAndMore = () => Date.now() - IDEMPOTENCY_RETENTION_MS - 60_000

describe("idempotency records", () => {
  it("replay within the day; one older than a day is forgotten at the next snapshot, and its retry appends anew", async () => {
    const id = freshId("keys")
    expect((await keyed(id, "old")).status).toBe(200)
    expect((await keyed(id, "recent")).status).toBe(200)
    await exec(id, "UPDATE commands SET at = ? WHERE command_id = 'old'", dayAndMore())
    // Kept until a snapshot prunes: a retry before it still replays.
    expect((await keyed(id, "old")).headers.get("Idempotent-Replayed")).toBe("true")
    expect(await commitInObject(id, 498)).toBe(500) // the counter snapshots every 500 events
    expect((await exec(id, "SELECT command_id FROM commands ORDER BY rowid")).map((row) => row.command_id)).toEqual([
      "recent",
    ])
    const recent = await keyed(id, "recent")
    expect(recent.headers.get("Idempotent-Replayed")).toBe("true")
    expect(((await recent.json()) as { version: number }).version).toBe(2)
    const old = await keyed(id, "old")
    expect(old.headers.get("Idempotent-Replayed")).toBeNull()
    expect(((await old.json()) as { version: number }).version).toBe(501)
  })

  it("a snapshot forgets at most twice a snapshot's worth of expired records, the oldest first", async () => {
    const id = freshId("keys")
    expect((await keyed(id, "first")).status).toBe(200)
    const expired = dayAndMore()
    await runInDurableObject(stub(id), (_instance, state) => {
      for (let i = 0; i < 2_500; i++)
        state.storage.sql.exec(
          "INSERT INTO commands (command_id, request_hash, version, first_seq, at) VALUES (?, 'h', 1, 1, ?)",
          `expired-${String(i).padStart(4, "0")}`,
          expired,
        )
    })
    expect(await commitInObject(id, 499)).toBe(500)
    // "first" (fresh) and the 1,000 oldest rows were looked at: "first" stays, 999 expired ones went.
    const left = (await exec(id, "SELECT command_id FROM commands ORDER BY rowid")).map((row) => row.command_id)
    expect(left[0]).toBe("first")
    expect(left.slice(1)).toEqual(
      Array.from({ length: 1_501 }, (_, i) => `expired-${String(i + 999).padStart(4, "0")}`),
    )
    // The next snapshot goes on from there; two more forget the rest.
    expect(await commitInObject(id, 1_000)).toBe(1_500)
    expect((await exec(id, "SELECT command_id FROM commands")).map((row) => row.command_id)).toEqual(["first"])
  })
})
