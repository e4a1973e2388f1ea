/**
 * The `openhands` executor: runs jobs on an external agent service over HTTP with
 * effect's HttpClient. Each request has a timeout; network errors, timeouts and 5xx
 * are retried with exponential backoff; progress is polled and reported. A malformed
 * answer or a job the service says failed is a failure (retryable only when transient).
 *
 * The service contract this adapter speaks:
 *   POST {OPENHANDS_API_URL}/api/jobs {task, input} → {id}
 *   GET  {OPENHANDS_API_URL}/api/jobs/{id} → {status: queued|running|completed|failed, progress?, message?, result?, error?}
 *   GET  {OPENHANDS_API_URL}/health → 2xx when ready
 * with `Authorization: Bearer {OPENHANDS_API_KEY}` when a key is configured.
 */
import { Duration, Effect, Schedule, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "effect/http"
import { ExecutorFailure, type JobExecutorShape } from "./job-executor.js"

export interface OpenHandsConfig {
  readonly url: string
  readonly apiKey?: string
  readonly requestTimeoutMs?: number
  readonly pollIntervalMs?: number
  readonly retries?: number
}

const Submitted = Schema.Struct({ id: Schema.String })
const JobStatus = Schema.Struct({
  status: Schema.Literals(["queued", "running", "completed", "failed"]),
  progress: Schema.optionalKey(Schema.Number),
  message: Schema.optionalKey(Schema.String),
  result: Schema.optionalKey(Schema.Unknown),
  error: Schema.optionalKey(Schema.String),
})

export const makeOpenHandsExecutor = (config: OpenHandsConfig): JobExecutorShape => {
  const base = config.url.replace(/\/+$/, "")
  const timeout = Duration.millis(config.requestTimeoutMs ?? 10_000)
  const pollInterval = Duration.millis(config.pollIntervalMs ?? 1_000)

  const withClient = <A>(use: (client: HttpClient.HttpClient) => Effect.Effect<A, ExecutorFailure>) =>
    Effect.gen(function* () {
      const client = (yield* HttpClient.HttpClient).pipe(
        HttpClient.mapRequest((request) =>
          config.apiKey ? HttpClientRequest.bearerToken(request, config.apiKey) : request,
        ),
        HttpClient.filterStatusOk,
        HttpClient.transformResponse(Effect.timeout(timeout)),
        HttpClient.retryTransient({ schedule: Schedule.exponential(Duration.millis(200)), times: config.retries ?? 3 }),
      )
      return yield* use(client as unknown as HttpClient.HttpClient)
    }).pipe(Effect.provide(FetchHttpClient.layer))

  /** Transient trouble (network, timeout, 5xx after retries) may pass; a malformed answer is a contract breach. */
  const failure = (what: string) => (error: unknown) =>
    new ExecutorFailure(
      `${what}: ${error instanceof Error ? error.message : String(error)}`,
      !(
        typeof error === "object" &&
        error !== null &&
        "_tag" in error &&
        String((error as { _tag: string })._tag).includes("Schema")
      ),
    )

  return {
    name: "openhands",
    healthy: withClient((client) =>
      client.get(`${base}/health`).pipe(Effect.as(true), Effect.mapError(failure("health"))),
    ).pipe(Effect.orElseSucceed(() => false)),
    run: (task, input, report) =>
      withClient((client) =>
        Effect.gen(function* () {
          const request = HttpClientRequest.post(`${base}/api/jobs`).pipe(
            HttpClientRequest.bodyJsonUnsafe({ task, input }),
          )
          const { id } = yield* client
            .execute(request)
            .pipe(
              Effect.flatMap(HttpClientResponse.schemaBodyJson(Submitted)),
              Effect.mapError(failure("submitting the job")),
            )
          for (;;) {
            const status = yield* client
              .get(`${base}/api/jobs/${encodeURIComponent(id)}`)
              .pipe(
                Effect.flatMap(HttpClientResponse.schemaBodyJson(JobStatus)),
                Effect.mapError(failure("polling the job")),
              )
            if (status.progress !== undefined)
              report(Math.max(0, Math.min(100, Math.round(status.progress))), status.message ?? status.status)
            if (status.status === "completed") return status.result ?? null
            if (status.status === "failed")
              return yield* Effect.fail(new ExecutorFailure(status.error ?? "the service reported a failure", false))
            yield* Effect.sleep(pollInterval)
          }
        }),
      ),
  }
}
