/**
 * `GET /health` (README, "Observability"): `status` is "degraded" when anything the app depends
 * on is: a kind's part (the job kind's executor, the memory kind's bucket), a part that does not
 * answer within HEALTH_PART_TIMEOUT_MS, the archive bucket when it is bound and does not answer
 * `head()` in time, or a stuck outbox. What is not bound is "not_configured", which degrades
 * nothing. The edge probes only what the app binds whatever it serves (the archive); a kind's
 * bindings are its part's to probe (`probeR2Bucket` is theirs to use). Anyone may call /health,
 * so an R2 probe is reused for a few seconds, as the executor's is.
 */
import pkg from "../../package.json"
import { outboxLag } from "../actors/outbox-lag.js"
import { archiveUnavailable, type Retention } from "../actors/retention.js"
import type { Env } from "./env.js"
import type { Dependency, HealthPart, KindModule } from "./kind.js"

/** The bindings /health looks at beside the app's. */
export type HealthEnv = Env & {
  /** The archive of sealed log segments (README, "Archive"), when it is bound. */
  readonly EMBERLOG_ARCHIVE?: R2Bucket
  /** The most events one actor may be behind before the outbox is degraded; 1000 by default. */
  readonly OUTBOX_LAG_DEGRADED?: string
  /** The longest an actor may be behind with no delivery succeeding, in ms; 60000 by default. */
  readonly OUTBOX_STALL_DEGRADED_MS?: string
}

export type { Dependency }
export type DependencyStatus = Dependency["status"]

export const R2_PROBE_TIMEOUT_MS = 1_000
const R2_PROBE_TTL_MS = 5_000
/** The longest /health waits for a kind's part (the job kind's executor may take its own 10 s). */
export const HEALTH_PART_TIMEOUT_MS = 2_000
const DEFAULT_OUTBOX_LAG_DEGRADED = 1_000
export const DEFAULT_OUTBOX_STALL_DEGRADED_MS = 60_000
/** A key no object has: `head()` answers null quickly, and nothing is read. */
const PROBE_KEY = "emberlog/health-probe"

type Probe = { readonly status: Dependency["status"]; readonly latencyMs?: number; readonly error?: string }
/** By bucket: one bucket bound under two names is probed once. */
const r2Probes = new WeakMap<R2Bucket, { readonly at: number; readonly probe: Promise<Probe> }>()

const within = <A>(ms: number, work: Promise<A>, late: () => A): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<A>((resolve) => {
    timer = setTimeout(() => resolve(late()), ms)
  })
  return Promise.race([work, timedOut]).finally(() => clearTimeout(timer))
}

const probeBucket = (binding: string, bucket: R2Bucket): Promise<Probe> => {
  const cached = r2Probes.get(bucket)
  if (cached !== undefined && Date.now() - cached.at < R2_PROBE_TTL_MS) return cached.probe
  const started = performance.now()
  const latency = () => Math.round((performance.now() - started) * 100) / 100
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
  const probe = within(R2_PROBE_TIMEOUT_MS, answered, (): Probe => ({
    status: "degraded",
    error: `head() did not answer within ${R2_PROBE_TIMEOUT_MS} ms`,
  }))
  r2Probes.set(bucket, { at: Date.now(), probe })
  return probe
}

/**
 * The R2 bucket bound as `binding` in `env`, as a /health dependency: "not_configured" when it is
 * not bound, "degraded" when its `head()` of a missing key fails or takes over R2_PROBE_TIMEOUT_MS;
 * a probe is reused for R2_PROBE_TTL_MS. For a kind's health part (the memory kind's bucket).
 */
export const probeR2Bucket = async (env: Env, binding: string): Promise<Dependency> => {
  const bucket = (env as Record<string, unknown>)[binding] as R2Bucket | undefined
  return bucket === undefined
    ? { status: "not_configured", binding }
    : { binding, ...(await probeBucket(binding, bucket)) }
}

const threshold = (configured: string | undefined, fallback: number) => {
  const value = Number(configured)
  return configured !== undefined && Number.isFinite(value) && value >= 0 ? value : fallback
}

type KindHealth = { readonly kind: string; readonly health: NonNullable<KindModule["health"]> }

/** A kind's part, or its lateness: a part that does not answer in time is the kind's degraded dependency. */
const partOf = ({ kind, health }: KindHealth, env: Env): Promise<HealthPart> =>
  within(
    HEALTH_PART_TIMEOUT_MS,
    health(env).catch((error): HealthPart => {
      console.warn(`emberlog: /health: the ${kind} kind's part failed`, error)
      return { healthy: false, report: {}, dependencies: { [kind]: { status: "degraded", error: "its check failed" } } }
    }),
    () => ({
      healthy: false,
      report: {},
      dependencies: { [kind]: { status: "degraded", error: `no answer within ${HEALTH_PART_TIMEOUT_MS} ms` } },
    }),
  )

/** The /health body: the fields it has always had (a kind's part's report among them), then the dependencies. */
export const healthReport = async (
  env: HealthEnv,
  kindParts: ReadonlyArray<KindHealth>,
  retained: ReadonlyArray<{ readonly kind: string; readonly retention?: Retention }> = [],
) => {
  const [parts, archive] = await Promise.all([
    Promise.all(kindParts.map((part) => partOf(part, env))),
    // The archive is the app's whatever kinds it serves: probed only where it is bound.
    env.EMBERLOG_ARCHIVE === undefined ? undefined : probeR2Bucket(env, "EMBERLOG_ARCHIVE"),
  ])
  const dependencies: Record<string, Dependency> = {}
  for (const { healthy, report, dependencies: own } of parts) {
    // A part's report fields (`executor: {name, healthy, latencyMs}`) are dependencies of its status.
    for (const [name, value] of Object.entries(report)) {
      const fields = typeof value === "object" && value !== null ? value : { value }
      dependencies[name] = { ...fields, status: healthy ? "ok" : "degraded" }
    }
    Object.assign(dependencies, own)
  }
  if (archive !== undefined) dependencies.archive = archive
  else {
    // Kinds that archive with nowhere to archive to keep every event: their objects fill up.
    const lacking = archiveUnavailable(env, retained)
    if (lacking.length > 0)
      dependencies.archive = {
        status: "degraded",
        error: `the kinds ${lacking.join(", ")} have a retention but EMBERLOG_ARCHIVE is not bound: their actors keep every event`,
      }
  }
  const lag = outboxLag()
  const degradedAbove = threshold(env.OUTBOX_LAG_DEGRADED, DEFAULT_OUTBOX_LAG_DEGRADED)
  const stalledAbove = threshold(env.OUTBOX_STALL_DEGRADED_MS, DEFAULT_OUTBOX_STALL_DEGRADED_MS)
  const stuck = lag.maxBehind > degradedAbove || lag.stalledMs > stalledAbove
  const outbox = { status: stuck ? "degraded" : "ok", ...lag, degradedAbove, stalledAboveMs: stalledAbove }
  const degraded = stuck || Object.values(dependencies).some((d) => d.status === "degraded")
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
