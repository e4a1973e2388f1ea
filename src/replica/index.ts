// `emberlog/replica`: keeping a copy of actors' logs elsewhere, fed by the queue the app's `replica`
// option sends them to (README, "Replicas (Cloudflare Queues)"). Node-safe: no Cloudflare module is loaded.
import { stubOf } from "../actors/stubs.js"
import { actorName } from "../core/names.js"
import type { ReplicaSource } from "../core/replica.js"
import type { ActorReply, WireEvent } from "../core/wire.js"
import type { FetchEvents } from "./consumer.js"

export {
  parseReplicaMessage,
  replicaConsumer,
  type FetchEvents,
  type ReplicaBatchReport,
  type ReplicaConsumerOptions,
  type ReplicaQueueMessage,
  type ReplicaStore,
} from "./consumer.js"
export type { ReplicaMessage, ReplicaOptions, ReplicaSource } from "../core/replica.js"

/** The actor RPC `actorEventSource` reads with (EmberlogActor's `readEvents`). */
interface EventReader {
  readEvents(after: number, limit: number): ActorReply<{ readonly events: ReadonlyArray<WireEvent> }>
}

/**
 * `fetchEvents` for a consumer in the same account as the app: RPC to the actors themselves, through a
 * Durable Object binding to the app's `EmberlogActor` class (`script_name` = the app's Worker).
 */
export const actorEventSource =
  (actors: DurableObjectNamespace, limit = 1000): FetchEvents =>
  async (source: ReplicaSource, after: number) => {
    const reply = await stubOf<EventReader>(actors, actorName(source.tenant, source.kind, source.id)).readEvents(
      after,
      limit,
    )
    if (!reply.ok) throw new Error(`reading ${source.kind}/${source.id} failed: ${reply.error.message}`)
    return reply.value.events
  }
