import { SELF, env, evictDurableObject } from "cloudflare:test"
import { Effect, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { EmberlogError, SubscriptionRefused, createClient } from "../../src/client/index.js"
import { actorObject, BASE, freshId, range } from "./helpers.js"
import { devName } from "./helpers.js"

/** The client as an app would build it, with the Worker reached through SELF instead of the network. */
const client = (overrides: Partial<Parameters<typeof createClient>[0]> = {}) =>
  createClient({
    baseUrl: BASE,
    fetch: (input, init) => SELF.fetch(input, init),
    connect: async (url) => {
      const response = await SELF.fetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket" } })
      if (response.status !== 101 || !response.webSocket)
        throw new SubscriptionRefused(response.status, await response.json().catch(() => null))
      response.webSocket.accept()
      return response.webSocket as any
    },
    reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
    ...overrides,
  })

describe("typed client", () => {
  it("reads one page with eventsPage, and subscribes with batch=1, each event once", async () => {
    const opened: Array<string> = []
    const counter = client({
      connect: async (url) => {
        opened.push(url)
        const response = await SELF.fetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket" } })
        response.webSocket!.accept()
        return response.webSocket as any
      },
    }).actor("counter", freshId())
    for (let i = 0; i < 4; i++) await counter.send({ type: "Increment", by: 1 })
    const page = await counter.eventsPage({ after: 1, limit: 2 })
    expect(page.events.map((event) => event.seq)).toEqual([2, 3])
    expect(page.next).toBe(3)
    const seen: Array<number> = []
    for await (const event of counter.subscribeAsync({ after: 0 })) {
      seen.push(event.seq)
      if (event.seq === 4) break
    }
    expect(seen).toEqual([1, 2, 3, 4])
    expect(new URL(opened[0]!).searchParams.get("batch")).toBe("1")
  })

  it("sends commands and reads state, the past and pages of events", async () => {
    const counter = client().actor<{ value: number }>("counter", freshId())
    for (let i = 1; i <= 5; i++) await counter.send({ type: "Increment", by: i })
    expect(await counter.state()).toMatchObject({ version: 5, state: { value: 15 } })
    expect((await counter.state({ at: 2 })).state).toEqual({ value: 3 })
    const seqs: Array<number> = []
    for await (const event of counter.events({ limit: 2 })) seqs.push(event.seq)
    expect(seqs).toEqual([1, 2, 3, 4, 5])
    expect(await counter.verify()).toMatchObject({ ok: true, events: 5 })
    await expect(counter.send({ type: "Increment", by: 1 }, { ifMatch: 2 })).rejects.toMatchObject({
      status: 409,
      code: "version_conflict",
    })
    await expect(counter.send({ type: "Increment", by: -1 })).rejects.toBeInstanceOf(EmberlogError)
  })

  it("retries a command whose response was lost with the same Idempotency-Key: applied once", async () => {
    const id = freshId()
    let calls = 0
    const flaky = client({
      fetch: async (input, init) => {
        const response = await SELF.fetch(input, init)
        if (init?.method === "POST" && ++calls === 1) throw new TypeError("network connection lost")
        return response
      },
    })
    const result = await flaky.actor("counter", id).send({ type: "Increment", by: 3 })
    expect(calls).toBe(2)
    expect(result).toMatchObject({ version: 1, state: { value: 3 } })
    expect(await flaky.actor("counter", id).state()).toMatchObject({ version: 1, state: { value: 3 } })
  })

  it("subscriptions resume across server-side closes with no gap and no repeat", async () => {
    const id = freshId()
    const counter = client().actor("counter", id)
    await counter.send({ type: "Increment", by: 1 })
    const received: Array<number> = []
    const done = (async () => {
      for await (const event of counter.subscribeAsync({ after: 0 })) {
        received.push(event.seq)
        if (received.length === 40) break
      }
    })()
    for (let i = 2; i <= 40; i++) {
      await counter.send({ type: "Increment", by: 1 })
      if (i % 10 === 0) await evictDurableObject(actorObject("counter", id), { webSockets: "close" })
      if (i % 10 === 5) await evictDurableObject(actorObject("counter", id), { webSockets: "hibernate" })
    }
    await done
    expect(received).toEqual(range(1, 40))
  })

  it("offers the subscription as an Effect Stream and as callbacks", async () => {
    const id = freshId()
    const counter = client().actor("counter", id)
    for (let i = 0; i < 3; i++) await counter.send({ type: "Increment", by: 1 })
    const streamed = await Effect.runPromise(Stream.runCollect(Stream.take(counter.subscribe({ after: 1 }), 2)))
    expect(Array.from(streamed).map((e) => e.seq)).toEqual([2, 3])
    const seen: Array<number> = []
    const stop = counter.onEvent((event) => seen.push(event.seq), { after: 2 })
    await counter.send({ type: "Reset" })
    for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10))
    stop()
    expect(seen).toEqual([3, 4])
  })

  it("fails a subscription the server refuses, instead of retrying forever", async () => {
    const counter = client().actor("counter", freshId())
    const failure = await Effect.runPromise(Effect.flip(Stream.runCollect(counter.subscribe({ after: 99 }))))
    expect(failure).toMatchObject({ status: 400, code: "invalid_query" })
  })

  it("follows a topic", async () => {
    const id = freshId()
    const emberlog = client()
    const entries = emberlog.topic("counter").subscribeAsync({ after: 0 })
    await emberlog.actor("counter", id).send({ type: "Increment", by: 7 })
    for await (const entry of entries) {
      if (entry.source.id !== id) continue
      expect(entry.event).toMatchObject({ seq: 1, type: "Incremented", data: { by: 7 } })
      break
    }
  })
})
