/** The counter kind: the entity alone; the totals of a tenant's counters are a projection of its topic. */
import { defineKind } from "../../worker.js"
import { Counter } from "./entity.js"

export const counter = defineKind({ entity: Counter })

export { counterTotals } from "./totals.js"
