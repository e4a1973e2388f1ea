import { env, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { actorObject, freshId, get, json, send } from "./helpers.js"

const search = async (ns: string, query: string) => (await json(await get(`/v1/memory/${ns}/search?${query}`))).body

describe("memory index upgrade", () => {
  it("rebuilds an index that kept its own copy of every text, once, into one that keeps none", async () => {
    const ns = freshId("mem")
    await send("memory", ns, { type: "Store", content: "alpha particles and beta rays", tags: ["physics"] })
    await send("memory", ns, { type: "Store", content: "gamma rays from far away", tags: ["space"] })
    const stub = actorObject("memory", ns)
    // The index as objects created before the upgrade have it: an FTS5 table with its own content copy.
    await runInDurableObject(stub, (_i: unknown, state: DurableObjectState) => {
      const sql = state.storage.sql
      sql.exec("DROP TABLE memory_fts")
      sql.exec("DROP VIEW memory_fts_source")
      sql.exec("DELETE FROM memory_fts_keys")
      sql.exec("CREATE VIRTUAL TABLE memory_fts USING fts5(hash UNINDEXED, content, tags)")
      sql.exec(`INSERT INTO memory_fts (hash, content, tags) SELECT i.hash, c.content, '' FROM memory_items i
                JOIN memory_content c ON c.hash = i.hash`)
    })
    await evictDurableObject(stub)
    const rays = await search(ns, "q=rays")
    const contents = (page: any) => page.items.map((item: any) => item.content).sort()
    expect(contents(rays)).toEqual(["alpha particles and beta rays", "gamma rays from far away"])
    expect(contents(await search(ns, "q=physics"))).toEqual(["alpha particles and beta rays"])
    const shadow = await runInDurableObject(stub, (_i: unknown, state: DurableObjectState) =>
      state.storage.sql.exec("SELECT name FROM sqlite_schema WHERE name = 'memory_fts_content'").toArray(),
    )
    expect(shadow).toEqual([])
    const hash = rays.items.find((item: any) => item.content.startsWith("gamma")).hash
    expect((await send("memory", ns, { type: "Forget", hash })).status).toBe(200)
    expect(contents(await search(ns, "q=rays"))).toEqual(["alpha particles and beta rays"])
  })
})
