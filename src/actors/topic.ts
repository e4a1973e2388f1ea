/**
 * A topic: a cross-object, append-only log fed by actors' outboxes. Each entry is
 * `{topicSeq, source: {kind, id}, event}`; `topicSeq` is gapless from 1. Deliveries are
 * at-least-once, so the topic keeps the last seq it accepted from every source and
 * skips anything at or below it: each source event lands once, in source seq order.
 */
import { DurableObject } from "cloudflare:workers"
import { PAGE_BYTES, takeWithinBudget, utf8Length } from "../domain/json-size.js"
import type { Source, TopicEntry, WireEvent } from "../core/wire.js"
import type { ObjectStub } from "./stubs.js"
import { Subscribers, acceptSubscription, type LogEntry } from "./subscribers.js"

/** What callers see of a topic: its class's methods, over RPC. */
export type TopicApi = ObjectStub<TopicLog>

export const MAX_TOPIC_PAGE = 1000

const TABLES = [
  `CREATE TABLE IF NOT EXISTS entries (
    topic_seq INTEGER PRIMARY KEY, source_kind TEXT NOT NULL, source_id TEXT NOT NULL,
    source_seq INTEGER NOT NULL, event TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS sources (
    kind TEXT NOT NULL, id TEXT NOT NULL, last_seq INTEGER NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID`,
]

export class TopicLog extends DurableObject {
  private readonly sql: SqlStorage
  private readonly subscribers: Subscribers
  private last = 0
  private created: boolean

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never)
    this.sql = ctx.storage.sql
    // Reads create nothing: the tables come with the first delivery.
    this.created =
      this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'").toArray().length > 0
    if (this.created)
      this.last = (this.sql.exec("SELECT max(topic_seq) AS last FROM entries").one().last as number | null) ?? 0
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"))
    this.subscribers = new Subscribers(
      ctx,
      {
        head: () => this.last,
        readAfter: (after, limit) => this.entries(after, limit, PAGE_BYTES).map(toLogEntry),
        frame: (entry) => JSON.stringify({ type: "entry", entry: entry.payload }),
      },
      { wakeAt: (at) => void this.wakeAt(at) },
    )
  }

  /** Subscribers confirm what they have read (`{"type":"ack","seq":N}`); nothing else is sent on a topic socket. */
  override async webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
    if (typeof message === "string") this.subscribers.receiveAck(socket, message)
  }

  /** The only alarm a topic sets: closing sockets whose token expired. */
  override async alarm(): Promise<void> {
    await this.closeExpired()
  }

  private async closeExpired(): Promise<void> {
    const next = this.subscribers.closeExpired()
    if (next !== undefined) await this.wakeAt(next)
  }

  private async wakeAt(at: number): Promise<void> {
    // An alarm is storage too, and reads create nothing: until the first delivery a timer closes
    // expired sockets (if the object hibernates first, the delivery closes them before sending).
    if (!this.created) {
      setTimeout(() => this.closeExpired(), Math.max(0, at - Date.now()))
      return
    }
    const current = await this.ctx.storage.getAlarm()
    if (current === null || current > at) await this.ctx.storage.setAlarm(at)
  }

  deliver(source: Source, events: ReadonlyArray<WireEvent>): { accepted: number; duplicates: number } {
    let accepted = 0
    this.ctx.storage.transactionSync(() => {
      for (const statement of TABLES) this.sql.exec(statement)
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
        this.sql.exec(
          "INSERT INTO sources (kind, id, last_seq) VALUES (?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET last_seq = excluded.last_seq",
          source.kind,
          source.id,
          lastSeq,
        )
      }
    })
    if (!this.created) {
      this.created = true
      void this.closeExpired()
    }
    const appendedAfter = this.last
    this.last += accepted
    if (accepted > 0) this.subscribers.deliver(this.entries(appendedAfter, accepted).map(toLogEntry))
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

  override async fetch(request: Request): Promise<Response> {
    return acceptSubscription(this.subscribers, request)
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
