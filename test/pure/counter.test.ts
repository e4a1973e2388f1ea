import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { Counter, type CounterCommand } from "../../src/kinds/counter/entity.js"
import { DomainError } from "../../src/domain/entity.js"

const decide = (value: number, command: CounterCommand) => Effect.runSyncExit(Counter.decide({ value }, command))

describe("counter", () => {
  it("increments, decrements and resets", () => {
    const events = [
      ...Effect.runSync(Counter.decide({ value: 0 }, { type: "Increment", by: 5 })),
      ...Effect.runSync(Counter.decide({ value: 5 }, { type: "Decrement", by: 2 })),
    ]
    expect(Counter.replay(Counter.initial, events)).toEqual({ value: 3 })
    expect(Counter.replay({ value: 3 }, Effect.runSync(Counter.decide({ value: 3 }, { type: "Reset" })))).toEqual({
      value: 0,
    })
  })

  it("refuses a result outside the safe integer range", () => {
    for (const exit of [
      decide(Number.MAX_SAFE_INTEGER, { type: "Increment", by: 1 }),
      decide(Number.MIN_SAFE_INTEGER, { type: "Decrement", by: 1 }),
    ]) {
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      expect(error && "error" in error ? (error.error as DomainError).code : undefined).toBe("out_of_range")
    }
  })

  it("validates commands with the Schema issue path", () => {
    const bad = Counter.decodeCommand({ type: "Increment", by: 1.5 })
    expect(bad.ok).toBe(false)
    if (!bad.ok) expect(bad.error.issues[0]?.path).toEqual(["by"])
    const unknown = Counter.decodeCommand({ type: "Multiply", by: 2 })
    expect(!unknown.ok && unknown.error.issues[0]?.path).toEqual(["type"])
    expect(Counter.decodeCommand({ type: "Increment", by: 1, extra: true }).ok).toBe(false)
    expect(Counter.decodeCommand([1]).ok).toBe(false)
  })

  it("reads Incremented v1 rows as v2 with a null reason, and writes v2", () => {
    expect(Counter.currentEventVersion("Incremented")).toBe(2)
    expect(Counter.decodeEvent({ type: "Incremented", schemaVersion: 1, data: { by: 4 } })).toEqual({
      type: "Incremented",
      by: 4,
      reason: null,
    })
    expect(Counter.encodeEvent({ type: "Incremented", by: 4, reason: "r" })).toEqual({
      type: "Incremented",
      schemaVersion: 2,
      data: { by: 4, reason: "r" },
    })
    expect(() => Counter.decodeEvent({ type: "Incremented", schemaVersion: 3, data: { by: 4 } })).toThrow(
      /schema version 3/,
    )
    expect(() => Counter.decodeEvent({ type: "Incremented", schemaVersion: 1, data: { by: -1 } })).toThrow()
  })

  it("reads an event type named after an Object.prototype member as unknown", () => {
    for (const type of ["constructor", "toString", "__proto__"]) {
      expect(Counter.currentEventVersion(type)).toBe(1)
      expect(() => Counter.decodeEvent({ type, schemaVersion: 1, data: {} })).toThrow(/Unknown event type/)
    }
  })
})
