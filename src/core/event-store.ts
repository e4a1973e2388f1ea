/**
 * The event store service: one actor's log, snapshots and idempotency records.
 * Production is SQLite inside the Durable Object (`infra/sqlite-event-store.ts`); pure tests
 * use the in-memory store (`infra/memory-event-store.ts`). Both honour `transaction`: every
 * write made inside it lands together, or none does. Reads of an actor that was never
 * written create nothing: storage exists from the first write on.
 */
import { Context, Data, type Effect } from "effect"
import type { StoredEventBody } from "../domain/entity.js"

export interface EventMeta {
  /** ms since the epoch; never decreases along one log. */
  readonly at: number
  readonly commandId: string
  readonly correlationId: string
  readonly causationId: string | null
  readonly principal: string
}

export interface StoredEvent {
  readonly seq: number
  readonly type: string
  readonly schemaVersion: number
  readonly data: Record<string, unknown>
  readonly meta: EventMeta
  readonly hash: string
}

/** An event with its data and meta already serialized (the same canonical JSON the hash covers). */
export interface SerializedEvent extends StoredEvent {
  readonly dataJson: string
  readonly metaJson: string
}

/**
 * An event as its row holds it: data and meta still in the canonical JSON they were stored
 * in, so a reader that only passes events on (a page, a backlog) need not parse them.
 */
export interface StoredRow {
  readonly seq: number
  readonly type: string
  readonly schemaVersion: number
  readonly dataJson: string
  readonly metaJson: string
  readonly hash: string
}

/**
 * The state after event `seq`, bound to the chain: `headHash` is the hash of event `seq`
 * and `stateHash` the SHA-256 of `stateJson`, so a snapshot that does not belong to the
 * log is noticed by recovery (its hashes) and by verify (the state refolded from the log).
 */
export interface Snapshot {
  readonly seq: number
  readonly stateVersion: number
  /** The encoded state as canonical JSON, exactly as stored. */
  readonly stateJson: string
  readonly headHash: string
  readonly stateHash: string
}

export interface CommandRecord {
  readonly requestHash: string
  readonly version: number
  readonly firstSeq: number
  readonly at: number
}

/**
 * Storage itself failed (SQLite refused a statement, the database is broken): not a refusal of
 * the input. Typed, so the actor decides what a failure means where it happens: inside a
 * command's transaction everything rolls back; a read answers with the original error.
 */
export class StoreError extends Data.TaggedError("StoreError")<{ readonly cause: unknown }> {}

/**
 * A sealed run of the log kept outside the store (actors/archive-store.ts: R2), as the store's
 * index records it: its ends and the hash at each, so the chain and time travel can cross it
 * without reading it.
 */
export interface ArchivedSegment {
  readonly first: number
  readonly last: number
  /** The hash of event `first - 1` (the chain's genesis for the first segment). */
  readonly prevHash: string
  readonly firstHash: string
  readonly lastHash: string
  readonly firstAt: number
  readonly lastAt: number
  readonly key: string
  /** Bytes of its rows' JSON, uncompressed. */
  readonly bytes: number
  /** When retention deleted its rows (ms epoch); null while kept. */
  readonly deletedAt: number | null
}

/**
 * A read reached an archived segment that is not in memory. Reads stay synchronous (the actor
 * runs one synchronous stretch at a time), so the read throws this; the host loads the segment
 * and calls the read again, which has no side effects.
 */
export class ArchiveMiss extends Error {
  constructor(readonly segment: ArchivedSegment) {
    super(`emberlog: archived segment ${segment.first}-${segment.last} is not loaded`)
  }
}

/** A read reached events that retention deleted: the oldest still readable is `firstAvailableSeq`. */
export class HistoryDeleted extends Error {
  constructor(readonly firstAvailableSeq: number) {
    super(`emberlog: events before ${firstAvailableSeq} were deleted by retention`)
  }
}

/** An ArchiveMiss or HistoryDeleted, whether thrown as it is or as a StoreError's cause. */
export const archiveSignal = (error: unknown): ArchiveMiss | HistoryDeleted | undefined => {
  const inner = error instanceof StoreError ? error.cause : error
  return inner instanceof ArchiveMiss || inner instanceof HistoryDeleted ? inner : undefined
}

export interface EventStoreShape {
  /** The last event, if any. */
  readonly last: Effect.Effect<StoredEvent | undefined, StoreError>
  readonly append: (events: ReadonlyArray<SerializedEvent>) => Effect.Effect<void, StoreError>
  /** Events with `seq` in (after, through], oldest first, at most `limit`. */
  readonly read: (
    after: number,
    through: number,
    limit: number,
  ) => Effect.Effect<ReadonlyArray<StoredEvent>, StoreError>
  /** The same rows as `read`, their data and meta as stored (unparsed). */
  readonly readRows: (
    after: number,
    through: number,
    limit: number,
  ) => Effect.Effect<ReadonlyArray<StoredRow>, StoreError>
  /** Folds the events in (after, through] in seq order, reading only what replay needs. */
  readonly fold: <S>(
    after: number,
    through: number,
    initial: S,
    step: (state: S, event: StoredEventBody) => S,
  ) => Effect.Effect<S, StoreError>
  /** The hash of event `seq` (undefined: no such event), with no need to read the event when it is archived. */
  readonly hashAt: (seq: number) => Effect.Effect<string | undefined, StoreError>
  /** Highest seq whose `meta.at` ≤ `at`, or 0. */
  readonly seqAsOf: (at: number) => Effect.Effect<number, StoreError>
  /** Latest snapshot at or below `seq` written with `stateVersion` (and bound to the chain). */
  readonly snapshotAtOrBelow: (seq: number, stateVersion: number) => Effect.Effect<Snapshot | undefined, StoreError>
  /** The seqs of every snapshot written with `stateVersion`, ascending. */
  readonly snapshotSeqs: (stateVersion: number) => Effect.Effect<ReadonlyArray<number>, StoreError>
  readonly saveSnapshot: (snapshot: Snapshot) => Effect.Effect<void, StoreError>
  readonly findCommand: (commandId: string) => Effect.Effect<CommandRecord | undefined, StoreError>
  /**
   * Records a command id unless it has a record already: true if saved, false if the id was taken
   * (the earlier record stays). One write and no read, so a command with a fresh key pays one row.
   */
  readonly saveCommand: (commandId: string, record: CommandRecord) => Effect.Effect<boolean, StoreError>
  /**
   * Queues events for delivery to a topic outside their entity's own routing (the first event to
   * the tenant's directory), in the command's transaction. An entity's topics follow the log
   * itself through topic cursors, with no row per event; rows queued before that are drained here too.
   */
  readonly enqueue: (
    deliveries: ReadonlyArray<{ readonly seq: number; readonly topic: string }>,
  ) => Effect.Effect<void, StoreError>
  /** Undelivered events, oldest first per topic, at most `limit` per topic. */
  readonly pendingDeliveries: (
    limit: number,
  ) => Effect.Effect<ReadonlyArray<{ readonly topic: string; readonly events: ReadonlyArray<StoredEvent> }>, StoreError>
  /** Whether any queued row (`enqueue`) is still to be delivered; no event is read to tell. */
  readonly hasQueuedDeliveries: Effect.Effect<boolean, StoreError>
  /** Marks a topic's events up to `throughSeq` delivered. */
  readonly acknowledge: (topic: string, throughSeq: number) => Effect.Effect<void, StoreError>
  /**
   * Where delivery to each followed topic stands: every event routed to `topic` with seq ≤ `through`
   * was delivered. The log is the outbox: nothing per event is written for delivery.
   */
  readonly topicCursors: Effect.Effect<ReadonlyArray<{ readonly topic: string; readonly through: number }>, StoreError>
  /** Starts following `topic` after `through`, in the transaction of the first event routed there; a topic followed already stays. */
  readonly followTopic: (topic: string, through: number) => Effect.Effect<void, StoreError>
  /** Moves a followed topic's cursor forward to `through` (never back). */
  readonly advanceTopic: (topic: string, through: number) => Effect.Effect<void, StoreError>
  /** Stops following `topic`: its cursor is gone (a follower that no longer exists must not hold the log back). */
  readonly unfollowTopic: (topic: string) => Effect.Effect<void, StoreError>
  /**
   * Forgets idempotency records older than `before` (ms epoch) among the `limit` claimed first:
   * bounded work per call, so the caller calls often enough to keep up (the actor: at each snapshot).
   */
  readonly pruneCommands: (before: number, limit: number) => Effect.Effect<void, StoreError>
  /**
   * Runs `body` atomically: if it throws, every write it made is rolled back and the
   * error rethrown. Synchronous because SQLite's `transactionSync` is; the actor runs
   * its whole command program (one fiber) inside it.
   */
  readonly transaction: <A>(body: () => A) => A
}

export class EventStore extends Context.Service<EventStore, EventStoreShape>()("emberlog/EventStore") {}
