/**
 * `GET /health` (README, "Observability"): `status` is "degraded" when anything the app depends
 * on is: a kind's part (the job kind's executor), an R2 bucket the app uses that is bound but does
 * not answer `head()` in time, or an outbox backlog above OUTBOX_LAG_DEGRADED events. What is not
 * bound is "not_configured", which degrades nothing. Workers AI is only looked for (a model call
 * costs money and /health is public). Anyone may call /health, so an R2 probe is reused for a few
 * seconds, as the executor's is.
 */
import pkg from "../../package.json"
import { outboxLag } from "../actors/outbox-lag.js"
import type { Env } from "./env.js"
import type { HealthPart } from "./kind.js"

/** The bindings /health looks at beside the app's. */
export type HealthEnv = Env & {
  readonly MEMORY_BUCKET?: R2Bucket
  /** The archive of sealed log segments (README, "Archive"), when it is bound. */
  readonly EMBERLOG_ARCHIVE?: R2Bucket
  readonly AI?: unknown
  /** Undelivered events (summed over this isolate's actors) above which the outbox is degraded; 1000 by default. */
  readonly OUTBOX_LAG_DEGRADED?: string
}

export type DependencyStatus = "ok" | "degraded" | "not_configured"

export interface Dependency {
  readonly status: DependencyStatus
  readonly [field: string]: unknown
}

/** The R2 buckets /health probes: the dependency's name → its binding. */
export const R2_DEPENDENCIES = { memoryBucket: "MEMORY_BUCKET", archive: "EMBERLOG_ARCHIVE" } as const
export const R2_PROBE_TIMEOUT_MS = 1_000
export const R2_PROBE_TTL_MS = 5_000
export const DEFAULT_OUTBOX_LAG_DEGRADED = 1_000
/** A key no object has: `head()` answers null quickly, and nothing is read. */
const PROBE_KEY = "emberlog/health-probe"

interface Probe {
  readonly status: DependencyStatus
  readonly latencyMs?: number
  readonly error?: string
}
/** By bucket: one bucket bound under two names is probed once. */
const r2Probes = new WeakMap<R2Bucket, { readonly at: number; readonly probe: Promise<Probe> }>()

const probeBucket = (binding: string, bucket: R2Bucket): Promise<Probe> => {
  const cached = r2Probes.get(bucket)
  if (cached !== undefined && Date.now() - cached.at < R2_PROBE_TTL_MS) return cached.probe
  const started = performance.now()
  const latency = () => Math.round((performance.now() - started) * 100) / 100
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<Probe>((resolve) => {
    timer = setTimeout(
      () => resolve({ status: "degraded", error: `head() did not answer within ${R2_PROBE_TIMEOUT_MS} ms` }),
      R2_PROBE_TIMEOUT_MS,
    )
  })
  const answered = Promise.resolve()
    .then(() => bucket.head(PROBE_KEY))
    .then(
      (): Probe => ({ status: "ok", latencyMs: latency() }),
      // The error's text stays in the log: /health is public.
      (error): Probe => {
        console.warn(`emberlog: /health: R2 binding ${binding} failed head()`, error)
        return { status: "degraded", error: "head() failed", latencyMs: latency() }
      },
    )
  const probe = Promise.race([answered, timedOut]).finally(() => clearTimeout(timer))
  r2Probes.set(bucket, { at: Date.now(), probe })
  return probe
}

const outboxThreshold = (env: HealthEnv) => {
  const configured = Number(env.OUTBOX_LAG_DEGRADED)
  return env.OUTBOX_LAG_DEGRADED !== undefined && Number.isFinite(configured) && configured >= 0
    ? configured
    : DEFAULT_OUTBOX_LAG_DEGRADED
}

/** The /health body: the fields it has always had (a kind's part's report among them), then the dependencies. */
export const healthReport = async (env: HealthEnv, kindParts: ReadonlyArray<(env: Env) => Promise<HealthPart>>) => {
  const [parts, buckets] = await Promise.all([
    Promise.all(kindParts.map((part) => part(env))),
    Promise.all(
      Object.entries(R2_DEPENDENCIES).map(async ([name, binding]) => {
        const bucket = env[binding]
        const dependency: Dependency =
          bucket === undefined
            ? { status: "not_configured", binding }
            : { binding, ...(await probeBucket(binding, bucket)) }
        return [name, dependency] as const
      }),
    ),
  ])
  const dependencies: Record<string, Dependency> = {}
  // A kind's part reports each thing it depends on as a field (`executor: {name, healthy, latencyMs}`).
  for (const { healthy, report } of parts)
    for (const [name, value] of Object.entries(report))
      dependencies[name] = { ...(value as object), status: healthy ? "ok" : "degraded" }
  for (const [name, dependency] of buckets) dependencies[name] = dependency
  dependencies.ai = { status: env.AI === undefined ? "not_configured" : "ok", binding: "AI" }
  const lag = outboxLag()
  const degradedAbove = outboxThreshold(env)
  const outbox = { status: lag.eventsBehind > degradedAbove ? "degraded" : "ok", ...lag, degradedAbove }
  const degraded = outbox.status === "degraded" || Object.values(dependencies).some((d) => d.status === "degraded")
  return {
    status: degraded ? "degraded" : "ok",
    service: "emberlog",
    environment: env.ENVIRONMENT ?? "development",
    version: pkg.version,
    ...Object.assign({}, ...parts.map(({ report }) => report)),
    dependencies,
    outbox,
    timestamp: new Date().toISOString(),
  }
}
