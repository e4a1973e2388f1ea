import { SELF, evictDurableObject } from "cloudflare:test"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { SubscriptionRefused, createClient } from "../../src/client/index.js"
import { CLOSE_RESUME, WS_MAX_UNCONFIRMED } from "../../src/domain/protocol.js"
import type { TopicApi } from "../../src/actors/topic.js"
import { actorObject, BASE, freshId, get, json, openSocket, send, topicObject, topicTestEvent } from "./helpers.js"

const increment = (id: string) => send("counter", id, { type: "Increment", by: 1 })
const reset = (id: string) => send("counter", id, { type: "Reset" })
const decrement = (id: string) => send("counter", id, { type: "Decrement", by: 1 })

/** Frames a filtered socket was sent: events as `[seq, type]`, head frames as `["head", seq]`. */
const shape = (frames: Array<any>) =>
  frames.flatMap((f) =>
    f?.type === "event" ? [[f.event.seq, f.event.type]] : f?.type === "head" ? [["head", f.seq]] : [],
  )

/** The cursor a client keeps: the last event's seq (of a single or a batch frame) or head frame's seq. */
const cursorOf = (frames: Array<any>, after = 0) =>
  frames.reduce((cursor, f) => {
    if (f?.type === "events") return f.events.at(-1).seq
    return f?.type === "event" ? f.event.seq : f?.type === "head" ? f.seq : cursor
  }, after)

/** The seqs of the events a socket was sent, from single and batch frames alike. */
const entrySeqs = (frames: Array<any>): Array<number> =>
  frames.flatMap((f) =>
    f?.type === "events" ? f.events.map((e: any) => e.seq) : f?.type === "event" ? [f.event.seq] : [],
  )

interface SseMessage {
  readonly id?: string
  readonly event?: string
  readonly data?: any
}

/** Reads an SSE response's messages (with or without data; comments left out) until `done` holds for them. */
const readSseMessages = async (response: Response, done: (messages: Array<SseMessage>) => boolean) => {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const messages: Array<SseMessage> = []
  let buffer = ""
  const deadline = Date.now() + 10_000
  while (!done(messages)) {
    if (Date.now() > deadline) throw new Error(`SSE timed out; so far ${JSON.stringify(messages)}`)
    const { value, done: ended } = await reader.read()
    if (ended) break
    buffer += value
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const lines = buffer
        .slice(0, end)
        .split("\n")
        .filter((line) => !line.startsWith(":"))
      buffer = buffer.slice(end + 2)
      if (lines.length === 0 || lines.every((line) => line.startsWith("retry:"))) continue
      const field = (name: string) => lines.find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2)
      const data = field("data")
      messages.push({
        ...(field("id") === undefined ? {} : { id: field("id") }),
        ...(field("event") === undefined ? {} : { event: field("event") }),
        ...(data === undefined ? {} : { data: JSON.parse(data) }),
      })
    }
  }
  await reader.cancel()
  return messages
}

/** What an EventSource keeps as its Last-Event-ID: the id of the last message. */
const lastEventId = (messages: Array<SseMessage>) => messages.reduce((id, m) => m.id ?? id, "0")

describe("subscriptions filtered by event type", () => {
  it("WebSocket: sends only the types asked for, and a head frame when a stretch ends with skipped entries", async () => {
    const id = freshId()
    for (const command of [increment, reset, increment, increment]) await command(id)
    const socket = await openSocket(`/v1/counter/${id}/ws?types=Reset,Decremented`)
    // Backlog: seq 2 is a Reset; 3 and 4 are skipped, so the backlog ends with a head frame at 4.
    await socket.until((f) => shape(f).length === 2)
    expect(shape(socket.frames)).toEqual([
      [2, "Reset"],
      ["head", 4],
    ])
    await increment(id) // 5: skipped, the head moves
    await decrement(id) // 6: sent
    await increment(id) // 7
    await increment(id) // 8: one command, one head frame
    await reset(id) // 9
    await socket.until((f) => shape(f).length === 7)
    expect(shape(socket.frames).slice(2)).toEqual([
      ["head", 5],
      [6, "Decremented"],
      ["head", 7],
      ["head", 8],
      [9, "Reset"],
    ])
    expect(socket.frames.find((f) => f.type === "event" && f.event.seq === 6).event).toEqual(
      (await json(await get(`/v1/counter/${id}/events?after=5&limit=1`))).body.events[0],
    )
    socket.ws.close(1000)
  })

  it("WebSocket: a filter nobody's entries match still tells the head, and acks of it are accepted", async () => {
    const id = freshId()
    for (let i = 0; i < 3; i++) await increment(id)
    const socket = await openSocket(`/v1/counter/${id}/ws?types=Reset`)
    await socket.until((f) => shape(f).length === 1)
    expect(shape(socket.frames)).toEqual([["head", 3]])
    // The head frame is a position the socket was sent: acking it is no forgery.
    socket.ws.send(JSON.stringify({ type: "ack", seq: 3 }))
    await reset(id)
    await socket.until((f) => shape(f).length === 2)
    expect(shape(socket.frames)).toEqual([
      ["head", 3],
      [4, "Reset"],
    ])
    expect(socket.frames.some((f) => f.type === "error")).toBe(false)
    socket.ws.close(1000)
  })

  it("WebSocket: the filter survives hibernation", async () => {
    const id = freshId()
    await increment(id)
    const socket = await openSocket(`/v1/counter/${id}/ws?after=1&types=Decremented`)
    await evictDurableObject(actorObject("counter", id), { webSockets: "hibernate" })
    await increment(id)
    await decrement(id)
    await socket.until((f) => shape(f).length === 2)
    expect(shape(socket.frames)).toEqual([
      ["head", 2],
      [3, "Decremented"],
    ])
    socket.ws.close(1000)
  })

  it("WebSocket: a client that drops at any moment and resumes at its cursor loses and repeats nothing (property)", async () => {
    const commands = { I: increment, R: reset, D: decrement } as const
    await fc.assert(
      fc.asyncProperty(
        // X drops the connection where it stands (what arrived so far is all the client has), or opens it again.
        fc.array(fc.constantFrom("I", "R", "D", "X"), { minLength: 1, maxLength: 14 }),
        fc.subarray(["Incremented", "Reset", "Decremented"], { minLength: 1 }),
        fc.boolean(),
        fc.array(fc.constantFrom("I", "R", "D"), { maxLength: 6 }),
        async (script, types, batch, before) => {
          const id = freshId("prop")
          for (const letter of before) await commands[letter as keyof typeof commands](id)
          let head = before.length
          const seen: Array<number> = []
          let cursor = 0
          const path = () => `/v1/counter/${id}/ws?after=${cursor}&types=${types.join(",")}${batch ? "&batch=1" : ""}`
          let socket: Awaited<ReturnType<typeof openSocket>> | undefined = await openSocket(path())
          const drop = (open: NonNullable<typeof socket>) => {
            const received = [...open.frames]
            open.ws.close(1000)
            seen.push(...entrySeqs(received))
            cursor = cursorOf(received, cursor)
          }
          for (const letter of script) {
            if (letter !== "X") {
              await commands[letter as keyof typeof commands](id)
              head++
            } else if (socket !== undefined) {
              drop(socket)
              socket = undefined
            } else socket = await openSocket(path())
          }
          socket ??= await openSocket(path())
          // Every stretch ends with an event or a head frame at its end, so the cursor reaches the head.
          await socket.until((f) => cursorOf(f, cursor) === head)
          drop(socket)
          expect(cursor).toBe(head)
          const log = (await json(await get(`/v1/counter/${id}/events?limit=100`))).body.events as Array<any>
          expect(seen).toEqual(log.filter((event) => types.includes(event.type)).map((event) => event.seq))
        },
      ),
      { numRuns: 20 },
    )
  })

  it("WebSocket: a filtered socket closed at its cap resumes at its cursor: every matching event once", async () => {
    const id = freshId("cap")
    // Large Increments (about 100 KiB each, over the 8 MiB cap in all) with small Resets between them.
    const matching: Array<number> = []
    let head = 0
    for (let i = 0; i < Math.ceil(WS_MAX_UNCONFIRMED / (100 * 1024)) + 12; i++) {
      expect(
        (await send("counter", id, { type: "Increment", by: 1, reason: `${i}:${"r".repeat(100 * 1024)}` })).status,
      ).toBe(200)
      matching.push(++head)
      for (let j = 0; j < 2; j++, head++) await reset(id)
    }
    for (let j = 0; j < 3; j++, head++) await reset(id)
    const seen: Array<number> = []
    let cursor = 0
    const closes: Array<number> = []
    while (cursor < head) {
      const socket = await openSocket(`/v1/counter/${id}/ws?after=${cursor}&types=Incremented`)
      const ended = await Promise.race([
        socket.closed,
        socket.until((f) => cursorOf(f, cursor) === head).then(() => undefined),
      ])
      if (ended !== undefined) closes.push(ended.code)
      seen.push(...entrySeqs(socket.frames))
      cursor = cursorOf(socket.frames, cursor)
      socket.ws.close(1000)
    }
    expect(closes.length).toBeGreaterThan(0)
    expect(closes.every((code) => code === CLOSE_RESUME)).toBe(true)
    expect(seen).toEqual(matching)
  })

  it("SSE: resuming with Last-Event-ID after any stretch loses and repeats nothing (property)", async () => {
    const commands = { I: increment, R: reset, D: decrement } as const
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom("I", "R", "D"), { minLength: 1, maxLength: 10 }),
        fc.subarray(["Incremented", "Reset", "Decremented"], { minLength: 1 }),
        fc.array(fc.nat(10), { maxLength: 3 }),
        async (script, types, reconnectAt) => {
          const id = freshId("sse-prop")
          const seen: Array<number> = []
          let lastId = "0"
          // Reads a connection until the client's Last-Event-ID reaches the head, as a reconnecting EventSource would.
          const follow = async (head: number) => {
            const response = await SELF.fetch(`${BASE}/v1/counter/${id}/events/stream?types=${types.join(",")}`, {
              headers: { "Last-Event-ID": lastId },
            })
            const messages = await readSseMessages(response, (m) => lastEventId(m) === String(head))
            seen.push(...messages.filter((m) => m.event !== "head").map((m) => Number(m.id)))
            lastId = lastEventId(messages)
          }
          let done = 0
          for (const [index, letter] of script.entries()) {
            await commands[letter as keyof typeof commands](id)
            if (reconnectAt.includes(index)) {
              await follow(index + 1)
              done = index + 1
            }
          }
          if (done < script.length) await follow(script.length)
          const log = (await json(await get(`/v1/counter/${id}/events?limit=100`))).body.events as Array<any>
          expect(seen).toEqual(log.filter((event) => types.includes(event.type)).map((event) => event.seq))
        },
      ),
      { numRuns: 10 },
    )
  })

  it("SSE: skipped entries end in a head event with their id; Last-Event-ID resumes after them", async () => {
    const id = freshId()
    for (const command of [increment, reset, increment]) await command(id)
    const stream = await get(`/v1/counter/${id}/events/stream?types=Reset`)
    expect(stream.headers.get("content-type")).toContain("text/event-stream")
    const live = readSseMessages(stream, (messages) => messages.length === 4)
    await increment(id) // 4, skipped
    await reset(id) // 5
    const messages = await live
    expect(messages).toEqual([
      { id: "2", event: "Reset", data: expect.objectContaining({ seq: 2, type: "Reset" }) },
      { id: "3", event: "head", data: { type: "head", seq: 3 } },
      { id: "4", event: "head", data: { type: "head", seq: 4 } },
      { id: "5", event: "Reset", data: expect.objectContaining({ seq: 5, type: "Reset" }) },
    ])
    await increment(id) // 6
    await reset(id) // 7
    // A client that saw up to id 5 reconnects: it gets 6 (as an id) and 7, nothing before.
    const resumed = await readSseMessages(
      await SELF.fetch(`${BASE}/v1/counter/${id}/events/stream?types=Reset`, {
        headers: { "Last-Event-ID": lastEventId(messages) },
      }),
      (m) => m.length === 1,
    )
    expect(resumed).toEqual([{ id: "7", event: "Reset", data: expect.objectContaining({ seq: 7 }) }])
    // Stopped after a skipped stretch: the id it kept is 6's, past everything it skipped.
    const tail = await readSseMessages(
      await SELF.fetch(`${BASE}/v1/counter/${id}/events/stream?after=5&types=Incremented`),
      (m) => m.length === 2,
    )
    expect(tail).toEqual([
      { id: "6", event: "Incremented", data: expect.objectContaining({ seq: 6 }) },
      { id: "7", event: "head", data: { type: "head", seq: 7 } },
    ])
    expect(lastEventId(tail)).toBe("7")
  })

  it("topics: WebSocket and SSE filter entries by their event's type, at topic positions", async () => {
    const name = freshId("filtered")
    const topic = topicObject(name) as unknown as TopicApi
    const event = topicTestEvent
    await topic.deliver({ kind: "counter", id: "a" }, [event(1, "Incremented"), event(2, "Reset")] as any)
    await topic.deliver({ kind: "room", id: "b" }, [event(1, "Posted"), event(2, "Joined")] as any)
    const socket = await openSocket(`/v1/topics/${name}/ws?types=Reset,Posted`)
    await socket.until((f) => f.filter((x) => x.type === "entry" || x.type === "head").length === 3)
    expect(
      socket.frames.map((f) => (f.type === "entry" ? [f.entry.topicSeq, f.entry.event.type] : [f.type, f.seq])),
    ).toEqual([
      [2, "Reset"],
      [3, "Posted"],
      ["head", 4],
    ])
    const sse = await readSseMessages(
      await get(`/v1/topics/${name}/events/stream?after=2&types=Joined`),
      (m) => m.length === 1,
    )
    expect(sse).toEqual([{ id: "4", event: "Joined", data: expect.objectContaining({ topicSeq: 4 }) }])
    socket.ws.close(1000)
  })

  it("refuses a types filter that names no event type, naming the ones there are", async () => {
    const id = freshId()
    await increment(id)
    const refused = await json(await get(`/v1/counter/${id}/events/stream?types=Reset,Incremnted`))
    expect(refused).toEqual({
      status: 400,
      body: {
        error: {
          code: "unknown_event_type",
          message: 'Unknown event type "Incremnted"; the event types of kind counter: Incremented, Decremented, Reset',
          details: { unknown: ["Incremnted"], eventTypes: ["Incremented", "Decremented", "Reset"] },
        },
      },
    })
    const socket = await SELF.fetch(`${BASE}/v1/counter/${id}/ws?types=Posted`, { headers: { Upgrade: "websocket" } })
    expect(await json(socket)).toMatchObject({ status: 400, body: { error: { code: "unknown_event_type" } } })
    expect(await json(await get(`/v1/counter/${id}/events/stream?types=,`))).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_query" } },
    })
    // A topic's entries carry events of every kind served: any of their types is a filter, others are not.
    expect((await get(`/v1/topics/counter/events/stream?types=Posted,Reset`)).status).toBe(200)
    const topic = await json(await get(`/v1/topics/counter/events/stream?types=Nope`))
    expect(topic).toMatchObject({ status: 400, body: { error: { code: "unknown_event_type" } } })
    expect(topic.body.error.message).toContain("the event types of the kinds this app serves")
    expect(topic.body.error.details.eventTypes).toEqual(expect.arrayContaining(["Incremented", "Posted", "Joined"]))
  })

  it("reserves head, adds up repeated types parameters, and the typed client refuses an empty types list", async () => {
    const id = freshId()
    for (const command of [increment, reset, decrement]) await command(id)
    expect(await json(await get(`/v1/counter/${id}/log?types=head`))).toMatchObject({
      status: 400,
      body: { error: { code: "reserved_event_type" } },
    })
    const socket = await openSocket(`/v1/counter/${id}/ws?types=Reset&types=Decremented`)
    await socket.until((f) => shape(f).length === 2)
    expect(shape(socket.frames)).toEqual([
      [2, "Reset"],
      [3, "Decremented"],
    ])
    socket.ws.close(1000)
    const emberlog = createClient({ baseUrl: BASE, fetch: (input, init) => SELF.fetch(input, init) })
    expect(() => emberlog.actor("counter", id).subscribeAsync({ types: [] })).toThrow(RangeError)
  })

  it("the typed client's `types` option resumes after skipped entries across reconnects", async () => {
    const id = freshId()
    const urls: Array<string> = []
    const sockets: Array<WebSocket> = []
    const emberlog = createClient({
      baseUrl: BASE,
      fetch: (input, init) => SELF.fetch(input, init),
      connect: async (url) => {
        urls.push(url)
        const response = await SELF.fetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket" } })
        if (response.status !== 101 || !response.webSocket)
          throw new SubscriptionRefused(response.status, await response.json().catch(() => null))
        response.webSocket.accept()
        sockets.push(response.webSocket)
        return response.webSocket as any
      },
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
    })
    const counter = emberlog.actor("counter", id)
    await reset(id)
    const heads: Array<number> = []
    const iterator = counter.subscribeAsync({ types: ["Reset"], onHead: (position) => heads.push(position) })
    expect((await iterator.next()).value).toMatchObject({ seq: 1, type: "Reset" })
    const frames: Array<any> = []
    sockets[0]!.addEventListener("message", (event) => {
      frames.push(JSON.parse(String(event.data)))
    })
    await increment(id)
    await increment(id)
    // Wait for the head frame of seq 3, then drop the connection: the client must resume after 3.
    for (let i = 0; i < 200 && !frames.some((f) => f.type === "head" && f.seq === 3); i++)
      await new Promise((resolve) => setTimeout(resolve, 5))
    sockets[0]!.close(1000)
    for (let i = 0; i < 200 && sockets.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5))
    // The client asks for a batched backlog too (issue 13): the filter applies to its batch frames.
    expect(urls).toEqual([
      `ws://emberlog.test/v1/counter/${id}/ws?after=0&types=Reset&batch=1`,
      `ws://emberlog.test/v1/counter/${id}/ws?after=3&types=Reset&batch=1`,
    ])
    await reset(id)
    const next = await iterator.next()
    expect(next.value).toMatchObject({ seq: 4, type: "Reset" })
    // The client was told how far it had seen past the skipped Increments.
    expect(heads).toContain(3)
    await iterator.return?.()
  })
})
