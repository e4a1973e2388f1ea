/** The memory kind: the entity, its content store and search (the host's side), search routes, MCP tools and its /health part. */
import { defineKind } from "../../worker.js"
import { Memory } from "./entity.js"
import { memoryHealth } from "./health.js"
import { memoryRoutes } from "./routes.js"
import { memoryStore } from "./store.js"
import { memoryTools } from "./tools.js"

/** Memory commands carry content up to 24 MiB (larger than a SQLite row: it goes to R2). */
export const MAX_MEMORY_BODY_BYTES = 25 * 1024 * 1024

export const memory = defineKind({
  entity: Memory,
  capabilities: [memoryStore],
  routes: memoryRoutes,
  tools: memoryTools,
  health: memoryHealth,
  commandBodyBytes: MAX_MEMORY_BODY_BYTES,
})
