/**
 * Hosts the memory entity: content and a full-text search index beside the log.
 * `memory_content` holds each memory's text (erased on Forget); `memory_items` and
 * `memory_fts` (SQLite FTS5, ranked by bm25) form the search projection, written in the
 * same transaction as the events and rebuildable from the log plus the content.
 *
 * Content over INLINE_CONTENT_BYTES lives in R2 (`MEMORY_BUCKET`), addressed by the
 * object's id and the content hash; SQLite keeps its first INLINE_CONTENT_BYTES, which is
 * what search indexes and returns (`truncated: true`). R2 writes cannot join a SQLite
 * transaction, so the object is written before the command's transaction, under a row in
 * `memory_blobs`; a row whose hash is not a live memory (forgotten, or its command never
 * committed) is swept: its object deleted, then the row. Sweeps run after a Forget and on
 * the alarm, which a restart sets when rows are left over from a crash.
 */
import type { ActorReply, CommandOutcome, CommandRequest, WireEvent } from "./actor-core.js"
import { actorClass, type ActorEnv, type Projection } from "./durable-actor.js"
import { MAX_MEMORY_BYTES, Memory, contentHash } from "../domain/memory.js"

/** Content larger than this (UTF-8 bytes) is kept in R2; a SQLite row holds at most 2 MB. */
export const INLINE_CONTENT_BYTES = 1024 * 1024

export interface MemoryEnv extends ActorEnv {
  readonly MEMORY_BUCKET?: R2Bucket
}

const TABLES = [
  "CREATE TABLE IF NOT EXISTS memory_content (hash TEXT PRIMARY KEY, content TEXT NOT NULL) WITHOUT ROWID",
  `CREATE TABLE IF NOT EXISTS memory_items (hash TEXT PRIMARY KEY, tags TEXT NOT NULL, memory_type TEXT,
     stored_at INTEGER NOT NULL, size INTEGER NOT NULL) WITHOUT ROWID`,
  "CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(hash UNINDEXED, content, tags)",
  "CREATE TABLE IF NOT EXISTS memory_blobs (hash TEXT PRIMARY KEY) WITHOUT ROWID",
]

const utf8 = new TextEncoder()

/** The longest prefix of `text` within `bytes` UTF-8 bytes, cut between code points. */
export const utf8Prefix = (text: string, bytes: number): string => {
  const encoded = utf8.encode(text)
  if (encoded.byteLength <= bytes) return text
  let end = bytes
  while (end > 0 && (encoded[end]! & 0xc0) === 0x80) end--
  return new TextDecoder().decode(encoded.subarray(0, end))
}

const tagsOf = (sql: SqlStorage, hash: string): Array<string> => {
  const row = sql.exec("SELECT tags FROM memory_items WHERE hash = ?", hash).toArray()[0]
  return row === undefined ? [] : (JSON.parse(row.tags as string) as Array<string>)
}

const setTags = (sql: SqlStorage, hash: string, tags: ReadonlyArray<string>) => {
  sql.exec("UPDATE memory_items SET tags = ? WHERE hash = ?", JSON.stringify(tags), hash)
  sql.exec("UPDATE memory_fts SET tags = ? WHERE hash = ?", tags.join(" "), hash)
}

/** Indexes one event; `content` is the stored text when the event is a Store. */
const index = (sql: SqlStorage, event: WireEvent, content: string | undefined) => {
  const data = event.data as { hash: string; tags?: Array<string>; memoryType?: string | null; size?: number }
  switch (event.type) {
    case "Stored": {
      if (content === undefined) return
      sql.exec(
        "INSERT OR REPLACE INTO memory_items (hash, tags, memory_type, stored_at, size) VALUES (?, ?, ?, ?, ?)",
        data.hash, JSON.stringify(data.tags ?? []), data.memoryType ?? null, event.meta.at, data.size ?? 0,
      )
      sql.exec("DELETE FROM memory_fts WHERE hash = ?", data.hash)
      sql.exec("INSERT INTO memory_fts (hash, content, tags) VALUES (?, ?, ?)", data.hash, content, (data.tags ?? []).join(" "))
      return
    }
    case "Tagged":
      return setTags(sql, data.hash, [...new Set([...tagsOf(sql, data.hash), ...(data.tags ?? [])])])
    case "Untagged":
      return setTags(sql, data.hash, tagsOf(sql, data.hash).filter((tag) => !(data.tags ?? []).includes(tag)))
    case "Forgotten":
      // Erased everywhere it lives outside the log: the content itself, and the index.
      sql.exec("DELETE FROM memory_content WHERE hash = ?", data.hash)
      sql.exec("DELETE FROM memory_items WHERE hash = ?", data.hash)
      sql.exec("DELETE FROM memory_fts WHERE hash = ?", data.hash)
      return
  }
}

export const memoryProjection: Projection = {
  setup: (sql) => {
    for (const statement of TABLES) sql.exec(statement)
  },
  apply: (sql, events, command) => {
    const stored = (command as { type?: string; content?: string }).type === "Store" ? (command as { content: string }).content : undefined
    const content = stored === undefined ? undefined : utf8Prefix(stored, INLINE_CONTENT_BYTES)
    for (const event of events) {
      if (event.type === "Stored" && content !== undefined) sql.exec("INSERT OR REPLACE INTO memory_content (hash, content) VALUES (?, ?)", (event.data as { hash: string }).hash, content)
      index(sql, event, content)
    }
  },
  rebuild: (sql, events) => {
    sql.exec("DELETE FROM memory_items")
    sql.exec("DELETE FROM memory_fts")
    for (const event of events) {
      const hash = (event.data as { hash: string }).hash
      const row = event.type === "Stored" ? sql.exec("SELECT content FROM memory_content WHERE hash = ?", hash).toArray()[0] : undefined
      index(sql, event, row?.content as string | undefined)
    }
  },
}

export interface MemoryQuery {
  readonly q?: string
  readonly tags?: ReadonlyArray<string>
  readonly match?: "all" | "any"
  readonly type?: string
  /** ms epoch bounds on when a memory was stored. */
  readonly from?: number
  readonly to?: number
  readonly limit: number
  readonly offset: number
}

export interface MemoryHit {
  readonly hash: string
  /** The whole content, or its first INLINE_CONTENT_BYTES when `truncated` (the rest is in R2). */
  readonly content: string
  readonly truncated: boolean
  /** The content's length in UTF-8 bytes. */
  readonly size: number
  readonly tags: ReadonlyArray<string>
  readonly type: string | null
  readonly storedAt: number
  /** bm25 relevance (higher is better), or null without a text query. */
  readonly score: number | null
}

/** A memory as `item` returns it: where its whole content is when SQLite holds only a prefix. */
export interface StoredMemory extends MemoryHit {
  readonly blobKey: string | null
}

/** Words of a free-text query, each quoted so FTS5 syntax in user input is inert. */
const ftsQuery = (q: string) =>
  [...q.matchAll(/[\p{L}\p{N}_]+/gu)].map(([word]) => `"${word}"`).join(" ")

const HIT_COLUMNS = "i.hash, c.content, i.size, i.tags, i.memory_type, i.stored_at"

const toHit = (row: Record<string, SqlStorageValue>): MemoryHit => ({
  hash: row.hash as string,
  content: row.content as string,
  truncated: (row.size as number) > INLINE_CONTENT_BYTES,
  size: row.size as number,
  tags: JSON.parse(row.tags as string) as Array<string>,
  type: (row.memory_type as string | null) ?? null,
  storedAt: row.stored_at as number,
  score: row.score === null || row.score === undefined ? null : -(row.score as number),
})

/** The content of a Store command that belongs in R2, with its hash; nothing for anything else. */
const largeContent = (command: unknown): { readonly hash: string; readonly content: string } | undefined => {
  const { type, content } = (typeof command === "object" && command !== null ? command : {}) as { type?: unknown; content?: unknown }
  if (type !== "Store" || typeof content !== "string" || content.length * 3 <= INLINE_CONTENT_BYTES) return undefined
  const size = utf8.encode(content).byteLength
  // Content the entity refuses (too large) is never uploaded: decide answers for it.
  return size > INLINE_CONTENT_BYTES && size <= MAX_MEMORY_BYTES ? { hash: contentHash(content), content } : undefined
}

const unavailable = (message: string): ActorReply<never> => ({ ok: false, error: { _tag: "Unavailable", code: "storage_unavailable", message } })

export class MemoryActor extends actorClass(Memory, { project: memoryProjection }) {
  /** R2 writes and deletes run one at a time, so a sweep never races an upload of the same hash. */
  private blobWork: Promise<unknown> = Promise.resolve()

  constructor(ctx: DurableObjectState, env: MemoryEnv) {
    super(ctx, env)
    // Rows left by a crash (a Forget before its delete, an upload whose command never committed) are swept on the alarm.
    void ctx.blockConcurrencyWhile(async () => {
      if (this.strayBlobs().length > 0) await this.scheduleAlarm(Date.now())
    })
  }

  private get bucket(): R2Bucket | undefined {
    return (this.env as MemoryEnv).MEMORY_BUCKET
  }

  private blobKey(hash: string): string {
    return `${this.ctx.id.toString()}/${hash}`
  }

  private exclusively<A>(work: () => Promise<A>): Promise<A> {
    const run = this.blobWork.then(work)
    this.blobWork = run.catch(() => undefined)
    return run
  }

  private strayBlobs(): Array<string> {
    return this.ctx.storage.sql
      .exec("SELECT hash FROM memory_blobs WHERE hash NOT IN (SELECT hash FROM memory_items)")
      .toArray()
      .map((row) => row.hash as string)
  }

  private isLive(hash: string): boolean {
    return this.ctx.storage.sql.exec("SELECT 1 FROM memory_items WHERE hash = ?", hash).toArray().length > 0
  }

  /** Deletes the R2 objects of memories that are not live, then their rows. */
  private sweepBlobs(): Promise<void> {
    return this.exclusively(async () => {
      const bucket = this.bucket
      const stray = this.strayBlobs()
      if (stray.length === 0 || bucket === undefined) return
      await bucket.delete(stray.map((hash) => this.blobKey(hash)))
      for (const hash of stray) if (!this.isLive(hash)) this.ctx.storage.sql.exec("DELETE FROM memory_blobs WHERE hash = ?", hash)
    })
  }

  override async command(request: CommandRequest): Promise<ActorReply<CommandOutcome>> {
    const large = largeContent(request.command)
    const reply = large === undefined || this.isLive(large.hash) ? this.commit(request) : await this.storeLarge(request, large)
    if (reply.ok && !reply.value.replayed && reply.value.events.some((event) => event.type === "Forgotten")) {
      // The Forget is committed; a failed delete is retried by the alarm, never reported as the command failing.
      await this.sweepBlobs().catch(async (error) => {
        console.warn("emberlog: deleting forgotten content from R2 failed; the alarm retries", error)
        await this.scheduleAlarm(Date.now() + 1_000)
      })
    }
    return reply
  }

  private storeLarge(request: CommandRequest, large: { readonly hash: string; readonly content: string }): Promise<ActorReply<CommandOutcome>> {
    const bucket = this.bucket
    if (bucket === undefined) {
      return Promise.resolve(unavailable(`Content over ${INLINE_CONTENT_BYTES} bytes is kept in R2: bind an R2 bucket as MEMORY_BUCKET`))
    }
    return this.exclusively(async () => {
      this.ctx.storage.sql.exec("INSERT OR IGNORE INTO memory_blobs (hash) VALUES (?)", large.hash)
      try {
        await bucket.put(this.blobKey(large.hash), large.content)
      } catch (error) {
        console.error("emberlog: writing memory content to R2 failed", error)
        await this.scheduleAlarm(Date.now())
        return unavailable("Writing the content to R2 failed; nothing was stored, retry the command")
      }
      const reply = this.commit(request)
      // Refused or replayed without storing it: the object is garbage unless the memory is live.
      if (!this.isLive(large.hash)) await this.scheduleAlarm(Date.now())
      return reply
    })
  }

  override async alarm(): Promise<void> {
    let sweepFailed = false
    await this.sweepBlobs().catch((error) => {
      sweepFailed = true
      console.warn("emberlog: sweeping memory content in R2 failed; retrying", error)
    })
    await super.alarm()
    if (sweepFailed) await this.scheduleAlarm(Date.now() + 5_000)
  }

  search(query: MemoryQuery): { items: ReadonlyArray<MemoryHit>; next: string | null } {
    const sql = this.ctx.storage.sql
    const text = ftsQuery(query.q ?? "")
    const where: Array<string> = []
    const bindings: Array<SqlStorageValue> = []
    if (text.length > 0) {
      where.push("memory_fts MATCH ?")
      bindings.push(text)
    }
    if (query.type !== undefined) {
      where.push("i.memory_type = ?")
      bindings.push(query.type)
    }
    if (query.from !== undefined) {
      where.push("i.stored_at >= ?")
      bindings.push(query.from)
    }
    if (query.to !== undefined) {
      where.push("i.stored_at <= ?")
      bindings.push(query.to)
    }
    const tags = [...new Set(query.tags ?? [])]
    if (tags.length > 0) {
      const list = tags.map(() => "?").join(", ")
      where.push(
        query.match === "all"
          ? `(SELECT count(DISTINCT value) FROM json_each(i.tags) WHERE value IN (${list})) = ${tags.length}`
          : `EXISTS (SELECT 1 FROM json_each(i.tags) WHERE value IN (${list}))`,
      )
      bindings.push(...tags)
    }
    const rows = sql
      .exec(
        `SELECT ${HIT_COLUMNS}, ${text.length > 0 ? "bm25(memory_fts)" : "NULL"} AS score
         FROM memory_fts f JOIN memory_items i ON i.hash = f.hash JOIN memory_content c ON c.hash = i.hash
         ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY ${text.length > 0 ? "score, i.stored_at DESC" : "i.stored_at DESC, i.hash"} LIMIT ? OFFSET ?`,
        ...bindings,
        query.limit + 1,
        query.offset,
      )
      .toArray()
    const more = rows.length > query.limit
    return { items: rows.slice(0, query.limit).map(toHit), next: more ? String(query.offset + query.limit) : null }
  }

  item(hash: string): StoredMemory | undefined {
    const row = this.ctx.storage.sql
      .exec(`SELECT ${HIT_COLUMNS}, NULL AS score FROM memory_items i JOIN memory_content c ON c.hash = i.hash WHERE i.hash = ?`, hash)
      .toArray()[0]
    if (row === undefined) return undefined
    const hit = toHit(row)
    return { ...hit, blobKey: hit.truncated ? this.blobKey(hash) : null }
  }

  /** Rebuilds the search projection from the log and the content table (tests compare it with the live one). */
  rebuildProjection(): void {
    const events: Array<WireEvent> = []
    for (let after = 0; ; ) {
      const page = this.core.readEvents(after, 1000)
      if (!page.ok || page.value.events.length === 0) break
      events.push(...page.value.events)
      after = page.value.events[page.value.events.length - 1]!.seq
    }
    this.ctx.storage.transactionSync(() => memoryProjection.rebuild(this.ctx.storage.sql, events))
  }
}

export interface MemoryApi {
  search(query: MemoryQuery): Promise<{ items: ReadonlyArray<MemoryHit>; next: string | null }>
  item(hash: string): Promise<StoredMemory | undefined>
  rebuildProjection(): Promise<void>
}
