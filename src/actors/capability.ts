/**
 * Capabilities: what a kind adds to the generic host (one EmberlogActor class hosts every
 * kind). Each is a narrow interface over the host's lifecycle; the host knows none of the
 * kinds that use them (presence for rooms, reactions for jobs, a content store and search
 * projection for memories).
 *
 * A capability is a plain value shared by every object of its kind; `start` is called once
 * per object, after recovery, and returns that object's hooks, so whatever a capability
 * keeps per object lives in the closure. The host owns the one Durable Object alarm:
 * capabilities ask for wake-ups through `Host.wakeAt` and are called back in `onAlarm`.
 */
import type { ActorReply, CommandOutcome, CommandRequest, WireEvent } from "../core/wire.js"
import type { Entity } from "../domain/entity.js"
import type { OutgoingFrame, SocketAttachment } from "./subscribers.js"

/** What a capability sees of the object hosting it. */
export interface Host {
  /** The object's Durable Object state (storage, sockets). */
  readonly ctx: DurableObjectState
  /** The Worker's bindings and settings. */
  readonly env: unknown
  readonly tenant: string
  readonly kind: string
  readonly id: string
  readonly entity: Entity
  /** The current state and version (seq of the last event; 0 before any). */
  readonly state: () => unknown
  readonly version: () => number
  /** Events after `after`, oldest first, at most `limit` (and one page of bytes). */
  readonly readEvents: (after: number, limit: number) => ReadonlyArray<WireEvent>
  /** Runs a command in one transaction and hands its events to subscribers, topics and capabilities. */
  readonly commit: (request: CommandRequest) => ActorReply<CommandOutcome>
  /** Asks the one alarm to fire no later than `at` (ms epoch); a later ask never postpones an earlier one. */
  readonly wakeAt: (at: number) => Promise<void>
  /** Whether the object has storage yet (reads create nothing: tables come with the first write). */
  readonly hasStorage: () => boolean
  /** Sets up the side tables of every capability's projection (idempotent). */
  readonly ensureTables: () => void
  /**
   * Accepts a WebSocket tagged with this capability's name: it gets no backlog (it starts at
   * the head), its frames go to this capability's `socketMessage` (after the host's checks:
   * size, token expiry, rate limit) and its end to `socketClosed`.
   */
  readonly acceptSocket: (attachment: Omit<SocketAttachment, "mode">) => Response
  /** This capability's sockets. */
  readonly sockets: () => ReadonlyArray<WebSocket>
  /**
   * Sends frames to this capability's sockets through the subscribers' accounting, so a socket
   * that never reads is capped like the rest; `overCap` is the close reason of one over its cap.
   */
  readonly sendFrames: (frames: ReadonlyArray<OutgoingFrame>, overCap?: (lastSeqSent: number) => string) => void
}

/** Tables the host keeps beside the log, written in each command's transaction (e.g. a search index). */
export interface Projection {
  readonly setup: (sql: SqlStorage) => void
  /** Applies appended events; `command` is the command that produced them (its data may live only here). */
  readonly apply: (sql: SqlStorage, events: ReadonlyArray<WireEvent>, command: unknown) => void
  /** Rebuilds the projection from the whole log (and whatever the projection keeps that the log does not). */
  readonly rebuild: (sql: SqlStorage, events: Iterable<WireEvent>) => void
}

/** One object's hooks of a capability; every one is optional. */
export interface CapabilityHooks {
  /** Wraps the command path (I/O before the transaction, work after it); calls `next` to commit. */
  readonly command?: (
    request: CommandRequest,
    next: (request: CommandRequest) => ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>>,
  ) => Promise<ActorReply<CommandOutcome>>
  /** After a committed (not replayed) command, with its events. Must not throw the command into failure. */
  readonly committed?: (events: ReadonlyArray<WireEvent>) => void
  /** The alarm fired: do this capability's due work (ask `wakeAt` again for more). */
  readonly onAlarm?: () => Promise<void>
  /** A request to the object that is this capability's (e.g. a room member socket); undefined: not mine. */
  readonly fetch?: (request: Request) => Promise<Response> | Response | undefined
  /** A frame on one of this capability's sockets (not an ack: the host handles those). */
  readonly socketMessage?: (socket: WebSocket, message: string) => void | Promise<void>
  /** One of this capability's sockets closed or failed. */
  readonly socketClosed?: (socket: WebSocket) => void
  /**
   * The tenant is being deleted: erase what the capability keeps outside the object's storage
   * (R2 objects, vectors), before the host deletes that storage. Idempotent (a crash repeats it);
   * returns counts of what it erased, by what.
   */
  readonly erase?: () => Promise<Readonly<Record<string, number>>>
  /** Extra RPC methods, called through EmberlogActor's generic `invoke(method, args)`. */
  readonly methods?: Readonly<Record<string, (...args: any[]) => unknown>>
}

export interface Capability {
  /** Unique within a kind; tags the capability's sockets. */
  readonly name: string
  /** Side tables, created with the log's tables (at the first write) and written in each command's transaction. */
  readonly projection?: Projection
  /** Called once per object after recovery (inside blockConcurrencyWhile): reconcile, ask for wake-ups. */
  readonly start: (host: Host) => CapabilityHooks | Promise<CapabilityHooks>
}

export const defineCapability = <C extends Capability>(capability: C): C => capability
