import { createHash } from "node:crypto"
import {
  createExecutionContext,
  env,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test"
import { describe, expect, it, vi } from "vitest"
import worker from "../../src/app.js"
import { BASE, actorApi, actorObject, actorObjectId, freshId, get, json, send } from "./helpers.js"

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex")
const store = (ns: string, content: string, extra: Record<string, unknown> = {}) =>
  send("memory", ns, { type: "Store", content, ...extra })
const search = async (ns: string, query: string) => (await json(await get(`/v1/memory/${ns}/search?${query}`))).body

describe("memory", () => {
  it("identifies a memory by its content hash; storing it again appends nothing", async () => {
    const ns = freshId("mem")
    const first = (await json(await store(ns, "Durable Objects keep state"))).body
    expect(first.events[0]).toMatchObject({
      type: "Stored",
      data: { hash: sha256("Durable Objects keep state"), tags: [], memoryType: null },
    })
    expect(first.events[0].data).not.toHaveProperty("content")
    const again = (await json(await store(ns, "Durable Objects keep state", { tags: ["x"] }))).body
    expect(again).toMatchObject({ version: 1, events: [] })
  })

  it("searches full text ranked by bm25, filters by tags, type and time, and pages with a cursor", async () => {
    const ns = freshId("mem")
    await store(ns, "Durable Objects give each actor strong consistency", {
      tags: ["cloudflare", "actors"],
      memoryType: "note",
    })
    await store(ns, "Objects in the sky are durable", { tags: ["sky"], memoryType: "poem" })
    await store(ns, "An unrelated grocery list: milk, eggs", { tags: ["home"], memoryType: "note" })
    const ranked = await search(ns, "q=durable%20objects%20actor")
    expect(ranked.items.map((i: any) => i.content)).toEqual(["Durable Objects give each actor strong consistency"])
    const both = await search(ns, "q=durable%20objects")
    expect(both.items).toHaveLength(2)
    expect(both.items[0].score).toBeGreaterThanOrEqual(both.items[1].score)
    expect((await search(ns, "tags=sky,home&match=any")).items).toHaveLength(2)
    expect((await search(ns, "tags=cloudflare,actors&match=all")).items).toHaveLength(1)
    expect((await search(ns, "tags=cloudflare,sky&match=all")).items).toHaveLength(0)
    expect((await search(ns, "type=note")).items).toHaveLength(2)
    expect((await search(ns, "from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z")).items).toHaveLength(0)
    const page1 = await search(ns, "limit=2")
    const page2 = await search(ns, `limit=2&cursor=${page1.next}`)
    expect([...page1.items, ...page2.items].map((i: any) => i.hash).sort()).toHaveLength(3)
    expect(page2.next).toBeNull()
    expect((await search(ns, "q=%22)%20OR%20*")).items).toEqual([]) // FTS syntax in a query is inert
    expect((await json(await get(`/v1/memory/${ns}/search?match=some`))).status).toBe(400)
  })

  it("tags, untags and forgets by tag", async () => {
    const ns = freshId("mem")
    const hash = (await json(await store(ns, "first memory"))).body.events[0].data.hash
    await store(ns, "second memory", { tags: ["temp"] })
    await send("memory", ns, { type: "Tag", hash, tags: ["temp", "keep"] })
    await send("memory", ns, { type: "Untag", hash, tags: ["temp"] })
    expect((await json(await get(`/v1/memory/${ns}/items/${hash}`))).body.tags).toEqual(["keep"])
    expect((await json(await send("memory", ns, { type: "ForgetByTag", tag: "temp" }))).body.events).toHaveLength(1)
    expect((await search(ns, "")).items.map((i: any) => i.hash)).toEqual([hash])
    expect(
      (await json(await send("memory", ns, { type: "Tag", hash: sha256("never stored"), tags: ["x"] }))).body.error
        .code,
    ).toBe("unknown_memory")
  })

  it("forgets the content itself: gone from the content table, the index and every read, while the log verifies", async () => {
    const ns = freshId("mem")
    const secret = "my secret diary entry 4711"
    const hash = (await json(await store(ns, secret))).body.events[0].data.hash
    await send("memory", ns, { type: "Forget", hash })
    expect((await json(await get(`/v1/memory/${ns}/items/${hash}`))).status).toBe(404)
    expect((await search(ns, "q=diary")).items).toEqual([])
    const log = JSON.stringify((await json(await get(`/v1/memory/${ns}/events`))).body)
    expect(log).not.toContain("diary")
    expect((await json(await get(`/v1/memory/${ns}/verify`))).body).toMatchObject({ ok: true, events: 2 })
    const leftovers = await runInDurableObject(
      actorObject("memory", ns),
      (_i: unknown, state: DurableObjectState) =>
        state.storage.sql
          .exec(
            "SELECT (SELECT count(*) FROM memory_content) + (SELECT count(*) FROM memory_items) + (SELECT count(*) FROM memory_fts) AS n",
          )
          .one().n,
    )
    expect(leftovers).toBe(0)
  })

  it("rebuilds the search projection from the log and the content to exactly the live one", async () => {
    const ns = freshId("mem")
    for (let i = 0; i < 6; i++)
      await store(ns, `memory number ${i} about topic ${i % 3}`, { tags: [`t${i % 2}`], memoryType: i % 2 ? "a" : "b" })
    const some = (await search(ns, "")).items[0].hash
    await send("memory", ns, { type: "Forget", hash: some })
    await send("memory", ns, { type: "Tag", hash: (await search(ns, "")).items[1].hash, tags: ["extra"] })
    const live = await search(ns, "q=memory%20topic&limit=100")
    expect(await actorApi("memory", ns).invoke("rebuildProjection")).toEqual({ ok: true, value: undefined })
    expect(await search(ns, "q=memory%20topic&limit=100")).toEqual(live)
    expect(live.items).toHaveLength(5)
  })

  it("refuses oversized metadata and too many search tags, changing nothing", async () => {
    const ns = freshId("mem")
    const refused = await json(await store(ns, "small", { metadata: { blob: "m".repeat(70 * 1024) } }))
    expect(refused).toMatchObject({ status: 422, body: { error: { code: "metadata_too_large" } } })
    expect((await json(await get(`/v1/memory/${ns}`))).body.version).toBe(0)
    const tags = Array.from({ length: 33 }, (_, i) => `t${i}`).join(",")
    expect((await json(await get(`/v1/memory/${ns}/search?tags=${tags}`))).status).toBe(400)
  })

  describe("content over 1 MiB lives in R2", () => {
    // 2.5 MiB: a word at the start (indexed) and one past the first MiB (only in R2).
    const large = `zebrafish ${"lorem ipsum dolor sit amet ".repeat(100_000)} farawayword`
    const blobKey = (ns: string, hash: string) => `${actorObjectId("memory", ns).toString()}/${hash}`
    const blobRows = (ns: string) =>
      runInDurableObject(
        actorObject("memory", ns),
        (_i: unknown, state: DurableObjectState) =>
          state.storage.sql.exec("SELECT count(*) AS n FROM memory_blobs").one().n,
      )

    it("round-trips through local R2; search indexes and returns its first MiB", async () => {
      const ns = freshId("mem")
      const stored = await json(await store(ns, large, { tags: ["big"] }))
      expect(stored.status).toBe(200)
      const hash = stored.body.events[0].data.hash
      expect(hash).toBe(sha256(large))
      expect(stored.body.events[0].data.size).toBe(large.length)
      expect(await (await env.MEMORY_BUCKET.get(blobKey(ns, hash)))?.text()).toBe(large)
      const item = await json(await get(`/v1/memory/${ns}/items/${hash}`))
      expect(item.body).toMatchObject({ hash, content: large, truncated: false, size: large.length, tags: ["big"] })
      const [hit] = (await search(ns, "q=zebrafish")).items
      expect(hit).toMatchObject({ hash, truncated: true, size: large.length })
      expect(hit.content.length).toBe(1024 * 1024)
      expect(large.startsWith(hit.content)).toBe(true)
      expect((await search(ns, "q=farawayword")).items).toEqual([])
      expect((await json(await store(ns, large))).body.events).toEqual([]) // deduped, still one object
      expect(JSON.stringify((await json(await get(`/v1/memory/${ns}/events`))).body)).not.toContain("lorem")
    })

    it("answers 503 storage_unavailable for a large memory's item when no MEMORY_BUCKET is bound", async () => {
      const ns = freshId("mem")
      const hash = (await json(await store(ns, large))).body.events[0].data.hash
      const { MEMORY_BUCKET: _bucket, ...unbound } = env
      const request = new Request(`${BASE}/v1/memory/${ns}/items/${hash}`)
      const response = await worker.fetch(request, unbound as never, createExecutionContext())
      expect(response.status).toBe(503)
      expect(((await response.json()) as any).error).toEqual({
        code: "storage_unavailable",
        message: "This memory's content is in R2, and no MEMORY_BUCKET is bound",
      })
    })

    it("forget erases the R2 object too, and the log still verifies", async () => {
      const ns = freshId("mem")
      const hash = (await json(await store(ns, large))).body.events[0].data.hash
      expect((await json(await send("memory", ns, { type: "Forget", hash }))).status).toBe(200)
      expect(await env.MEMORY_BUCKET.get(blobKey(ns, hash))).toBeNull()
      expect(await blobRows(ns)).toBe(0)
      expect((await json(await get(`/v1/memory/${ns}/items/${hash}`))).status).toBe(404)
      expect((await search(ns, "q=zebrafish")).items).toEqual([])
      expect((await json(await get(`/v1/memory/${ns}/verify`))).body).toMatchObject({ ok: true, events: 2 })
    })

    it("sweeps an object whose command never committed (a crash between upload and commit) after a restart", async () => {
      const ns = freshId("mem")
      await store(ns, "a small memory keeps the object alive")
      const orphan = sha256("uploaded, then the object crashed")
      const stub = actorObject("memory", ns)
      await runInDurableObject(stub, (_i: unknown, state: DurableObjectState) =>
        state.storage.sql.exec("INSERT INTO memory_blobs (hash) VALUES (?)", orphan),
      )
      await env.MEMORY_BUCKET.put(blobKey(ns, orphan), "uploaded, then the object crashed")
      await evictDurableObject(stub)
      await search(ns, "") // wakes the object: it finds the stray row and sets its alarm
      expect(await runDurableObjectAlarm(stub)).toBe(true)
      expect(await env.MEMORY_BUCKET.get(blobKey(ns, orphan))).toBeNull()
      expect(await blobRows(ns)).toBe(0)
    })

    it("a refused large Store changes nothing: no event, and its uploaded object is swept", async () => {
      const ns = freshId("mem")
      const stub = actorObject("memory", ns)
      const refused = await json(await store(ns, large, { metadata: { blob: "m".repeat(70 * 1024) } }))
      expect(refused).toMatchObject({ status: 422, body: { error: { code: "metadata_too_large" } } })
      expect((await json(await get(`/v1/memory/${ns}`))).body.version).toBe(0)
      await runDurableObjectAlarm(stub) // the sweep the refusal scheduled (it may have run already)
      expect(await env.MEMORY_BUCKET.get(blobKey(ns, sha256(large)))).toBeNull()
      expect(await blobRows(ns)).toBe(0)
    })

    it("accepts memory command bodies up to 25 MiB while every other body stays under 256 KiB", async () => {
      const ns = freshId("mem")
      expect((await json(await store(ns, "x".repeat(26 * 1024 * 1024)))).body.error.code).toBe("too_large")
      const tooLarge = await json(await store(ns, "y".repeat(24 * 1024 * 1024 + 1)))
      expect(tooLarge).toMatchObject({ status: 422, body: { error: { code: "content_too_large" } } })
      expect((await env.MEMORY_BUCKET.list({ prefix: `${actorObjectId("memory", ns).toString()}/` })).objects).toEqual(
        [],
      )
      expect((await send("counter", freshId(), { type: "Increment", by: 1, pad: "z".repeat(300 * 1024) })).status).toBe(
        413,
      )
    })
  })

  describe("semantic search (AI and MEMORY_VECTORS bound; stand-ins here)", () => {
    const vectorsOf = (ns: string) => env.MEMORY_VECTORS.namespaceSize(actorObjectId("memory", ns).toString())

    it("embeds memories on the alarm, finds them by meaning within the filters, and a forget removes the vector", async () => {
      const ns = freshId("mem")
      const cat = (await json(await store(ns, "My cat sleeps on the warm windowsill", { tags: ["pets"] }))).body
        .events[0].data.hash
      const car = (await json(await store(ns, "The car needs new tyres before winter", { tags: ["errands"] }))).body
        .events[0].data.hash
      await store(ns, "Quarterly revenue grew eight percent", { tags: ["work"] })
      await vi.waitFor(async () => expect(await vectorsOf(ns)).toBe(3), { timeout: 5_000 })
      expect((await search(ns, "q=feline")).items).toEqual([]) // no shared word: full text finds nothing
      const byMeaning = await search(ns, "q=feline&mode=semantic")
      expect(byMeaning.items[0]).toMatchObject({ hash: cat, tags: ["pets"] })
      expect(byMeaning.items[0].score).toBeGreaterThan(byMeaning.items[1].score)
      expect((await search(ns, "q=automobile&mode=auto")).items[0].hash).toBe(car)
      expect((await search(ns, "q=automobile&mode=semantic&tags=pets")).items.map((i: any) => i.hash)).toEqual([cat])
      const paged = await search(ns, "q=automobile&mode=semantic&limit=2")
      expect(paged.items).toHaveLength(2)
      expect((await search(ns, `q=automobile&mode=semantic&limit=2&cursor=${paged.next}`)).items).toHaveLength(1)

      await send("memory", ns, { type: "Forget", hash: cat })
      expect(await vectorsOf(ns)).toBe(2)
      expect((await search(ns, "q=feline&mode=semantic")).items.map((i: any) => i.hash)).not.toContain(cat)
    })

    it("caches embeddings by content hash: a restart or a projection rebuild embeds nothing again", async () => {
      const ns = freshId("mem")
      const stub = actorObject("memory", ns)
      await store(ns, "A kitten chased the puppy")
      await vi.waitFor(async () => expect(await vectorsOf(ns)).toBe(1), { timeout: 5_000 })
      const embedded = await env.AI.embeddedTexts()
      await evictDurableObject(stub)
      expect(await actorApi("memory", ns).invoke("rebuildProjection")).toEqual({ ok: true, value: undefined })
      await runDurableObjectAlarm(stub)
      expect(await env.AI.embeddedTexts()).toBe(embedded)
      expect((await search(ns, "q=cat&mode=semantic")).items).toHaveLength(1)
    })

    it("embeds a memory again when it is stored again after a forget", async () => {
      const ns = freshId("mem")
      const hash = (await json(await store(ns, "my kitten naps all day"))).body.events[0].data.hash
      await vi.waitFor(async () => expect(await vectorsOf(ns)).toBe(1), { timeout: 5_000 })
      await send("memory", ns, { type: "Forget", hash })
      expect(await vectorsOf(ns)).toBe(0)
      await store(ns, "my kitten naps all day")
      await vi.waitFor(async () => expect(await vectorsOf(ns)).toBe(1), { timeout: 5_000 })
      expect((await search(ns, "q=cat&mode=semantic")).items.map((i: any) => i.hash)).toEqual([hash])
    })

    it("refuses semantic queries without text and unknown modes", async () => {
      const ns = freshId("mem")
      expect((await json(await get(`/v1/memory/${ns}/search?mode=semantic`))).body.error.code).toBe("invalid_query")
      expect((await json(await get(`/v1/memory/${ns}/search?q=x&mode=vibes`))).status).toBe(400)
    })
  })
})
