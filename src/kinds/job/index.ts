/** The job kind (the AI engine): the entity, its executor's health, and the /api/* routes. */
import { Job } from "../../domain/job.js"
import { defineKind } from "../../worker.js"
import { jobHealth } from "./health.js"
import { jobRoutes } from "./routes.js"

export const job = defineKind({
  entity: Job,
  capabilities: [],
  routes: jobRoutes,
  health: jobHealth,
  // Every job also publishes to the jobs topic.
  topics: ["jobs"],
})
