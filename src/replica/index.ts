// `emberlog/replica`: keeping a copy of actors' logs elsewhere, fed by the queue the app's `replica`
// option sends them to (README, "Replicas (Cloudflare Queues)"). Node-safe: no Cloudflare module is loaded.
import { actorName } from "../core/names.js"
import type { ReplicaSource } from "../core/replica.js"
import type { ActorReply, WireEvent } from "../core/wire.js"
import type { FetchEvents } from "./consumer.js"

export {
  EMPTY_POSITION,
  parseReplicaMessage,
  replicaConsumer,
  type FetchEvents,
  type ReplicaBatchReport,
  type ReplicaConsumerOptions,
  type ReplicaPosition,
  type ReplicaQueueMessage,
  type ReplicaStore,
} from "./consumer.js"
export type { ReplicaMessage, ReplicaOptions, ReplicaSource } from "../core/replica.js"

/** The actor RPC `actorEventSource` reads with (EmberlogActor's `readEvents`). */
interface EventReader {
  readEvents(
    after: number,
    limit: number,
    asStored: boolean,
  ): Promise<ActorReply<{ readonly events: ReadonlyArray<WireEvent> }>>
}

/**
 * The part of a Durable Object namespace binding `actorEventSource` uses: structural, so this entry
 * point needs neither the host's code nor Cloudflare's global types.
 */
export interface ActorNamespace {
  getByName(name: string): unknown
}

/**
 * `fetchEvents` for a consumer in the same account as the app: RPC to the actors themselves, through a
 * Durable Object binding to the app's `EmberlogActor` class (`script_name` = the app's Worker). Events
 * come as stored (not upcast), so their hashes link to the messages'.
 */
export const actorEventSource =
  (actors: ActorNamespace, limit = 1000): FetchEvents =>
  async (source: ReplicaSource, after: number) => {
    const actor = actors.getByName(actorName(source.tenant, source.kind, source.id)) as EventReader
    const reply = await actor.readEvents(after, limit, true)
    if (!reply.ok) throw new Error(`reading ${source.kind}/${source.id} failed: ${reply.error.message}`)
    return reply.value.events
  }
