/** The durable-stream kind: Durable Streams at /v1/stream/{path}, each stream an emberlog actor (README, "Durable Streams"). */
import { defineKind } from "../../worker.js"
import { DurableStream } from "./entity.js"
import { streamProtocol } from "./protocol.js"
import { streamRoutes } from "./routes.js"

export const durableStream = defineKind({
  entity: DurableStream,
  capabilities: [streamProtocol],
  routes: streamRoutes,
})
