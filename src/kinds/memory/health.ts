/**
 * The memory kind's part of /health: its R2 bucket (content over the inline size lives there)
 * probed with `head()`, and whether Workers AI is bound for semantic search (only looked for: a
 * model call costs money, and /health is public). Unbound, each is "not_configured".
 */
import { probeR2Bucket, type Dependency, type Env, type HealthPart } from "../../worker.js"
import type { MemoryEnv } from "./store.js"

export const memoryHealth = async (env: Env): Promise<HealthPart> => {
  const memoryBucket = await probeR2Bucket(env, "MEMORY_BUCKET")
  const ai: Dependency = { status: (env as MemoryEnv).AI === undefined ? "not_configured" : "ok", binding: "AI" }
  return { healthy: memoryBucket.status !== "degraded", report: {}, dependencies: { memoryBucket, ai } }
}
