// Reads whose items are large: a reply crosses a Durable Object RPC (capped at 32 MiB), so
// every page is bounded in bytes as well as in count, holds at least one item, and `next`
// continues right after its last item, so paging through returns everything exactly once.
import { env } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import type { WireEvent } from "../../src/core/wire.js"
import type { TopicApi } from "../../src/actors/topic.js"
import { PAGE_BYTES } from "../../src/domain/json-size.js"
import { freshId, get, json, range, send, topicObject } from "./helpers.js"

const utf8 = new TextEncoder()
/** A page may pass the budget only by its first item, which is never larger than this here. */
const MAX_ITEM = 1024 * 1024 + 4096

/** Follows `next` (or the memory search cursor) from the start; checks every page's status and size. */
const pages = async (first: string, nextUrl: (next: string | number) => string) => {
  const bodies: Array<any> = []
  for (let url: string | null = first; url !== null;) {
    const response = await get(url)
    const text = await response.text()
    expect(response.status, text.slice(0, 300)).toBe(200)
    expect(utf8.encode(text).byteLength).toBeLessThanOrEqual(PAGE_BYTES + MAX_ITEM)
    const body = JSON.parse(text)
    bodies.push(body)
    url = body.next === null ? null : nextUrl(body.next)
  }
  return bodies
}

describe("pages of large items", () => {
  it("pages events and topic entries by bytes: 140 room posts of 250 KB (35 MB) read whole, once each", async () => {
    const room = freshId("big-room")
    const payload = "p".repeat(250_000)
    for (let i = 0; i < 140; i++) {
      const post = { type: "Post", messageType: "chat", payload: `${i}:${payload}`, sender: "alice" }
      const posted = await send("room", room, post)
      expect(posted.status).toBe(200)
      await posted.body?.cancel()
    }
    for (const stored of ["false", "true"]) {
      const events = `/v1/room/${room}/events?limit=1000&stored=${stored}`
      const bodies = await pages(`${events}&after=0`, (next) => `${events}&after=${next}`)
      expect(bodies.length).toBeGreaterThan(1)
      const seqs = bodies.flatMap((body) => body.events.map((event: any) => event.seq))
      expect(seqs).toEqual(range(1, 140))
      expect(bodies.flatMap((body) => body.events.map((event: any) => event.data.payload.split(":")[0]))).toEqual(
        range(0, 139).map(String),
      )
    }

    // The same events reach the room topic through the outbox (one delivery is one RPC too).
    const mine = async () => {
      const path = "/v1/topics/room/events?limit=1000"
      const bodies = await pages(`${path}&after=0`, (next) => `${path}&after=${next}`)
      const entries = bodies.flatMap((body) => body.entries)
      expect(entries.map((entry: any) => entry.topicSeq)).toEqual(range(1, entries.length))
      return entries.filter((entry: any) => entry.source.id === room).map((entry: any) => entry.event.seq)
    }
    const deadline = Date.now() + 45_000
    let delivered = await mine()
    while (delivered.length < 140 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      delivered = await mine()
    }
    expect(delivered).toEqual(range(1, 140))
  }, 120_000)

  it("pages memory search by bytes: limit=100 over 40 memories of 1 MB (40 MB) returns each once", async () => {
    const ns = freshId("big-mem")
    const filler = "x".repeat(1_000_000)
    const hashes: Array<string> = []
    for (let i = 0; i < 40; i++) {
      const command = { type: "Store", content: `needle ${i} ${filler}`, tags: ["big"] }
      const stored = await json(await send("memory", ns, command))
      expect(stored.status).toBe(200)
      hashes.push(stored.body.events[0].data.hash)
    }
    for (const query of ["q=needle&limit=100", "tags=big&limit=100", "limit=100"]) {
      const search = `/v1/memory/${ns}/search?${query}`
      const bodies = await pages(search, (next) => `${search}&cursor=${next}`)
      expect(bodies.length).toBeGreaterThan(1)
      const found = bodies.flatMap((body) => body.items.map((item: any) => item.hash))
      expect(found).toHaveLength(40)
      expect([...found].sort()).toEqual([...hashes].sort())
      for (const body of bodies) for (const item of body.items) expect(item.content.endsWith(filler)).toBe(true)
    }
  }, 120_000)

  it("pages a topic of large entries by bytes (delivered directly, a few at a time)", async () => {
    const name = freshId("big-topic")
    const topic = topicObject(name) as unknown as TopicApi
    const event = (seq: number): WireEvent => ({
      seq,
      type: "Posted",
      schemaVersion: 1,
      data: { payload: `${seq}:${"t".repeat(300_000)}` },
      meta: { at: seq, commandId: `c${seq}`, correlationId: `c${seq}`, causationId: null, principal: "p" },
      hash: "0".repeat(64),
    })
    for (let seq = 1; seq <= 120; seq += 10) {
      await topic.deliver({ kind: "room", id: "r" }, range(seq, seq + 9).map(event))
    }
    const path = `/v1/topics/${name}/events?limit=1000`
    const bodies = await pages(`${path}&after=0`, (next) => `${path}&after=${next}`)
    expect(bodies.length).toBeGreaterThan(1)
    expect(bodies.flatMap((body) => body.entries.map((entry: any) => entry.event.seq))).toEqual(range(1, 120))
    expect(bodies.every((body) => body.head === 120)).toBe(true)
  })

  it("still pages small events by count", async () => {
    const id = freshId("small")
    for (let i = 0; i < 5; i++) await send("counter", id, { type: "Increment", by: 1 })
    const page = await json(await get(`/v1/counter/${id}/events?after=1&limit=2`))
    expect(page.body.events.map((event: any) => event.seq)).toEqual([2, 3])
    expect(page.body.next).toBe(3)
    expect((await json(await get(`/v1/counter/${id}/events?after=3&limit=2`))).body.next).toBeNull()
  })
})
