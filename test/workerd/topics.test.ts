import {
  abortAllDurableObjects,
  env,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test"
import { Effect, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { actorHostClass, type ActorEnv } from "../../src/actors/durable-actor.js"
import { deliveryFaults } from "../../src/actors/outbox.js"
import { Entity, tagged } from "../../src/domain/index.js"
import { propertyParameters } from "../../src/testing/parameters.js"
import { actorObject, freshId, get, json, openSocket, range, send, topicObject } from "./helpers.js"
import type { TopicApi } from "../../src/actors/topic.js"

const counterStub = (id: string) => actorObject("counter", id)

/** Runs each counter's alarm until its outbox is empty (faults off), as the platform eventually would. */
const drain = async (ids: Iterable<string>) => {
  deliveryFaults.fail = 0
  deliveryFaults.duplicate = 0
  for (const id of ids) {
    for (let i = 0; i < 20; i++) {
      const ran = await runDurableObjectAlarm(counterStub(id)).catch(() => true)
      if (!ran) break
    }
  }
}

const topicEntries = async (topic: string) => {
  const entries: Array<any> = []
  for (let after: number | null = 0; after !== null;) {
    const page: any = (await json(await get(`/v1/topics/${topic}/events?after=${after}&limit=1000`))).body
    entries.push(...page.entries)
    after = page.next
  }
  return entries
}

const versionOf = async (id: string) =>
  (await json(await get(`/v1/counter/${id}`))).body as { version: number; state: { value: number } }

/** The topics' cursors: the replica's (`~replica/EMBERLOG_REPLICA`, src/actors/replica.ts) shares their table. */
const TOPIC_CURSORS = "SELECT topic, through FROM topic_cursors WHERE topic NOT LIKE '~%'"

describe("topics", () => {
  it("collects every counter event once, per-source in seq order, with a gapless topicSeq", async () => {
    const ids = [freshId("a"), freshId("b")]
    for (let i = 0; i < 5; i++) for (const id of ids) await send("counter", id, { type: "Increment", by: i + 1 })
    await drain(ids)
    const entries = await topicEntries("counter")
    expect(entries.map((e) => e.topicSeq)).toEqual(range(1, entries.length))
    for (const id of ids) {
      const mine = entries.filter((e) => e.source.kind === "counter" && e.source.id === id)
      expect(mine.map((e) => e.event.seq)).toEqual(range(1, 5))
      expect(mine[0].event).toMatchObject({ type: "Incremented", data: { by: 1 }, hash: expect.any(String) })
    }
    // Every page names the topic's head, so a reader can start near the end (the inspector's tail does).
    expect((await json(await get(`/v1/topics/counter/events?after=0&limit=1`))).body.head).toBe(entries.length)
  })

  it("streams topic entries over WebSocket", async () => {
    const id = freshId()
    const socket = await openSocket(`/v1/topics/counter/ws?after=0`)
    for (let i = 0; i < 3; i++) await send("counter", id, { type: "Increment", by: 1 })
    await drain([id])
    await socket.until((f) => f.filter((x) => x.type === "entry" && x.entry.source.id === id).length === 3)
    const mine = socket.frames.filter((x) => x.type === "entry" && x.entry.source.id === id)
    expect(mine.map((x) => x.entry.event.seq)).toEqual([1, 2, 3])
    const positions = socket.frames.filter((x) => x.type === "entry").map((x) => x.entry.topicSeq)
    expect(positions).toEqual(range(positions[0], positions[0] + positions.length - 1))
    socket.ws.close(1000)
  })

  it("delivers exactly once under failed and duplicated deliveries and restarts (model-based)", async () => {
    const touched = new Set<string>()
    type Model = { ids: Array<string> }
    type Real = Record<string, never>
    const increment = (index: number, by: number): fc.AsyncCommand<Model, Real> => ({
      check: () => true,
      run: async (model) => {
        const id = model.ids[index % model.ids.length]!
        touched.add(id)
        expect(
          (await send("counter", id, { type: by > 0 ? "Increment" : "Reset", ...(by > 0 ? { by } : {}) })).status,
        ).toBe(200)
      },
      toString: () => `increment #${index} by ${by}`,
    })
    const fault = (kind: "fail" | "duplicate", n: number): fc.AsyncCommand<Model, Real> => ({
      check: () => true,
      run: async () => void (deliveryFaults[kind] = n),
      toString: () => `${kind} next ${n}`,
    })
    const alarm = (index: number): fc.AsyncCommand<Model, Real> => ({
      check: () => true,
      run: async (model) =>
        void (await runDurableObjectAlarm(counterStub(model.ids[index % model.ids.length]!)).catch(() => undefined)),
      toString: () => `alarm #${index}`,
    })
    const crash = (index: number, how: "evict" | "abort"): fc.AsyncCommand<Model, Real> => ({
      check: () => true,
      run: async (model) => {
        if (how === "abort") await abortAllDurableObjects()
        else await evictDurableObject(counterStub(model.ids[index % model.ids.length]!)).catch(() => undefined)
      },
      toString: () => `crash #${index} (${how})`,
    })
    const commands = fc.commands(
      [
        fc.tuple(fc.nat(5), fc.integer({ min: 0, max: 9 })).map(([i, by]) => increment(i, by)),
        fc
          .tuple(fc.constantFrom("fail" as const, "duplicate" as const), fc.integer({ min: 1, max: 3 }))
          .map(([k, n]) => fault(k, n)),
        fc.nat(5).map(alarm),
        fc.tuple(fc.nat(5), fc.constantFrom("evict" as const, "abort" as const)).map(([i, how]) => crash(i, how)),
      ],
      { maxCommands: 30, size: "max" },
    )
    await fc.assert(
      fc.asyncProperty(commands, async (steps) => {
        const ids = [freshId("m0"), freshId("m1"), freshId("m2")]
        await fc.asyncModelRun(() => ({ model: { ids }, real: {} }), steps)
        await drain(ids)
        const entries = await topicEntries("counter")
        expect(entries.map((e) => e.topicSeq)).toEqual(range(1, entries.length))
        for (const id of ids) {
          const { version } = await versionOf(id)
          expect(entries.filter((e) => e.source.id === id).map((e) => e.event.seq)).toEqual(range(1, version))
        }
      }),
      propertyParameters({ numRuns: 8 }),
    )
    deliveryFaults.fail = 0
    deliveryFaults.duplicate = 0

    // The projection equals the sum of every counter, and catches up from the topic when its tables are emptied.
    const everyCounter = [...new Set((await topicEntries("counter")).map((e) => e.source.id as string))]
    const values = await Promise.all(everyCounter.map(async (id) => (await versionOf(id)).state.value))
    const expected = { total: values.reduce((a, b) => a + b, 0), counters: everyCounter.length }
    expect((await json(await get("/v1/projections/counter-totals"))).body).toMatchObject(expected)
    // The projection lives in the counter topic's object: wiped there, it catches up from the topic's log on wake.
    await runInDurableObject(topicObject("counter"), async (_instance: unknown, state: DurableObjectState) => {
      state.storage.sql.exec("DELETE FROM counter_totals")
      state.storage.sql.exec("UPDATE counter_totals_progress SET last_update = NULL")
      state.storage.sql.exec("DELETE FROM projections WHERE name = 'counter-totals'")
    })
    await evictDurableObject(topicObject("counter"))
    const rebuilt = (await json(await get("/v1/projections/counter-totals"))).body
    expect(rebuilt).toMatchObject(expected)
    expect(rebuilt.lastUpdate).toEqual(expect.any(Number))
    expect(touched.size).toBeGreaterThan(0)
  })

  it("follows the log with one cursor per topic: a command writes nothing per event for delivery", async () => {
    const id = freshId("cursor")
    for (let i = 0; i < 5; i++) await send("counter", id, { type: "Increment", by: 1 })
    const rows = (query: string) =>
      runInDurableObject(counterStub(id), (_instance, state) => state.storage.sql.exec(query).toArray())
    // The one queued row is the first event's, for the tenant's directory; the topic has a cursor.
    expect(await rows("SELECT topic, seq FROM outbox WHERE topic = 'counter'")).toEqual([])
    expect(await rows(TOPIC_CURSORS)).toEqual([{ topic: "counter", through: expect.any(Number) }])
    await drain([id])
    expect(await rows(TOPIC_CURSORS)).toEqual([{ topic: "counter", through: 5 }])
    expect(await rows("SELECT topic, seq FROM outbox")).toEqual([])
    const mine = (await topicEntries("counter")).filter((e) => e.source.id === id)
    expect(mine.map((e) => e.event.seq)).toEqual(range(1, 5))
  })

  it("a log from before cursors has its queued rows delivered first, then is followed: each event once, in order", async () => {
    const id = freshId("legacy")
    for (let i = 0; i < 3; i++) await send("counter", id, { type: "Increment", by: 1 })
    await drain([id])
    // Two more events, then the storage as an older emberlog left it: their outbox rows, no cursors.
    // One synchronous stretch: no alarm can deliver them in between.
    await runInDurableObject(counterStub(id), (instance: unknown, state) => {
      const host = instance as { commit(request: { command: unknown }): { ok: boolean } }
      for (let i = 0; i < 2; i++) expect(host.commit({ command: { type: "Increment", by: 1 } }).ok).toBe(true)
      state.storage.sql.exec("DROP TABLE topic_cursors")
      state.storage.sql.exec("INSERT INTO outbox (topic, seq) VALUES ('counter', 4), ('counter', 5)")
    })
    await evictDurableObject(counterStub(id))
    await send("counter", id, { type: "Increment", by: 1 })
    await drain([id])
    const mine = (await topicEntries("counter")).filter((e) => e.source.id === id)
    expect(mine.map((e) => e.event.seq)).toEqual(range(1, 6))
    const rows = (query: string) =>
      runInDurableObject(counterStub(id), (_instance, state) => state.storage.sql.exec(query).toArray())
    expect(await rows("SELECT topic, seq FROM outbox")).toEqual([])
    expect(await rows(TOPIC_CURSORS)).toEqual([{ topic: "counter", through: 6 }])
  })

  it("delivers to each topic on its own: one whose delivery fails holds up none of the others", async () => {
    // A kind publishing every event to two topics; the outbox drains them in name order, so the first fails.
    const [failing, healthy] = [freshId("a-first"), freshId("b-second")]
    const Tick = tagged("Tick", {})
    const Ticked = tagged("Ticked", {})
    const Ticks = Entity.make({
      kind: "two-topics",
      state: Schema.Struct({ ticks: Schema.Number }),
      initial: { ticks: 0 },
      commands: Tick,
      events: Ticked,
      decide: () => Effect.succeed([{ type: "Ticked" } as const]),
      evolve: (state) => ({ ticks: state.ticks + 1 }),
      topics: () => [failing, healthy],
    })
    const Actor = actorHostClass([{ entity: Ticks }])
    const heads = async () => ({
      failing: await (topicObject(failing) as unknown as TopicApi).head(),
      healthy: await (topicObject(healthy) as unknown as TopicApi).head(),
    })
    const id = freshId("ticks")
    const warn = console.warn
    console.warn = () => undefined
    try {
      const retryIn = await runInDurableObject(
        actorObject("two-topics", id),
        async (_instance: unknown, state: DurableObjectState) => {
          const actor = new Actor(state, env as unknown as ActorEnv)
          // Recovery runs in the constructor's blockConcurrencyWhile: wait for it.
          await state.blockConcurrencyWhile(async () => undefined)
          expect(actor.commit({ command: { type: "Tick" } })).toMatchObject({ ok: true })
          expect(actor.commit({ command: { type: "Tick" } })).toMatchObject({ ok: true })
          deliveryFaults.fail = 1
          await actor.alarm()
          expect(deliveryFaults.fail).toBe(0)
          // The failure still backs off: the alarm is set for a retry, not for the batch delay.
          const retryIn = ((await state.storage.getAlarm()) ?? 0) - Date.now()
          expect(await heads()).toEqual({ failing: 0, healthy: 2 })
          await actor.alarm()
          return retryIn
        },
      )
      expect(retryIn).toBeGreaterThan(100)
      // The retry delivers the failed topic's events, and the delivered topic gets nothing twice.
      expect(await heads()).toEqual({ failing: 2, healthy: 2 })
    } finally {
      console.warn = warn
      deliveryFaults.fail = 0
    }
  })

  it("refuses a bad topic name and a bad cursor", async () => {
    expect((await json(await get(`/v1/topics/${"x".repeat(200)}/events`))).body.error.code).toBe("invalid_topic")
    expect((await json(await get(`/v1/topics/counter/events?after=-3`))).status).toBe(400)
    expect((await json(await get(`/v1/topics/counter/events?limit=5000`))).status).toBe(400)
    expect((await json(await get(`/v1/topics/counter/events/stream?after=999999`))).status).toBe(400)
  })
})
