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
 *
 * With Workers AI and Vectorize bound (semantic.ts), the alarm also embeds new
 * memories (their searchable text) into the index, caching each embedding by content hash
 * in `memory_vectors`, and removes the vectors of forgotten ones; a Forget removes its
 * vectors before it returns.
 */
import {
  PAGE_BYTES,
  jsonBytes,
  takeWithinBudget,
  utf8Length,
  type ActorReply,
  type CommandOutcome,
  type CommandRequest,
  type WireEvent,
} from "../../index.js"
import { defineCapability, type Host, type Projection } from "../../worker.js"
import type { MemoryHit, MemoryMethods, MemoryPage, MemoryQuery, SearchRefused, StoredMemory } from "./api.js"
import { MAX_MEMORY_BYTES, contentHash } from "./entity.js"

export type { MemoryHit, MemoryMethods, MemoryPage, MemoryQuery, SearchRefused, StoredMemory } from "./api.js"
import {
  MAX_IDS_PER_DELETE,
  MAX_SEMANTIC_CANDIDATES,
  semanticIndexFrom,
  vectorId,
  type SemanticBindings,
  type SemanticIndex,
} from "./semantic.js"

/** Content larger than this (UTF-8 bytes) is kept in R2; a SQLite row holds at most 2 MB. */
export const INLINE_CONTENT_BYTES = 1024 * 1024

export interface MemoryEnv extends SemanticBindings {
  readonly MEMORY_BUCKET?: R2Bucket
}

/** Memories embedded per model call on the alarm. */
const EMBEDDING_BATCH = 20
/** Embedding models read a few hundred tokens (bge: 512); a memory is embedded by its opening. */
export const EMBEDDED_CHARS = 2_000

const TABLES = [
  "CREATE TABLE IF NOT EXISTS memory_content (hash TEXT PRIMARY KEY, content TEXT NOT NULL) WITHOUT ROWID",
  `CREATE TABLE IF NOT EXISTS memory_items (hash TEXT PRIMARY KEY, tags TEXT NOT NULL, memory_type TEXT,
     stored_at INTEGER NOT NULL, size INTEGER NOT NULL) WITHOUT ROWID`,
  // The index keeps no copy of the text (external content): memory_content is its one place, scrubbed on Forget.
  "CREATE TABLE IF NOT EXISTS memory_fts_keys (id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE)",
  "CREATE VIEW IF NOT EXISTS memory_fts_source AS SELECT id, hash, NULL AS content, NULL AS tags FROM memory_fts_keys",
  `CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(hash UNINDEXED, content, tags,
     content = 'memory_fts_source', content_rowid = 'id')`,
  "CREATE TABLE IF NOT EXISTS memory_blobs (hash TEXT PRIMARY KEY) WITHOUT ROWID",
  // vector NULL: being written to the index (a crash then leaves a row the sweep can find).
  "CREATE TABLE IF NOT EXISTS memory_vectors (hash TEXT PRIMARY KEY, vector_id TEXT NOT NULL, vector TEXT) WITHOUT ROWID",
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

const ftsInsert = (sql: SqlStorage, id: number, hash: string, content: string, tags: ReadonlyArray<string>) =>
  sql.exec("INSERT INTO memory_fts (rowid, hash, content, tags) VALUES (?, ?, ?, ?)", id, hash, content, tags.join(" "))

/**
 * Takes a memory out of the full-text index. An external-content index is told the values it
 * indexed (memory_content and memory_items hold them); with FTS5's secure-delete on, its terms
 * and positions leave the index's pages instead of being marked deleted. Returns what was indexed.
 */
const ftsDelete = (sql: SqlStorage, hash: string): { readonly id: number; readonly content: string } | undefined => {
  const row = sql
    .exec(
      `SELECT k.id, c.content, i.tags FROM memory_fts_keys k
       JOIN memory_content c ON c.hash = k.hash JOIN memory_items i ON i.hash = k.hash WHERE k.hash = ?`,
      hash,
    )
    .toArray()[0]
  if (row === undefined) return undefined
  const tags = (JSON.parse(row.tags as string) as Array<string>).join(" ")
  sql.exec(
    "INSERT INTO memory_fts (memory_fts, rowid, hash, content, tags) VALUES ('delete', ?, ?, ?, ?)",
    row.id,
    hash,
    row.content,
    tags,
  )
  return { id: row.id as number, content: row.content as string }
}

const setTags = (sql: SqlStorage, hash: string, tags: ReadonlyArray<string>) => {
  const indexed = ftsDelete(sql, hash)
  sql.exec("UPDATE memory_items SET tags = ? WHERE hash = ?", JSON.stringify(tags), hash)
  if (indexed !== undefined) ftsInsert(sql, indexed.id, hash, indexed.content, tags)
}

/**
 * Deletes a row after overwriting one of its text columns with as many spaces. SQLite rewrites a
 * value of unchanged size in place (its cell and overflow pages), whereas a DELETE leaves the bytes
 * in freed pages, and workerd refuses `PRAGMA secure_delete` and VACUUM, its ways to wipe them.
 */
const scrubRow = (sql: SqlStorage, table: "memory_content" | "memory_vectors", column: string, hash: string) => {
  const size = `SELECT length(CAST(${column} AS BLOB)) AS bytes FROM ${table} WHERE hash = ?`
  const bytes = sql.exec(size, hash).toArray()[0]?.bytes
  if (typeof bytes === "number") sql.exec(`UPDATE ${table} SET ${column} = ? WHERE hash = ?`, " ".repeat(bytes), hash)
  sql.exec(`DELETE FROM ${table} WHERE hash = ?`, hash)
}

/** Erases a memory's content and its index entry (the vector index is the sweep's). */
const erase = (sql: SqlStorage, hash: string) => {
  ftsDelete(sql, hash)
  sql.exec("DELETE FROM memory_fts_keys WHERE hash = ?", hash)
  scrubRow(sql, "memory_content", "content", hash)
  sql.exec("DELETE FROM memory_items WHERE hash = ?", hash)
}

/** Indexes one event; `content` is the stored text when the event is a Store. */
const index = (sql: SqlStorage, event: WireEvent, content: string | undefined) => {
  const data = event.data as { hash: string; tags?: Array<string>; memoryType?: string | null; size?: number }
  switch (event.type) {
    case "Stored": {
      if (content === undefined) return
      ftsDelete(sql, data.hash)
      sql.exec(
        "INSERT OR REPLACE INTO memory_items (hash, tags, memory_type, stored_at, size) VALUES (?, ?, ?, ?, ?)",
        data.hash,
        JSON.stringify(data.tags ?? []),
        data.memoryType ?? null,
        event.meta.at,
        data.size ?? 0,
      )
      sql.exec("INSERT OR IGNORE INTO memory_fts_keys (hash) VALUES (?)", data.hash)
      const { id } = sql.exec("SELECT id FROM memory_fts_keys WHERE hash = ?", data.hash).one()
      ftsInsert(sql, id as number, data.hash, content, data.tags ?? [])
      return
    }
    case "Tagged":
      return setTags(sql, data.hash, [...new Set([...tagsOf(sql, data.hash), ...(data.tags ?? [])])])
    case "Untagged":
      return setTags(
        sql,
        data.hash,
        tagsOf(sql, data.hash).filter((tag) => !(data.tags ?? []).includes(tag)),
      )
    case "Forgotten":
      // Erased everywhere it lives outside the log: the content itself, and the index.
      return erase(sql, data.hash)
  }
}

/** Indexes every live memory anew (after the index's definition changed). */
const reindex = (sql: SqlStorage) => {
  sql.exec("INSERT INTO memory_fts (memory_fts) VALUES ('delete-all')")
  sql.exec("DELETE FROM memory_fts_keys")
  const live = sql.exec("SELECT i.hash, i.tags, c.content FROM memory_items i JOIN memory_content c ON c.hash = i.hash")
  for (const row of live.toArray()) {
    const hash = row.hash as string
    sql.exec("INSERT INTO memory_fts_keys (hash) VALUES (?)", hash)
    const { id } = sql.exec("SELECT id FROM memory_fts_keys WHERE hash = ?", hash).one()
    ftsInsert(sql, id as number, hash, row.content as string, JSON.parse(row.tags as string) as Array<string>)
  }
}

export const memoryProjection: Projection = {
  setup: (sql) => {
    // Objects created before the index went external-content hold a copy of every text in it: rebuilt once.
    const fts = sql.exec("SELECT sql FROM sqlite_schema WHERE name = 'memory_fts'").toArray()[0]
    const stale = fts !== undefined && !String(fts.sql).includes("memory_fts_source")
    if (stale) sql.exec("DROP TABLE memory_fts")
    for (const statement of TABLES) sql.exec(statement)
    // A deleted document's terms are removed from the index's pages, not only marked deleted.
    const secure = sql.exec("SELECT v FROM memory_fts_config WHERE k = 'secure-delete'").toArray()[0]
    if (secure?.v !== 1) sql.exec("INSERT INTO memory_fts (memory_fts, rank) VALUES ('secure-delete', 1)")
    if (stale) reindex(sql)
  },
  apply: (sql, events, command) => {
    const stored =
      (command as { type?: string; content?: string }).type === "Store"
        ? (command as { content: string }).content
        : undefined
    const content = stored === undefined ? undefined : utf8Prefix(stored, INLINE_CONTENT_BYTES)
    for (const event of events) {
      if (event.type === "Stored" && content !== undefined)
        sql.exec(
          "INSERT OR REPLACE INTO memory_content (hash, content) VALUES (?, ?)",
          (event.data as { hash: string }).hash,
          content,
        )
      index(sql, event, content)
    }
  },
  rebuild: (sql, events) => {
    sql.exec("INSERT INTO memory_fts (memory_fts) VALUES ('delete-all')")
    sql.exec("DELETE FROM memory_fts_keys")
    sql.exec("DELETE FROM memory_items")
    for (const event of events) {
      const hash = (event.data as { hash: string }).hash
      const row =
        event.type === "Stored"
          ? sql.exec("SELECT content FROM memory_content WHERE hash = ?", hash).toArray()[0]
          : undefined
      index(sql, event, row?.content as string | undefined)
    }
  },
}

/** Words of a free-text query, each quoted so FTS5 syntax in user input is inert. */
const ftsQuery = (q: string) => [...q.matchAll(/[\p{L}\p{N}_]+/gu)].map(([word]) => `"${word}"`).join(" ")

const HIT_COLUMNS = "i.hash, c.content, i.size, i.tags, i.memory_type, i.stored_at"
/** A hit without its content: ranking reads these, and a page then loads content one hit at a time. */
const RANK_COLUMNS = "i.hash, i.size, i.tags, i.memory_type, i.stored_at"

const toHit = (row: Record<string, SqlStorageValue>): MemoryHit => ({
  hash: row.hash as string,
  content: (row.content as string | undefined) ?? "",
  truncated: (row.size as number) > INLINE_CONTENT_BYTES,
  size: row.size as number,
  tags: JSON.parse(row.tags as string) as Array<string>,
  type: (row.memory_type as string | null) ?? null,
  storedAt: row.stored_at as number,
  score: row.score === null || row.score === undefined ? null : -(row.score as number),
})

/** The content of a Store command that belongs in R2, with its hash; nothing for anything else. */
const largeContent = (command: unknown): { readonly hash: string; readonly content: string } | undefined => {
  const { type, content } = (typeof command === "object" && command !== null ? command : {}) as {
    type?: unknown
    content?: unknown
  }
  if (type !== "Store" || typeof content !== "string" || content.length * 3 <= INLINE_CONTENT_BYTES) return undefined
  const size = utf8Length(content)
  // Content the entity refuses (too large) is never uploaded: decide answers for it.
  return size > INLINE_CONTENT_BYTES && size <= MAX_MEMORY_BYTES ? { hash: contentHash(content), content } : undefined
}

/** SQL conditions (on `memory_items i`) for a query's type, time and tag filters. */
const memoryFilters = (query: MemoryQuery) => {
  const where: Array<string> = []
  const bindings: Array<SqlStorageValue> = []
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
  return { where, bindings }
}

const unavailable = (message: string): ActorReply<never> => ({
  ok: false,
  error: { _tag: "Unavailable", code: "storage_unavailable", message },
})

/** One memory store's object: its content store, sweeps, embeddings and search. */
class MemoryStore {
  /** R2 and index writes run one at a time, so a sweep never races an upload of the same hash. */
  private blobWork: Promise<unknown> = Promise.resolve()
  private readonly semantic: SemanticIndex | undefined

  constructor(private readonly host: Host) {
    this.semantic = semanticIndexFrom(host.env as MemoryEnv)
  }

  /** Work left by a crash (a Forget before its deletes, an upload whose command never committed, memories not yet embedded) runs on the alarm. */
  async start(): Promise<void> {
    if (this.hasDerivedWork()) await this.host.wakeAt(Date.now())
  }

  private get projectionReady(): boolean {
    return this.host.hasStorage()
  }

  private get ctx(): DurableObjectState {
    return this.host.ctx
  }

  private scheduleAlarm(at: number): Promise<void> {
    return this.host.wakeAt(at)
  }

  private hasDerivedWork(): boolean {
    if (!this.projectionReady) return false
    return (
      this.strayBlobs().length > 0 ||
      (this.semantic !== undefined && (this.strayVectors().length > 0 || this.unembedded(1).length > 0))
    )
  }

  private get bucket(): R2Bucket | undefined {
    return (this.host.env as MemoryEnv).MEMORY_BUCKET
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

  private strayVectors(): Array<{ hash: string; vector_id: string }> {
    return this.ctx.storage.sql
      .exec("SELECT hash, vector_id FROM memory_vectors WHERE hash NOT IN (SELECT hash FROM memory_items)")
      .toArray() as Array<{
      hash: string
      vector_id: string
    }>
  }

  /** Live memories with no vector yet (or one whose write did not finish). */
  private unembedded(limit: number): Array<{ hash: string; content: string }> {
    return this.ctx.storage.sql
      .exec(
        `SELECT i.hash, c.content FROM memory_items i JOIN memory_content c ON c.hash = i.hash
         WHERE i.hash NOT IN (SELECT hash FROM memory_vectors WHERE vector IS NOT NULL) LIMIT ?`,
        limit,
      )
      .toArray() as Array<{ hash: string; content: string }>
  }

  private isLive(hash: string): boolean {
    if (!this.projectionReady) return false
    return this.ctx.storage.sql.exec("SELECT 1 FROM memory_items WHERE hash = ?", hash).toArray().length > 0
  }

  /**
   * Deletes the R2 objects and vectors of memories that are not live, then their rows. The
   * two stages run independently (one failing does not hold up the other); the first
   * failure is rethrown for the alarm to retry.
   */
  private sweep(): Promise<void> {
    return this.exclusively(async () => {
      if (!this.projectionReady) return
      const sql = this.ctx.storage.sql
      const failures: Array<unknown> = []
      const bucket = this.bucket
      const strayBlobs = this.strayBlobs()
      if (strayBlobs.length > 0 && bucket !== undefined) {
        try {
          for (let at = 0; at < strayBlobs.length; at += MAX_IDS_PER_DELETE) {
            const chunk = strayBlobs.slice(at, at + MAX_IDS_PER_DELETE)
            await bucket.delete(chunk.map((hash) => this.blobKey(hash)))
            // A hash stored again meanwhile keeps its row (its object was just written anew under the lock).
            for (const hash of chunk) if (!this.isLive(hash)) sql.exec("DELETE FROM memory_blobs WHERE hash = ?", hash)
          }
        } catch (error) {
          failures.push(error)
        }
      }
      const strayVectors = this.semantic === undefined ? [] : this.strayVectors()
      if (strayVectors.length > 0) {
        try {
          await this.semantic!.remove(strayVectors.map((row) => row.vector_id))
          // Rows go even for a hash stored again meanwhile: its vector was just removed, so it is embedded anew.
          // A cached embedding is derived from the text: scrubbed like it.
          for (const { hash } of strayVectors) scrubRow(sql, "memory_vectors", "vector", hash)
        } catch (error) {
          failures.push(error)
        }
      }
      if (failures.length > 0) throw failures[0]
    })
  }

  /**
   * The tenant is being deleted: every R2 object under this store's prefix (named by a row or
   * not: an upload whose row a crash lost is found too) and every vector of its memories, live or
   * stray, under the lock so no upload or embedding runs meanwhile. The host then deletes the
   * SQLite storage (content, index, rows). Idempotent: what is gone is not found again.
   */
  erase(): Promise<Readonly<Record<string, number>>> {
    return this.exclusively(async () => {
      const counts: Record<string, number> = {}
      const sql = this.ctx.storage.sql
      if (this.projectionReady) counts.memories = sql.exec("SELECT count(*) AS n FROM memory_items").one().n as number
      const bucket = this.bucket
      if (bucket !== undefined) {
        const prefix = `${this.ctx.id.toString()}/`
        for (;;) {
          const listed = await bucket.list({ prefix, limit: MAX_IDS_PER_DELETE })
          const keys = listed.objects.map((object) => object.key)
          if (keys.length === 0) break
          await bucket.delete(keys)
          counts.r2Objects = (counts.r2Objects ?? 0) + keys.length
        }
      }
      if (this.semantic !== undefined && this.projectionReady) {
        const namespace = this.ctx.id.toString()
        const ids = new Set([
          ...sql
            .exec("SELECT vector_id FROM memory_vectors")
            .toArray()
            .map((row) => row.vector_id as string),
          ...sql
            .exec("SELECT hash FROM memory_items")
            .toArray()
            .map((row) => vectorId(namespace, row.hash as string)),
        ])
        if (ids.size > 0) await this.semantic.remove([...ids])
        counts.vectors = ids.size
      }
      return counts
    })
  }

  /** Embeds live memories without a vector, a batch at a time; the model is called outside the lock. */
  private async embedPending(): Promise<void> {
    const semantic = this.semantic
    if (semantic === undefined || !this.projectionReady) return
    const namespace = this.ctx.id.toString()
    for (let batch = this.unembedded(EMBEDDING_BATCH); batch.length > 0; batch = this.unembedded(EMBEDDING_BATCH)) {
      const vectors = await semantic.embed(batch.map((memory) => memory.content.slice(0, EMBEDDED_CHARS)))
      await this.exclusively(async () => {
        const sql = this.ctx.storage.sql
        const live = batch
          .map((memory, i) => ({ hash: memory.hash, id: vectorId(namespace, memory.hash), values: vectors[i]! }))
          .filter((v) => this.isLive(v.hash))
        for (const { hash, id } of live)
          sql.exec("INSERT OR REPLACE INTO memory_vectors (hash, vector_id, vector) VALUES (?, ?, NULL)", hash, id)
        await semantic.upsert(namespace, live)
        for (const { hash, values } of live)
          sql.exec("UPDATE memory_vectors SET vector = ? WHERE hash = ?", JSON.stringify(values), hash)
      })
    }
  }

  async command(request: CommandRequest, commit: Commit): Promise<ActorReply<CommandOutcome>> {
    const large = largeContent(request.command)
    const reply =
      large === undefined || this.isLive(large.hash)
        ? await commit(request)
        : await this.storeLarge(request, large, commit)
    if (!reply.ok || reply.value.replayed) return reply
    if (reply.value.events.some((event) => event.type === "Forgotten")) {
      // The Forget is committed; a failed delete is retried by the alarm, never reported as the command failing.
      await this.sweep().catch(async (error) => {
        console.warn(
          "emberlog: deleting forgotten content from R2 or the vector index failed; the alarm retries",
          error,
        )
        await this.scheduleAlarm(Date.now() + 1_000)
      })
    }
    // Embedding calls a model: the alarm does it, not the request.
    if (this.semantic !== undefined && reply.value.events.some((event) => event.type === "Stored"))
      await this.scheduleAlarm(Date.now())
    return reply
  }

  private storeLarge(
    request: CommandRequest,
    large: { readonly hash: string; readonly content: string },
    commit: Commit,
  ): Promise<ActorReply<CommandOutcome>> {
    const bucket = this.bucket
    if (bucket === undefined) {
      return Promise.resolve(
        unavailable(`Content over ${INLINE_CONTENT_BYTES} bytes is kept in R2: bind an R2 bucket as MEMORY_BUCKET`),
      )
    }
    return this.exclusively(async () => {
      this.host.ensureTables()
      this.ctx.storage.sql.exec("INSERT OR IGNORE INTO memory_blobs (hash) VALUES (?)", large.hash)
      try {
        await bucket.put(this.blobKey(large.hash), large.content)
      } catch (error) {
        console.error("emberlog: writing memory content to R2 failed", error)
        await this.scheduleAlarm(Date.now())
        return unavailable("Writing the content to R2 failed; nothing was stored, retry the command")
      }
      try {
        return await commit(request)
      } finally {
        // Refused, replayed or failed without storing it: the object is garbage unless the memory is live.
        if (!this.isLive(large.hash)) await this.scheduleAlarm(Date.now())
      }
    })
  }

  async alarm(): Promise<void> {
    let failed = false
    for (const step of [() => this.sweep(), () => this.embedPending()]) {
      await step().catch((error) => {
        failed = true
        console.warn("emberlog: syncing memory content with R2 or the vector index failed; retrying", error)
      })
    }
    if (failed) await this.scheduleAlarm(Date.now() + 5_000)
  }

  async search(query: MemoryQuery): Promise<MemoryPage | SearchRefused> {
    const semantic =
      query.mode === "semantic" ||
      (query.mode === "auto" && this.semantic !== undefined && (query.q ?? "").trim().length > 0)
    if (!semantic) return this.textSearch(query)
    if (this.semantic === undefined) {
      return {
        error: {
          _tag: "Unimplemented",
          code: "semantic_search_unavailable",
          message:
            "Semantic search needs a Workers AI binding (AI) and a Vectorize index (MEMORY_VECTORS); without them search is full text",
        },
      }
    }
    if ((query.q ?? "").trim().length === 0)
      return {
        error: { _tag: "InvalidInput", code: "invalid_query", message: "Semantic search needs a query text (q)" },
      }
    if (!this.projectionReady) return { items: [], next: null }
    const [vector] = await this.semantic.embed([query.q!])
    const matches = await this.semantic.query(this.ctx.id.toString(), vector!, MAX_SEMANTIC_CANDIDATES)
    if (matches.length === 0) return { items: [], next: null }
    const scores = new Map(matches.map((match) => [match.id, match.score]))
    const filters = memoryFilters(query)
    // One JSON parameter for the candidates: a statement takes at most 100 bound parameters.
    filters.where.unshift("v.vector_id IN (SELECT value FROM json_each(?))")
    filters.bindings.unshift(JSON.stringify(matches.map((match) => match.id)))
    const hits = this.ctx.storage.sql
      .exec(
        `SELECT ${RANK_COLUMNS}, NULL AS score, v.vector_id
         FROM memory_vectors v JOIN memory_items i ON i.hash = v.hash JOIN memory_content c ON c.hash = i.hash
         WHERE ${filters.where.join(" AND ")}`,
        ...filters.bindings,
      )
      .toArray()
      .map((row) => ({ ...toHit(row), score: scores.get(row.vector_id as string)! }))
      .sort((a, b) => b.score - a.score || a.hash.localeCompare(b.hash))
    return this.fill(hits.slice(query.offset, query.offset + query.limit + 1), query)
  }

  /**
   * A page from ranked hits (the `limit + 1` from the query's offset, without content):
   * content is loaded one hit at a time until `limit` hits or PAGE_BYTES of JSON, and
   * never fewer than one hit, so every page crosses the RPC and `next` (the offset just
   * after the last hit returned) always moves on.
   */
  private fill(ranked: ReadonlyArray<MemoryHit>, query: MemoryQuery): MemoryPage {
    const sql = this.ctx.storage.sql
    const withContent = function* () {
      for (const hit of ranked.slice(0, query.limit)) {
        const row = sql.exec("SELECT content FROM memory_content WHERE hash = ?", hit.hash).toArray()[0]
        yield { ...hit, content: (row?.content as string | undefined) ?? "" }
      }
    }
    const items = takeWithinBudget(withContent(), PAGE_BYTES, (hit) => jsonBytes(hit) + 1)
    return { items, next: items.length < ranked.length ? String(query.offset + items.length) : null }
  }

  private textSearch(query: MemoryQuery): MemoryPage {
    if (!this.projectionReady) return { items: [], next: null }
    const text = ftsQuery(query.q ?? "")
    const { where, bindings } = memoryFilters(query)
    if (text.length > 0) {
      where.unshift("memory_fts MATCH ?")
      bindings.unshift(text)
    }
    // The hash breaks ties, so an offset names the same place in the order on every page.
    const rows = this.ctx.storage.sql
      .exec(
        `SELECT ${RANK_COLUMNS}, ${text.length > 0 ? "bm25(memory_fts)" : "NULL"} AS score
         FROM memory_fts f JOIN memory_items i ON i.hash = f.hash JOIN memory_content c ON c.hash = i.hash
         ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY ${text.length > 0 ? "score, i.stored_at DESC, i.hash" : "i.stored_at DESC, i.hash"} LIMIT ? OFFSET ?`,
        ...bindings,
        query.limit + 1,
        query.offset,
      )
      .toArray()
    return this.fill(rows.map(toHit), query)
  }

  item(hash: string): StoredMemory | undefined {
    if (!this.projectionReady) return undefined
    const row = this.ctx.storage.sql
      .exec(
        `SELECT ${HIT_COLUMNS}, NULL AS score FROM memory_items i JOIN memory_content c ON c.hash = i.hash WHERE i.hash = ?`,
        hash,
      )
      .toArray()[0]
    if (row === undefined) return undefined
    const hit = toHit(row)
    return { ...hit, blobKey: hit.truncated ? this.blobKey(hash) : null }
  }

  /** Rebuilds the search projection from the log and the content table (tests compare it with the live one). */
  rebuildProjection(): void {
    this.host.ensureTables()
    const events: Array<WireEvent> = []
    for (let after = 0; ;) {
      const page = this.host.readEvents(after, 1000)
      if (page.length === 0) break
      events.push(...page)
      after = page[page.length - 1]!.seq
    }
    this.ctx.storage.transactionSync(() => memoryProjection.rebuild(this.ctx.storage.sql, events))
  }
}

type Commit = (request: CommandRequest) => ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>>

/**
 * The memory kind's capability: content beside the log (SQLite, and R2 past
 * INLINE_CONTENT_BYTES), the full-text search projection, sweeps and embeddings on the
 * alarm, and the methods `search`, `item` and `rebuildProjection`.
 */
export const memoryStore = defineCapability({
  name: "memory-store",
  projection: memoryProjection,
  start: async (host: Host) => {
    const store = new MemoryStore(host)
    await store.start()
    const methods: MemoryMethods = {
      search: (query) => store.search(query),
      item: (hash) => store.item(hash),
      rebuildProjection: () => store.rebuildProjection(),
    }
    return {
      command: (request: CommandRequest, next: Commit) => store.command(request, next),
      onAlarm: () => store.alarm(),
      erase: () => store.erase(),
      methods,
    }
  },
})
