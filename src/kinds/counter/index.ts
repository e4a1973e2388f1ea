/** The counter kind: the entity alone (its totals projection is fed by its topic). */
import { Counter } from "../../domain/counter.js"
import { defineKind } from "../../worker.js"

export const counter = defineKind({
  entity: Counter,
  capabilities: [],
})

/** The projection of every counter of a tenant, served at /v1/projections/counter-totals. */
export const counterTotals = { name: "counter-totals" } as const
