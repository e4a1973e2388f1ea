// This repository's Worker (wrangler.toml's main, what `npm run dev` serves): the six built-in
// kinds and the counters' totals, built as any app is.
import { counter, counterTotals, document, job, memory, room, session } from "./kinds/index.js"
import { emberlog } from "./worker.js"

const app = emberlog({
  kinds: [counter, document, room, session, job, memory],
  projections: [counterTotals],
  usage: true,
})

export const { EmberlogActor, EmberlogTopic, EmberlogMcpSession } = app.objects
export default app.handler
