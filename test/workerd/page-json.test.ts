// GET …/events answers the page's JSON text spliced in the object from the stored rows
// (ActorCore.readEventsJson): byte for byte what JSON.stringify of the parsed page gives.
import { SELF, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { BASE, actorApi, actorObject, appendLegacyIncremented, freshId, get, openSocket, send } from "./helpers.js"

/** Payloads whose JSON is easy to get wrong: integer keys (JSON.parse moves them first), escapes, astral characters. */
const PAYLOADS: Array<unknown> = [
  { "10": "ten", "9": "nine", a: 1, "0": [1, '2,"3'] },
  { text: 'quote " backslash \\ newline \n tab \t', emoji: "é 😀 \u2028", control: "\u0001" },
  { numbers: [0.1, 1e21, -5, 2 ** 53 - 1, -0], nested: { deep: [{ b: 2, a: 1 }] }, none: null },
  ["1st", "2nd", { "3": 3 }],
  { ["__proto__"]: { polluted: true }, constructor: "c" },
  "plain string",
  42,
]

const pageText = async (path: string) => {
  const response = await get(path)
  expect(response.status).toBe(200)
  expect(response.headers.get("content-type")).toMatch(/^application\/json/)
  return response.text()
}

const rpcPage = async (kind: string, id: string, after: number, limit: number, stored: boolean) => {
  const reply = await actorApi(kind, id).readEvents(after, limit, stored)
  if (!reply.ok) throw new Error(reply.error.message)
  return JSON.stringify(reply.value)
}

describe("GET …/events as spliced JSON", () => {
  it("answers the same bytes as JSON.stringify of the parsed page, stored or upcast, at every page size", async () => {
    const room = freshId("json")
    for (const [i, payload] of PAYLOADS.entries())
      expect((await send("room", room, { type: "Post", messageType: `m${i}`, payload, sender: "s" })).status).toBe(200)
    for (const stored of [false, true])
      for (const limit of [1, 3, 100])
        for (let after = 0; after < PAYLOADS.length; after += limit) {
          const path = `/v1/room/${room}/events?after=${after}&limit=${limit}${stored ? "&stored=true" : ""}`
          expect(await pageText(path)).toBe(await rpcPage("room", room, after, limit, stored))
        }
  })

  it("upcasts an old row the same way (its page takes the parse), and keeps stored=true as written", async () => {
    const id = freshId("json")
    await send("counter", id, { type: "Increment", by: 1, reason: "first" })
    await appendLegacyIncremented(id, 1)
    // Recovery reads the head from the log, legacy row included.
    await evictDurableObject(actorObject("counter", id))
    for (const stored of [false, true]) {
      const path = `/v1/counter/${id}/events?after=0&limit=10${stored ? "&stored=true" : ""}`
      const text = await pageText(path)
      expect(text).toBe(await rpcPage("counter", id, 0, 10, stored))
      const events = JSON.parse(text).events
      expect(events[1]).toMatchObject(
        stored ? { schemaVersion: 1, data: { by: 41 } } : { schemaVersion: 2, data: { by: 41, reason: null } },
      )
    }
  })

  it("pages up to 10,000 events a request (a catch-up pays each request's fixed cost once a page)", async () => {
    const id = freshId("json")
    for (let i = 0; i < 1200; i++)
      expect((await actorApi("counter", id).command({ command: { type: "Increment", by: 1 } })).ok).toBe(true)
    const page = JSON.parse(await pageText(`/v1/counter/${id}/events?after=0&limit=10000`))
    expect(page.events.map((event: { seq: number }) => event.seq)).toEqual(
      Array.from({ length: 1200 }, (_, i) => i + 1),
    )
    expect(page.next).toBeNull()
  })

  it("answers 500 for a row whose data is not JSON, never a page with fields it injected", async () => {
    const id = freshId("json")
    for (let i = 0; i < 3; i++) await send("counter", id, { type: "Increment", by: 1 })
    // Spliced as it is, this text would close `data` and give the event a second, later "seq".
    const tamper = (data?: string) =>
      runInDurableObject(actorObject("counter", id), (_instance, state) => {
        const original = state.storage.sql.exec("SELECT data FROM events WHERE seq = 2").one().data as string
        state.storage.sql.exec("UPDATE events SET data = ? WHERE seq = 2", data ?? original)
        return original
      })
    const original = await tamper('{"by":1},"seq":999,"x":{}')
    for (const stored of [false, true]) {
      const response = await get(`/v1/counter/${id}/events?after=0&limit=10${stored ? "&stored=true" : ""}`)
      expect(response.status).toBe(500)
      expect(await response.text()).not.toContain("999")
    }
    // A batch backlog neither sends it nor goes live past it: the socket is closed as the object's error.
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    expect((await socket.closed).code).toBe(1011)
    expect(JSON.stringify(socket.frames)).not.toContain("999")
    // Put back, so the topic delivery that reads the same row stops retrying.
    await tamper(original)
  })

  it("a batch=1 backlog carries the same events as the page reader", async () => {
    const room = freshId("json")
    for (const [i, payload] of PAYLOADS.entries())
      await send("room", room, { type: "Post", messageType: `m${i}`, payload, sender: "s" })
    // The frame's text as it came, against the page's text: byte for byte, not parsed and re-encoded.
    const response = await SELF.fetch(`${BASE}/v1/room/${room}/ws?batch=1`, { headers: { Upgrade: "websocket" } })
    const ws = response.webSocket!
    const first = new Promise<string>((resolve) =>
      ws.addEventListener("message", (event) => resolve(String(event.data))),
    )
    ws.accept()
    const page = await pageText(`/v1/room/${room}/events?after=0&limit=100`)
    const events = page.slice('{"events":'.length, page.lastIndexOf(',"next":'))
    expect(await first).toBe(`{"type":"events","events":${events}}`)
    ws.close(1000)
  })
})
