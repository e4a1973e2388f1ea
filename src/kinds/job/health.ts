/** The job kind's part of /health: whether the configured executor answers, and how fast. */
import { Effect } from "effect"
import type { Env, HealthPart } from "../../worker.js"
import { executorFor, type ExecutorSettings } from "./executors.js"
import type { JobExecutorShape } from "./job-executor.js"

/** How long /health reuses an executor's answer: anyone may call it, and an external executor costs a request. */
export const HEALTH_TTL_MS = 5_000
type Probe = { readonly healthy: boolean; readonly latencyMs: number }
const healthChecks = new WeakMap<JobExecutorShape, { readonly at: number; readonly check: Promise<Probe> }>()

/** The executor's health, probed at most once per HEALTH_TTL_MS (concurrent callers share the probe). */
const executorHealth = (executor: JobExecutorShape) => {
  const cached = healthChecks.get(executor)
  if (cached !== undefined && Date.now() - cached.at < HEALTH_TTL_MS) return cached.check
  const started = performance.now()
  const check = Effect.runPromise(executor.healthy)
    .catch(() => false)
    .then((healthy) => ({ healthy, latencyMs: Math.round((performance.now() - started) * 100) / 100 }))
  healthChecks.set(executor, { at: Date.now(), check })
  return check
}

export const jobHealth = async (env: Env): Promise<HealthPart> => {
  const executor = executorFor(env as Env & ExecutorSettings)
  const { healthy, latencyMs } = await executorHealth(executor)
  return { healthy, report: { executor: { name: executor.name, healthy, latencyMs } } }
}
