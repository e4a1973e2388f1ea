// Paging by bytes as well as by count, at the shared mechanism (ActorCore.readEvents):
// whatever the sizes of the events, a page holds at least one event, at most `limit`, and
// no more than PAGE_BYTES of JSON beyond its first event; `next` is its last seq, so
// following it from any start returns every later event exactly once, in order.
import { Layer, ManagedRuntime } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ActorCore } from "../../src/actors/actor-core.js"
import { Counter } from "../../src/kinds/counter/entity.js"
import { PAGE_BYTES, takeWithinBudget, jsonBytes, utf8Length } from "../../src/domain/json-size.js"
import { sequentialIds } from "../../src/infra/ids.js"
import { MemoryEventStore, makeMemoryEventStore } from "../../src/infra/memory-event-store.js"
import { propertyParameters } from "../../src/testing/index.js"

const actorWith = (reasonSizes: ReadonlyArray<number>) => {
  const runtime = ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(makeMemoryEventStore()), sequentialIds("cmd-")))
  const actor = new ActorCore(Counter, runtime)
  for (const [i, size] of reasonSizes.entries()) {
    const reply = actor.command({ command: { type: "Increment", by: 1, reason: `${i}:${"é".repeat(size)}` } })
    expect(reply.ok).toBe(true)
  }
  return actor
}

describe("paging by bytes", () => {
  it("counts UTF-8 bytes as TextEncoder does, and JSON as JSON.stringify writes it", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.jsonValue(), (text, value) => {
        expect(utf8Length(text)).toBe(new TextEncoder().encode(text).byteLength)
        expect(jsonBytes(value)).toBe(new TextEncoder().encode(JSON.stringify(value)).byteLength)
      }),
      propertyParameters({ numRuns: 300 }),
    )
  }, 60_000)

  it("takes at least one item, and only what fits the budget after that", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 50 })), fc.nat({ max: 120 }), (sizes, budget) => {
        const taken = takeWithinBudget(sizes, budget, (size) => size)
        expect(taken).toEqual(sizes.slice(0, taken.length))
        const count = taken.length
        const used = sizes.slice(0, count).reduce((sum, size) => sum + size, 0)
        expect(count).toBe(sizes.length === 0 ? 0 : Math.max(1, count))
        if (count > 1) expect(used).toBeLessThanOrEqual(budget)
        if (count < sizes.length) expect(used + sizes[count]!).toBeGreaterThan(budget)
      }),
      propertyParameters({ numRuns: 300 }),
    )
  }, 60_000)

  it("pages any log completely and exactly once, each page within the byte budget (random sizes)", () => {
    // Reasons of a few bytes up to just under the 2 MB event row limit ("é" is 2 bytes), so pages end by count or by bytes.
    const size = fc.oneof(
      { weight: 3, arbitrary: fc.nat({ max: 40 }) },
      { weight: 1, arbitrary: fc.integer({ min: 100_000, max: 995_000 }) },
    )
    const cases = fc.record({
      sizes: fc.array(size, { minLength: 1, maxLength: 16 }),
      limit: fc.integer({ min: 1, max: 20 }),
      start: fc.nat(),
    })
    fc.assert(
      fc.property(cases, ({ sizes, limit, start }) => {
        const actor = actorWith(sizes)
        const after = start % (sizes.length + 1)
        const seen: Array<number> = []
        for (let cursor: number | null = after; cursor !== null;) {
          const reply = actor.readEvents(cursor, limit)
          if (!reply.ok) throw new Error(reply.error.message)
          const { events, next } = reply.value
          if (cursor < sizes.length) expect(events.length).toBeGreaterThanOrEqual(1)
          expect(events.length).toBeLessThanOrEqual(limit)
          if (events.length > 1) expect(jsonBytes(events)).toBeLessThanOrEqual(PAGE_BYTES)
          const last = events[events.length - 1]?.seq
          expect(next).toBe(last !== undefined && last < sizes.length ? last : null)
          seen.push(...events.map((event) => event.seq))
          cursor = next
        }
        expect(seen).toEqual(Array.from({ length: sizes.length - after }, (_, i) => after + i + 1))
      }),
      propertyParameters({ numRuns: 100 }),
    )
  }, 120_000)
})
