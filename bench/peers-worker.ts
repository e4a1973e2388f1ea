/**
 * The peer benchmark's Worker (bench/peers.wrangler.toml): the counters of
 * bench/peers.ts behind /peer/…, apart from the main bench Worker so that the peers'
 * dependencies load only here.
 */
import { handlePeer } from "./peers.js"

export {
  ActorsPeer,
  AgentPeer,
  BarePeer,
  EmberlogDocumentPeer,
  EmberlogNoTopicsPeer,
  EmberlogPeer,
  PartyPeer,
} from "./peers.js"
import { topicClass } from "../src/actors/topic.js"

export const EmberlogTopic = topicClass()

export default {
  fetch: (request: Request, env: Record<string, DurableObjectNamespace>) => handlePeer(request, env),
}
