/**
 * What crosses the wire between the host, the edge, the typed client and the CLI: events
 * as readers see them, commands and their replies, failures, verify reports and topic
 * entries. Types only, so every layer shares one definition and none loads another.
 */
import type { StoredEvent } from "./event-store.js"

export type ActorFailure = {
  /**
   * InvalidInput → 400, Forbidden → 403, Conflict → 409, TooLarge → 413, Rejected → 422,
   * Gone → 410 (history deleted by retention), RolledBack → 500, Unimplemented → 501 (a feature this
   * deployment lacks), Unavailable → 503 (one table, actors/failures.ts, for the edge and the objects' own answers).
   */
  readonly _tag:
    | "InvalidInput"
    | "Forbidden"
    | "Conflict"
    | "Gone"
    | "TooLarge"
    | "Rejected"
    | "RolledBack"
    | "Unimplemented"
    | "Unavailable"
  readonly code: string
  readonly message: string
  readonly details?: unknown
}

export type ActorReply<A> =
  { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: ActorFailure }

/** An event as readers see it: data upcast to the current schema version. */
export type WireEvent = StoredEvent

export interface CommandRequest {
  readonly command: unknown
  /** Set by the hosting object for its own timer and reactions, never from a request. */
  readonly internal?: boolean
  readonly ifMatch?: number
  readonly idempotencyKey?: string
  readonly principal?: string
  /** The principal's scopes, for entities that decide by them (see Caller); none when absent. */
  readonly scopes?: ReadonlyArray<string>
  readonly correlationId?: string
  readonly causationId?: string
}

export interface CommandOutcome {
  readonly version: number
  readonly events: ReadonlyArray<WireEvent>
  readonly state: unknown
  /** True when this answers a retried Idempotency-Key: nothing was appended this time. */
  readonly replayed: boolean
}

export interface StateQuery {
  readonly at?: number
  /** ms since the epoch: the state after the last event with `meta.at` ≤ asOf. */
  readonly asOf?: number
}

/**
 * `snapshots`: how many snapshots were refolded and matched; `snapshotSeq`: the snapshot that did not.
 * `from`: the seq the walk started after, when retention deleted the events before it (the chain
 * then starts from the hash recorded for that seq, and the state from the snapshot there).
 */
export type VerifyReport =
  | {
      readonly ok: true
      readonly events: number
      readonly head: string
      readonly snapshots: number
      readonly from?: number
    }
  | { readonly ok: false; readonly firstBadSeq: number; readonly reason: string; readonly snapshotSeq?: number }

/** The actor a topic entry came from. */
export interface Source {
  readonly kind: string
  readonly id: string
}

/** An entry of a topic: `topicSeq` is gapless from 1; each source event lands once. */
export interface TopicEntry {
  readonly topicSeq: number
  readonly source: Source
  readonly event: WireEvent
}

/** `GET /v1/actors`: a page of a tenant's actors (each appended to at least once); `next` is the cursor of the page after. */
export interface ActorListing {
  readonly actors: ReadonlyArray<{ readonly kind: string; readonly id: string; readonly listedAt: string }>
  readonly next: string | null
}

/** What a step of a tenant's deletion erased so far, by what (events, r2Objects, vectors, sessions, …). */
export type ErasedCounts = Readonly<Record<string, number>>

export interface DeletionStep {
  readonly name: string
  readonly status: "pending" | "done"
  readonly erased: ErasedCounts
}

/** Who asked for a tenant's deletion: a tenant's admin deleting its own, or an operator deleting any. */
export interface DeletionRequester {
  readonly sub: string
  readonly tenant: string
  readonly as: "operator" | "admin"
}

/** `GET /v1/tenants/{tenant}/deletion`: a tenant's deletion as it stands; once done, its audit record. */
export interface DeletionStatus {
  readonly id: string
  readonly tenant: string
  readonly status: "in-progress" | "done"
  /** The principal (`sub`) who asked. */
  readonly requestedBy: string
  /** Who asked, in full: the principal, its own tenant, and by which right (null: not recorded). */
  readonly requester: DeletionRequester | null
  readonly requestedAt: string
  readonly finishedAt: string | null
  /** The step running or next (null when done). */
  readonly step: string | null
  readonly steps: ReadonlyArray<DeletionStep>
  /** How many times the steps ran (more than 1: the tenant wrote during the deletion, and every step ran again). */
  readonly passes: number
  /** The last failure of the step running, until it succeeds. */
  readonly failure: {
    readonly step: string
    readonly message: string
    readonly attempts: number
    readonly at: string
  } | null
}
