// Stalled WebSocket subscribers are capped: bytes sent and not acknowledged (workerd has no bufferedAmount).
import { SELF, env, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { SubscriptionRefused, createClient } from "../../src/client/index.js"
import { CLOSE_RESUME, WS_MAX_UNCONFIRMED } from "../../src/actors/subscribers.js"
import { actorObject, BASE, eventSeqs, freshId, get, json, openSocket, parseFrame, range, send } from "./helpers.js"

/**
 * The typed client over the Worker, recording each connection's `after` and each close code.
 * Its backoff is long enough to time a test out: resuming on the resume code must skip it.
 * `batch: false` drops the client's `batch=1`, as a server before batched backlogs would ignore it.
 */
const resumingClient = ({ batch = true } = {}) => {
  const opened: Array<string> = []
  const closes: Array<number> = []
  const client = createClient({
    baseUrl: BASE,
    fetch: (input, init) => SELF.fetch(input, init),
    connect: async (url) => {
      const target = new URL(url.replace(/^ws/, "http"))
      opened.push(target.searchParams.get("after")!)
      if (!batch) target.searchParams.delete("batch")
      const response = await SELF.fetch(target.href, { headers: { Upgrade: "websocket" } })
      if (response.status !== 101 || !response.webSocket) {
        throw new SubscriptionRefused(response.status, await response.text())
      }
      response.webSocket.addEventListener("close", (event) => closes.push(event.code))
      response.webSocket.accept()
      return response.webSocket as any
    },
    reconnect: { initialDelayMs: 120_000, maxDelayMs: 120_000 },
  })
  return { client, opened, closes }
}

const POST_CHARS = 200 * 1024
/** Enough 200 KiB posts to pass the cap by a few. */
const POSTS = Math.ceil(WS_MAX_UNCONFIRMED / POST_CHARS) + 5

/** A room member that confirms every post it receives, as member clients must (or be closed at the cap). */
const openMember = async (room: string, name: string) => {
  const member = await openSocket(`/ws?room=${room}&name=${name}`)
  member.ws.addEventListener("message", (event) => {
    if (JSON.parse(event.data as string).type !== "ack") member.ws.send(JSON.stringify({ type: "ack" }))
  })
  return member
}

/** A room whose log holds `posts` large events after its first member's Joined. */
const roomWithPosts = async (posts: number) => {
  const room = freshId("buffers")
  const member = await openMember(room, "writer")
  for (let i = 0; i < posts; i++) await postLarge(room, i)
  return { room, member }
}

const JSON_HEADERS = { "content-type": "application/json" }

const postLarge = async (room: string, i: number) => {
  const body = JSON.stringify({ room, type: "blob", payload: `${i}:${"x".repeat(POST_CHARS)}` })
  const headers = { "content-type": "application/json" }
  const response = await SELF.fetch(`${BASE}/broadcast`, { method: "POST", body, headers })
  expect(response.status).toBe(200)
}

const frameChars = (frames: Array<any>) => frames.reduce((sum, frame) => sum + JSON.stringify(frame).length, 0)
const within = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<string>((resolve) => setTimeout(() => resolve("still open"), ms))])
/** Which posts (by the index postLarge gave them) a member's frames or a page of events hold. */
const postIndexes = (payloads: Array<unknown>) => payloads.map((payload) => Number(String(payload).split(":")[0]))

describe("WebSocket buffer cap", () => {
  // The types declare bufferedAmount, but workerd leaves it undefined on a server-side socket
  // (cloudflare/workerd#988). If this fails, workerd now reports it: the cap could use it.
  it("workerd reports no bufferedAmount for a server-side socket, so the bytes are accounted here", async () => {
    const room = freshId("buffers")
    const member = await openSocket(`/ws?room=${room}&name=probe`)
    const stub = actorObject("room", room) as DurableObjectStub
    const reported = await runInDurableObject(stub, (_: unknown, state: DurableObjectState) => {
      const [socket] = state.getWebSockets("presence")
      socket!.send(JSON.stringify("x".repeat(1024 * 1024)))
      return typeof socket!.bufferedAmount
    })
    expect(reported).toBe("undefined")
    // The probe frame is not JSON: the helper records it raw instead of throwing in its listener.
    await member.until((frames) => frames.some((frame) => typeof frame === "string" && frame.length === 1024 * 1024))
    member.ws.close(1000)
  })

  it("closes a live socket that never acknowledges with the resume code, after a gapless prefix", async () => {
    const room = freshId("buffers")
    const member = await openMember(room, "writer")
    const stalled = await openSocket(`/v1/room/${room}/ws?after=0`)
    for (let i = 0; i < POSTS; i++) await postLarge(room, i)
    const closed = await Promise.race([stalled.closed, new Promise((r) => setTimeout(() => r("still open"), 5_000))])
    expect(closed).toMatchObject({ code: CLOSE_RESUME, reason: expect.stringMatching(/after=/) })
    const seqs = eventSeqs(stalled.frames)
    expect(seqs).toEqual(range(1, seqs.length))
    expect(seqs.length).toBeLessThan(POSTS + 1)
    expect(frameChars(stalled.frames)).toBeLessThanOrEqual(WS_MAX_UNCONFIRMED + POST_CHARS * 2)
    member.ws.close(1000)
  })

  it("keeps a socket that acknowledges what it read, whatever it is sent", async () => {
    const room = freshId("buffers")
    const member = await openMember(room, "writer")
    const reader = await openSocket(`/v1/room/${room}/ws?after=0`)
    reader.ws.addEventListener("message", (event) => {
      const frame = parseFrame(event.data) as any
      if (frame?.type === "event") reader.ws.send(JSON.stringify({ type: "ack", seq: frame.event.seq }))
    })
    for (let i = 0; i < POSTS * 2; i++) await postLarge(room, i)
    await reader.until((frames) => eventSeqs(frames).length === POSTS * 2 + 1)
    expect(eventSeqs(reader.frames)).toEqual(range(1, POSTS * 2 + 1))
    const closed = await Promise.race([reader.closed, new Promise((r) => setTimeout(() => r("open"), 200))])
    expect(closed).toBe("open")
    reader.ws.close(1000)
    member.ws.close(1000)
  })

  it("sends a backlog over the cap one cap's worth per connection; `after` continues it", async () => {
    const { room, member } = await roomWithPosts(POSTS)
    const head = (await json(await SELF.fetch(`${BASE}/v1/room/${room}`))).body.version as number
    const first = await openSocket(`/v1/room/${room}/ws?after=0`)
    expect((await first.closed).code).toBe(CLOSE_RESUME)
    const got = eventSeqs(first.frames)
    expect(got).toEqual(range(1, got.length))
    expect(got.length).toBeLessThan(head)
    const second = await openSocket(`/v1/room/${room}/ws?after=${got.at(-1)}`)
    await second.until((frames) => eventSeqs(frames).at(-1) === head)
    expect(eventSeqs(second.frames)).toEqual(range(got.at(-1)! + 1, head))
    second.ws.close(1000)
    member.ws.close(1000)
  })

  it("the typed client takes a backlog over the cap on one connection: batch frames, acked as it reads", async () => {
    const { room, member } = await roomWithPosts(POSTS)
    const head = (await json(await SELF.fetch(`${BASE}/v1/room/${room}`))).body.version as number
    const { client, opened, closes } = resumingClient()
    const seen: Array<number> = []
    for await (const event of client.actor("room", room).subscribeAsync({ after: 0 })) {
      seen.push(event.seq)
      if (event.seq === head) break
    }
    expect(seen).toEqual(range(1, head))
    expect(closes).not.toContain(CLOSE_RESUME)
    expect(opened).toEqual(["0"])
    member.ws.close(1000)
  })

  it("without batch=1 the typed client resumes at once on the resume code: no gap, no repeat, no backoff", async () => {
    const { room, member } = await roomWithPosts(POSTS)
    const head = (await json(await SELF.fetch(`${BASE}/v1/room/${room}`))).body.version as number
    const { client, opened, closes } = resumingClient({ batch: false })
    const seen: Array<number> = []
    for await (const event of client.actor("room", room).subscribeAsync({ after: 0 })) {
      seen.push(event.seq)
      if (event.seq === head) break
    }
    expect(seen).toEqual(range(1, head))
    expect(closes).toContain(CLOSE_RESUME)
    expect(opened.length).toBeGreaterThanOrEqual(2)
    expect(opened[0]).toBe("0")
    member.ws.close(1000)
  })
})

describe("WebSocket buffer cap on room members", () => {
  it("closes a member that never acks with 4100; the reason points at the room's log, which has the rest", async () => {
    const room = freshId("buffers")
    const writer = await openMember(room, "writer")
    const stalled = await openSocket(`/ws?room=${room}&name=stalled`)
    for (let i = 0; i < POSTS; i++) await postLarge(room, i)
    const closed = await within(stalled.closed, 5_000)
    const pointer = `/v1/room/${room}/events?after=`
    expect(closed).toMatchObject({ code: CLOSE_RESUME, reason: expect.stringContaining(pointer) })
    expect(frameChars(stalled.frames)).toBeLessThanOrEqual(WS_MAX_UNCONFIRMED + POST_CHARS * 2)
    const after = Number(/after=(\d+)/.exec((closed as { reason: string }).reason)![1])
    const page = await json(await get(`/v1/room/${room}/events?after=${after}&limit=1000`))
    const missed = page.body.events as Array<any>
    const received = postIndexes(stalled.frames.map((frame) => frame.payload))
    const fromLog = postIndexes(missed.filter((e) => e.type === "Posted").map((e) => e.data.payload))
    expect([...received, ...fromLog]).toEqual(range(0, POSTS - 1))
    expect(received.length).toBeLessThan(POSTS)
    writer.ws.close(1000)
  })

  it("keeps a member that acks what it read, and its acks are never posted", async () => {
    const room = freshId("buffers")
    const reader = await openMember(room, "reader")
    for (let i = 0; i < POSTS * 2; i++) await postLarge(room, i)
    await reader.until((frames) => frames.filter((frame) => frame.type === "blob").length === POSTS * 2)
    expect(postIndexes(reader.frames.map((frame) => frame.payload))).toEqual(range(0, POSTS * 2 - 1))
    expect(await within(reader.closed, 200)).toBe("still open")
    expect((await json(await get(`/v1/room/${room}`))).body.state.posts).toBe(POSTS * 2)
    reader.ws.close(1000)
  })

  it("refuses `ack` as a message type, from a member frame, POST /broadcast and the Post command", async () => {
    const room = freshId("buffers")
    const member = await openMember(room, "member")
    member.ws.send(JSON.stringify({ type: "ack", payload: "x".repeat(100) }))
    const [refused] = await member
      .until((frames) => frames.some((frame) => frame.type === "error"))
      .then((frames) => frames.filter((frame) => frame.type === "error"))
    expect(refused.error).toMatchObject({ code: "reserved_type", message: expect.stringContaining("ack") })
    const body = JSON.stringify({ room, type: "ack", payload: 1 })
    const broadcast = await json(await SELF.fetch(`${BASE}/broadcast`, { method: "POST", body, headers: JSON_HEADERS }))
    expect(broadcast).toMatchObject({ status: 422, body: { error: { code: "reserved_type" } } })
    const posted = await json(await send("room", room, { type: "Post", messageType: "ack", payload: 1, sender: "x" }))
    expect(posted).toMatchObject({ status: 422, body: { error: { code: "reserved_type" } } })
    expect((await json(await get(`/v1/room/${room}`))).body).toMatchObject({ version: 1, state: { posts: 0 } })
    member.ws.close(1000)
  })

  it("refuses an ack beyond the last seq sent, and the cap still holds (log and member sockets)", async () => {
    const room = freshId("buffers")
    const writer = await openMember(room, "writer")
    const log = await openSocket(`/v1/room/${room}/ws?after=0`)
    const member = await openSocket(`/ws?room=${room}&name=forger`)
    await log.until((frames) => eventSeqs(frames).length === 2)
    const forged = JSON.stringify({ type: "ack", seq: Number.MAX_SAFE_INTEGER })
    log.ws.send(forged)
    member.ws.send(forged)
    for (const socket of [log, member]) {
      const frames = await socket.until((received) => received.some((f) => f.type === "error"))
      const error = frames.find((f) => f.type === "error")
      const refusal = { code: "invalid_ack", message: expect.stringMatching(/beyond/) }
      expect(error).toMatchObject({ id: null, error: refusal })
    }
    for (let i = 0; i < POSTS; i++) await postLarge(room, i)
    expect(await within(log.closed, 5_000)).toMatchObject({ code: CLOSE_RESUME })
    expect(await within(member.closed, 5_000)).toMatchObject({ code: CLOSE_RESUME })
    expect((await json(await get(`/v1/room/${room}`))).body.state.posts).toBe(POSTS)
    writer.ws.close(1000)
  })
})

describe("WebSocket buffer cap on topics", () => {
  it("closes a topic socket over the cap with 4100; the typed client reads it all on one connection", async () => {
    const topicHead = async () => (await json(await get(`/v1/topics/room/events?limit=1`))).body.head as number
    const start = await topicHead()
    const { room, member } = await roomWithPosts(POSTS)
    // Every room event also lands in the `room` topic (through the outbox, shortly after).
    // Earlier tests' room events may land in it too: what matters is every entry up to the head.
    for (let i = 0; i < 100 && (await topicHead()) < start + POSTS + 1; i++) await new Promise((r) => setTimeout(r, 50))
    const expected = await topicHead()
    expect(expected).toBeGreaterThanOrEqual(start + POSTS + 1)
    const stalled = await openSocket(`/v1/topics/room/ws?after=${start}`)
    expect((await stalled.closed).code).toBe(CLOSE_RESUME)
    const { client, opened, closes } = resumingClient()
    const seen: Array<number> = []
    for await (const entry of client.topic("room").subscribeAsync({ after: start })) {
      seen.push(entry.topicSeq)
      if (entry.topicSeq === expected) break
    }
    expect(seen).toEqual(range(start + 1, expected))
    expect(closes).not.toContain(CLOSE_RESUME)
    expect(opened).toEqual([String(start)])
    member.ws.close(1000)
    void room
  })
})
