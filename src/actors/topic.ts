/**
 * A topic: a cross-object, append-only log fed by actors' outboxes. Each entry is
 * `{topicSeq, source: {kind, id}, event}`; `topicSeq` is gapless from 1. Deliveries are
 * at-least-once, so the topic keeps the last seq it accepted from every source and
 * skips anything at or below it: each source event lands once, in source seq order.
 *
 * Projections fed by a topic live in the topic's object: each is applied in the same
 * transaction as the append that feeds it, so it is never behind its topic. A projection
 * added to a topic that already has entries catches up from the topic's log when the object
 * wakes; a topic with no entries creates nothing, whatever is read.
 *
 * A projection is the topic's guest, so its failure is its own: each is set up and applied in
 * its own savepoint (a nested `transactionSync`) inside the append's transaction. One that
 * throws has what it wrote rolled back, so its tables hold exactly the entries before the one
 * it failed on (a half-applied view is never read); the failure (that entry, the error) is
 * recorded in `projections`, the projection is fed no more and its reads answer 503
 * `projection_failed`, while the append, the topic's reads and subscriptions and the other
 * projections go on. Recovery: at every wake a failed projection is retried from where it
 * stopped (its failed entry first). A deploy restarts every object, so a definition fixed by a
 * deploy recovers at the topic's first wake after it; one still failing records its failure
 * again, and costs nothing until the next wake. (A fix that changes how entries already
 * applied fold is a new projection: give it a new name, and it catches up from the log.)
 */
import { DurableObject } from "cloudflare:workers"
import { PAGE_BYTES, takeWithinBudget, utf8Length } from "../domain/json-size.js"
import type { Source, TopicEntry, WireEvent } from "../core/wire.js"
import type { ActorReply } from "../core/wire.js"
import { parseScopedName } from "../core/names.js"
import { stubOf, type ObjectStub } from "./stubs.js"
import { TOPIC_BATCH_TYPE } from "../domain/protocol.js"
import { SUBSCRIBE_HEADER, Subscribers, acceptSubscription, type LogEntry, type LogSource } from "./subscribers.js"
import { StreamReads, streamReadsSettings } from "./stream-reads.js"
import { LOG_READ, answerLogRead } from "./log-streams.js"
import { AlarmOwner } from "./alarm.js"
import * as Usage from "./usage.js"
import {
  DIRECTORY_TOPIC,
  TenantDirectory,
  directoryName,
  type DirectoryApi,
  type DirectoryEntryType,
  type DirectoryErasure,
  type DirectoryKey,
  type DirectoryRemoval,
  type DirectoryMethods,
  type DirectoryPage,
  type DirectoryQuery,
} from "./directory.js"
import {
  DeletionCoordinator,
  deletionTenant,
  type DeletionBindings,
  type DeletionMethods,
  type DeletionRequester,
  type DeletionStatus,
  type ErasedCounts,
  type TenantEraser,
} from "./deletion.js"

/**
 * A view folded from one topic's entries, kept in tables of the topic's object. `apply` runs
 * inside the append's transaction (tables set up first); the host keeps how far each
 * projection has read, and hands `read` that position.
 */
export interface TopicProjection<V = unknown> {
  readonly name: string
  /** The topic that feeds it (in each tenant, that tenant's topic of this name). */
  readonly topic: string
  /** Creates the projection's tables (idempotent). */
  readonly setup: (sql: SqlStorage) => void
  /**
   * Folds entries (contiguous, oldest first, none applied before) into the tables. If it throws,
   * what it wrote is rolled back and the projection stops at that entry until the next wake.
   */
  readonly apply: (sql: SqlStorage, entries: ReadonlyArray<TopicEntry>) => void
  /** The view, `topicSeq` being the last entry applied (only called once the tables exist). */
  readonly read: (sql: SqlStorage, topicSeq: number) => V
  /** The view of a topic with no entries. */
  readonly empty: V
}

export const defineProjection = <V>(projection: TopicProjection<V>): TopicProjection<V> => projection

/** What callers see of a topic: its class's methods, over RPC. */
export type TopicApi = ObjectStub<EmberlogTopicObject>

export const MAX_TOPIC_PAGE = 1000

const TABLES = [
  `CREATE TABLE IF NOT EXISTS entries (
    topic_seq INTEGER PRIMARY KEY, source_kind TEXT NOT NULL, source_id TEXT NOT NULL,
    source_seq INTEGER NOT NULL, event TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS sources (
    kind TEXT NOT NULL, id TEXT NOT NULL, last_seq INTEGER NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID`,
  // failed_seq and error: the entry a failed projection stopped at (NULL: its setup failed) and why.
  `CREATE TABLE IF NOT EXISTS projections (
    name TEXT PRIMARY KEY, topic_seq INTEGER NOT NULL, failed_seq INTEGER, error TEXT) WITHOUT ROWID`,
]

/** Why a projection stopped: the entry it threw on (null: its setup threw) and the error's message. */
interface ProjectionFailure {
  readonly topicSeq: number | null
  readonly message: string
}

/** An error message as recorded (bounded: it is stored in a row and sent in replies). */
const messageOf = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  return message.length > 1000 ? `${message.slice(0, 1000)}…` : message
}

const CATCH_UP_PAGE = 1000

type Delivered = { accepted: number; duplicates: number }

/**
 * A topic object's RPC methods. Named because declarations cannot be emitted for an anonymous class type with private members (TS4094).
 * The same class also hosts, under names no topic can take, a tenant's directory (actors/directory.ts) and the
 * coordinator of its deletion (actors/deletion.ts): their methods answer only under those names.
 */
export interface EmberlogTopicObject extends DurableObject, DirectoryMethods, DeletionMethods {
  /** Synchronous once the topic is in its tenant's directory (every delivery after its first). */
  deliver(source: Source, events: ReadonlyArray<WireEvent>): Delivered | Promise<Delivered>
  readEntries(after: number, limit: number): { entries: ReadonlyArray<TopicEntry>; next: number | null; head: number }
  head(): number
  readProjection(name: string): ActorReply<unknown>
  /** A tenant's usage counters (actors/usage.ts): only in the object named USAGE_OBJECT, never a topic's. */
  recordUsage(rows: ReadonlyArray<Usage.UsageRow>): void
  readUsage(from: string, to: string): ReadonlyArray<Usage.UsageRow>
  eraseUsage(): Promise<void>
  /** Erases everything the object holds (a topic's entries and projections, a directory) and closes its streams. */
  eraseAll(): Promise<ErasedCounts>
  fetch(request: Request): Promise<Response>
}

export type TopicClass = new (ctx: DurableObjectState, env: unknown) => EmberlogTopicObject

export interface TopicClassOptions {
  /** The pluggable steps of a tenant's deletion (usage, OAuth grants), beside erasing its objects. */
  readonly erasers?: ReadonlyArray<TenantEraser>
}

/** The one topic class, hosting `projections` in the objects of the topics that feed them. */
export const topicClass = (
  projections: ReadonlyArray<TopicProjection<any>> = [],
  options: TopicClassOptions = {},
): TopicClass => {
  const names = new Set<string>()
  for (const { name } of projections) {
    if (names.has(name)) throw new Error(`emberlog: two projections are named ${JSON.stringify(name)}`)
    names.add(name)
  }
  return class EmberlogTopic extends TopicLog {
    constructor(ctx: DurableObjectState, env: unknown) {
      const name = ctx.id.name === undefined ? undefined : parseScopedName(ctx.id.name).name
      super(
        ctx,
        env,
        projections.filter((projection) => projection.topic === name),
        options.erasers ?? [],
      )
    }
  }
}

/** What an object of the topic class is, by its name. */
type Role =
  | { readonly type: "topic"; readonly tenant: string; readonly name: string }
  | { readonly type: "directory"; readonly directory: TenantDirectory }
  | { readonly type: "deletion"; readonly coordinator: DeletionCoordinator }

/** The marker a topic writes once it is in its tenant's directory. */
const LISTED = "CREATE TABLE IF NOT EXISTS emberlog_listed (listed INTEGER)"

const hasTable = (sql: SqlStorage, name: string) =>
  sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0

class TopicLog extends DurableObject implements EmberlogTopicObject {
  private readonly sql: SqlStorage
  private readonly subscribers: Subscribers
  private readonly log: LogSource
  /** Durable Streams readers of the entries (`/log`: long-polls and SSE), woken by every append. */
  private readonly logReads = new StreamReads(streamReadsSettings(this.env))
  /** An alarm is storage too, and reads create nothing: until the first delivery a timer stands in. */
  private alarms: AlarmOwner
  private last = 0
  private created: boolean
  /** Whether this topic is in its tenant's directory (then deliveries need no registration). */
  private listed: boolean
  /** Whether the marker of that is stored (written with the first append after the registration). */
  private marked: boolean
  private readonly role: Role
  /** Counts the object's erasures (a registration in flight across one is made again). */
  private erasures = 0
  /** Projections stopped by a failure, until the object's next wake retries them. */
  private readonly failures = new Map<string, ProjectionFailure>()

  constructor(
    ctx: DurableObjectState,
    env: unknown,
    private readonly projections: ReadonlyArray<TopicProjection> = [],
    erasers: ReadonlyArray<TenantEraser> = [],
  ) {
    super(ctx, env as never)
    this.sql = ctx.storage.sql
    const name = ctx.id.name ?? ""
    const deleting = deletionTenant(name)
    const scoped = parseScopedName(name)
    this.role =
      deleting !== undefined
        ? {
            type: "deletion",
            coordinator: new DeletionCoordinator(ctx.storage, env as DeletionBindings, deleting, erasers),
          }
        : scoped.name === DIRECTORY_TOPIC
          ? { type: "directory", directory: new TenantDirectory(ctx.storage) }
          : { type: "topic", tenant: scoped.tenant, name: scoped.name }
    this.listed = this.marked = hasTable(this.sql, "emberlog_listed")
    // Reads create nothing: the tables come with the first delivery.
    this.created =
      this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'").toArray().length > 0
    if (this.created) {
      this.last = (this.sql.exec("SELECT max(topic_seq) AS last FROM entries").one().last as number | null) ?? 0
      // A projection added to a topic that already has entries (or one behind after a deploy, or
      // one that failed) catches up first.
      ctx.storage.transactionSync(() => {
        // Once a wake (not on every delivery): tables added since the object was created.
        for (const statement of TABLES) this.sql.exec(statement)
        this.catchUp()
      })
    }
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"))
    this.alarms = this.newAlarms()
    if (this.created) void ctx.blockConcurrencyWhile(() => this.alarms.load())
    this.log = {
      head: () => this.last,
      readAfter: (after, limit) => this.entries(after, limit, PAGE_BYTES).map(toLogEntry),
      frame: (entry) => JSON.stringify({ type: "entry", entry: entry.payload }),
      batchType: TOPIC_BATCH_TYPE,
      origin: () => this.entries(0, 1)[0]?.event.hash,
    }
    this.subscribers = new Subscribers(ctx, this.log, { wakeAt: (at) => void this.alarms.wakeAt(at) })
  }

  /** The owner of the object's alarm: at construction, and again once the storage (and the alarm) was erased. */
  private newAlarms(): AlarmOwner {
    const { ctx } = this
    return new AlarmOwner(
      {
        getAlarm: () => ctx.storage.getAlarm(),
        setAlarm: (at) => ctx.storage.setAlarm(at),
        hasStorage: () => this.created,
        setTimer: (run, delayMs) => void setTimeout(run, delayMs),
        now: () => Date.now(),
      },
      [
        {
          name: "socket expiry",
          dueAt: () => this.subscribers.nextExpiry(),
          run: (now) => void this.subscribers.closeExpired(now),
        },
      ],
    )
  }

  /** Subscribers confirm what they have read (`{"type":"ack","seq":N}`); nothing else is sent on a topic socket. */
  override async webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (typeof message === "string") this.subscribers.receiveAck(socket, message)
  }

  /** The only alarm a topic sets: closing sockets whose token expired (a deletion's coordinator: its steps). */
  override async alarm(): Promise<void> {
    if (this.role.type === "deletion") return this.role.coordinator.run()
    await this.alarms.ring()
  }

  deliver(source: Source, events: ReadonlyArray<WireEvent>): Delivered | Promise<Delivered> {
    if (this.listed || this.role.type !== "topic") return this.append(source, events)
    return this.list(this.role).then(() => this.append(source, events))
  }

  /** Puts the topic in its tenant's directory before its first delivery writes anything. */
  private async list(role: Extract<Role, { type: "topic" }>): Promise<void> {
    const namespace = (this.env as { EMBERLOG_TOPIC?: DurableObjectNamespace }).EMBERLOG_TOPIC
    if (namespace !== undefined) {
      const directory = stubOf<DirectoryMethods>(namespace, directoryName(role.tenant)) as DirectoryApi
      // Erased while the registration was on its way (a deletion's page may have read it already and
      // would remove it): registered again, at a generation that page did not read.
      for (let erasures = -1; erasures !== this.erasures;) {
        erasures = this.erasures
        await directory.registerInDirectory([{ type: "topic", kind: "", id: role.name }])
      }
    }
    this.listed = true
  }

  private append(source: Source, events: ReadonlyArray<WireEvent>): Delivered {
    let accepted = 0
    const marking = this.listed && !this.marked
    this.ctx.storage.transactionSync(() => {
      if (!this.created) for (const statement of TABLES) this.sql.exec(statement)
      if (marking) this.sql.exec(LISTED)
      const row = this.sql
        .exec("SELECT last_seq FROM sources WHERE kind = ? AND id = ?", source.kind, source.id)
        .toArray()[0]
      let lastSeq = (row?.last_seq as number | undefined) ?? 0
      for (const event of events) {
        if (event.seq <= lastSeq) continue
        this.sql.exec(
          "INSERT INTO entries (topic_seq, source_kind, source_id, source_seq, event) VALUES (?, ?, ?, ?, ?)",
          this.last + accepted + 1,
          source.kind,
          source.id,
          event.seq,
          JSON.stringify(event),
        )
        lastSeq = event.seq
        accepted++
      }
      if (accepted > 0) {
        this.feedProjections(this.last, this.last + accepted)
        this.sql.exec(
          "INSERT INTO sources (kind, id, last_seq) VALUES (?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET last_seq = excluded.last_seq",
          source.kind,
          source.id,
          lastSeq,
        )
      }
    })
    if (marking) this.marked = true
    if (!this.created) {
      this.created = true
      // Sockets that expired while only a timer stood in for the alarm are closed before anything is sent.
      this.subscribers.closeExpired()
      void this.alarms.reschedule()
    }
    const appendedAfter = this.last
    this.last += accepted
    if (accepted > 0) {
      this.subscribers.deliver(this.entries(appendedAfter, accepted).map(toLogEntry))
      this.logReads.notify()
    }
    return { accepted, duplicates: events.length - accepted }
  }

  /** At most `limit` entries and PAGE_BYTES of JSON, but always one; `next` is the last one's topicSeq. */
  readEntries(after: number, limit: number): { entries: ReadonlyArray<TopicEntry>; next: number | null; head: number } {
    const entries = this.entries(after, Math.min(Math.max(1, limit), MAX_TOPIC_PAGE), PAGE_BYTES)
    const lastSeq = entries[entries.length - 1]?.topicSeq
    return { entries, next: lastSeq !== undefined && lastSeq < this.last ? lastSeq : null, head: this.last }
  }

  head(): number {
    return this.last
  }

  /** A projection's view (answered from its tables; nothing is written). */
  readProjection(name: string): ActorReply<unknown> {
    const projection = this.projections.find((candidate) => candidate.name === name)
    if (projection === undefined) {
      return {
        ok: false,
        error: { _tag: "InvalidInput", code: "unknown_projection", message: `This topic feeds no projection ${name}` },
      }
    }
    const failure = this.failures.get(name)
    if (failure !== undefined) {
      const where = failure.topicSeq === null ? "in its setup" : `on topic entry ${failure.topicSeq}`
      return {
        ok: false,
        error: {
          _tag: "Unavailable",
          code: "projection_failed",
          message: `Projection ${name} failed ${where}: ${failure.message}. It is fed no more until the topic's next wake retries it (a deploy with a fix recovers it)`,
          details: { projection: name, topicSeq: failure.topicSeq, error: failure.message },
        },
      }
    }
    if (!this.created) return { ok: true, value: projection.empty }
    return { ok: true, value: projection.read(this.sql, this.rowOf(name).topicSeq) }
  }

  recordUsage(rows: ReadonlyArray<Usage.UsageRow>): void {
    Usage.recordUsage(this.ctx, rows)
  }

  readUsage(from: string, to: string): ReadonlyArray<Usage.UsageRow> {
    return Usage.readUsage(this.ctx, from, to)
  }

  eraseUsage(): Promise<void> {
    return Usage.eraseUsage(this.ctx)
  }

  private rowOf(name: string): { topicSeq: number; failedSeq: number | null; error: string | null } {
    const row = this.sql.exec("SELECT topic_seq, failed_seq, error FROM projections WHERE name = ?", name).toArray()[0]
    return {
      topicSeq: (row?.topic_seq as number | undefined) ?? 0,
      failedSeq: (row?.failed_seq as number | null | undefined) ?? null,
      error: (row?.error as string | null | undefined) ?? null,
    }
  }

  /** Applies entries `from` < topicSeq ≤ `to` to every projection not stopped (inside the caller's transaction). */
  private feedProjections(from: number, to: number): void {
    if (this.projections.length === 0) return
    const fed = { from, entries: this.entriesIn(from, to) }
    for (const projection of this.projections) {
      if (!this.failures.has(projection.name)) this.advance(projection, to, fed)
    }
  }

  /** Brings every projection up to the head from the log, failed ones too (inside the caller's transaction). */
  private catchUp(): void {
    if (this.projections.length === 0) return
    for (const statement of TABLES) this.sql.exec(statement)
    for (const projection of this.projections) this.advance(projection, this.last)
  }

  /**
   * Sets `projection` up and applies the entries from where it stopped up to `to` (`fed`: those
   * just appended, when it stopped right before them), each step in its own savepoint, and
   * records how far it got and whether it failed (inside the caller's transaction).
   */
  private advance(
    projection: TopicProjection,
    to: number,
    fed?: { readonly from: number; readonly entries: ReadonlyArray<TopicEntry> },
  ): void {
    const row = this.rowOf(projection.name)
    let at = row.topicSeq
    let failure: ProjectionFailure | undefined
    try {
      this.ctx.storage.transactionSync(() => projection.setup(this.sql))
    } catch (error) {
      failure = { topicSeq: null, message: messageOf(error) }
    }
    while (failure === undefined && at < to) {
      const entries =
        fed !== undefined && fed.from === at ? fed.entries : this.entriesIn(at, Math.min(to, at + CATCH_UP_PAGE))
      if (entries.length === 0) break
      ;({ at, failure } = this.applyIsolated(projection, entries))
    }
    const failedSeq = failure === undefined ? null : failure.topicSeq
    const error = failure === undefined ? null : failure.message
    if (at !== row.topicSeq || failedSeq !== row.failedSeq || error !== row.error) {
      this.sql.exec(
        `INSERT INTO projections (name, topic_seq, failed_seq, error) VALUES (?, ?, ?, ?) ON CONFLICT (name)
         DO UPDATE SET topic_seq = excluded.topic_seq, failed_seq = excluded.failed_seq, error = excluded.error`,
        projection.name,
        at,
        failedSeq,
        error,
      )
      if (failure !== undefined) {
        const where = failedSeq === null ? "in its setup" : `on topic entry ${failedSeq}`
        console.error(
          `emberlog: projection ${projection.name} failed ${where}; it is fed no more until the next wake`,
          error,
        )
      }
    }
    if (failure === undefined) this.failures.delete(projection.name)
    else this.failures.set(projection.name, failure)
  }

  /**
   * Applies `entries` (contiguous, starting right after the projection's position) in one
   * savepoint; if that throws, one at a time, so the failure names its entry and the view keeps
   * every entry before it. Returns the last entry applied and the failure, if any.
   */
  private applyIsolated(
    projection: TopicProjection,
    entries: ReadonlyArray<TopicEntry>,
  ): { at: number; failure: ProjectionFailure | undefined } {
    const before = entries[0]!.topicSeq - 1
    try {
      this.ctx.storage.transactionSync(() => projection.apply(this.sql, entries))
      return { at: entries[entries.length - 1]!.topicSeq, failure: undefined }
    } catch (error) {
      if (entries.length === 1)
        return { at: before, failure: { topicSeq: entries[0]!.topicSeq, message: messageOf(error) } }
    }
    let at = before
    for (const entry of entries) {
      const one = this.applyIsolated(projection, [entry])
      if (one.failure !== undefined) return one
      at = one.at
    }
    return { at, failure: undefined }
  }

  /** Entries `from` < topicSeq ≤ `to`, read within the current transaction (no budget: a projection needs them all). */
  private entriesIn(from: number, to: number): Array<TopicEntry> {
    return this.sql
      .exec("SELECT * FROM entries WHERE topic_seq > ? AND topic_seq <= ? ORDER BY topic_seq", from, to)
      .toArray()
      .map((row) => ({
        topicSeq: row.topic_seq as number,
        source: { kind: row.source_kind as string, id: row.source_id as string },
        event: JSON.parse(row.event as string) as WireEvent,
      }))
  }

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get(SUBSCRIBE_HEADER) === LOG_READ) {
      const erasures = this.erasures
      return answerLogRead(this.logReads, this.log, this.ctx.id.name ?? "", request, () => erasures !== this.erasures)
    }
    return acceptSubscription(this.subscribers, request)
  }

  async eraseAll(): Promise<ErasedCounts> {
    const entries = this.role.type === "topic" ? this.last : 0
    this.erasures++
    this.subscribers.closeAll()
    this.logReads.closeAll()
    this.last = 0
    this.created = false
    this.listed = this.marked = false
    this.failures.clear()
    // Every table and the alarm: nothing of this object's is left to read.
    await this.ctx.storage.deleteAlarm()
    await this.ctx.storage.deleteAll()
    // The alarm is gone: an owner that still believed it set would never set it again.
    this.alarms = this.newAlarms()
    if (this.role.type === "directory") this.role.directory.forget()
    return this.role.type === "topic" ? { entries } : {}
  }

  private directoryRole(): TenantDirectory {
    if (this.role.type !== "directory") throw new Error("emberlog: this object is not a tenant directory")
    return this.role.directory
  }

  registerInDirectory(keys: ReadonlyArray<DirectoryKey>): number {
    return this.directoryRole().registerInDirectory(keys)
  }

  listDirectory(query: DirectoryQuery): DirectoryPage {
    return this.directoryRole().listDirectory(query)
  }

  removeFromDirectory(keys: ReadonlyArray<DirectoryRemoval>): number {
    return this.directoryRole().removeFromDirectory(keys)
  }

  countDirectory(): Record<DirectoryEntryType, number> {
    return this.directoryRole().countDirectory()
  }

  eraseIfEmpty(): DirectoryErasure {
    return this.directoryRole().eraseIfEmpty()
  }

  private coordinator(): DeletionCoordinator {
    if (this.role.type !== "deletion") throw new Error("emberlog: this object is not a deletion coordinator")
    return this.role.coordinator
  }

  requestDeletion(tenant: string, requestedBy: string | DeletionRequester): Promise<DeletionStatus> {
    return this.coordinator().requestDeletion(tenant, requestedBy)
  }

  deletionStatus(): Promise<DeletionStatus | undefined> {
    return this.coordinator().deletionStatus()
  }

  /**
   * Entries after `after`, at most `limit` and about `budget` bytes of JSON (never fewer
   * than one). The cursor is read lazily, so rows past the budget are never loaded.
   */
  private entries(after: number, limit: number, budget = Number.POSITIVE_INFINITY): Array<TopicEntry> {
    if (!this.created) return []
    const rows = this.sql.exec("SELECT * FROM entries WHERE topic_seq > ? ORDER BY topic_seq LIMIT ?", after, limit)
    // The stored event is already JSON; the rest of an entry is a few short fields.
    const size = (row: Record<string, SqlStorageValue>) =>
      utf8Length(row.event as string) + utf8Length(row.source_kind as string) + utf8Length(row.source_id as string) + 64
    return takeWithinBudget(rows, budget, size).map((row) => ({
      topicSeq: row.topic_seq as number,
      source: { kind: row.source_kind as string, id: row.source_id as string },
      event: JSON.parse(row.event as string) as WireEvent,
    }))
  }
}

const toLogEntry = (entry: TopicEntry): LogEntry => ({
  position: entry.topicSeq,
  name: entry.event.type,
  payload: entry,
})
