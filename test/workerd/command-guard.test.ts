// Section 1 of issue 10 through the Worker: input nested too deep is refused with 400 on every
// body and socket frame before anything runs; a GET never creates an actor's storage.
import { SELF, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { MAX_JSON_DEPTH } from "../../src/actors/limits.js"
import type { CounterTotalsView } from "../../src/kinds/counter/totals.js"
import type { TopicApi } from "../../src/actors/topic.js"
import { actorObject, BASE, freshId, get, json, openSocket, readSse, send, topicObject } from "./helpers.js"

/** JSON text nested `depth` arrays deep (built as text: a value this deep cannot be stringified). */
const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth)
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  SELF.fetch(`${BASE}${path}`, { method: "POST", body, headers: { "content-type": "application/json", ...headers } })
const roomPost = (payload: string) => `{"type":"Post","messageType":"x","sender":"a","payload":${payload}}`
const version = async (kind: string, id: string) => (await json(await get(`/v1/${kind}/${id}`))).body.version

describe("deep JSON", () => {
  for (const depth of [3_000, 6_000, 100_000]) {
    it(`refuses ${depth}-deep bodies with 400 on every route, appending nothing`, async () => {
      const room = freshId("deep")
      const call = `{"name":"counter_increment","arguments":${deep(depth)}}`
      const mcp = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${call}}`
      const routes: Array<[string, string, Record<string, string>?]> = [
        [`/v1/room/${room}/commands`, roomPost(deep(depth))],
        [`/v1/memory/${room}/commands`, `{"type":"Store","content":"hi","metadata":{"m":${deep(depth)}}}`],
        ["/broadcast", `{"room":"${room}","type":"x","payload":${deep(depth)}}`],
        ["/api/analyze", `{"specType":"openapi","spec":{"paths":${deep(depth)}}}`],
        ["/mcp", mcp, { accept: "application/json, text/event-stream" }],
      ]
      const answers = []
      for (const [path, body, headers] of routes) {
        const response = await post(path, body, headers)
        answers.push({ path, status: response.status, tooDeep: (await response.text()).includes("too_deep") })
      }
      expect(answers).toEqual(routes.map(([path]) => ({ path, status: 400, tooDeep: true })))
      expect(await version("room", room)).toBe(0)
      expect(await version("memory", room)).toBe(0)
    })
  }

  it("accepts a command exactly MAX_JSON_DEPTH deep and refuses one level more", async () => {
    const room = freshId("depth")
    // The command object is one level, so its payload may be one less.
    const command = (payloadDepth: number) => post(`/v1/room/${room}/commands`, roomPost(deep(payloadDepth)))
    expect((await command(MAX_JSON_DEPTH - 1)).status).toBe(200)
    expect((await json(await command(MAX_JSON_DEPTH))).body.error.code).toBe("too_deep")
    expect(await version("room", room)).toBe(1)
  })

  for (const depth of [3_000, 6_000]) {
    it(`refuses ${depth}-deep command frames and room frames on sockets, appending nothing`, async () => {
      const room = freshId("deep-ws")
      const log = await openSocket(`/v1/room/${room}/ws`)
      log.ws.send(`{"type":"command","id":"c1","command":${roomPost(deep(depth))}}`)
      await log.until((frames) => frames.some((f) => f?.type === "error" && f.id === "c1"))
      expect(log.frames.find((f) => f?.type === "error")).toMatchObject({ id: "c1", error: { code: "too_deep" } })
      expect(await version("room", room)).toBe(0)

      const member = await openSocket(`/ws?room=${room}&name=alice`)
      for (let i = 0; i < 100 && (await version("room", room)) < 1; i++) await new Promise((r) => setTimeout(r, 10))
      member.ws.send(`{"type":"chat","payload":${deep(depth)}}`)
      await member.until((frames) => frames.some((f) => f?.type === "error"))
      expect(member.frames.find((f) => f?.type === "error")).toMatchObject({ error: { code: "too_deep" } })
      expect(await version("room", room)).toBe(1)
      // The socket still works afterwards.
      log.ws.send(`{"type":"command","id":"c2","command":${roomPost("1")}}`)
      await log.until((frames) => frames.some((f) => f?.type === "ack" && f.id === "c2"))
      expect(await version("room", room)).toBe(2)
      log.ws.close(1000)
      member.ws.close(1000)
    })
  }
})

describe("reads create nothing", () => {
  const tables = (id: string) =>
    runInDurableObject(actorObject("counter", id), (_instance, state) =>
      state.storage.sql
        .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
        .toArray()
        .map((row) => row.name),
    )

  it("GETs of an actor with no events (state, at, events, verify, SSE, socket) leave it without storage", async () => {
    const id = freshId("fresh")
    const read = await json(await get(`/v1/counter/${id}`))
    expect(read).toEqual({ status: 200, body: { kind: "counter", id, version: 0, state: { value: 0 } } })
    expect((await json(await get(`/v1/counter/${id}?at=0`))).body.version).toBe(0)
    expect((await json(await get(`/v1/counter/${id}?asOf=2026-01-01T00:00:00Z`))).body.version).toBe(0)
    expect((await json(await get(`/v1/counter/${id}/events`))).body).toEqual({ events: [], next: null })
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, events: 0 })
    const socket = await openSocket(`/v1/counter/${id}/ws`)
    socket.ws.close(1000)
    expect(await tables(id)).toEqual([])
    // An SSE reader on its own id: the object keeps its stream until the next keep-alive, and
    // the eviction below would wait for that.
    const streamed = freshId("fresh-sse")
    const sse = await get(`/v1/counter/${streamed}/events/stream`)
    expect(sse.status).toBe(200)
    await readSse(sse, 0)
    expect(await tables(streamed)).toEqual([])
    const stub = actorObject("counter", id)
    const size = await runInDurableObject(stub, (_, state) => state.storage.sql.databaseSize)
    // One page: SQLite's header of an empty database, nothing in it.
    expect(size).toBeLessThanOrEqual(4096)

    // The first command creates the log as before, and it survives a restart.
    const first = await json(await send("counter", id, { type: "Increment", by: 2 }))
    expect(first.body).toMatchObject({ version: 1, state: { value: 2 } })
    expect(await tables(id)).toEqual(expect.arrayContaining(["events", "snapshots", "commands", "outbox"]))
    await evictDurableObject(actorObject("counter", id))
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 1, state: { value: 2 } })
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, events: 1 })
  })

  it("holds for a memory store too: search and items of a fresh namespace, then its first Store", async () => {
    const ns = freshId("fresh-memory")
    const memoryTables = () =>
      runInDurableObject(actorObject("memory", ns), (_instance, state) =>
        state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\'").toArray(),
      )
    expect((await json(await get(`/v1/memory/${ns}/search?q=anything`))).body).toEqual({ items: [], next: null })
    expect((await json(await get(`/v1/memory/${ns}/items/${"0".repeat(64)}`))).status).toBe(404)
    expect((await json(await get(`/v1/memory/${ns}`))).body.version).toBe(0)
    expect((await send("memory", ns, { type: "Store", content: "" })).status).toBe(400)
    expect(await memoryTables()).toEqual([])
    expect((await send("memory", ns, { type: "Store", content: "first words", tags: ["a"] })).status).toBe(200)
    const found = (await json(await get(`/v1/memory/${ns}/search?q=words`))).body
    expect(found.items.map((item: { content: string }) => item.content)).toEqual(["first words"])
    await evictDurableObject(actorObject("memory", ns))
    expect((await json(await get(`/v1/memory/${ns}/search?q=first`))).body.items).toHaveLength(1)
  })

  it("holds for topics and the counter-totals projection", async () => {
    const topic = freshId("fresh-topic")
    const ownTables = (stub: DurableObjectStub) =>
      runInDurableObject(stub, (_instance, state) =>
        state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\'").toArray(),
      )
    const page = await json(await get(`/v1/topics/${topic}/events?after=0`))
    expect(page.body).toEqual({ entries: [], next: null, head: 0 })
    expect(await ownTables(topicObject(topic))).toEqual([])
    const tenant = freshId("fresh-tenant")
    // The projection lives in its topic's object: the tenant's counter topic.
    const counterTopic = topicObject("counter", tenant) as unknown as TopicApi
    const totalsOf = async (): Promise<CounterTotalsView> => {
      const reply = await counterTopic.readProjection("counter-totals")
      if (!reply.ok) throw new Error(reply.error.message)
      return reply.value as CounterTotalsView
    }
    const totals = await totalsOf()
    expect(totals).toEqual({ total: 0, counters: 0, lastUpdate: null, topicSeq: 0 })
    expect(await ownTables(topicObject("counter", tenant))).toEqual([])
    // The projection is fed by the topic's appends.
    const event = {
      seq: 1,
      type: "Incremented",
      schemaVersion: 2,
      data: { by: 3, reason: null },
      meta: { at: 1 },
      hash: "h",
    }
    await counterTopic.deliver({ kind: "counter", id: "c1" }, [event as never])
    const caughtUp = await totalsOf()
    expect(caughtUp).toMatchObject({ total: 3, counters: 1, topicSeq: 1 })
  })

  it("a refused first command leaves no storage either", async () => {
    const id = freshId("refused")
    expect((await send("counter", id, { type: "Increment", by: 0 })).status).toBe(400)
    const down = { type: "Decrement", by: Number.MAX_SAFE_INTEGER }
    expect((await send("counter", id, down, { "Idempotency-Key": "k" })).status).toBe(200)
    expect((await send("counter", id, down)).status).toBe(422)
    expect(await version("counter", id)).toBe(1)
    const other = freshId("refused")
    expect((await send("counter", other, { type: "Nope" })).status).toBe(400)
    expect(await tables(other)).toEqual([])
  })
})

describe("a 500", () => {
  it("says nothing was appended when the command's transaction rolled back", async () => {
    const id = freshId("boom")
    await send("counter", id, { type: "Increment", by: 1 })
    await runInDurableObject(actorObject("counter", id), (_, state) =>
      state.storage.sql.exec(`CREATE TRIGGER refuse BEFORE INSERT ON commands
        BEGIN SELECT RAISE(ABORT, 'refused'); END`),
    )
    const failed = await json(await send("counter", id, { type: "Increment", by: 1 }, { "Idempotency-Key": "x" }))
    expect(failed.status).toBe(500)
    expect(failed.body.error.code).toBe("internal")
    expect(failed.body.error.message).toContain("rolled back: nothing was appended")
    expect((await json(await get(`/v1/counter/${id}`))).body.version).toBe(1)
  })
})

describe("the structural guard through the Worker", () => {
  it("a document never answers 200 with a state its snapshot row could not hold, and keeps working", async () => {
    const id = freshId("big-doc")
    const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).byteLength
    expect((await send("document", id, { type: "Create", title: "big", content: "" })).status).toBe(200)
    // 4-byte code points: 500,000 characters (the content cap) would be 2 MB of UTF-8.
    const chunk = "😀".repeat(60_000)
    const answers: Array<number> = []
    let accepted = 1
    for (let i = 0; i < 12 && answers.at(-1) !== 422; i++) {
      const edit = { type: "Edit", baseVersion: accepted, ops: [{ op: "insert", at: i * 60_000, text: chunk }] }
      const { status, body } = await json(await send("document", id, edit))
      answers.push(status)
      if (status !== 200) continue
      accepted = body.version
      expect(bytes(body.state)).toBeLessThanOrEqual(2_000_000)
    }
    expect(answers.at(-1)).toBe(422)
    expect(answers.slice(0, -1).every((status) => status === 200)).toBe(true)
    expect((await json(await get(`/v1/document/${id}`))).body.version).toBe(accepted)
    await evictDurableObject(actorObject("document", id))
    const read = await json(await get(`/v1/document/${id}`))
    expect(read).toMatchObject({ status: 200, body: { version: accepted } })
    expect(bytes(read.body.state)).toBeLessThanOrEqual(2_000_000)
    expect((await json(await get(`/v1/document/${id}/verify`))).body).toMatchObject({ ok: true, events: accepted })
    expect((await send("document", id, { type: "Rename", title: "still works" })).status).toBe(200)
  })
})
