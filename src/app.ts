// This repository's Worker: the six built-in kinds and the counters' totals, built as any app is.
import { counter, counterTotals, document, job, memory, room, session } from "./kinds/index.js"
import { createApp, kindRegistry, mcpSessionClass } from "./worker.js"

const kinds = [counter, document, room, session, job, memory]

export const app = createApp({ kinds, projections: [counterTotals] })
export const McpSession = mcpSessionClass(kindRegistry(kinds))
