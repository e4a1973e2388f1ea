// A command either commits and answers, or changes nothing: what cannot be stored (a row over
// 2 MB), snapshotted (a state over 2 MB) or sent back (a reply over the RPC cap), and input
// nested too deep to encode, is refused inside the transaction, before anything is written.
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ActorCore } from "../../src/actors/actor-core.js"
import { MAX_JSON_DEPTH, MAX_ROW_BYTES, exceedsDepth, textExceedsDepth } from "../../src/actors/limits.js"
import { utf8Length } from "../../src/domain/json-size.js"
import { Entity, SafeInt, tagged } from "../../src/domain/entity.js"
import { sequentialIds } from "../../src/infra/ids.js"
import { makeMemoryEventStore, MemoryEventStore } from "../../src/infra/memory-event-store.js"
import { propertyParameters } from "../../src/testing/parameters.js"

/** An entity whose commands say how much they emit and keep, to reach each limit on purpose. */
const Blob = Entity.make({
  kind: "blob",
  state: Schema.Struct({ emitted: SafeInt, kept: Schema.String }),
  initial: { emitted: 0, kept: "" },
  commands: Schema.Union([
    tagged("Emit", { count: SafeInt, chars: SafeInt, unit: Schema.String }),
    tagged("Keep", { chars: SafeInt }),
    tagged("Note", { payload: Schema.Unknown }),
  ]),
  events: Schema.Union([
    tagged("Emitted", { text: Schema.String }),
    tagged("Kept", { chars: SafeInt }),
    tagged("Noted", { payload: Schema.Unknown }),
  ]),
  decide: (_state, command) =>
    Effect.succeed(
      command.type === "Emit"
        ? Array(command.count).fill({ type: "Emitted" as const, text: command.unit.repeat(command.chars) })
        : command.type === "Keep"
          ? [{ type: "Kept" as const, chars: command.chars }]
          : [{ type: "Noted" as const, payload: command.payload }],
    ),
  evolve: (state, event) =>
    event.type === "Emitted"
      ? { ...state, emitted: state.emitted + 1 }
      : event.type === "Kept"
        ? { ...state, kept: state.kept + "k".repeat(event.chars) }
        : state,
  snapshotEvery: 3,
})

const host = () => {
  const store = makeMemoryEventStore()
  const runtime = () => ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(store), sequentialIds("c-")))
  return { store, actor: new ActorCore(Blob, runtime()), restart: () => new ActorCore(Blob, runtime()) }
}

const nested = (depth: number): unknown => {
  let value: unknown = 1
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { v: value }
  return value
}

const depthOf = (value: unknown): number =>
  value === null || typeof value !== "object" ? 0 : 1 + Math.max(0, ...Object.values(value as object).map(depthOf))

const refusal = (reply: ReturnType<ActorCore["command"]>) =>
  reply.ok ? undefined : { tag: reply.error._tag, code: reply.error.code }

describe("the structural guard", () => {
  it("refuses an event row over 2 MB with 413, counting UTF-8 bytes, and appends nothing", () => {
    const { actor, store } = host()
    expect(actor.command({ command: { type: "Emit", count: 1, chars: 10, unit: "a" } }).ok).toBe(true)
    // 700k × "€" is 700k UTF-16 units but 2.1 MB of UTF-8.
    expect(utf8Length("€".repeat(700_000))).toBeGreaterThan(MAX_ROW_BYTES)
    const reply = actor.command({ command: { type: "Emit", count: 1, chars: 700_000, unit: "€" } })
    expect(refusal(reply)).toEqual({ tag: "TooLarge", code: "event_too_large" })
    expect(store.rows.length).toBe(1)
    expect(actor.command({ command: { type: "Emit", count: 1, chars: 600_000, unit: "€" } }).ok).toBe(true)
    expect(actor.verify()).toMatchObject({ ok: true, events: 2 })
  })

  it("refuses a state that would not fit a snapshot row with 422, on every command, not only when one is due", () => {
    const { actor, store, restart } = host()
    expect(actor.command({ command: { type: "Keep", chars: 1_200_000 } }).ok).toBe(true)
    const reply = actor.command({ command: { type: "Keep", chars: 900_000 } })
    expect(refusal(reply)).toEqual({ tag: "Rejected", code: "state_too_large" })
    expect(store.rows.length).toBe(1)
    expect(actor.currentVersion).toBe(1)
    // Snapshots stay possible: reaching the next snapshot point works and recovery agrees.
    for (let i = 0; i < 3; i++) expect(actor.command({ command: { type: "Keep", chars: 1 } }).ok).toBe(true)
    expect(store.snapshots.map((s) => s.seq)).toEqual([3])
    expect(restart().readState()).toEqual(actor.readState())
  })

  it("refuses a reply over the 32 MiB RPC cap with 413, and appends nothing", () => {
    const { actor, store } = host()
    const reply = actor.command({ command: { type: "Emit", count: 18, chars: 1_900_000, unit: "a" } })
    expect(refusal(reply)).toEqual({ tag: "TooLarge", code: "reply_too_large" })
    expect(store.rows.length).toBe(0)
    expect(store.snapshots.length).toBe(0)
    expect(actor.command({ command: { type: "Emit", count: 15, chars: 1_900_000, unit: "a" } }).ok).toBe(true)
  })

  it("answers a committed command with the state it encoded inside the transaction", () => {
    const { actor } = host()
    const reply = actor.command({ command: { type: "Keep", chars: 3 } })
    expect(reply).toMatchObject({ ok: true, value: { version: 1, state: { emitted: 0, kept: "kkk" } } })
  })
})

describe("deep JSON", () => {
  it("refuses commands nested beyond MAX_JSON_DEPTH (3,000 and 6,000 deep too) with 400 and appends nothing", () => {
    const { actor, store } = host()
    for (const depth of [MAX_JSON_DEPTH, 3_000, 6_000]) {
      const command = { type: "Note", payload: nested(depth) }
      const reply = actor.command({ command, idempotencyKey: `deep-${depth}` })
      expect(refusal(reply)).toEqual({ tag: "InvalidInput", code: "too_deep" })
    }
    expect(store.rows.length).toBe(0)
    // The command object itself is one level: a payload one shallower fits exactly.
    expect(actor.command({ command: { type: "Note", payload: nested(MAX_JSON_DEPTH - 1) } }).ok).toBe(true)
    expect(actor.verify()).toMatchObject({ ok: true, events: 1 })
  })

  it("exceedsDepth agrees with the recursive definition of depth", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 8 }), fc.nat(80).map(nested)), fc.nat(70), (value, max) => {
        expect(exceedsDepth(value, max)).toBe(depthOf(value) > max)
      }),
      propertyParameters({ numRuns: 300 }),
    )
  })

  it("textExceedsDepth gives the same answer on the JSON text, brackets and quotes inside strings included", () => {
    const tricky = fc.string({ unit: fc.constantFrom("[", "]", "{", "}", '"', "\\", "a") })
    const inStrings = tricky.map((text) => [text, { [text]: [text] }])
    const value = fc.oneof(fc.jsonValue({ maxDepth: 8 }), fc.nat(80).map(nested), inStrings)
    fc.assert(
      fc.property(value, fc.nat(70), (json, max) => {
        expect(textExceedsDepth(JSON.stringify(json), max)).toBe(exceedsDepth(json, max))
      }),
      propertyParameters({ numRuns: 300 }),
    )
  })

  it("checks 100,000 levels without overflowing the stack", () => {
    expect(exceedsDepth(nested(100_000))).toBe(true)
    expect(textExceedsDepth("[".repeat(100_000) + "]".repeat(100_000))).toBe(true)
  })
})
