/**
 * Runs a job's attempts: when an attempt starts (a `Started` event, appended by the
 * actor's alarm), the executor runs with a timeout and its progress and outcome go back
 * to the job as commands. `decide` refuses outcomes for any attempt but the running
 * one, so a late or repeated report changes nothing; an attempt that never reports
 * (its object died) is timed out by the job's own timer and retried.
 */
import { Duration, Effect } from "effect"
import type { ActorReply, CommandOutcome, WireEvent } from "../../index.js"
// Types only: the engine runs in plain Node too (its tests), so this module loads nothing of the host.
import type { Capability, Host } from "../../worker.js"
import { ExecutorFailure, type JobExecutorShape } from "./job-executor.js"
import type { JobState } from "./entity.js"

/** What a reaction sees of its job. */
export interface ReactionContext {
  /** The object's bindings and settings. */
  readonly env: unknown
  readonly state: () => unknown
  readonly command: (command: unknown) => ActorReply<CommandOutcome>
}

/** The executor gets most of the job's attempt timeout; the job's own timeout is the backstop for a dead object. */
const LATE = new Set(["stale_attempt", "job_finished"])

export const executorTimeout = (attemptTimeoutMs: number) => Math.floor(attemptTimeoutMs * 0.9)

export const jobEngine =
  (executorFor: (env: unknown) => JobExecutorShape) =>
  (event: WireEvent, job: ReactionContext): Promise<void> | undefined => {
    if (event.type !== "Started") return undefined
    const executor = executorFor(job.env)
    const attempt = event.data.attempt as number
    const { task, input, timeoutMs } = job.state() as JobState
    const limit = executorTimeout(timeoutMs)
    const report = (percent: number, message: string) =>
      void job.command({ type: "Progress", attempt, percent, message })
    return Effect.runPromise(
      executor.run(task, input, report).pipe(
        Effect.timeoutOrElse({
          duration: Duration.millis(limit),
          orElse: () =>
            Effect.fail(new ExecutorFailure(`the ${executor.name} executor timed out after ${limit} ms`, true)),
        }),
        Effect.match({
          onSuccess: (result) => {
            const completed = job.command({ type: "Complete", attempt, result })
            // A result the job cannot store (too deep, too large) would be refused again on a retry,
            // while a rolled-back or unavailable store may work next time; a late report (another
            // attempt runs, or the job ended) is refused and changes nothing.
            if (!completed.ok && !LATE.has(completed.error.code)) {
              const error = `the result was refused (${completed.error.code}): ${completed.error.message}`
              const retryable = completed.error._tag === "RolledBack" || completed.error._tag === "Unavailable"
              job.command({ type: "Fail", attempt, error, retryable })
            }
          },
          onFailure: (failure) =>
            void job.command({ type: "Fail", attempt, error: failure.message, retryable: failure.retryable }),
        }),
      ),
    )
  }

/**
 * Job reactions as a capability: work that follows a committed `Started` outside the command
 * path (the executor's I/O), fed back as commands. It runs after the append is durable; if
 * the object dies mid-way, the job's timer notices and recovers. Attempts are started by the
 * alarm (the job's timer), and the alarm waits for running ones, so the object stays alive.
 */
export const jobReactions = (executorFor: (env: unknown) => JobExecutorShape): Capability => {
  const react = jobEngine(executorFor)
  return {
    name: "reactions",
    start: (host: Host) => {
      const running = new Set<Promise<void>>()
      const context: ReactionContext = {
        env: host.env,
        state: host.state,
        command: (command) => host.commit({ command, principal: "system", internal: true }),
      }
      return {
        committed: (events: ReadonlyArray<WireEvent>) => {
          for (const event of events) {
            const reaction = react(event, context)
            if (reaction === undefined) continue
            const tracked: Promise<void> = reaction
              .catch((error) => console.error(`emberlog: reaction to ${event.type} failed`, error))
              .finally(() => running.delete(tracked))
            running.add(tracked)
          }
        },
        onAlarm: async () => {
          while (running.size > 0) await Promise.allSettled([...running])
        },
      }
    },
  }
}
