/** The durable-stream kind: Durable Streams at /v1/stream/{path}, each stream an emberlog actor (README, "Durable Streams"). */
import { SECURITY_HEADERS, defineKind } from "../../worker.js"
import { DurableStream } from "./entity.js"
import { streamProtocol } from "./protocol.js"
import { streamRoutes } from "./routes.js"

export const durableStream = defineKind({
  entity: DurableStream,
  capabilities: [streamProtocol],
  routes: streamRoutes,
  // /v1/stream/{path} is the protocol's; §10.7's headers go on all of it, the guard's refusals too.
  claims: ["stream"],
  claimHeaders: SECURITY_HEADERS,
})
