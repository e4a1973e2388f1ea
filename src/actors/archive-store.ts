/**
 * The store an archiving actor's core reads (issue 15 §3): the live tail in SQLite, and below it
 * the sealed segments the archiver moved to R2 (actors/archiver.ts), served from an in-memory
 * cache of decoded segments. Reads stay synchronous, as ActorCore is: a read of an archived seq
 * whose segment is not cached throws ArchiveMiss (the host loads it and calls again), one in a
 * segment retention deleted throws HistoryDeleted (410). Writes and the outbox are the live
 * store's: nothing archived is ever written again.
 */
import { Effect } from "effect"
import {
  ArchiveMiss,
  HistoryDeleted,
  StoreError,
  type ArchivedSegment,
  type EventStoreShape,
  type StoredEvent,
  type StoredRow,
} from "../core/event-store.js"
import { canonicalJson } from "../core/hash-chain.js"
import { trySync } from "../core/sync-effect.js"

/** The segment index, created with the first segment sealed (reads create nothing). */
export const SEGMENTS_TABLE = `CREATE TABLE IF NOT EXISTS segments (
  first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, prev_hash TEXT NOT NULL, first_hash TEXT NOT NULL,
  last_hash TEXT NOT NULL, first_at INTEGER NOT NULL, last_at INTEGER NOT NULL, key TEXT NOT NULL,
  bytes INTEGER NOT NULL, deleted_at INTEGER, purged INTEGER NOT NULL DEFAULT 0)`

/** Decoded segments kept in memory beside the ones a read in progress holds. */
const CACHED_SEGMENTS = 4

/**
 * The archived part of one actor's log: the index (as committed) and the decoded segments in
 * memory, least recently used first. A segment loaded for a read in progress is pinned until the
 * read ends, so a read spanning more segments than the cache keeps still finishes.
 */
export class SegmentIndex {
  private segments: Array<ArchivedSegment> = []
  private readonly cache = new Map<number, ReadonlyArray<StoredEvent>>()
  private readonly pins = new Map<number, number>()
  /** First seqs of segments marked deleted whose objects are not known gone (`purged = 0`). */
  private unpurgedFirsts = new Set<number>()

  constructor(private readonly sql: SqlStorage) {
    this.reload()
  }

  /** Reads the index from SQLite (at boot, after an erasure, after a seal or a deletion commits). */
  reload(): void {
    const rows = !this.hasTable("segments") ? [] : this.sql.exec("SELECT * FROM segments ORDER BY first_seq").toArray()
    this.unpurgedFirsts = new Set(
      rows.filter((row) => row.deleted_at !== null && row.purged === 0).map((row) => row.first_seq as number),
    )
    this.segments = rows.map((row) => ({
      first: row.first_seq as number,
      last: row.last_seq as number,
      prevHash: row.prev_hash as string,
      firstHash: row.first_hash as string,
      lastHash: row.last_hash as string,
      firstAt: row.first_at as number,
      lastAt: row.last_at as number,
      key: row.key as string,
      bytes: row.bytes as number,
      deletedAt: (row.deleted_at as number | null) ?? null,
    }))
    for (const first of [...this.cache.keys()]) {
      const segment = this.segments.find((s) => s.first === first)
      if (segment === undefined || segment.deletedAt !== null) this.cache.delete(first)
    }
  }

  hasTable(name: string): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0
  }

  /**
   * Segments marked deleted whose objects may still be in R2 (a crash between the mark and the delete),
   * oldest first: known from the last reload, so the alarm's reschedule asks no query.
   */
  unpurged(limit: number): ReadonlyArray<ArchivedSegment> {
    return this.segments.filter((segment) => this.unpurgedFirsts.has(segment.first)).slice(0, limit)
  }

  /** Decoded segments in memory (pinned or cached). */
  get cachedSegments(): number {
    return this.cache.size
  }

  /** Row bytes of the segments reads in progress hold: bounded across all of them (archiver.ts, prefetch). */
  get pinnedBytes(): number {
    let bytes = 0
    for (const first of this.pins.keys()) bytes += this.segments.find((segment) => segment.first === first)?.bytes ?? 0
    return bytes
  }

  /** A segment's events if in memory (its place in the LRU unchanged). */
  cached(segment: ArchivedSegment): ReadonlyArray<StoredEvent> | undefined {
    return this.cache.get(segment.first)
  }

  get all(): ReadonlyArray<ArchivedSegment> {
    return this.segments
  }

  /** The last archived seq (0: nothing archived): the live tail starts after it. */
  get archivedThrough(): number {
    return this.segments[this.segments.length - 1]?.last ?? 0
  }

  /** The oldest seq a read can still be answered from (retention deletes the oldest segments first). */
  get firstAvailableSeq(): number {
    return this.segments.find((segment) => segment.deletedAt === null)?.first ?? this.archivedThrough + 1
  }

  /** The segment holding `seq`, if it is archived. */
  segmentOf(seq: number): ArchivedSegment | undefined {
    let low = 0
    let high = this.segments.length - 1
    while (low <= high) {
      const middle = (low + high) >> 1
      const segment = this.segments[middle]!
      if (seq < segment.first) high = middle - 1
      else if (seq > segment.last) low = middle + 1
      else return segment
    }
    return undefined
  }

  /** A segment's events (seq `first` at index 0), or the signal to load it first. */
  eventsOf(segment: ArchivedSegment): ReadonlyArray<StoredEvent> {
    if (segment.deletedAt !== null) throw new HistoryDeleted(this.firstAvailableSeq)
    const events = this.cache.get(segment.first)
    if (events === undefined) throw new ArchiveMiss(segment)
    // Most recently used last.
    this.cache.delete(segment.first)
    this.cache.set(segment.first, events)
    return events
  }

  isCached(segment: ArchivedSegment): boolean {
    return this.cache.has(segment.first)
  }

  /** Keeps a loaded segment's events, pinned until `unpin`. */
  keep(segment: ArchivedSegment, events: ReadonlyArray<StoredEvent>): void {
    this.cache.delete(segment.first)
    this.cache.set(segment.first, events)
    this.pin(segment)
  }

  pin(segment: ArchivedSegment): void {
    // Most recently used last.
    const events = this.cache.get(segment.first)
    if (events !== undefined) {
      this.cache.delete(segment.first)
      this.cache.set(segment.first, events)
    }
    this.pins.set(segment.first, (this.pins.get(segment.first) ?? 0) + 1)
  }

  unpin(segment: ArchivedSegment): void {
    const count = (this.pins.get(segment.first) ?? 1) - 1
    if (count > 0) this.pins.set(segment.first, count)
    else this.pins.delete(segment.first)
    const pinnedCached = () => [...this.pins.keys()].filter((first) => this.cache.has(first)).length
    for (const first of this.cache.keys()) {
      if (this.cache.size - pinnedCached() <= CACHED_SEGMENTS) break
      if (!this.pins.has(first)) this.cache.delete(first)
    }
  }

  /** Forgets everything (the object was erased). */
  clear(): void {
    this.segments = []
    this.cache.clear()
    this.pins.clear()
  }
}

const toRow = (event: StoredEvent): StoredRow => ({
  seq: event.seq,
  type: event.type,
  schemaVersion: event.schemaVersion,
  dataJson: canonicalJson(event.data),
  metaJson: canonicalJson(event.meta),
  hash: event.hash,
})

/**
 * `live` with the archived segments below it. A read below the live tail answers from one
 * segment at a time (a page reader asks again from where it stopped), a fold crosses as many as
 * it needs; both throw ArchiveMiss or HistoryDeleted, as a StoreError's cause, where they must wait.
 */
export const archivedStore = (live: EventStoreShape, index: SegmentIndex): EventStoreShape => {
  const attempt = <A>(body: () => A) => trySync(body, (cause) => new StoreError({ cause }))
  /** The events of (after, through] that the segment holding `after + 1` has, at most `limit`. */
  const archived = (after: number, through: number, limit: number): ReadonlyArray<StoredEvent> => {
    const segment = index.segmentOf(after + 1)!
    const events = index.eventsOf(segment)
    const end = Math.min(through, segment.last)
    return events.slice(after + 1 - segment.first, Math.min(end - segment.first + 1, after + 1 - segment.first + limit))
  }
  const below = (after: number, through: number) => through > after && after < index.archivedThrough

  return {
    ...live,
    read: (after, through, limit) =>
      below(after, through)
        ? attempt(() => archived(after, through, limit).map((event) => structuredClone(event)))
        : live.read(after, through, limit),
    readRows: (after, through, limit) =>
      below(after, through)
        ? attempt(() => archived(after, through, limit).map(toRow))
        : live.readRows(after, through, limit),
    fold: (after, through, initial, step) => {
      if (!below(after, through)) return live.fold(after, through, initial, step)
      const end = Math.min(through, index.archivedThrough)
      return attempt(() => {
        let state = initial
        for (let cursor = after; cursor < end;) {
          const page = archived(cursor, end, Number.MAX_SAFE_INTEGER)
          for (const { type, schemaVersion, data } of page) state = step(state, { type, schemaVersion, data })
          cursor = page[page.length - 1]!.seq
        }
        return state
      }).pipe(Effect.flatMap((state) => (through > end ? live.fold(end, through, state, step) : Effect.succeed(state))))
    },
    // A state between the start and the cut is history retention deleted, even where a snapshot of
    // it is still stored (the initial state at 0 is no one's history).
    snapshotAtOrBelow: (seq, stateVersion) =>
      seq > 0 && seq < index.firstAvailableSeq - 1
        ? attempt(() => {
            throw new HistoryDeleted(index.firstAvailableSeq)
          })
        : live.snapshotAtOrBelow(seq, stateVersion),
    hashAt: (seq) => {
      const segment = index.segmentOf(seq)
      if (segment === undefined) return live.hashAt(seq)
      if (seq === segment.last) return Effect.succeed(segment.lastHash)
      if (seq === segment.first) return Effect.succeed(segment.firstHash)
      return attempt(() => index.eventsOf(segment)[seq - segment.first]!.hash)
    },
    // `meta.at` never decreases along the log: the live tail answers when it has an event that old,
    // else the last segment that starts by then, from its index row when it ends by then too.
    seqAsOf: (at) =>
      live.seqAsOf(at).pipe(
        Effect.flatMap((seq) => {
          if (seq > 0 || index.archivedThrough === 0) return Effect.succeed(seq)
          const segment = index.all.findLast((s) => s.firstAt <= at)
          if (segment === undefined) return Effect.succeed(0)
          if (segment.lastAt <= at) return Effect.succeed(segment.last)
          return attempt(() => index.eventsOf(segment).findLast((event) => event.meta.at <= at)!.seq)
        }),
      ),
  }
}
