import { Clock, Effect, Exit } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ATTEMPT_TIMEOUT_MS, Job, type JobCommand, type JobEvent, type JobState } from "../../src/kinds/job/entity.js"
import { generateConnector } from "../../src/kinds/job/executors.js"
import { checkEntity, clockAt, propertyParameters } from "../../src/testing/index.js"
import { jobCommand } from "./arbitraries.js"

/** Runs commands at the given times; refused commands change nothing. */
const run = (steps: ReadonlyArray<{ command: JobCommand; at: number }>) => {
  let state: JobState = Job.initial
  const events: Array<JobEvent> = []
  for (const { command, at } of steps) {
    const exit = Effect.runSyncExit(
      Job.decide(state, command).pipe(
        Effect.provideService(
          Clock.Clock,
          clockAt(() => at),
        ),
      ),
    )
    if (Exit.isFailure(exit)) continue
    for (const event of exit.value) {
      state = Job.evolve(state, event)
      events.push(event)
    }
  }
  return { state, events }
}

describe("job", () => {
  it("passes the resilience harness", () => checkEntity(Job, { commands: jobCommand, numRuns: 300 }))

  it("reaches at most one terminal event, never exceeds maxAttempts, and nothing follows a terminal state", () => {
    const steps = fc.array(
      fc.record({ command: jobCommand, gap: fc.integer({ min: 0, max: ATTEMPT_TIMEOUT_MS * 2 }) }),
      { maxLength: 40, size: "max" },
    )
    fc.assert(
      fc.property(steps, (list) => {
        let now = 0
        const { state, events } = run(
          list.map(({ command, gap }) => ({ command: command as JobCommand, at: (now += gap) })),
        )
        const terminal = events.filter(
          (e) =>
            e.type === "Completed" ||
            e.type === "Cancelled" ||
            (e.type === "Failed" && !events.some((r) => r.type === "Retried" && r.attempt === e.attempt + 1)),
        )
        expect(terminal.length).toBeLessThanOrEqual(1)
        const lastTerminal = events.findIndex((e) => e === terminal[0])
        if (lastTerminal >= 0) expect(events.length - 1).toBe(lastTerminal)
        const started = events.filter((e) => e.type === "Started")
        expect(started.length).toBeLessThanOrEqual(Math.max(state.maxAttempts, 0))
        expect(new Set(started.map((e) => (e as { attempt: number }).attempt)).size).toBe(started.length)
      }),
      propertyParameters({ numRuns: 500 }),
    )
  })

  it("starts when due, times a silent attempt out and retries it with backoff, then gives up", () => {
    const submit: JobCommand = {
      type: "Submit",
      task: "generate",
      input: { description: "GET /users" },
      maxAttempts: 2,
    }
    const { state, events } = run([
      { command: submit, at: 1_000 },
      { command: { type: "Tick" }, at: 1_000 },
      { command: { type: "Tick" }, at: 1_000 + ATTEMPT_TIMEOUT_MS },
      { command: { type: "Tick" }, at: 1_000 + ATTEMPT_TIMEOUT_MS + 500 }, // retry not due yet
      { command: { type: "Tick" }, at: 1_000 + ATTEMPT_TIMEOUT_MS + 1_000 },
      { command: { type: "Complete", attempt: 1, result: "late" }, at: 70_000 }, // the first attempt's late report
      { command: { type: "Fail", attempt: 2, error: "down", retryable: true }, at: 80_000 },
    ])
    expect(events.map((e) => e.type)).toEqual(["Submitted", "Started", "Failed", "Retried", "Started", "Failed"])
    expect(state).toMatchObject({ status: "failed", attempts: 2, error: "down" })
  })

  it("generates a typed connector skeleton from a description, deterministically", () => {
    const description = "A pet store API: GET /pets lists pets, POST /pets adds one, GET /pets/{id} reads one."
    const first = generateConnector(description)
    expect(first.endpoints.map((e) => `${e.method} ${e.path} ${e.operationId}`)).toEqual([
      "GET /pets getPets",
      "POST /pets postPets",
      "GET /pets/{id} getPetsById",
    ])
    expect(first.code).toContain("async getPetsById(id: string): Promise<unknown>")
    expect(generateConnector(description)).toEqual(first)
  })
})
