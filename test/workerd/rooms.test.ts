import { SELF } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { BASE, freshId, get, json, openSocket } from "./helpers.js"

const broadcast = (body: unknown) =>
  SELF.fetch(`${BASE}/broadcast`, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers: { "content-type": "application/json" } })

describe("broadcast rooms", () => {
  it("broadcasts posts to every member, from members and from POST /broadcast, and logs everything", async () => {
    const room = freshId("room")
    const alice = await openSocket(`/ws?room=${room}&name=alice`)
    const bob = await openSocket(`/ws?room=${room}&name=bob`)
    // Joins are commands; wait until both are in the log before posting.
    for (let i = 0; i < 50 && (await json(await get(`/v1/room/${room}`))).body.version < 2; i++) await new Promise((r) => setTimeout(r, 10))
    alice.ws.send(JSON.stringify({ type: "chat", payload: "hi" }))
    const posted = await json(await broadcast({ room, type: "news", payload: { headline: "emberlog" } }))
    expect(posted).toEqual({ status: 200, body: { room, version: expect.any(Number) } })
    for (const member of [alice, bob]) {
      await member.until((f) => f.length >= 2)
      expect(member.frames).toEqual([
        { type: "chat", payload: "hi", timestamp: expect.any(Number), sender: "alice" },
        { type: "news", payload: { headline: "emberlog" }, timestamp: expect.any(Number), sender: "broadcast" },
      ])
    }
    alice.ws.send("{oops")
    await alice.until((f) => f.some((x) => x.type === "error"))
    expect(alice.frames.at(-1)).toMatchObject({ type: "error", error: { code: "invalid_frame" } })
    bob.ws.close(1000, "bye")
    await bob.closed
    let events: Array<any> = []
    for (let i = 0; i < 50 && !events.some((e) => e.type === "Left"); i++) {
      events = (await json(await get(`/v1/room/${room}/events`))).body.events
      await new Promise((r) => setTimeout(r, 10))
    }
    expect(events.map((e) => e.type).sort()).toEqual(["Joined", "Joined", "Left", "Posted", "Posted"])
    expect(events.find((e) => e.type === "Left").data).toEqual({ name: "bob" })
    expect((await json(await get(`/v1/room/${room}`))).body.state).toEqual({ members: { alice: 1 }, posts: 2 })
    alice.ws.close(1000)
  })

  it("joins the lobby by default", async () => {
    const guest = await openSocket(`/ws`)
    await broadcast({ type: "hello", payload: 1 })
    await guest.until((f) => f.some((x) => x.type === "hello"))
    guest.ws.close(1000)
  })

  it("refuses bad input clearly", async () => {
    expect(await json(await broadcast({ room: freshId("nobody"), type: "x", payload: 1 }))).toMatchObject({ status: 404, body: { error: { code: "unknown_room" } } })
    expect(await json(await broadcast("{"))).toMatchObject({ status: 400, body: { error: { code: "invalid_json" } } })
    expect(await json(await broadcast({ room: "lobby", payload: 1 }))).toMatchObject({ status: 400, body: { error: { code: "invalid_body" } } })
    expect(await json(await broadcast({ room: "bad room!", type: "x" }))).toMatchObject({ status: 400, body: { error: { code: "invalid_room" } } })
    expect((await json(await SELF.fetch(`${BASE}/ws?room=lobby`))).status).toBe(426)
  })
})
