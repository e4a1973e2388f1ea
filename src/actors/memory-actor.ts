/**
 * Hosts the memory entity: content and a full-text search index beside the log.
 * `memory_content` holds each memory's text (erased on Forget); `memory_items` and
 * `memory_fts` (SQLite FTS5, ranked by bm25) form the search projection, written in the
 * same transaction as the events and rebuildable from the log plus the content.
 */
import type { WireEvent } from "./actor-core.js"
import { actorClass, type Projection } from "./durable-actor.js"
import { Memory } from "../domain/memory.js"

const TABLES = [
  "CREATE TABLE IF NOT EXISTS memory_content (hash TEXT PRIMARY KEY, content TEXT NOT NULL) WITHOUT ROWID",
  `CREATE TABLE IF NOT EXISTS memory_items (hash TEXT PRIMARY KEY, tags TEXT NOT NULL, memory_type TEXT,
     stored_at INTEGER NOT NULL, size INTEGER NOT NULL) WITHOUT ROWID`,
  "CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(hash UNINDEXED, content, tags)",
]

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
    const content = (command as { type?: string; content?: string }).type === "Store" ? (command as { content: string }).content : undefined
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
  readonly content: string
  readonly tags: ReadonlyArray<string>
  readonly type: string | null
  readonly storedAt: number
  /** bm25 relevance (higher is better), or null without a text query. */
  readonly score: number | null
}

/** Words of a free-text query, each quoted so FTS5 syntax in user input is inert. */
const ftsQuery = (q: string) =>
  [...q.matchAll(/[\p{L}\p{N}_]+/gu)].map(([word]) => `"${word}"`).join(" ")

const toHit = (row: Record<string, SqlStorageValue>): MemoryHit => ({
  hash: row.hash as string,
  content: row.content as string,
  tags: JSON.parse(row.tags as string) as Array<string>,
  type: (row.memory_type as string | null) ?? null,
  storedAt: row.stored_at as number,
  score: row.score === null || row.score === undefined ? null : -(row.score as number),
})

export class MemoryActor extends actorClass(Memory, { project: memoryProjection }) {
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
        `SELECT i.hash, c.content, i.tags, i.memory_type, i.stored_at, ${text.length > 0 ? "bm25(memory_fts)" : "NULL"} AS score
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

  item(hash: string): MemoryHit | undefined {
    const row = this.ctx.storage.sql
      .exec(
        "SELECT i.hash, c.content, i.tags, i.memory_type, i.stored_at, NULL AS score FROM memory_items i JOIN memory_content c ON c.hash = i.hash WHERE i.hash = ?",
        hash,
      )
      .toArray()[0]
    return row === undefined ? undefined : toHit(row)
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
  item(hash: string): Promise<MemoryHit | undefined>
  rebuildProjection(): Promise<void>
}
