import { createApp } from "./app.js"

export { McpSession } from "./mcp/session-object.js"

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

export default createApp()
