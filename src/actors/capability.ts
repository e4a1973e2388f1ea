/**
 * Capabilities: what a kind adds to the generic host (one EmberlogActor class hosts every
 * kind). Each is a narrow interface over the host's lifecycle; the host knows none of the
 * kinds that use them (presence for rooms, reactions for jobs, a content store and search
 * projection for memories). The host owns the one Durable Object alarm: capabilities ask
 * for wake-ups through `Host.wakeAt` and are called back in `onAlarm`.
 */
import type { ActorReply, CommandOutcome, CommandRequest, WireEvent } from "../core/wire.js"

/** What a capability sees of the object hosting it. */
export interface Host {
  /** The object's Durable Object state (storage, sockets). */
  readonly ctx: DurableObjectState
  /** The Worker's bindings and settings. */
  readonly env: unknown
  readonly tenant: string
  readonly kind: string
  readonly id: string
  /** The current state and version (seq of the last event; 0 before any). */
  readonly state: () => unknown
  readonly version: () => number
  /** Runs a command in one transaction and hands its events to subscribers, topics and capabilities. */
  readonly commit: (request: CommandRequest) => ActorReply<CommandOutcome>
  /** Asks the one alarm to fire no later than `at` (ms epoch). */
  readonly wakeAt: (at: number) => Promise<void>
  /** Whether the object has storage yet (reads create nothing: tables come with the first write). */
  readonly hasStorage: () => boolean
  /** Sets up the side tables of every capability's projection (idempotent). */
  readonly ensureTables: () => void
}

/** Tables the host keeps beside the log, written in each command's transaction (e.g. a search index). */
export interface Projection {
  readonly setup: (sql: SqlStorage) => void
  /** Applies appended events; `command` is the command that produced them (its data may live only here). */
  readonly apply: (sql: SqlStorage, events: ReadonlyArray<WireEvent>, command: unknown) => void
  /** Rebuilds the projection from the whole log (and whatever the projection keeps that the log does not). */
  readonly rebuild: (sql: SqlStorage, events: Iterable<WireEvent>) => void
}

export interface Capability {
  readonly name: string
  /** Called once the object has recovered (inside blockConcurrencyWhile): reconcile, ask for wake-ups. */
  readonly start?: (host: Host) => void | Promise<void>
  readonly projection?: Projection
  /** Wraps the command path (I/O before the transaction, work after it); calls `next` to commit. */
  readonly command?: (
    request: CommandRequest,
    next: (request: CommandRequest) => ActorReply<CommandOutcome>,
    host: Host,
  ) => Promise<ActorReply<CommandOutcome>>
  /** After a committed (not replayed) command, with its events. Must not throw the command into failure. */
  readonly committed?: (events: ReadonlyArray<WireEvent>, host: Host) => void
  /** The alarm fired: do this capability's due work (the host then reschedules from every `wakeAt`). */
  readonly onAlarm?: (host: Host) => Promise<void>
  /** A request to the object that is this capability's (e.g. a room member socket); undefined: not mine. */
  readonly fetch?: (request: Request, host: Host) => Promise<Response> | undefined
  /** Frames and closes of sockets this capability accepted (tagged with its name). */
  readonly socketMessage?: (socket: WebSocket, message: string, host: Host) => void | Promise<void>
  readonly socketClosed?: (socket: WebSocket, host: Host) => void
  /** Extra RPC methods, called through EmberlogActor's generic `invoke(method, args)`. */
  readonly methods?: Readonly<Record<string, (host: Host, ...args: any[]) => unknown>>
}

export const defineCapability = <C extends Capability>(capability: C): C => capability
