// Direct messages in rooms: `to` names one member; only it (and its sender) receives the frame; the log keeps it all.
import { SELF, createExecutionContext, env, evictDurableObject } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import { actorObject, BASE, freshId, get, json, openSocket, send } from "./helpers.js"

const SECRET = "room-direct-secret-" + crypto.randomUUID()
/** A token for `sub` in tenant `acme`, with auth on (the suite's default is AUTH_MODE=off: one principal for all). */
const token = (sub: string, scope = "read write") =>
  new SignJWT({ sub, scope, tenant: "acme" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
    .sign(new TextEncoder().encode(SECRET))
const asPrincipal = async (sub: string, path: string, init: RequestInit = {}) => {
  const headers = new Headers(init.headers)
  headers.set("Authorization", `Bearer ${await token(sub)}`)
  const bindings = { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET } as never
  return worker.fetch(new Request(new URL(path, BASE), { ...init, headers }), bindings, createExecutionContext())
}
/** A member socket opened with `sub`'s token, its frames collected. */
const memberAs = async (sub: string, path: string) => {
  const response = await asPrincipal(sub, path, { headers: { Upgrade: "websocket" } })
  expect(response.status).toBe(101)
  const ws = response.webSocket!
  const frames: Array<any> = []
  ws.addEventListener("message", (event) => frames.push(JSON.parse(event.data as string)))
  ws.accept()
  const closed = new Promise((resolve) => ws.addEventListener("close", resolve))
  return { ws, frames, closed }
}

const broadcast = (body: unknown) =>
  SELF.fetch(`${BASE}/broadcast`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  })

const posts = (frames: Array<any>) => frames.filter((f) => f.type !== "error").map((f) => f.payload)

/** Lets frames that should not come have the time to come. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50))

describe("room direct messages", () => {
  it("a member's socket sees posts to everyone, its own direct messages and those to it, none other", async () => {
    const room = freshId("dm")
    const alice = await openSocket(`/ws?room=${room}&name=alice`)
    const bob = await openSocket(`/ws?room=${room}&name=bob`)
    const bobAgain = await openSocket(`/ws?room=${room}&name=bob`)
    const carol = await openSocket(`/ws?room=${room}&name=carol`)
    alice.ws.send(JSON.stringify({ type: "chat", payload: "to bob", to: "bob" }))
    carol.ws.send(JSON.stringify({ type: "chat", payload: "to all" }))
    expect((await json(await broadcast({ room, type: "notice", payload: "to carol", to: "carol" }))).status).toBe(200)
    bob.ws.send(JSON.stringify({ type: "chat", payload: "to alice", to: "alice" }))
    await alice.until((f) => posts(f).length === 3)
    await carol.until((f) => posts(f).length === 2)
    await bob.until((f) => posts(f).length === 3)
    await bobAgain.until((f) => posts(f).length === 3)
    await settle()
    expect(alice.frames).toEqual([
      { type: "chat", payload: "to bob", timestamp: expect.any(Number), sender: "alice", to: "bob" },
      { type: "chat", payload: "to all", timestamp: expect.any(Number), sender: "carol" },
      { type: "chat", payload: "to alice", timestamp: expect.any(Number), sender: "bob", to: "alice" },
    ])
    // Every socket of the member gets what is for it.
    for (const socket of [bob, bobAgain]) expect(posts(socket.frames)).toEqual(["to bob", "to all", "to alice"])
    // A post from outside has no member sending it: only its recipient sees it.
    expect(posts(carol.frames)).toEqual(["to all", "to carol"])
    expect(carol.frames[1]).toEqual({
      type: "notice",
      payload: "to carol",
      timestamp: expect.any(Number),
      sender: "broadcast",
      to: "carol",
    })
    for (const socket of [alice, bob, bobAgain, carol]) socket.ws.close(1000)
  })

  it("the room's log records every message with its recipient; the generic log routes are the audit view", async () => {
    const room = freshId("dm")
    const audit = await openSocket(`/v1/room/${room}/ws`)
    const alice = await openSocket(`/ws?room=${room}&name=alice`)
    const bob = await openSocket(`/ws?room=${room}&name=bob`)
    alice.ws.send(JSON.stringify({ type: "chat", payload: "secret", to: "bob" }))
    await bob.until((f) => posts(f).length === 1)
    const events = (await json(await get(`/v1/room/${room}/events`))).body.events as Array<any>
    const posted = events.filter((e) => e.type === "Posted")
    expect(posted).toHaveLength(1)
    expect(posted[0].data).toEqual({ messageType: "chat", payload: "secret", sender: "alice", to: "bob" })
    expect((await json(await get(`/v1/room/${room}/verify`))).body).toMatchObject({ ok: true })
    // The read-scope log socket sees everything, direct messages included (it is the room's record, not a member).
    await audit.until((f) => f.some((x) => x.type === "event" && x.event.type === "Posted"))
    expect(audit.frames.find((x) => x.type === "event" && x.event.type === "Posted").event).toEqual(posted[0])
    const sse = await SELF.fetch(`${BASE}/v1/room/${room}/events/stream?types=Posted`)
    const text = await readUntil(sse, '"to":"bob"')
    expect(text).toContain('"payload":"secret"')
    for (const socket of [audit, alice, bob]) socket.ws.close(1000)
  })

  it("refuses a direct message to a name with no member in the room, changing nothing", async () => {
    const room = freshId("dm")
    const alice = await openSocket(`/ws?room=${room}&name=alice`)
    const bob = await openSocket(`/ws?room=${room}&name=bob`)
    const before = (await json(await get(`/v1/room/${room}`))).body.version
    alice.ws.send(JSON.stringify({ type: "chat", payload: "hello?", to: "dave" }))
    await alice.until((f) => f.some((x) => x.type === "error"))
    expect(alice.frames).toEqual([
      {
        type: "error",
        id: null,
        error: {
          code: "unknown_recipient",
          message: "dave is not in the room: a direct message goes to a member who is connected",
          details: { to: "dave" },
        },
      },
    ])
    alice.ws.send(JSON.stringify({ type: "chat", payload: 1, to: 7 }))
    await alice.until((f) => f.filter((x) => x.type === "error").length === 2)
    expect(alice.frames[1]).toMatchObject({ type: "error", error: { code: "invalid_frame" } })
    expect(await json(await broadcast({ room, type: "x", payload: 1, to: "dave" }))).toMatchObject({
      status: 422,
      body: { error: { code: "unknown_recipient" } },
    })
    expect(await json(await broadcast({ room, type: "x", payload: 1, to: 7 }))).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_body" } },
    })
    // Gone is gone: once bob has left, a message to him is refused too.
    bob.ws.close(1000)
    await bob.closed
    for (let i = 0; i < 100 && (await json(await get(`/v1/room/${room}`))).body.state.members.bob !== undefined; i++)
      await settle()
    expect((await json(await broadcast({ room, type: "x", payload: 1, to: "bob" }))).status).toBe(422)
    const after = (await json(await get(`/v1/room/${room}`))).body
    expect(after.version).toBe(before + 1) // bob's Left, nothing else
    expect(after.state.posts).toBe(0)
    await settle()
    expect(posts(alice.frames)).toEqual([])
    alice.ws.close(1000)
  })

  it("a name with open sockets is another principal's to take only once they closed: its messages stay its own", async () => {
    const room = freshId("dm")
    const alice = await memberAs("alice", `/ws?room=${room}&name=alice`)
    const bob = await memberAs("bob", `/ws?room=${room}&name=bob`)
    const bobAgain = await memberAs("bob", `/ws?room=${room}&name=bob`)
    const state = async () => (await (await asPrincipal("alice", `/v1/room/${room}`)).json()) as any
    const before = (await state()).version
    const taken = await asPrincipal("mallory", `/ws?room=${room}&name=bob`, { headers: { Upgrade: "websocket" } })
    expect(taken.status).toBe(409)
    expect(await taken.json()).toEqual({
      error: {
        code: "name_taken",
        message: "bob is in this room already, joined by someone else: join under another name",
        details: { name: "bob" },
      },
    })
    expect((await state()).version).toBe(before)
    alice.ws.send(JSON.stringify({ type: "chat", payload: "for bob", to: "bob" }))
    for (let i = 0; i < 100 && bobAgain.frames.length === 0; i++) await settle()
    expect([bob, bobAgain].map((socket) => posts(socket.frames))).toEqual([["for bob"], ["for bob"]])
    // Once bob's sockets closed (and he left), the name is free for another principal.
    bob.ws.close(1000)
    bobAgain.ws.close(1000)
    for (let i = 0; i < 100 && (await state()).state.members.bob !== undefined; i++) await settle()
    const mallory = await memberAs("mallory", `/ws?room=${room}&name=bob`)
    for (const socket of [alice, mallory]) socket.ws.close(1000)
  })

  it("refuses broadcast as a member name: posts from outside carry it as their sender", async () => {
    const room = freshId("dm")
    const refused = await json(
      await SELF.fetch(`${BASE}/ws?room=${room}&name=broadcast`, { headers: { Upgrade: "websocket" } }),
    )
    expect(refused).toMatchObject({ status: 422, body: { error: { code: "reserved_name" } } })
    expect((await json(await get(`/v1/room/${room}`))).body.version).toBe(0)
  })

  it("targets by member name after hibernation, and by command through the HTTP route too", async () => {
    const room = freshId("dm")
    const alice = await openSocket(`/ws?room=${room}&name=alice`)
    const bob = await openSocket(`/ws?room=${room}&name=bob`)
    await evictDurableObject(actorObject("room", room), { webSockets: "hibernate" })
    const command = { type: "Post", messageType: "chat", payload: "psst", sender: "alice", to: "bob" }
    expect((await send("room", room, command)).status).toBe(200)
    await bob.until((f) => posts(f).length === 1)
    expect(bob.frames[0]).toMatchObject({ payload: "psst", sender: "alice", to: "bob" })
    await alice.until((f) => posts(f).length === 1)
    const tooLong = await json(await send("room", room, { ...command, to: "x".repeat(65) }))
    expect(tooLong.status).toBe(400)
    await settle()
    expect(posts(bob.frames)).toEqual(["psst"])
    for (const socket of [alice, bob]) socket.ws.close(1000)
  })
})

/** Reads a streamed body until it contains `needle`; returns what was read. */
const readUntil = async (response: Response, needle: string) => {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let text = ""
  const deadline = Date.now() + 10_000
  while (!text.includes(needle) && Date.now() < deadline) {
    const { value, done } = await reader.read()
    if (done) break
    text += value
  }
  await reader.cancel()
  return text
}
