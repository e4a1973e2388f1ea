import { Clock, Effect, Layer, ManagedRuntime } from "effect"
import fc from "fast-check"
import { describe, expect, it, vi } from "vitest"
import { ActorCore } from "../../src/actors/actor-core.js"
import { EventStore, StoreError, type EventStoreShape } from "../../src/core/event-store.js"
import { canonicalJson, sha256 } from "../../src/core/hash-chain.js"
import { Counter } from "../../src/kinds/counter/entity.js"
import { sequentialIds } from "../../src/infra/ids.js"
import { makeMemoryEventStore, MemoryEventStore } from "../../src/infra/memory-event-store.js"
import { clockAt } from "../../src/testing/clock.js"
import { propertyParameters } from "../../src/testing/parameters.js"
import { counterCommand } from "./arbitraries.js"

/** A clock the test moves by hand, provided as a Layer like any other service. */
const manualClock = () => {
  let now = 0
  return {
    layer: Layer.succeed(
      Clock.Clock,
      clockAt(() => now),
    ),
    set: (ms: number) => void (now = ms),
  }
}

const host = () => {
  const clock = manualClock()
  const store = makeMemoryEventStore()
  const runtime = () => ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(store), sequentialIds("cmd-"), clock.layer))
  return { clock, store, actor: new ActorCore(Counter, runtime()), restart: () => new ActorCore(Counter, runtime()) }
}

const increment = (by: number) => ({ command: { type: "Increment", by } })

describe("actor core on the in-memory store", () => {
  it("answers asOf with the last event at or before that time", () => {
    const { clock, actor } = host()
    for (const [at, by] of [
      [1000, 1],
      [2000, 10],
      [3000, 100],
    ] as const) {
      clock.set(at)
      actor.command(increment(by))
    }
    const asOf = (ms: number) => {
      const reply = actor.readState({ asOf: ms })
      return reply.ok ? reply.value : undefined
    }
    expect(asOf(999)).toEqual({ version: 0, state: { value: 0 } })
    expect(asOf(2000)).toEqual({ version: 2, state: { value: 11 } })
    expect(asOf(2500)).toEqual({ version: 2, state: { value: 11 } })
    expect(asOf(9999)).toEqual({ version: 3, state: { value: 111 } })
  })

  it("never lets event time go backwards, even when the clock does", () => {
    const { clock, actor, store } = host()
    clock.set(5000)
    actor.command(increment(1))
    clock.set(4000)
    actor.command(increment(1))
    expect(store.rows.map((e) => e.meta.at)).toEqual([5000, 5000])
  })

  it("records meta: command id, correlation, causation and principal", () => {
    const { actor, store } = host()
    actor.command({ ...increment(1), principal: "alice", correlationId: "c-1", causationId: "e-9" })
    actor.command(increment(1))
    expect(store.rows[0]!.meta).toMatchObject({
      commandId: "cmd-1",
      correlationId: "c-1",
      causationId: "e-9",
      principal: "alice",
    })
    expect(store.rows[1]!.meta).toMatchObject({
      commandId: "cmd-2",
      correlationId: "cmd-2",
      causationId: null,
      principal: "anonymous",
    })
  })

  it("recovers the same state, version and chain head after a restart", () => {
    const { actor, restart } = host()
    for (let i = 1; i <= 7; i++) actor.command(increment(i))
    const before = [actor.readState(), actor.verify()]
    expect([restart().readState(), restart().verify()]).toEqual(before)
  })
})

describe("outbox", () => {
  it("routes each event to its entity's topics through the log: a cursor per topic, moved once it is delivered", () => {
    const Tagged = {
      ...Counter,
      topics: (event: { type: string }) => (event.type === "Reset" ? ["counter", "resets"] : ["counter"]),
    }
    const store = makeMemoryEventStore()
    const runtime = ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(store), sequentialIds("c-")))
    const actor = new ActorCore(Tagged, runtime)
    actor.command(increment(1))
    actor.command({ command: { type: "Reset" } })
    actor.command({ command: { type: "Increment", by: 0 } }) // refused: routes nothing
    const pendingOf = (core: ActorCore<{ readonly value: number }>) =>
      core.pendingDeliveries(10).map(({ topic, events }) => [topic, events.map((e) => e.seq)])
    const pending = () => pendingOf(actor)
    expect(pending()).toEqual([
      ["counter", [1, 2]],
      ["resets", [2]],
    ])
    // Nothing is written per event: a cursor for each topic, from before the first event routed there.
    expect(Effect.runSync(store.topicCursors)).toEqual([
      { topic: "counter", through: 0 },
      { topic: "resets", through: 1 },
    ])
    expect(actor.hasPendingDeliveries()).toBe(true)
    actor.advanceTopic("counter", 1)
    expect(pending()).toEqual([
      ["counter", [2]],
      ["resets", [2]],
    ])
    // A restart reads the cursors back: what was delivered is not pending again.
    expect(pendingOf(new ActorCore(Tagged, runtime))).toEqual(pending())
    actor.advanceTopic("resets", 2)
    actor.advanceTopic("counter", 2)
    expect(pending()).toEqual([])
    expect(actor.hasPendingDeliveries()).toBe(false)
    // A stretch with nothing routed to a topic is passed over: its cursor moves past it.
    actor.command({ command: { type: "Increment", by: 2 } })
    expect(pending()).toEqual([
      ["counter", [3]],
      ["resets", []],
    ])
  })
})

describe("snapshots bound to the chain", () => {
  // Snapshots every 3 events, so short runs have several.
  const Snappy = { ...Counter, snapshotEvery: 3 }
  const hostSnappy = () => {
    const store = makeMemoryEventStore()
    const runtime = () => ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(store), sequentialIds("s-")))
    return { store, actor: new ActorCore(Snappy, runtime()), restart: () => new ActorCore(Snappy, runtime()) }
  }
  const tamperings = fc.constantFrom("state", "state and its hash", "head hash", "seq")
  const commandLists = fc.array(counterCommand, { minLength: 3, maxLength: 30 })
  const history = <S>(actor: ActorCore<S>) =>
    Array.from({ length: actor.currentVersion + 1 }, (_, at) => actor.readState({ at }))

  it("a tampered snapshot is reported by verify and never changes state, time travel or recovery", () => {
    fc.assert(
      fc.property(commandLists, fc.nat(), tamperings, (commands, pick, how) => {
        const { store, actor, restart } = hostSnappy()
        for (const command of commands) actor.command({ command })
        fc.pre(store.snapshots.length > 0)
        const honest = history(actor)
        expect(actor.verify()).toMatchObject({ ok: true, snapshots: store.snapshots.length })
        const index = pick % store.snapshots.length
        const original = store.snapshots[index]!
        const forged = canonicalJson({ value: JSON.parse(original.stateJson).value + 1 })
        store.snapshots[index] =
          how === "state"
            ? { ...original, stateJson: forged }
            : how === "state and its hash"
              ? { ...original, stateJson: forged, stateHash: sha256(forged) }
              : how === "head hash"
                ? { ...original, headHash: sha256("elsewhere") }
                : { ...original, seq: original.seq - 1 }
        expect(actor.verify()).toMatchObject({ ok: false, snapshotSeq: store.snapshots[index]!.seq })
        if (how !== "state and its hash") {
          // Hashes that do not hold: recovery and time travel fall back to an earlier snapshot or a full fold.
          expect(history(restart())).toEqual(honest)
        }
      }),
      { ...propertyParameters({ numRuns: 150 }) },
    )
  })
})

describe("store failures are typed", () => {
  /** The in-memory store, with one operation failing as SQLite does (a StoreError) once `broken` is set. */
  const brokenHost = (operation: "append" | "read") => {
    const store = makeMemoryEventStore()
    const cause = new Error("SQLITE_FULL: database or disk is full")
    let broken = false
    const failing: EventStoreShape = {
      ...store,
      append: (events) =>
        broken && operation === "append" ? Effect.fail(new StoreError({ cause })) : store.append(events),
      read: (after, through, limit) =>
        broken && operation === "read" ? Effect.fail(new StoreError({ cause })) : store.read(after, through, limit),
    }
    const runtime = ManagedRuntime.make(Layer.mergeAll(Layer.succeed(EventStore, failing), sequentialIds("f-")))
    return { store, cause, actor: new ActorCore(Counter, runtime), breakIt: () => void (broken = true) }
  }

  it("a failed append rolls the whole command back: RolledBack, nothing appended, the idempotency key unused", () => {
    const { store, cause, actor, breakIt } = brokenHost("append")
    expect(actor.command(increment(1)).ok).toBe(true)
    breakIt()
    const logged = vi.spyOn(console, "error").mockImplementation(() => {})
    try {
      const reply = actor.command({ ...increment(5), idempotencyKey: "k-1" })
      expect(reply).toEqual({ ok: false, error: expect.objectContaining({ _tag: "RolledBack", code: "internal" }) })
      expect(logged).toHaveBeenCalledWith(expect.stringContaining("rolled back"), cause)
    } finally {
      logged.mockRestore()
    }
    expect(actor.currentVersion).toBe(1)
    expect(actor.currentState).toEqual({ value: 1 })
    expect(Effect.runSync(store.findCommand("k-1"))).toBeUndefined()
    expect(Effect.runSync(store.read(0, 10, 10)).map((event) => event.seq)).toEqual([1])
  })

  it("a failed read answers with the storage's own error, as a throw from the store did", () => {
    const { cause, actor, breakIt } = brokenHost("read")
    actor.command(increment(1))
    breakIt()
    expect(() => actor.readEvents(0)).toThrow(cause)
    expect(() => actor.verify()).toThrow(cause)
  })
})
