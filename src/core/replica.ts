/**
 * Replicas (issue 15 §3): an actor's log followed into a Cloudflare Queue, one message per event,
 * so a downstream system keeps its own copy. What producer (the actor's host) and consumer (the
 * `emberlog/replica` helper) agree on: the message, the option that turns it on, and how events
 * are cut into `sendBatch` calls within the platform's limits. Node-safe.
 */
import { utf8Length } from "../domain/json-size.js"
import type { WireEvent } from "./wire.js"

/** The actor a message comes from: dedupe and order are per source. */
export interface ReplicaSource {
  readonly tenant: string
  readonly kind: string
  readonly id: string
}

/**
 * One event of one actor. `event` is the event as stored (not upcast, so
 * `chainHash(prevHash, event) === hash`, core/hash-chain.ts); it is left out (`tooLarge: true`) when it would
 * not fit a queue message, and the consumer reads it from the source. `prevHash` is the hash of the
 * event before (GENESIS_HASH, "", for seq 1): a message that does not link to the copy's last hash
 * comes from another history of that actor (its tenant deleted and the log restarted).
 */
export interface ReplicaMessage extends ReplicaSource {
  readonly v: 1
  readonly seq: number
  readonly prevHash: string
  readonly hash: string
  readonly event?: WireEvent
  readonly tooLarge?: true
}

/** The app option: which kinds' logs are followed into the queue bound as `binding`. */
export interface ReplicaOptions {
  /** The queue producer binding's name in wrangler.toml (`[[queues.producers]] binding`). */
  readonly binding: string
  /** The kinds replicated; every kind the app serves when absent. */
  readonly kinds?: ReadonlyArray<string>
}

/**
 * Cloudflare Queues' limits (developers.cloudflare.com/queues/platform/limits): 128 KB a message,
 * 100 messages and 256 KB a `sendBatch`. Messages are sent as JSON, so their size is their UTF-8
 * JSON; the margins cover what the platform counts beside the body.
 */
export const QUEUE_BATCH_MESSAGES = 100
export const QUEUE_MESSAGE_BYTES = 120_000
export const QUEUE_BATCH_BYTES = 240_000

/** A queue message as `sendBatch` takes it. */
export interface OutgoingReplicaMessage {
  readonly body: ReplicaMessage
  readonly contentType: "json"
}

/**
 * The messages for `events` (consecutive, in seq order, as stored; `prevHash` the hash of the event
 * before the first) cut into batches within the limits, in seq order: each batch is one
 * `sendBatch`, and the cursor may move past a batch once it resolved.
 */
export const replicaBatches = (
  source: ReplicaSource,
  events: ReadonlyArray<WireEvent>,
  prevHash: string,
): Array<Array<OutgoingReplicaMessage>> => {
  const batches: Array<Array<OutgoingReplicaMessage>> = []
  let batch: Array<OutgoingReplicaMessage> = []
  let bytes = 0
  let previous = prevHash
  for (const event of events) {
    const link = { v: 1, ...source, seq: event.seq, prevHash: previous, hash: event.hash } as const
    previous = event.hash
    const whole: ReplicaMessage = { ...link, event }
    let size = utf8Length(JSON.stringify(whole))
    let body = whole
    if (size > QUEUE_MESSAGE_BYTES) {
      body = { ...link, tooLarge: true }
      size = utf8Length(JSON.stringify(body))
    }
    if (batch.length > 0 && (batch.length === QUEUE_BATCH_MESSAGES || bytes + size > QUEUE_BATCH_BYTES)) {
      batches.push(batch)
      batch = []
      bytes = 0
    }
    batch.push({ body, contentType: "json" })
    bytes += size
  }
  if (batch.length > 0) batches.push(batch)
  return batches
}

/** Queue binding names as wrangler.toml accepts them (a JavaScript identifier). */
const BINDING_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/**
 * Checks the app option against the kinds the app serves: the kinds replicated (as `Set`), or an
 * Error naming what is wrong. Thrown at the factory, so a misconfigured app fails when it loads.
 */
export const replicatedKinds = (options: ReplicaOptions, served: ReadonlyArray<string>): ReadonlySet<string> => {
  if (typeof options !== "object" || options === null)
    throw new Error("emberlog: replica must be an object { binding, kinds? }")
  const { binding, kinds } = options
  if (typeof binding !== "string" || !BINDING_NAME.test(binding))
    throw new Error(
      `emberlog: replica.binding must name a queue producer binding (e.g. "EMBERLOG_REPLICA"), got ${JSON.stringify(binding)}`,
    )
  if (kinds === undefined) return new Set(served)
  if (!Array.isArray(kinds) || kinds.length === 0)
    throw new Error(
      "emberlog: replica.kinds must be a non-empty list of kinds the app serves (or left out: every kind)",
    )
  for (const kind of kinds) {
    if (!served.includes(kind))
      throw new Error(
        `emberlog: replica.kinds names ${JSON.stringify(kind)}, which this app does not serve (it serves ${served.join(", ")})`,
      )
  }
  return new Set(kinds)
}
