// `?batch=1` subscriptions: the backlog in frames of many entries, paused at the unconfirmed-bytes
// cap instead of closed, and resumed by acks on the same connection (src/actors/subscribers.ts).
import { SELF, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { createClient } from "../../src/client/index.js"
import { BATCH_FRAME_BYTES, CLOSE_TOKEN_EXPIRED, WS_MAX_UNCONFIRMED } from "../../src/domain/protocol.js"
import type { TopicApi } from "../../src/actors/topic.js"
import {
  BASE,
  actorApi,
  actorObject,
  freshId,
  get,
  json,
  openSocket,
  range,
  send,
  topicObject,
  type OpenSocket,
  topicTestEvent,
} from "./helpers.js"

const increment = (id: string, reason?: string) =>
  actorApi("counter", id).command({
    command: { type: "Increment", by: 1, ...(reason === undefined ? {} : { reason }) },
  })

/** Every seq a socket was sent, from batch frames and single event frames alike, in arrival order. */
const seqsOf = (frames: Array<any>): Array<number> =>
  frames.flatMap((frame) =>
    frame?.type === "events" ? frame.events.map((e: any) => e.seq) : frame?.type === "event" ? [frame.event.seq] : [],
  )

const lastSeqOf = (frame: any): number => frame.events.at(-1).seq
const batches = (frames: Array<any>) => frames.filter((frame) => frame?.type === "events")
const utf8 = (text: string) => new TextEncoder().encode(text).length
const sentChars = (frames: Array<any>) => frames.reduce((sum, frame) => sum + JSON.stringify(frame).length, 0)
const still = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<string>((resolve) => setTimeout(() => resolve("still open"), ms))])
const settle = (ms = 300) => new Promise((resolve) => setTimeout(resolve, ms))
const ack = (socket: OpenSocket, seq: number) => {
  try {
    socket.ws.send(JSON.stringify({ type: "ack", seq }))
  } catch {
    // Closed by the test: a frame still arriving is not acked.
  }
}

const REASON_CHARS = 100 * 1024
/** Events of about 100 KiB: two to a batch frame, and enough of them to pass the cap by a few. */
const LARGE = Math.ceil(WS_MAX_UNCONFIRMED / REASON_CHARS) + 12

/** A counter whose log holds `count` events of about REASON_CHARS each. */
const largeLog = async (count: number) => {
  const id = freshId("batch")
  for (let i = 0; i < count; i++) expect((await increment(id, `${i}:${"r".repeat(REASON_CHARS)}`)).ok).toBe(true)
  return id
}

describe("batched backlog (batch=1)", () => {
  it("sends the backlog as frames of many entries, then live events one frame each, in order, once", async () => {
    const id = freshId("batch")
    for (let i = 0; i < 30; i++) await increment(id)
    const socket = await openSocket(`/v1/counter/${id}/ws?after=4&batch=1`)
    await socket.until((frames) => seqsOf(frames).length === 26)
    expect(socket.frames).toHaveLength(1)
    expect(socket.frames[0]).toMatchObject({ type: "events" })
    expect(socket.frames[0].events[0]).toMatchObject({
      seq: 5,
      type: "Incremented",
      data: { by: 1 },
      hash: expect.any(String),
    })
    for (let i = 0; i < 2; i++) await send("counter", id, { type: "Increment", by: 1 })
    await socket.until((frames) => seqsOf(frames).length === 28)
    expect(socket.frames.slice(1).map((frame) => frame.type)).toEqual(["event", "event"])
    expect(seqsOf(socket.frames)).toEqual(range(5, 32))
    socket.ws.close(1000)
  })

  it("gives every batch subscriber exactly after+1..n while writers append concurrently", async () => {
    const id = freshId("batch")
    for (let i = 0; i < 10; i++) await increment(id)
    const writer = async () => {
      for (let i = 0; i < 40; i++) await send("counter", id, { type: "Increment", by: 1 })
    }
    const opener = async () => {
      const opened = []
      for (const after of [0, 3, 7, 10, 0, 5]) {
        opened.push({ after, socket: await openSocket(`/v1/counter/${id}/ws?after=${after}&batch=1`) })
        await send("counter", id, { type: "Increment", by: 1 })
      }
      return opened
    }
    const [, , subscribers] = await Promise.all([writer(), writer(), opener()])
    const total = 10 + 40 + 40 + 6
    for (const { after, socket } of subscribers) {
      await socket.until((frames) => seqsOf(frames).length >= total - after)
      expect(seqsOf(socket.frames)).toEqual(range(after + 1, total))
      socket.ws.close(1000)
    }
  })

  it("keeps each frame within BATCH_FRAME_BYTES, more than one entry to a frame", async () => {
    const id = freshId("batch")
    // Events of about 10 KiB: 26 or so to a frame, so 80 of them take several frames.
    for (let i = 0; i < 80; i++) await increment(id, "m".repeat(10 * 1024))
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await socket.until((frames) => seqsOf(frames).length === 80)
    const sent = batches(socket.frames)
    expect(sent.length).toBeGreaterThan(2)
    for (const frame of sent) {
      expect(utf8(JSON.stringify(frame))).toBeLessThanOrEqual(BATCH_FRAME_BYTES)
      expect(frame.events.length).toBeGreaterThan(1)
    }
    expect(seqsOf(socket.frames)).toEqual(range(1, 80))
    socket.ws.close(1000)
  })

  it("sizes frames in UTF-8 bytes, not characters: non-ASCII events make smaller frames", async () => {
    const id = freshId("batch")
    // 10 Ki characters of three bytes each: about 30 KiB an event.
    for (let i = 0; i < 60; i++) await increment(id, "€".repeat(10 * 1024))
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await socket.until((frames) => seqsOf(frames).length === 60)
    const sent = batches(socket.frames)
    expect(sent.length).toBeGreaterThan(2)
    for (const frame of sent) {
      expect(utf8(JSON.stringify(frame))).toBeLessThanOrEqual(BATCH_FRAME_BYTES)
      expect(frame.events.length).toBeGreaterThan(1)
    }
    expect(seqsOf(socket.frames)).toEqual(range(1, 60))
    socket.ws.close(1000)
  })

  it("counts the cap in UTF-8 bytes: a non-ASCII backlog pauses at 8 MiB of bytes, not of characters", async () => {
    const id = freshId("batch")
    // 27 Ki characters of three bytes each (about 81 KiB a body, under the 256 KiB limit): past the cap in bytes only.
    const count = Math.ceil(WS_MAX_UNCONFIRMED / (81 * 1024)) + 8
    for (let i = 0; i < count; i++) expect((await increment(id, "€".repeat(27 * 1024))).ok).toBe(true)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await settle()
    const paused = seqsOf(socket.frames)
    expect(paused).toEqual(range(1, paused.length))
    expect(paused.length).toBeLessThan(count)
    const bytes = socket.frames.reduce((sum, frame) => sum + utf8(JSON.stringify(frame)), 0)
    expect(bytes).toBeLessThanOrEqual(WS_MAX_UNCONFIRMED)
    expect(bytes).toBeGreaterThan(WS_MAX_UNCONFIRMED - 2 * BATCH_FRAME_BYTES)
    expect(await still(socket.closed, 50)).toBe("still open")
    socket.ws.close(1000)
  })

  it("pauses a backlog over the cap without closing, sends nothing live meanwhile, and goes on with acks", async () => {
    const id = await largeLog(LARGE)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await settle()
    // Paused: open, within the cap, a gapless prefix, and an append now is not sent to it.
    expect(await still(socket.closed, 200)).toBe("still open")
    const paused = seqsOf(socket.frames)
    expect(paused).toEqual(range(1, paused.length))
    expect(paused.length).toBeLessThan(LARGE)
    expect(sentChars(socket.frames)).toBeLessThanOrEqual(WS_MAX_UNCONFIRMED)
    await send("counter", id, { type: "Increment", by: 1 })
    await settle()
    expect(seqsOf(socket.frames)).toEqual(paused)
    // An ack of a seq inside the last batch frame is no error; acking each frame's last seq goes on to the head.
    const last = batches(socket.frames).at(-1)
    if (last.events.length > 1) ack(socket, last.events[0].seq)
    socket.ws.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data as string)
      if (frame.type === "events") ack(socket, lastSeqOf(frame))
    })
    ack(socket, lastSeqOf(last))
    await socket.until((frames) => seqsOf(frames).at(-1) === LARGE + 1)
    expect(seqsOf(socket.frames)).toEqual(range(1, LARGE + 1))
    expect(socket.frames.filter((frame) => frame.type === "error")).toEqual([])
    // Live once it reached the head: the next append comes as a single event frame.
    await send("counter", id, { type: "Increment", by: 1 })
    await socket.until((frames) => seqsOf(frames).at(-1) === LARGE + 2)
    expect(socket.frames.at(-1)).toMatchObject({ type: "event", event: { seq: LARGE + 2 } })
    expect(await still(socket.closed, 50)).toBe("still open")
    socket.ws.close(1000)
  })

  it("an ack of an earlier batch frame's last seq confirms that frame: the backlog goes on by as much", async () => {
    const id = await largeLog(LARGE)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await settle()
    const paused = seqsOf(socket.frames)
    const [first] = batches(socket.frames)
    ack(socket, lastSeqOf(first))
    await socket.until((frames) => seqsOf(frames).length > paused.length)
    await settle()
    const sent = seqsOf(socket.frames)
    expect(sent).toEqual(range(1, sent.length))
    // About one frame's worth more (what the ack confirmed), and paused again short of the head.
    expect(sentChars(socket.frames)).toBeLessThanOrEqual(WS_MAX_UNCONFIRMED + JSON.stringify(first).length)
    expect(sent.length).toBeLessThan(LARGE)
    socket.ws.close(1000)
  })

  it("stays paused through hibernation: nothing is sent until an ack, then the rest, once", async () => {
    const id = await largeLog(LARGE)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await settle()
    const paused = seqsOf(socket.frames)
    expect(paused.length).toBeLessThan(LARGE)
    await evictDurableObject(actorObject("counter", id), { webSockets: "hibernate" })
    // The append wakes the object: the socket's attachment says it is paused, so it is sent nothing.
    await send("counter", id, { type: "Increment", by: 1 })
    await settle()
    expect(seqsOf(socket.frames)).toEqual(paused)
    socket.ws.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data as string)
      if (frame.type === "events") ack(socket, lastSeqOf(frame))
    })
    ack(socket, paused.at(-1)!)
    await socket.until((frames) => seqsOf(frames).at(-1) === LARGE + 1)
    expect(seqsOf(socket.frames)).toEqual(range(1, LARGE + 1))
    socket.ws.close(1000)
  })

  it("a resume that reaches the head under appends pauses at the cap again instead of closing", async () => {
    const id = await largeLog(LARGE)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await settle()
    let head = LARGE
    const append = async () => {
      expect((await increment(id, `w:${"r".repeat(REASON_CHARS)}`)).ok).toBe(true)
      head++
    }
    // One batch frame acked at a time, an append before each: the resumes gain on the head by about
    // an event per ack, and the one that reaches it leaves the socket live with nearly the cap unconfirmed.
    let acked = 0
    for (; seqsOf(socket.frames).at(-1) !== head; acked++) {
      expect(acked).toBeLessThan(LARGE)
      await append()
      const before = socket.frames.length
      ack(socket, lastSeqOf(batches(socket.frames)[acked]))
      await Promise.race([socket.until((frames) => frames.length > before), settle(1000)])
    }
    // More than the room left: a socket that closed here would lose the catch-up it was making.
    for (let i = 0; i < 4; i++) await append()
    await settle()
    expect(await still(socket.closed, 50)).toBe("still open")
    // What the first `acked` (batch) frames confirmed no longer counts.
    expect(sentChars(socket.frames.slice(acked))).toBeLessThanOrEqual(WS_MAX_UNCONFIRMED)
    expect(seqsOf(socket.frames).at(-1)).toBeLessThan(head)
    socket.ws.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data as string)
      if (frame.type === "events") ack(socket, lastSeqOf(frame))
    })
    ack(socket, seqsOf(socket.frames).at(-1)!)
    await socket.until((frames) => seqsOf(frames).at(-1) === head)
    expect(seqsOf(socket.frames)).toEqual(range(1, head))
    expect(socket.frames.filter((frame) => frame.type === "error")).toEqual([])
    expect(await still(socket.closed, 50)).toBe("still open")
    socket.ws.close(1000)
  })

  it("keeps a batch socket's unread bytes through hibernation: appends after it stop at the cap", async () => {
    // About 5 MiB, in frames under CHECKPOINT_BYTES each: sent whole, never paused, never acked.
    const count = Math.floor(WS_MAX_UNCONFIRMED / REASON_CHARS / 2) + 10
    const id = await largeLog(count)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await socket.until((frames) => seqsOf(frames).at(-1) === count)
    await evictDurableObject(actorObject("counter", id), { webSockets: "hibernate" })
    // As much again: together well over the cap, which the object must still count after waking.
    for (let i = 0; i < count; i++) expect((await increment(id, `h${i}:${"r".repeat(REASON_CHARS)}`)).ok).toBe(true)
    await settle()
    // Off by less than one unpersisted checkpoint's worth (256 KiB) at most.
    expect(sentChars(socket.frames)).toBeLessThanOrEqual(WS_MAX_UNCONFIRMED + 256 * 1024)
    expect(seqsOf(socket.frames)).toEqual(range(1, seqsOf(socket.frames).length))
    expect(await still(socket.closed, 50)).toBe("still open")
    socket.ws.close(1000)
  })

  it("an ack does not resume a paused backlog once the token has expired: the socket closes with 4001", async () => {
    const id = await largeLog(LARGE)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await settle()
    const paused = seqsOf(socket.frames)
    expect(paused.length).toBeLessThan(LARGE)
    // The moment between the token's expiry and the alarm that would close the socket.
    await runInDurableObject(actorObject("counter", id), (_: unknown, state: DurableObjectState) => {
      for (const open of state.getWebSockets())
        open.serializeAttachment({ ...open.deserializeAttachment(), expiresAt: Date.now() - 1 })
    })
    ack(socket, paused.at(-1)!)
    expect(await still(socket.closed, 5000)).toMatchObject({ code: CLOSE_TOKEN_EXPIRED })
    expect(seqsOf(socket.frames)).toEqual(paused)
  })

  it("refuses an ack beyond the last seq sent on a paused socket, and sends nothing more for it", async () => {
    const id = await largeLog(LARGE)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1`)
    await settle()
    const paused = seqsOf(socket.frames)
    ack(socket, LARGE)
    const frames = await socket.until((received) => received.some((frame) => frame.type === "error"))
    expect(frames.find((frame) => frame.type === "error")).toMatchObject({ error: { code: "invalid_ack" } })
    await settle()
    expect(seqsOf(socket.frames)).toEqual(paused)
    socket.ws.close(1000)
  })

  it("refuses a batch value other than 0 or 1 before the upgrade", async () => {
    const id = freshId("batch")
    await increment(id)
    const upgrade = { headers: { Upgrade: "websocket" } }
    const refused = await json(await SELF.fetch(`${BASE}/v1/counter/${id}/ws?batch=yes`, upgrade))
    expect(refused).toMatchObject({ status: 400, body: { error: { code: "invalid_query" } } })
    const single = await openSocket(`/v1/counter/${id}/ws?batch=0`)
    await single.until((frames) => frames.length === 1)
    expect(single.frames[0]).toMatchObject({ type: "event", event: { seq: 1 } })
    single.ws.close(1000)
  })

  it("sends a topic's backlog as entries frames", async () => {
    const topicHead = async () => (await json(await get(`/v1/topics/counter/events?limit=1`))).body.head as number
    const start = await topicHead()
    const id = freshId("batch")
    for (let i = 0; i < 5; i++) await send("counter", id, { type: "Increment", by: 1 })
    for (let i = 0; i < 100 && (await topicHead()) < start + 5; i++) await settle(50)
    const head = await topicHead()
    const socket = await openSocket(`/v1/topics/counter/ws?after=${start}&batch=1`)
    await socket.until((frames) => frames.some((frame) => frame.type === "entries"))
    const [frame] = socket.frames
    expect(frame.type).toBe("entries")
    // Other tests' counters may publish too: every entry from start + 1, at least up to the head read.
    const seqs = frame.entries.map((entry: any) => entry.topicSeq)
    expect(seqs).toEqual(range(start + 1, seqs.at(-1)))
    expect(seqs.at(-1)).toBeGreaterThanOrEqual(head)
    socket.ws.close(1000)
  })
})

describe("batched backlog with a types filter (batch=1&types=…)", () => {
  const reset = (id: string) => actorApi("counter", id).command({ command: { type: "Reset" } })
  /** Large Incremented events, each followed by `skipped` Resets, and a tail of Resets: the filter takes the first. */
  const mixedLog = async (large: number, skipped: number, tail: number) => {
    const id = freshId("filtered-batch")
    const matching: Array<number> = []
    let seq = 0
    for (let i = 0; i < large; i++) {
      expect((await increment(id, `${i}:${"r".repeat(REASON_CHARS)}`)).ok).toBe(true)
      matching.push(++seq)
      for (let j = 0; j < skipped; j++, seq++) expect((await reset(id)).ok).toBe(true)
    }
    for (let j = 0; j < tail; j++, seq++) expect((await reset(id)).ok).toBe(true)
    return { id, matching, head: seq }
  }
  /** What a client keeps as its cursor: the last entry's seq, or a head frame's. */
  const cursorOf = (frames: Array<any>, after = 0) =>
    frames.reduce((cursor, frame) => {
      if (frame?.type === "events") return lastSeqOf(frame)
      if (frame?.type === "event") return frame.event.seq
      return frame?.type === "head" ? frame.seq : cursor
    }, after)
  const heads = (frames: Array<any>) => frames.filter((frame) => frame?.type === "head").map((frame) => frame.seq)
  /** Acks every batch and head frame with its last seq, as the typed client's cursor would name it. */
  const ackingEach = (socket: OpenSocket) =>
    socket.ws.addEventListener("message", (event) => {
      const frame = JSON.parse(event.data as string)
      if (frame.type === "events") ack(socket, lastSeqOf(frame))
      if (frame.type === "head") ack(socket, frame.seq)
    })

  it("sends only the matching entries in batch frames, and a head frame after a skipped tail", async () => {
    const id = freshId("filtered-batch")
    // 1 Reset, 2-4 Incremented, 5 Reset, then 600 Incremented: more than a page (500) with nothing to send.
    await reset(id)
    for (let i = 0; i < 3; i++) await increment(id)
    await reset(id)
    for (let i = 0; i < 600; i++) await increment(id)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1&types=Reset`)
    await socket.until((frames) => heads(frames).length === 1)
    expect(socket.frames).toHaveLength(2)
    expect(socket.frames[0]).toMatchObject({ type: "events" })
    expect(seqsOf(socket.frames)).toEqual([1, 5])
    expect(socket.frames[1]).toEqual({ type: "head", seq: 605 })
    // Live from there, filtered as before.
    await increment(id)
    await reset(id)
    await socket.until((frames) => seqsOf(frames).length === 3)
    expect(socket.frames.slice(2)).toMatchObject([
      { type: "head", seq: 606 },
      { type: "event", event: { seq: 607, type: "Reset" } },
    ])
    socket.ws.close(1000)
  })

  it("a filter nothing matches tells the head once, and an ack of it is accepted", async () => {
    const id = freshId("filtered-batch")
    for (let i = 0; i < 700; i++) await increment(id)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1&types=Reset`)
    await socket.until((frames) => frames.length === 1)
    expect(socket.frames).toEqual([{ type: "head", seq: 700 }])
    ack(socket, 700)
    await reset(id)
    await socket.until((frames) => frames.length === 2)
    expect(socket.frames[1]).toMatchObject({ type: "event", event: { seq: 701 } })
    expect(socket.frames.some((frame) => frame.type === "error")).toBe(false)
    socket.ws.close(1000)
  })

  it("resumes across a cap pause and a reconnect: every matching event once, in order, then the head", async () => {
    const { id, matching, head } = await mixedLog(LARGE, 2, 3)
    const first = await openSocket(`/v1/counter/${id}/ws?batch=1&types=Incremented`)
    await settle()
    // Paused at the cap: open, short of the head, only matching events so far.
    expect(await still(first.closed, 200)).toBe("still open")
    const paused = seqsOf(first.frames)
    expect(paused).toEqual(matching.slice(0, paused.length))
    expect(paused.length).toBeLessThan(matching.length)
    expect(sentChars(first.frames)).toBeLessThanOrEqual(WS_MAX_UNCONFIRMED)
    // An ack of its first frame resumes it on the same connection by about that much; then the
    // connection drops, paused again short of the head.
    ack(first, lastSeqOf(batches(first.frames)[0]))
    await first.until((frames) => seqsOf(frames).length > paused.length)
    await settle()
    first.ws.close(1000)
    const cursor = cursorOf(first.frames)
    expect(cursor).toBeLessThan(matching.at(-1)!)
    const second = await openSocket(`/v1/counter/${id}/ws?after=${cursor}&batch=1&types=Incremented`)
    ackingEach(second)
    await second.until((frames) => heads(frames).includes(head))
    const got = [...seqsOf(first.frames), ...seqsOf(second.frames)]
    expect(got).toEqual(matching)
    expect(second.frames.at(-1)).toEqual({ type: "head", seq: head })
    expect([...first.frames, ...second.frames].filter((frame) => frame.type === "error")).toEqual([])
    second.ws.close(1000)
  })

  it("a paused filtered backlog hibernates, and an ack of the last seq it was sent goes on to the head", async () => {
    const { id, matching, head } = await mixedLog(LARGE, 2, 3)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1&types=Incremented`)
    await settle()
    const paused = seqsOf(socket.frames)
    expect(paused.length).toBeLessThan(matching.length)
    // The Resets after the last event sent were examined already: the resume point is past them,
    // yet the client can only name what it saw, the last event sent.
    await evictDurableObject(actorObject("counter", id), { webSockets: "hibernate" })
    await reset(id)
    await settle()
    expect(seqsOf(socket.frames)).toEqual(paused)
    ackingEach(socket)
    ack(socket, paused.at(-1)!)
    await socket.until((frames) => heads(frames).includes(head + 1))
    expect(seqsOf(socket.frames)).toEqual(matching)
    expect(socket.frames.filter((frame) => frame.type === "error")).toEqual([])
    socket.ws.close(1000)
  })

  it("a filtered socket over the cap live pauses, and an ack resumes it with only what matches, then the head", async () => {
    const id = freshId("filtered-batch")
    await reset(id)
    const socket = await openSocket(`/v1/counter/${id}/ws?batch=1&types=Incremented`)
    await socket.until((frames) => heads(frames).includes(1))
    // Live: each large Increment, then a Reset the filter skips (a head frame), until well over the cap.
    const matching: Array<number> = []
    let head = 1
    for (let i = 0; i < LARGE; i++) {
      expect((await increment(id, `${i}:${"r".repeat(REASON_CHARS)}`)).ok).toBe(true)
      matching.push(++head)
      expect((await reset(id)).ok).toBe(true)
      head++
    }
    await settle()
    expect(await still(socket.closed, 50)).toBe("still open")
    const paused = seqsOf(socket.frames)
    expect(paused).toEqual(matching.slice(0, paused.length))
    expect(paused.length).toBeLessThan(matching.length)
    ackingEach(socket)
    ack(socket, cursorOf(socket.frames))
    await socket.until((frames) => heads(frames).includes(head))
    expect(seqsOf(socket.frames)).toEqual(matching)
    expect(socket.frames.filter((frame) => frame.type === "error")).toEqual([])
    expect(await still(socket.closed, 50)).toBe("still open")
    socket.ws.close(1000)
  })

  it("the typed client follows a filtered backlog over the cap on one connection: every match once, then the head", async () => {
    const { id, matching, head } = await mixedLog(LARGE, 2, 3)
    const opened: Array<string> = []
    const emberlog = createClient({
      baseUrl: BASE,
      fetch: (input, init) => SELF.fetch(input, init),
      connect: async (url) => {
        opened.push(url)
        const response = await SELF.fetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket" } })
        response.webSocket!.accept()
        return response.webSocket as any
      },
    })
    const heads: Array<number> = []
    const iterator = emberlog
      .actor("counter", id)
      .subscribeAsync({ types: ["Incremented"], onHead: (position) => heads.push(position) })
    const seen: Array<number> = []
    for (const _ of matching) seen.push(((await iterator.next()).value as any).seq)
    expect(seen).toEqual(matching)
    for (let i = 0; i < 100 && !heads.includes(head); i++) await settle(20)
    expect(heads).toEqual([head])
    // The client acks every batch frame, so the paused backlog went on without a reconnection.
    expect(opened).toHaveLength(1)
    await iterator.return?.()
  })

  it("filters a topic's batched backlog by the entries' event types, at topic positions", async () => {
    const name = freshId("filtered-batch-topic")
    const topic = topicObject(name) as unknown as TopicApi
    const event = topicTestEvent
    await topic.deliver({ kind: "counter", id: "a" }, [event(1, "Incremented"), event(2, "Decremented")] as any)
    await topic.deliver({ kind: "counter", id: "b" }, [event(1, "Decremented"), event(2, "Reset")] as any)
    const socket = await openSocket(`/v1/topics/${name}/ws?batch=1&types=Decremented`)
    await socket.until((frames) => heads(frames).length === 1)
    expect(socket.frames).toHaveLength(2)
    expect(socket.frames[0].type).toBe("entries")
    expect(socket.frames[0].entries.map((entry: any) => [entry.topicSeq, entry.event.type])).toEqual([
      [2, "Decremented"],
      [3, "Decremented"],
    ])
    expect(socket.frames[1]).toEqual({ type: "head", seq: 4 })
    socket.ws.close(1000)
  })
})
