// An executor's result the job cannot store (too deep, too large) fails the attempt for good,
// with the reason, instead of leaving it running until it times out and is retried.
import { Effect, Layer, ManagedRuntime } from "effect"
import { describe, expect, it } from "vitest"
import { ActorCore } from "../../src/actors/actor-core.js"
import type { ActorFailure, ActorReply, CommandOutcome } from "../../src/core/wire.js"
import { jobEngine } from "../../src/kinds/job/reactions.js"
import { Job, type JobState } from "../../src/kinds/job/entity.js"
import { sequentialIds } from "../../src/infra/ids.js"
import { makeMemoryEventStore, MemoryEventStore } from "../../src/infra/memory-event-store.js"

const startedJob = (result: unknown, failNextComplete?: ActorFailure) => {
  const runtime = ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(makeMemoryEventStore()), sequentialIds("j-")))
  const actor = new ActorCore(Job, runtime)
  const input = { description: "GET /users" }
  expect(actor.command({ command: { type: "Submit", task: "generate", input, maxAttempts: 3 } }).ok).toBe(true)
  const tick = actor.command({ command: { type: "Tick" }, internal: true })
  const started = tick.ok ? tick.value.events.find((event) => event.type === "Started") : undefined
  expect(started).toBeDefined()
  const executor = { name: "fixed", healthy: Effect.succeed(true), run: () => Effect.succeed(result) }
  const context = {
    env: {},
    state: () => actor.currentState,
    command: (command: unknown): ActorReply<CommandOutcome> => {
      if (failNextComplete !== undefined && (command as { type: string }).type === "Complete") {
        const error = failNextComplete
        failNextComplete = undefined
        return { ok: false, error }
      }
      return actor.command({ command, principal: "system", internal: true })
    },
  }
  return { actor, run: () => jobEngine(() => executor)(started!, context)! }
}

describe("the job engine", () => {
  it("fails an attempt, not retryable, when the job refuses to store its result", async () => {
    let deep: unknown = 1
    for (let i = 0; i < 3_000; i++) deep = [deep]
    const { actor, run } = startedJob(deep)
    await run()
    const state = actor.currentState as JobState
    expect(state.status).toBe("failed")
    expect(state.error).toMatch(/too_deep/)
    expect(state.attempts).toBe(1)
  })

  it("retries an attempt whose result could not be stored for a passing reason (rolled back)", async () => {
    const rolledBack: ActorFailure = { _tag: "RolledBack", code: "internal", message: "rolled back" }
    const { actor, run } = startedJob({ code: "ok" }, rolledBack)
    await run()
    const state = actor.currentState as JobState
    expect(state.status).not.toBe("failed")
    expect(state.attempts).toBe(1)
    expect(state.error).toMatch(/rolled back/)
  })

  it("completes with a result it can store", async () => {
    const { actor, run } = startedJob({ code: "ok" })
    await run()
    expect(actor.currentState).toMatchObject({ status: "completed", result: { code: "ok" } })
  })
})
