/**
 * The job executor port: what the job engine asks of an executor, whichever runs it (the
 * local one in executors.ts, the OpenHands service in openhands.ts). Adapters import it
 * from here, so choosing among them (executorFor) does not make them import each other.
 */
import type { Effect } from "effect"

export class ExecutorFailure {
  readonly _tag = "ExecutorFailure"
  constructor(
    readonly message: string,
    readonly retryable: boolean,
  ) {}
}

export interface JobExecutorShape {
  readonly name: string
  /** A cheap readiness probe for /health. */
  readonly healthy: Effect.Effect<boolean>
  readonly run: (
    task: string,
    input: unknown,
    report: (percent: number, message: string) => void,
  ) => Effect.Effect<unknown, ExecutorFailure>
}
