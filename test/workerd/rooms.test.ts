import { SELF, env, evictDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { actorObject, BASE, freshId, get, json, openSocket, send } from "./helpers.js"

const broadcast = (body: unknown) =>
  SELF.fetch(`${BASE}/broadcast`, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json" },
  })

describe("broadcast rooms", () => {
  it("broadcasts posts to every member, from members and from POST /broadcast, and logs everything", async () => {
    const room = freshId("room")
    const alice = await openSocket(`/ws?room=${room}&name=alice`)
    const bob = await openSocket(`/ws?room=${room}&name=bob`)
    // Joins are commands; wait until both are in the log before posting.
    for (let i = 0; i < 50 && (await json(await get(`/v1/room/${room}`))).body.version < 2; i++)
      await new Promise((r) => setTimeout(r, 10))
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
    expect(await json(await broadcast({ room: freshId("nobody"), type: "x", payload: 1 }))).toMatchObject({
      status: 404,
      body: { error: { code: "unknown_room" } },
    })
    expect(await json(await broadcast("{"))).toMatchObject({ status: 400, body: { error: { code: "invalid_json" } } })
    expect(await json(await broadcast({ room: "lobby", payload: 1 }))).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_body" } },
    })
    expect(await json(await broadcast({ room: "bad room!", type: "x" }))).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_room" } },
    })
    expect((await json(await SELF.fetch(`${BASE}/ws?room=lobby`))).status).toBe(426)
  })

  it("a member named after an Object.prototype property is a member like any other, also after a restart", async () => {
    const room = freshId("proto")
    const names = ["constructor", "__proto__", "toString", "hasOwnProperty"]
    const sockets = []
    for (const name of names) sockets.push(await openSocket(`/ws?room=${room}&name=${encodeURIComponent(name)}`))
    const version = async () => (await json(await get(`/v1/room/${room}`))).body.version
    for (let i = 0; i < 100 && (await version()) < names.length; i++) await new Promise((r) => setTimeout(r, 10))
    const expected = { members: Object.fromEntries(names.map((name) => [name, 1])), posts: 1 }
    const check = async () => {
      const read = await json(await get(`/v1/room/${room}`))
      expect(read.status).toBe(200)
      expect(read.body.state).toEqual(expected)
      expect(Object.keys(read.body.state.members).sort()).toEqual([...names].sort())
      expect((await get(`/v1/room/${room}/events`)).status).toBe(200)
      expect((await json(await get(`/v1/room/${room}/verify`))).body).toMatchObject({ ok: true })
    }
    expect((await json(await broadcast({ room, type: "news", payload: 1 }))).status).toBe(200)
    await check()
    await evictDurableObject(actorObject("room", room))
    await check()
    // A Leave of a name that never joined is refused, not read from the prototype.
    const leave = await json(await send("room", room, { type: "Leave", name: "valueOf" }))
    expect(leave.body.error.code).toBe("not_a_member")
    const post = { type: "Post", messageType: "x", payload: null, sender: "constructor" }
    expect((await send("room", room, post)).status).toBe(200)
    expect((await json(await broadcast({ room, type: "news", payload: 2 }))).status).toBe(200)
    expect((await json(await get(`/v1/room/${room}`))).body.state).toEqual({ ...expected, posts: 3 })
    for (const socket of sockets) socket.ws.close(1000)
  })
})
