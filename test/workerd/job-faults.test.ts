// The job engine under injected executor faults, hung attempts, crashes and doubled alarms:
// every job ends in exactly one terminal state, within its attempts, with no duplicate outcome.
import { abortAllDurableObjects, env, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test"
import fc from "fast-check"
import { expect, it } from "vitest"
import { executorFaults } from "../../src/kinds/job/executors.js"
import { propertyParameters } from "../../src/testing/parameters.js"
import { actorObject, freshId, get, json, send } from "./helpers.js"

type Step =
  | { kind: "alarm" }
  | { kind: "alarm-twice" }
  | { kind: "crash"; how: "abort" | "evict" }
  | { kind: "fail"; n: number }
  | { kind: "hang" }
  | { kind: "wait" }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "alarm" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "alarm-twice" as const }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("abort" as const, "evict" as const).map((how) => ({ kind: "crash" as const, how })),
  },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }).map((n) => ({ kind: "fail" as const, n })) },
  { weight: 1, arbitrary: fc.constant({ kind: "hang" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "wait" as const }) },
)

const TERMINAL = ["completed", "failed", "cancelled"]

it("every job reaches exactly one terminal state under faults, crashes and doubled alarms", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 3, maxLength: 12 }),
      fc.integer({ min: 1, max: 3 }),
      async (steps, maxAttempts) => {
        executorFaults.fail = 0
        executorFaults.hang = 0
        const jobId = freshId("fault-job")
        const stub = () => actorObject("job", jobId)
        const alarm = () => runDurableObjectAlarm(stub()).catch(() => false)
        // A short attempt timeout, so a hung attempt is recovered within the test.
        expect(
          (
            await send("job", jobId, {
              type: "Submit",
              task: "generate",
              input: { description: "GET /x" },
              maxAttempts,
              timeoutMs: 1_000,
            })
          ).status,
        ).toBe(200)
        for (const s of steps) {
          if (s.kind === "alarm") await alarm()
          else if (s.kind === "alarm-twice") await Promise.all([alarm(), alarm()])
          else if (s.kind === "crash")
            s.how === "abort" ? await abortAllDurableObjects() : await evictDurableObject(stub()).catch(() => undefined)
          else if (s.kind === "fail") executorFaults.fail = s.n
          else if (s.kind === "hang") executorFaults.hang = 1
          else await new Promise((resolve) => setTimeout(resolve, 50))
        }
        // Let the engine finish: no more faults, alarms as the platform would deliver them.
        executorFaults.fail = 0
        executorFaults.hang = 0
        let status = ""
        for (let i = 0; i < 200 && !TERMINAL.includes(status); i++) {
          await alarm()
          status = (await json(await get(`/v1/job/${jobId}`))).body.state.status
          if (!TERMINAL.includes(status)) await new Promise((resolve) => setTimeout(resolve, 25))
        }
        expect(TERMINAL).toContain(status)
        const events: Array<{ type: string; data: { attempt?: number } }> = (
          await json(await get(`/v1/job/${jobId}/events?limit=1000`))
        ).body.events
        const outcomes = events.filter((e) => e.type === "Completed" || e.type === "Cancelled" || e.type === "Failed")
        const finalFailures = outcomes.filter(
          (e) =>
            e.type === "Failed" && !events.some((r) => r.type === "Retried" && r.data.attempt === e.data.attempt! + 1),
        )
        expect(outcomes.filter((e) => e.type === "Completed").length + finalFailures.length).toBe(1)
        const started = events.filter((e) => e.type === "Started").map((e) => e.data.attempt!)
        expect(started).toEqual(started.map((_, i) => i + 1))
        expect(started.length).toBeLessThanOrEqual(maxAttempts)
        expect(events.at(-1)!.type).toMatch(/Completed|Failed/)
      },
    ),
    propertyParameters({ numRuns: 12 }),
  )
}, 120_000)
