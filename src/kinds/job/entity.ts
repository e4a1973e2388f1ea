/**
 * A long-running AI job as an actor. Users submit and cancel; the engine (the actor's
 * alarm, never the submitting request) starts attempts, reports progress and records the
 * outcome, retrying retryable failures with exponential backoff up to `maxAttempts`.
 * `decide` enforces the state machine: pending → running → completed | failed | cancelled,
 * retries only from a retryable failure, nothing after a terminal state. An attempt
 * that never reports back (its executor crashed) times out on a later tick and counts as
 * a retryable failure, so a job is never lost and never completes twice.
 */
import { Clock, Effect, Schema } from "effect"
import { Entity, NonNegativeSafeInt, reject, tagged } from "../../index.js"

/** How long an attempt may run before it counts as lost; a Submit may choose 1 s to 15 min. */
export const ATTEMPT_TIMEOUT_MS = 60_000
export const RETRY_BASE_MS = 1_000
export const MAX_DESCRIPTION = 10_000

export const GenerateInput = Schema.Struct({
  description: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_DESCRIPTION))),
})
export const AnalyzeInput = Schema.Struct({
  specType: Schema.Literal("openapi"),
  spec: Schema.Union([Schema.String, Schema.Record(Schema.String, Schema.Unknown)]),
})
const Task = Schema.Literals(["analyze", "generate"])
const Attempt = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1)))
const Percent = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(100)))

export const JobState = Schema.Struct({
  status: Schema.Literals(["new", "pending", "running", "completed", "failed", "cancelled"]),
  task: Schema.String,
  input: Schema.Unknown,
  attempts: NonNegativeSafeInt,
  maxAttempts: NonNegativeSafeInt,
  timeoutMs: NonNegativeSafeInt,
  progress: Schema.Struct({ percent: NonNegativeSafeInt, message: Schema.String }),
  result: Schema.optionalKey(Schema.Unknown),
  error: Schema.optionalKey(Schema.String),
  /** When the engine should next look at the job (start, retry, or time an attempt out). */
  dueAt: Schema.optionalKey(NonNegativeSafeInt),
})
export type JobState = typeof JobState.Type

export const SubmitJob = tagged("Submit", {
  task: Task,
  input: Schema.Union([GenerateInput, AnalyzeInput]),
  maxAttempts: Schema.optionalKey(
    Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(10))),
  ),
  timeoutMs: Schema.optionalKey(
    Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1_000), Schema.isLessThanOrEqualTo(15 * 60_000))),
  ),
})
/** Sent by the engine's alarm: starts a due attempt, or fails one that never reported back. */
export const TickJob = tagged("Tick", {})
export const ReportProgress = tagged("Progress", { attempt: Attempt, percent: Percent, message: Schema.String })
export const CompleteJob = tagged("Complete", { attempt: Attempt, result: Schema.Unknown })
export const FailJob = tagged("Fail", { attempt: Attempt, error: Schema.String, retryable: Schema.Boolean })
export const CancelJob = tagged("Cancel", {})
export const JobCommand = Schema.Union([SubmitJob, TickJob, ReportProgress, CompleteJob, FailJob, CancelJob])
export type JobCommand = typeof JobCommand.Type

export const JobSubmitted = tagged("Submitted", {
  task: Task,
  input: Schema.Unknown,
  maxAttempts: NonNegativeSafeInt,
  timeoutMs: NonNegativeSafeInt,
  at: NonNegativeSafeInt,
})
export const JobStarted = tagged("Started", { attempt: Attempt, at: NonNegativeSafeInt })
export const JobProgressed = tagged("Progressed", { attempt: Attempt, percent: Percent, message: Schema.String })
export const JobCompleted = tagged("Completed", { attempt: Attempt, result: Schema.Unknown })
export const JobFailed = tagged("Failed", { attempt: Attempt, error: Schema.String, retryable: Schema.Boolean })
export const JobRetried = tagged("Retried", { attempt: Attempt, at: NonNegativeSafeInt })
export const JobCancelled = tagged("Cancelled", {})
export const JobEvent = Schema.Union([
  JobSubmitted,
  JobStarted,
  JobProgressed,
  JobCompleted,
  JobFailed,
  JobRetried,
  JobCancelled,
])
export type JobEvent = typeof JobEvent.Type

export const initialJob: JobState = {
  status: "new",
  task: "",
  input: null,
  attempts: 0,
  maxAttempts: 0,
  timeoutMs: ATTEMPT_TIMEOUT_MS,
  progress: { percent: 0, message: "" },
}

const TERMINAL = new Set(["completed", "failed", "cancelled"])

export const retryDelay = (attempt: number) => RETRY_BASE_MS * 2 ** (attempt - 1)

const failure = (
  state: JobState,
  attempt: number,
  error: string,
  retryable: boolean,
  now: number,
): ReadonlyArray<JobEvent> => [
  { type: "Failed", attempt, error, retryable },
  ...(retryable && attempt < state.maxAttempts
    ? [{ type: "Retried", attempt: attempt + 1, at: now + retryDelay(attempt) } as const]
    : []),
]

const decide = (state: JobState, command: JobCommand) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (command.type === "Submit") {
      if (state.status !== "new")
        return yield* reject("already_submitted", `The job was already submitted (${state.status})`)
      if ((command.task === "generate") !== Object.hasOwn(command.input, "description")) {
        return yield* reject("invalid_input", `The input does not fit a ${command.task} task`)
      }
      return [
        {
          type: "Submitted",
          task: command.task,
          input: command.input,
          maxAttempts: command.maxAttempts ?? 3,
          timeoutMs: command.timeoutMs ?? ATTEMPT_TIMEOUT_MS,
          at: now,
        } as const,
      ]
    }
    if (state.status === "new") return yield* reject("not_submitted", "No job was submitted under this id")
    if (TERMINAL.has(state.status)) {
      return command.type === "Tick" ? [] : yield* reject("job_finished", `The job is already ${state.status}`)
    }
    const current = state.status === "running" ? state.attempts : undefined
    switch (command.type) {
      case "Tick":
        if (state.dueAt === undefined || now < state.dueAt) return []
        return state.status === "pending"
          ? [{ type: "Started", attempt: state.attempts + 1, at: now } as const]
          : failure(state, state.attempts, `attempt ${state.attempts} timed out`, true, now)
      case "Cancel":
        return [{ type: "Cancelled" } as const]
      case "Progress":
      case "Complete":
      case "Fail":
        if (command.attempt !== current) {
          return yield* reject(
            "stale_attempt",
            `Attempt ${command.attempt} is not the running attempt (${current ?? "none"})`,
          )
        }
        if (command.type === "Progress")
          return [
            {
              type: "Progressed",
              attempt: command.attempt,
              percent: command.percent,
              message: command.message,
            } as const,
          ]
        if (command.type === "Complete")
          return [{ type: "Completed", attempt: command.attempt, result: command.result } as const]
        return failure(state, command.attempt, command.error, command.retryable, now)
      default:
        return command satisfies never
    }
  })

const evolve = (state: JobState, event: JobEvent): JobState => {
  switch (event.type) {
    case "Submitted":
      return {
        ...state,
        status: "pending",
        task: event.task,
        input: event.input,
        maxAttempts: event.maxAttempts,
        timeoutMs: event.timeoutMs,
        dueAt: event.at,
      }
    case "Started":
      return {
        ...state,
        status: "running",
        attempts: event.attempt,
        progress: { percent: 0, message: "started" },
        dueAt: event.at + state.timeoutMs,
      }
    case "Progressed":
      return { ...state, progress: { percent: event.percent, message: event.message } }
    case "Completed": {
      const { dueAt: _due, error: _error, ...rest } = state
      return { ...rest, status: "completed", result: event.result, progress: { percent: 100, message: "completed" } }
    }
    case "Failed": {
      const { dueAt: _due, ...rest } = state
      return { ...rest, status: "failed", error: event.error }
    }
    case "Retried":
      return { ...state, status: "pending", dueAt: event.at }
    case "Cancelled": {
      const { dueAt: _due, ...rest } = state
      return { ...rest, status: "cancelled" }
    }
    default:
      return event satisfies never
  }
}

/** Every job event goes to the job topic and to `jobs` (the kind module lists it for the inspector from here). */
export const JOB_TOPICS: ReadonlyArray<string> = ["job", "jobs"]

export const Job = Entity.make({
  kind: "job",
  state: JobState,
  initial: initialJob,
  commands: JobCommand,
  events: JobEvent,
  decide,
  evolve,
  topics: () => JOB_TOPICS,
  internalCommands: ["Tick", "Progress", "Complete", "Fail"],
  timer: {
    dueAt: (state: JobState) => (TERMINAL.has(state.status) ? undefined : state.dueAt),
    command: { type: "Tick" },
  },
})
