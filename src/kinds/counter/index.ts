/** The counter kind: the entity alone; the totals of a tenant's counters are a projection of its topic. */
import { defineKind } from "../../worker.js"
import { Counter } from "./entity.js"

/**
 * A busy counter's history is mostly small, old increments: past 10,000 live events the oldest
 * go to R2 in segments (when EMBERLOG_ARCHIVE is bound), and archives older than ten years are deleted.
 */
export const counter = defineKind({
  entity: Counter,
  retention: { archiveAfterEvents: 10_000, deleteArchivedAfterDays: 3650 },
})

export { counterTotals } from "./totals.js"
