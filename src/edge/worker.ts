// wrangler's main: this repository's app (src/app.ts) and the Durable Object classes it binds.
import { app } from "../app.js"

export { McpSession } from "../app.js"

export {
  CounterActor,
  CounterTotals,
  DocumentActor,
  JobActor,
  MemoryActor,
  RoomActor,
  SessionActor,
  TopicLog,
} from "../actors/kinds.js"

export default app
