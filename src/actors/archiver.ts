/**
 * History beyond one object's storage (issue 15 §3): the alarm seals an actor's oldest events
 * into segments in R2 (gzip'd NDJSON, one stored row per line exactly as the store held it),
 * records each in the segment index with a snapshot at its end, and trims them from SQLite;
 * retention later deletes old segments' objects and keeps their hashes. Reads of archived seqs
 * go through `readThrough` (load the segment, call again), `verify` walks the segments from R2.
 *
 * Crash safety: the segment object is written first, then ONE transaction records it, writes
 * the boundary snapshot and deletes its rows. A crash in between leaves the rows in SQLite; the
 * next alarm computes the same range (segments are cut by count or bytes, never by what else
 * changed) and the same key, and overwrites the object: nothing lost, nothing twice.
 */
import {
  ArchiveMiss,
  HistoryDeleted,
  archiveSignal,
  type ArchivedSegment,
  type StoredEvent,
} from "../core/event-store.js"
import { GENESIS_HASH, canonicalJson, sha256 } from "../core/hash-chain.js"
import type { VerifyReport } from "../core/wire.js"
import type { Entity } from "../domain/entity.js"
import { utf8Length } from "../domain/json-size.js"
import { SEGMENTS_TABLE, type SegmentIndex } from "./archive-store.js"
import {
  DEFAULT_SEGMENT_EVENTS,
  SEGMENT_BYTES,
  gunzipLines,
  gzip,
  rowLine,
  segmentBreak,
  segmentKey,
} from "./segment-format.js"
import type { Retention } from "./retention.js"
import { WS_MAX_UNCONFIRMED } from "../domain/protocol.js"

/**
 * The actor cannot rebuild its state: its kind's state version changed, so no snapshot is
 * usable, and the events before the first kept one were deleted by retention. It is refused
 * (503 history_unavailable) until the kind is deployed with the state version its snapshot
 * at the cut was written with, or the actor is erased.
 */
export class HistoryUnavailable extends Error {
  constructor(
    readonly cut: number,
    readonly stateVersion: number,
  ) {
    super(
      `emberlog: the state cannot be rebuilt: events through seq ${cut} were deleted by retention and no snapshot ` +
        `there is at state version ${stateVersion}; deploy the kind with the state version of the snapshot at ` +
        `seq ${cut} (or migrate it to ${stateVersion}), or erase the actor`,
    )
  }
}

/** Archived row bytes a subscription's backlog loads before it starts: what it can send before its cap (8 MiB). */
const PREFETCH_BYTES = WS_MAX_UNCONFIRMED
/**
 * Row bytes of segments held in memory for reads in progress, all reads together: past it a
 * prefetch loads only the segment it starts in (the reader resumes from there, with progress).
 */
export const PINNED_BYTES_LIMIT = 24 * 1024 * 1024
/** A seal that failed (R2 down) is retried after this, doubling up to SEAL_RETRY_MAX_MS. */
const SEAL_RETRY_MS = 1_000
const SEAL_RETRY_MAX_MS = 5 * 60 * 1000
/** Segments deleted by retention at most per alarm ring (bounded work; the alarm comes back for more). */
const DELETIONS_PER_RING = 16
const DAY_MS = 24 * 60 * 60 * 1000

/**
 * How far past `after` a prefetch loads: a subscription's backlog is bounded by bytes (its cap), a
 * `/log` page by the events it may examine.
 */
export type PrefetchReach = { readonly bytes: number } | { readonly events: number }

/** What the archiver needs of its actor: its entity, head and topics' positions, and the state at a seq. */
export interface ArchivedActor {
  readonly name: string
  readonly entity: Entity
  readonly head: () => number
  /** The encoded state after event `seq` (a read: it may need segments loaded). */
  readonly encodedStateAt: (seq: number) => Promise<unknown>
}

export class Archiver {
  /** Test hook: runs after a segment's object is written and before SQLite records it (a crash there). */
  afterSegmentWritten: (() => void) | undefined
  /** Counts erasures: a seal that awaited R2 across one must not record its segment in the new log. */
  private erasures = 0
  /** After a failed seal: when to try again, and how many failed in a row (the backoff's exponent). */
  private sealRetryAt = 0
  private sealFailures = 0
  /** Segment loads from R2 in flight, by first seq: concurrent readers of one segment share its fetch. */
  private readonly loading = new Map<number, Promise<ReadonlyArray<StoredEvent>>>()

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly bucket: R2Bucket | undefined,
    private readonly retention: Retention | undefined,
    readonly index: SegmentIndex,
    private readonly actor: ArchivedActor,
  ) {}

  /** Whether this actor archives at all: a retention and an R2 binding to archive to. */
  get enabled(): boolean {
    return this.bucket !== undefined && this.retention !== undefined
  }

  private get segmentEvents(): number {
    return this.retention?.segmentEvents ?? DEFAULT_SEGMENT_EVENTS
  }

  /**
   * The last seq the next segment may hold: past archiveAfterEvents of the head, and never past
   * what a topic cursor or a queued delivery still reads from the store.
   */
  private sealLimit(): number {
    const { sql } = this.storage
    let limit = this.actor.head() - this.retention!.archiveAfterEvents
    const has = (table: string) => this.index.hasTable(table)
    if (has("topic_cursors")) {
      const cursor = sql.exec("SELECT min(through) AS through FROM topic_cursors").one().through as number | null
      if (cursor !== null) limit = Math.min(limit, cursor)
    }
    if (has("outbox")) {
      const queued = sql.exec("SELECT min(seq) AS seq FROM outbox").one().seq as number | null
      if (queued !== null) limit = Math.min(limit, queued - 1)
    }
    return limit
  }

  /** A full segment (by count) can be sealed now; a segment full by bytes is found when the alarm rings anyway. */
  private sealDue(): boolean {
    return this.sealLimit() - this.index.archivedThrough >= this.segmentEvents
  }

  /** The last event retention deleted, with its hash (the link the kept log starts from); undefined when none was. */
  deletedThrough(): { readonly seq: number; readonly hash: string } | undefined {
    const cut = this.index.firstAvailableSeq - 1
    const segment = cut > 0 ? this.index.segmentOf(cut) : undefined
    return segment !== undefined && segment.deletedAt !== null ? { seq: cut, hash: segment.lastHash } : undefined
  }

  /** When the alarm should next run this (undefined: nothing to do). */
  dueAt(): number | undefined {
    if (!this.enabled) return undefined
    // The cheap check first: the store is asked about cursors only when a full segment is past the threshold.
    const candidates = this.actor.head() - this.retention!.archiveAfterEvents - this.index.archivedThrough
    if (candidates >= this.segmentEvents && this.sealDue()) return Math.max(Date.now(), this.sealRetryAt)
    const days = this.retention!.deleteArchivedAfterDays
    if (days === undefined) return undefined
    // A deletion marked in the index whose objects are not known gone yet: swept now.
    if (this.index.unpurged(1).length > 0) return Date.now()
    const oldest = this.index.all.find((segment) => segment.deletedAt === null)
    return oldest === undefined ? undefined : oldest.lastAt + days * DAY_MS
  }

  /** The alarm's step: seal one segment if one is due, then delete what retention no longer keeps. */
  async step(now: number): Promise<void> {
    if (!this.enabled) return
    if (now >= this.sealRetryAt) {
      try {
        await this.sealNext()
        this.sealFailures = 0
        this.sealRetryAt = 0
      } catch (error) {
        // R2 down (or a bug): retried with backoff, not on every ring the alarm comes back for.
        this.sealRetryAt = Date.now() + Math.min(SEAL_RETRY_MS * 2 ** this.sealFailures, SEAL_RETRY_MAX_MS)
        this.sealFailures++
        await this.deleteExpired(now)
        throw error
      }
    }
    await this.deleteExpired(now)
  }

  /** Seals the next segment, if there is a full one: at most one per call (bounded work per alarm ring). */
  async sealNext(): Promise<ArchivedSegment | undefined> {
    if (!this.enabled) return undefined
    const { sql } = this.storage
    const erasures = this.erasures
    const after = this.index.archivedThrough
    const limit = this.sealLimit()
    if (limit <= after) return undefined
    const lines: Array<string> = []
    let bytes = 0
    let first: { seq: number; hash: string; at: number } | undefined
    let last: { seq: number; hash: string; at: number } | undefined
    let full = false
    const rows = sql
      .exec(
        "SELECT seq, type, schema_version, data, meta, at, hash FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
        after,
        limit,
        this.segmentEvents,
      )
      .raw()
    for (const [seq, type, schemaVersion, data, meta, at, hash] of rows) {
      const line = rowLine(
        seq as number,
        type as string,
        schemaVersion as number,
        data as string,
        meta as string,
        hash as string,
      )
      const size = utf8Length(line) + 1
      if (lines.length > 0 && bytes + size > SEGMENT_BYTES) {
        full = true
        break
      }
      lines.push(line)
      bytes += size
      last = { seq: seq as number, hash: hash as string, at: at as number }
      first ??= last
    }
    // Cut by count or by bytes only: a shorter run waits, so a seal redone after a crash is the same segment.
    if (first === undefined || last === undefined || !(full || lines.length === this.segmentEvents)) return undefined
    const prevHash = after === 0 ? GENESIS_HASH : this.index.all[this.index.all.length - 1]!.lastHash
    const key = segmentKey(this.actor.name, first.seq, last.seq)
    const segment: ArchivedSegment = {
      first: first.seq,
      last: last.seq,
      prevHash,
      firstHash: first.hash,
      lastHash: last.hash,
      firstAt: first.at,
      lastAt: last.at,
      key,
      bytes,
      deletedAt: null,
    }
    // The state at the boundary, folded before anything changes (from the live rows and the last boundary's snapshot).
    const stateJson = canonicalJson(await this.actor.encodedStateAt(last.seq))
    await this.bucket!.put(key, await gzip(lines.join("\n") + "\n"), {
      httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
      customMetadata: {
        firstSeq: String(first.seq),
        lastSeq: String(last.seq),
        prevHash,
        lastHash: last.hash,
      },
    })
    this.afterSegmentWritten?.()
    // Erased while the put was in flight: the object is of a log that no longer exists (the
    // erasure's listing may have run before it landed), and the rows are gone or a new log's.
    if (this.erasures !== erasures) {
      await this.bucket!.delete(key)
      return undefined
    }
    // Another alarm ring (a retry) may have sealed it meanwhile: the index decides. A topic
    // cursor (the replica's) created during the put may now need rows it would trim.
    if (this.index.archivedThrough !== after || this.sealLimit() < last.seq) return undefined
    this.storage.transactionSync(() => {
      sql.exec(SEGMENTS_TABLE)
      sql.exec(
        `INSERT INTO segments (first_seq, last_seq, prev_hash, first_hash, last_hash, first_at, last_at, key, bytes)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        segment.first,
        segment.last,
        prevHash,
        segment.firstHash,
        segment.lastHash,
        segment.firstAt,
        segment.lastAt,
        key,
        bytes,
      )
      const stateVersion = this.actor.entity.stateVersion
      sql.exec(
        // Replacing one of an older state version: the code reading it uses this one.
        `INSERT OR REPLACE INTO snapshots (seq, state_version, state, head_hash, state_hash) VALUES (?, ?, ?, ?, ?)`,
        last.seq,
        stateVersion,
        stateJson,
        last.hash,
        sha256(stateJson),
      )
      // Snapshots inside the segment would be read only to be trusted against archived events:
      // the one at its end (and at the end of the segment before) serves every read below the tail.
      sql.exec("DELETE FROM snapshots WHERE seq > ? AND seq < ?", after, last.seq)
      sql.exec("DELETE FROM events WHERE seq <= ?", last.seq)
    })
    this.index.reload()
    return segment
  }

  /**
   * Deletes segments older than the retention keeps, oldest first: marks them deleted in the
   * index (their hashes stay), then deletes their objects. Marked first, so a crash in between
   * leaves objects no read reaches (swept on the next ring), never index rows whose objects are gone.
   */
  async deleteExpired(now: number): Promise<number> {
    const days = this.retention?.deleteArchivedAfterDays
    if (!this.enabled || days === undefined) return 0
    const { sql } = this.storage
    let expired = this.index.all
      .filter((segment) => segment.deletedAt === null && segment.lastAt < now - days * DAY_MS)
      .slice(0, DELETIONS_PER_RING)
    // Oldest first, and only a prefix of the log: a kept segment is never preceded by a deleted one's gap.
    const kept = this.index.all.find((segment) => segment.deletedAt === null)
    if (expired.length > 0 && kept !== expired[0]) expired = []
    // The state at the cut must stay rebuildable at the current state version: no deletion past the
    // last boundary that has its snapshot (a refold writes them; see refoldArchive).
    const stateVersion = this.actor.entity.stateVersion
    while (
      expired.length > 0 &&
      sql
        .exec(
          "SELECT 1 FROM snapshots WHERE seq = ? AND state_version = ?",
          expired[expired.length - 1]!.last,
          stateVersion,
        )
        .toArray().length === 0
    )
      expired = expired.slice(0, -1)
    if (expired.length > 0) {
      this.storage.transactionSync(() => {
        for (const segment of expired)
          sql.exec("UPDATE segments SET deleted_at = ? WHERE first_seq = ?", now, segment.first)
      })
      this.index.reload()
    }
    const unpurged = this.index.unpurged(DELETIONS_PER_RING)
    if (unpurged.length > 0) {
      await this.bucket!.delete(unpurged.map((segment) => segment.key))
      this.storage.transactionSync(() => {
        for (const segment of unpurged) sql.exec("UPDATE segments SET purged = 1 WHERE first_seq = ?", segment.first)
      })
      this.index.reload()
    }
    return expired.length
  }

  /**
   * Makes the state at every segment end readable at the current state version, once: after a
   * state version change no snapshot is usable, and recovery (and every read below the tail)
   * would refold the whole archive. From the newest boundary with a usable snapshot, each later
   * segment is loaded alone, folded, released, and the snapshot at its end written.
   * Throws HistoryUnavailable when that fold would start in history retention deleted.
   */
  async refoldArchive(): Promise<number> {
    const segments = this.index.all
    const { entity } = this.actor
    let start = segments.length - 1
    let state: unknown = entity.initial
    for (; start >= 0; start--) {
      const trusted = this.trustedBoundary(segments[start]!)
      if (trusted !== undefined) {
        state = trusted.state
        break
      }
    }
    let written = 0
    for (const segment of segments.slice(start + 1)) {
      if (segment.deletedAt !== null)
        throw new HistoryUnavailable(this.index.firstAvailableSeq - 1, entity.stateVersion)
      for (const event of await this.loadSegment(segment)) state = entity.evolve(state, entity.decodeEvent(event))
      const stateJson = canonicalJson(entity.encodeState(state))
      this.storage.sql.exec(
        "INSERT OR REPLACE INTO snapshots (seq, state_version, state, head_hash, state_hash) VALUES (?, ?, ?, ?, ?)",
        segment.last,
        entity.stateVersion,
        stateJson,
        segment.lastHash,
        sha256(stateJson),
      )
      written++
    }
    return written
  }

  /** The state of the snapshot at a segment's end, if it is at the current state version and bound to the chain. */
  private trustedBoundary(segment: ArchivedSegment): { readonly state: unknown } | undefined {
    const { entity } = this.actor
    const row = this.storage.sql
      .exec(
        "SELECT state, head_hash, state_hash FROM snapshots WHERE seq = ? AND state_version = ?",
        segment.last,
        entity.stateVersion,
      )
      .toArray()[0]
    if (row === undefined || row.head_hash !== segment.lastHash || sha256(row.state as string) !== row.state_hash)
      return undefined
    try {
      return { state: entity.decodeState(JSON.parse(row.state as string)) }
    } catch {
      return undefined
    }
  }

  /** A segment's events: from the cache, or from R2 without keeping them (one fetch shared by concurrent loads). */
  private loadSegment(segment: ArchivedSegment): Promise<ReadonlyArray<StoredEvent>> {
    const cached = this.index.cached(segment)
    return cached === undefined ? this.fetchSegment(segment) : Promise.resolve(cached)
  }

  /** Reads a segment from R2 and checks it is exactly what the index recorded; concurrent reads share one fetch. */
  private fetchSegment(segment: ArchivedSegment): Promise<ReadonlyArray<StoredEvent>> {
    const inFlight = this.loading.get(segment.first)
    if (inFlight !== undefined) return inFlight
    const loading = this.fetchSegmentOnce(segment).finally(() => this.loading.delete(segment.first))
    this.loading.set(segment.first, loading)
    return loading
  }

  private async fetchSegmentOnce(segment: ArchivedSegment): Promise<ReadonlyArray<StoredEvent>> {
    const object = await this.bucket?.get(segment.key)
    if (object === null || object === undefined)
      throw new Error(`emberlog: archived segment ${segment.key} is missing from R2`)
    const events = await gunzipLines(object.body)
    const broken = segmentBreak(segment, events)
    if (broken !== undefined) throw new Error(`emberlog: ${broken.reason}`)
    return events
  }

  /**
   * Runs a read until it no longer needs a segment that is not in memory: each miss loads the
   * segment (kept pinned until the read is done) and the read is called again. Reads have no side
   * effects, so calling again is safe. A read never gets an answer from a segment that failed to load.
   */
  async readThrough<A>(read: () => A | Promise<A>): Promise<A> {
    const pinned: Array<ArchivedSegment> = []
    try {
      for (;;) {
        try {
          return await read()
        } catch (error) {
          const signal = archiveSignal(error)
          if (!(signal instanceof ArchiveMiss)) throw error
          if (pinned.some((segment) => segment.first === signal.segment.first))
            throw new Error(`emberlog: archived segment ${signal.segment.key} was loaded and still missed`)
          this.index.keep(signal.segment, await this.fetchSegment(signal.segment))
          pinned.push(signal.segment)
        }
      }
    } finally {
      for (const segment of pinned) this.index.unpin(segment)
    }
  }

  /**
   * Loads the segments a read from `after` reaches within PREFETCH_BYTES, pinned until the returned
   * release: a subscription's backlog is sent synchronously, so what it reads must be in memory first.
   * Throws HistoryDeleted when `after` is in a deleted segment.
   */
  async prefetch(after: number, reach: PrefetchReach = { bytes: PREFETCH_BYTES }): Promise<() => void> {
    const pinned: Array<ArchivedSegment> = []
    const release = () => {
      for (const segment of pinned) this.index.unpin(segment)
    }
    try {
      let bytes = 0
      // The first segment always (the read makes progress), the next ones while all reads together are within budget.
      const within = (segment: ArchivedSegment) =>
        pinned.length === 0 ||
        (this.index.pinnedBytes + segment.bytes <= PINNED_BYTES_LIMIT &&
          ("bytes" in reach ? bytes < reach.bytes : segment.first <= after + reach.events))
      for (let segment = this.index.segmentOf(after + 1); segment !== undefined && within(segment);) {
        if (segment.deletedAt !== null) throw new HistoryDeleted(this.index.firstAvailableSeq)
        if (this.index.isCached(segment)) this.index.pin(segment)
        else {
          const events = await this.fetchSegment(segment)
          // Another read may have loaded it while this one awaited.
          if (this.index.isCached(segment)) this.index.pin(segment)
          else this.index.keep(segment, events)
        }
        pinned.push(segment)
        bytes += segment.bytes
        segment = this.index.segmentOf(segment.last + 1)
      }
      return release
    } catch (error) {
      release()
      throw error
    }
  }

  /**
   * Walks the archived segments from R2, one at a time: each chained from the hash the one before
   * it ends with, its state refolded and checked against the snapshot at its end. Segments deleted
   * by retention are passed over: the walk starts at the first kept one, from its recorded prevHash
   * and the snapshot at its start. Gives the live tail's start (or the break found).
   */
  async verifySegments(): Promise<
    | { readonly ok: false; readonly report: VerifyReport }
    | {
        readonly ok: true
        readonly seq: number
        readonly hash: string
        readonly state: unknown
        readonly snapshots: number
        readonly from?: number
      }
  > {
    const { entity } = this.actor
    const segments = this.index.all
    const bad = (firstBadSeq: number, reason: string, snapshotSeq?: number) =>
      ({
        ok: false,
        report: { ok: false, firstBadSeq, reason, ...(snapshotSeq === undefined ? {} : { snapshotSeq }) },
      }) as const
    const snapshotAt = (seq: number) =>
      this.storage.sql
        .exec(
          "SELECT state, head_hash, state_hash FROM snapshots WHERE seq = ? AND state_version = ?",
          seq,
          entity.stateVersion,
        )
        .toArray()[0]
    /** The snapshot at `seq` as the chain's hash `hash` there and `state` say it must be. */
    const matches = (seq: number, hash: string, state: unknown) => {
      const row = snapshotAt(seq)
      const stateJson = row?.state as string | undefined
      return (
        row !== undefined &&
        row.head_hash === hash &&
        sha256(stateJson!) === row.state_hash &&
        (state === undefined || canonicalJson(entity.encodeState(state)) === stateJson)
      )
    }
    const firstKept = segments.findIndex((segment) => segment.deletedAt === null)
    const start = firstKept === -1 ? segments.length : firstKept
    let seq = 0
    let hash = GENESIS_HASH
    let state: unknown = entity.initial
    let snapshots = 0
    let from: number | undefined
    if (start > 0) {
      // Deleted history: the chain goes on from the hash the index recorded where it was cut.
      const boundary = segments[start - 1]!
      seq = boundary.last
      hash = boundary.lastHash
      from = seq
      if (!matches(seq, hash, undefined))
        return bad(seq + 1, `the snapshot at seq ${seq}, where retention cut the log, is missing or altered`, seq)
      try {
        state = entity.decodeState(JSON.parse(snapshotAt(seq)!.state as string))
      } catch (error) {
        return bad(seq + 1, `the snapshot at seq ${seq} cannot be read: ${String(error)}`, seq)
      }
      snapshots++
    }
    for (const segment of segments.slice(start)) {
      if (segment.first !== seq + 1 || segment.prevHash !== hash)
        return bad(seq + 1, `the segment index does not chain at seq ${seq}`)
      let events: ReadonlyArray<StoredEvent>
      try {
        const object = await this.bucket?.get(segment.key)
        if (object === null || object === undefined) {
          // Retention marked it deleted since this walk began (it marks first, then deletes): walk the index as it is now.
          if (this.index.segmentOf(segment.first)?.deletedAt !== null) return this.verifySegments()
          return bad(segment.first, `archived segment ${segment.key} is missing`)
        }
        events = await gunzipLines(object.body)
      } catch (error) {
        return bad(segment.first, `archived segment ${segment.key} cannot be read: ${String(error)}`)
      }
      const broken = segmentBreak(segment, events)
      if (broken !== undefined) return bad(broken.firstBadSeq, broken.reason)
      for (const event of events) {
        try {
          state = entity.evolve(state, entity.decodeEvent(event))
        } catch (error) {
          return bad(event.seq, `event ${event.seq} cannot be replayed: ${String(error)}`)
        }
      }
      seq = segment.last
      hash = segment.lastHash
      // None at the current state version (it changed, and no refold wrote one yet): nothing to check there.
      if (snapshotAt(seq) === undefined) continue
      if (!matches(seq, hash, state))
        return bad(seq, `the snapshot at seq ${seq} does not match the state the log gives there`, seq)
      snapshots++
    }
    return { ok: true, seq, hash, state, snapshots, ...(from === undefined ? {} : { from }) }
  }

  /** Deletes every segment object of this actor (its tenant is erased), listed or not (a seal that crashed). */
  async eraseAll(): Promise<number> {
    // First: a seal awaiting its put sees it when the put returns, even if its object lands after the listing.
    this.erasures++
    if (this.bucket === undefined) return 0
    let erased = 0
    let cursor: string | undefined
    do {
      const listed = await this.bucket.list({
        prefix: `${this.actor.name}/`,
        ...(cursor === undefined ? {} : { cursor }),
      })
      if (listed.objects.length > 0) await this.bucket.delete(listed.objects.map((object) => object.key))
      erased += listed.objects.length
      cursor = listed.truncated ? listed.cursor : undefined
    } while (cursor !== undefined)
    this.index.clear()
    return erased
  }
}
