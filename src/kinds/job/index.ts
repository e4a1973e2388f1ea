/** The job kind (the AI engine): the entity, its executor's health, and the /api/* routes. */
import { defineKind } from "../../worker.js"
import { JOB_TOPICS, Job } from "./entity.js"
import { executorFor, type ExecutorSettings } from "./executors.js"
import { jobHealth } from "./health.js"
import { jobReactions } from "./reactions.js"
import { jobRoutes } from "./routes.js"

export const job = defineKind({
  entity: Job,
  // Attempts run on the actor's alarm through the executor JOB_EXECUTOR names.
  capabilities: [jobReactions((env) => executorFor(env as ExecutorSettings))],
  routes: jobRoutes,
  health: jobHealth,
  // The topics the entity publishes to (the registry lists the kind's own once).
  topics: JOB_TOPICS,
})
