import { Effect, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Entity, tagged } from "../../src/domain/entity.js"
import { checkEntity } from "../../src/testing/index.js"

// A tally whose state schema forgets `count`, so a snapshot loses data: the harness must notice.
const Add = tagged("Add", { n: Schema.Number })
const Added = tagged("Added", { n: Schema.Number })
const lossy = Entity.make({
  kind: "lossy",
  state: Schema.Struct({ sum: Schema.Number }),
  initial: { sum: 0 },
  commands: Schema.Union([Add]),
  events: Schema.Union([Added]),
  decide: (_state, command) => Effect.succeed([{ type: "Added", n: command.n } as const]),
  evolve: (state, event) => {
    const count = (state as { count?: number }).count ?? 0
    return { sum: state.sum + event.n * (count + 1), count: count + 1 } as { sum: number }
  },
})

let calls = 0
const flaky = Entity.make({
  kind: "flaky",
  state: Schema.Struct({ sum: Schema.Number }),
  initial: { sum: 0 },
  commands: Schema.Union([Add]),
  events: Schema.Union([Added]),
  decide: (_state, command) => Effect.succeed([{ type: "Added", n: command.n + (calls++ % 2) } as const]),
  evolve: (state, event) => ({ sum: state.sum + event.n }),
})

const adds = fc.record({ type: fc.constant("Add"), n: fc.integer({ min: 1, max: 9 }) })

const failureOf = (run: () => void): string => {
  try {
    run()
  } catch (error) {
    return `${String(error)} ${String((error as Error).cause)}`
  }
  return "no failure"
}

describe("checkEntity finds broken entities", () => {
  it("a state schema that loses data on snapshot", () => {
    expect(failureOf(() => checkEntity(lossy, { commands: adds, numRuns: 50 }))).toMatch(
      /snapshot at \d+ \+ tail replay differs/,
    )
  })
  it("a decide that is not deterministic", () => {
    expect(failureOf(() => checkEntity(flaky, { commands: adds, numRuns: 50 }))).toMatch(/decide is not deterministic/)
  })
})
