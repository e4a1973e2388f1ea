import { env, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { SELF } from "cloudflare:test"
import { actorObject, BASE, eventSeqs, freshId, get, json, openSocket, range, readSse, send } from "./helpers.js"

const increment = (id: string, by = 1) => send("counter", id, { type: "Increment", by })

describe("WebSocket subscriptions", () => {
  it("sends the backlog after `after`, then live events, in order, once", async () => {
    const id = freshId()
    for (let i = 0; i < 3; i++) await increment(id)
    const socket = await openSocket(`/v1/counter/${id}/ws?after=1`)
    await socket.until((f) => eventSeqs(f).length === 2)
    for (let i = 0; i < 2; i++) await increment(id)
    await socket.until((f) => eventSeqs(f).length === 4)
    expect(eventSeqs(socket.frames)).toEqual([2, 3, 4, 5])
    expect(socket.frames[0]).toMatchObject({
      type: "event",
      event: { seq: 2, type: "Incremented", data: { by: 1 }, hash: expect.any(String) },
    })
    socket.ws.close(1000)
  })

  it("gives every subscriber exactly after+1..n while writers append concurrently", async () => {
    const id = freshId()
    for (let i = 0; i < 10; i++) await increment(id)
    const writer = async () => {
      for (let i = 0; i < 60; i++) await increment(id)
    }
    // Subscribers join while two writers are mid-flight, each with its own starting point.
    const opener = async () => {
      const opened = []
      for (const after of [0, 3, 7, 10, 0, 5, 9, 1]) {
        opened.push({ after, socket: await openSocket(`/v1/counter/${id}/ws?after=${after}`) })
        await increment(id)
      }
      return opened
    }
    const [, , subscribers] = await Promise.all([writer(), writer(), opener()])
    const total = 10 + 60 + 60 + 8
    expect((await json(await get(`/v1/counter/${id}`))).body.version).toBe(total)
    for (const { after, socket } of subscribers) {
      await socket.until((f) => eventSeqs(f).length >= total - after)
      expect(eventSeqs(socket.frames)).toEqual(range(after + 1, total))
      socket.ws.close(1000)
    }
  })

  it("broadcasts nothing that is not in the log: refused and rolled-back commands send no frame", async () => {
    const id = freshId()
    const socket = await openSocket(`/v1/counter/${id}/ws`)
    expect((await send("counter", id, { type: "Increment", by: 0 })).status).toBe(400)
    expect((await send("counter", id, { type: "Decrement", by: Number.MAX_SAFE_INTEGER })).status).toBe(200)
    expect((await send("counter", id, { type: "Decrement", by: 1 })).status).toBe(422) // below the safe range
    // The next command's idempotency insert fails, so its append rolls back.
    await runInDurableObject(
      actorObject("counter", id),
      (_i: unknown, state: DurableObjectState) =>
        void state.storage.sql.exec(
          "CREATE TRIGGER refuse BEFORE INSERT ON commands BEGIN SELECT RAISE(ABORT, 'refused'); END",
        ),
    )
    expect((await send("counter", id, { type: "Increment", by: 5 }, { "Idempotency-Key": "rolled-back" })).status).toBe(
      500,
    )
    await send("counter", id, { type: "Increment", by: 2 })
    await socket.until((f) => eventSeqs(f).length >= 2)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(socket.frames.filter((f) => f.type === "event").map((f) => [f.event.seq, f.event.type])).toEqual(
      (await json(await get(`/v1/counter/${id}/events`))).body.events.map((e: any) => [e.seq, e.type]),
    )
    expect(eventSeqs(socket.frames)).toHaveLength(2)
    socket.ws.close(1000)
  })

  it("takes commands on the socket: ack, error frames, and the connection stays up", async () => {
    const id = freshId()
    const socket = await openSocket(`/v1/counter/${id}/ws`)
    socket.ws.send(JSON.stringify({ type: "command", id: "c1", command: { type: "Increment", by: 2 } }))
    await socket.until((f) => f.some((x) => x.type === "ack"))
    socket.ws.send("{not json")
    socket.ws.send(JSON.stringify({ type: "subscribe" }))
    socket.ws.send(JSON.stringify({ type: "command", command: { type: "Reset" } }))
    socket.ws.send(JSON.stringify({ type: "command", id: 7, command: { type: "Increment", by: 0 } }))
    socket.ws.send(JSON.stringify({ type: "command", id: "c3", command: { type: "Increment", by: 1 }, ifMatch: 0 }))
    socket.ws.send(JSON.stringify({ type: "command", id: "c4", command: { type: "Increment", by: 1 }, ifMatch: 1 }))
    await socket.until((f) => f.some((x) => x.id === "c4"))
    const replies = socket.frames.filter((f) => f.type !== "event")
    expect(replies).toEqual([
      { type: "ack", id: "c1", version: 1 },
      { type: "error", id: null, error: { code: "invalid_frame", message: expect.any(String) } },
      {
        type: "error",
        id: null,
        error: { code: "invalid_frame", message: expect.stringContaining("Unknown frame type") },
      },
      { type: "error", id: null, error: { code: "invalid_frame", message: expect.stringContaining("id") } },
      {
        type: "error",
        id: 7,
        error: { code: "invalid_command", message: expect.any(String), details: expect.any(Object) },
      },
      {
        type: "error",
        id: "c3",
        error: { code: "version_conflict", message: expect.any(String), details: { expected: 0, current: 1 } },
      },
      { type: "ack", id: "c4", version: 2 },
    ])
    expect(eventSeqs(socket.frames)).toEqual([1, 2])
    expect((await json(await get(`/v1/counter/${id}`))).body.version).toBe(2)
    socket.ws.close(1000)
  })

  it("closes the socket with 1009 on a frame over 1 MiB, appending nothing", async () => {
    const id = freshId()
    const socket = await openSocket(`/v1/counter/${id}/ws`)
    socket.ws.send(
      JSON.stringify({
        type: "command",
        id: "big",
        command: { type: "Increment", by: 1, reason: "x".repeat(1024 * 1024) },
      }),
    )
    expect((await socket.closed).code).toBe(1009)
    expect((await json(await get(`/v1/counter/${id}`))).body.version).toBe(0)
  })

  it("answers ping with pong without waking the actor's code", async () => {
    const socket = await openSocket(`/v1/counter/${freshId()}/ws`)
    socket.ws.send("ping")
    await socket.until((f) => f.includes("pong"))
    socket.ws.close(1000)
  })

  it("keeps delivering across eviction with hibernated sockets, with no gap or repeat", async () => {
    const id = freshId()
    await increment(id)
    const socket = await openSocket(`/v1/counter/${id}/ws`)
    await socket.until((f) => eventSeqs(f).length === 1)
    await evictDurableObject(actorObject("counter", id), { webSockets: "hibernate" })
    for (let i = 0; i < 3; i++) await increment(id)
    await socket.until((f) => eventSeqs(f).length === 4)
    socket.ws.send(JSON.stringify({ type: "command", id: "after-wake", command: { type: "Increment", by: 1 } }))
    await socket.until((f) => eventSeqs(f).length === 5)
    expect(eventSeqs(socket.frames)).toEqual([1, 2, 3, 4, 5])
    socket.ws.close(1000)
  })

  it("lets a client resume exactly where it left off after the server closed its socket", async () => {
    const id = freshId()
    for (let i = 0; i < 4; i++) await increment(id)
    const first = await openSocket(`/v1/counter/${id}/ws`)
    await first.until((f) => eventSeqs(f).length === 4)
    await evictDurableObject(actorObject("counter", id), { webSockets: "close" })
    await first.closed
    for (let i = 0; i < 3; i++) await increment(id)
    const last = Math.max(...eventSeqs(first.frames))
    const second = await openSocket(`/v1/counter/${id}/ws?after=${last}`)
    await second.until((f) => eventSeqs(f).length === 3)
    expect([...eventSeqs(first.frames), ...eventSeqs(second.frames)]).toEqual(range(1, 7))
    second.ws.close(1000)
  })

  it("checks the cursor against the actor's head seq, without reading or encoding its state", async () => {
    const id = freshId()
    for (let i = 0; i < 2; i++) await increment(id)
    const actor = actorObject("counter", id)
    const stateReads = () =>
      runInDurableObject(actor, (instance) => {
        const core = (instance as unknown as { core: any }).core
        if (core.stateReads === undefined) {
          core.stateReads = 0
          const readState = core.readState.bind(core)
          core.readState = (...args: Array<unknown>) => (core.stateReads++, readState(...args))
        }
        return core.stateReads as number
      })
    expect(await stateReads()).toBe(0)
    const socket = await openSocket(`/v1/counter/${id}/ws?after=1`)
    await socket.until((f) => eventSeqs(f).length === 1)
    socket.ws.close(1000)
    const stream = await SELF.fetch(`${BASE}/v1/counter/${id}/events/stream?after=0`)
    expect((await readSse(stream, 2)).map((event) => event.id)).toEqual(["1", "2"])
    expect(
      (await json(await SELF.fetch(`${BASE}/v1/counter/${id}/ws?after=3`, { headers: { Upgrade: "websocket" } }))).body,
    ).toMatchObject({ error: { code: "invalid_query", details: { after: 3, head: 2 } } })
    expect(await stateReads()).toBe(0)
  })

  it("refuses bad subscription requests with clear errors", async () => {
    const id = freshId()
    await increment(id)
    const bad = async (path: string, headers: Record<string, string> = { Upgrade: "websocket" }) =>
      json(await SELF.fetch(`${BASE}${path}`, { headers }))
    expect((await bad(`/v1/counter/${id}/ws?after=-1`)).body.error.code).toBe("invalid_query")
    expect((await bad(`/v1/counter/${id}/ws?after=abc`)).status).toBe(400)
    expect(await bad(`/v1/counter/${id}/ws?after=5`)).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_query" } },
    })
    expect(await bad(`/v1/counter/${id}/ws`, {})).toMatchObject({
      status: 426,
      body: { error: { code: "upgrade_required" } },
    })
    expect((await bad(`/v1/nope/${id}/ws`)).status).toBe(404)
    expect((await bad(`/v1/counter/${id}/events/stream`, { "Last-Event-ID": "x" })).status).toBe(400)
  })
})

describe("Server-Sent Events", () => {
  it("streams backlog and live events with id = seq and event = type", async () => {
    const id = freshId()
    for (let i = 0; i < 2; i++) await increment(id)
    const response = await SELF.fetch(`${BASE}/v1/counter/${id}/events/stream?after=1`)
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const reading = readSse(response, 3)
    await increment(id)
    await send("counter", id, { type: "Reset" })
    const events = await reading
    expect(events.map((e) => [e.id, e.event])).toEqual([
      ["2", "Incremented"],
      ["3", "Incremented"],
      ["4", "Reset"],
    ])
    expect(events[0]!.data).toMatchObject({ seq: 2, type: "Incremented", data: { by: 1 } })
  })

  it("honours Last-Event-ID on reconnect", async () => {
    const id = freshId()
    for (let i = 0; i < 5; i++) await increment(id)
    const response = await SELF.fetch(`${BASE}/v1/counter/${id}/events/stream?after=0`, {
      headers: { "Last-Event-ID": "3" },
    })
    expect((await readSse(response, 2)).map((e) => e.id)).toEqual(["4", "5"])
  })
})
