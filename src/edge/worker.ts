// This repository's Worker (until the factory): one actor class hosting the six kinds, one
// topic class with the counter totals, the MCP session class, and the app.
import { actorHostClass } from "../actors/durable-actor.js"
import { topicClass } from "../actors/topic.js"
import { counterTotals } from "../kinds/counter/totals.js"
import { entities } from "../kinds/entities.js"
import { jobReactions } from "../kinds/job/reactions.js"
import { memoryStore } from "../kinds/memory/store.js"
import { presence } from "../kinds/room/presence.js"
import { executorFor, type ExecutorSettings } from "../infra/executors.js"
import { createApp } from "./app.js"

export { McpSession as EmberlogMcpSession } from "./mcp/session-object.js"

export const EmberlogActor = actorHostClass([
  { entity: entities.counter },
  { entity: entities.document },
  { entity: entities.room, capabilities: [presence] },
  { entity: entities.session },
  { entity: entities.job, capabilities: [jobReactions((env) => executorFor(env as ExecutorSettings))] },
  { entity: entities.memory, capabilities: [memoryStore] },
])

export const EmberlogTopic = topicClass([counterTotals])

export default createApp()
