/**
 * A tenant's directory: every actor the tenant has appended to, every topic its actors
 * delivered to and every MCP session it opened, so the tenant can list its actors
 * (`GET /v1/actors`) and a deletion can find everything it has (actors/deletion.ts).
 *
 * It lives in an EmberlogTopic object named `{tenant}/#directory`: "#" is outside the name
 * alphabet, so no user topic can take it, and the name is inside the tenant's namespace.
 *
 * How each part gets listed, reliably and off the hot path:
 * - an actor's first append also puts a row for DIRECTORY_TOPIC in its outbox, in the same
 *   transaction: the outbox delivers it (at least once, retried) as it delivers to topics, and
 *   nothing more is written after the first command. An actor whose log predates the directory
 *   is listed at its next wake (the host's catch-up).
 * - a topic registers itself before its first delivery writes anything (a crash in between
 *   lists a topic with nothing in it, which a deletion erases as a no-op).
 * - an MCP session registers before it starts.
 */
import { scopedName } from "../core/names.js"
import type { ObjectStub } from "./stubs.js"

/** The outbox topic of an actor's directory registration, and the directory object's name in the tenant. */
export const DIRECTORY_TOPIC = "#directory"

export const directoryName = (tenant: string): string => scopedName(tenant, DIRECTORY_TOPIC)

export type DirectoryEntryType = "actor" | "topic" | "mcp-session"

/** Something of a tenant's: an actor (`kind/id`), a topic or an MCP session (`kind` is "" for those). */
export interface DirectoryKey {
  readonly type: DirectoryEntryType
  readonly kind: string
  readonly id: string
}

export interface DirectoryEntry extends DirectoryKey {
  /** When it was first listed (ms epoch). */
  readonly listedAt: number
  /**
   * Bumped by every registration of a row already there: a deletion removes an entry only at the
   * generation it read, so a write (a re-registration) between its erase and its removal keeps the row.
   */
  readonly gen: number
}

/** A key to remove, at the generation read (none: whatever the generation). */
export interface DirectoryRemoval extends DirectoryKey {
  readonly gen?: number
}

/** What `eraseIfEmpty` found, and whether it erased the (empty) directory. */
export interface DirectoryErasure {
  readonly counts: Record<DirectoryEntryType, number>
  readonly erased: boolean
}

export interface DirectoryQuery {
  readonly type: DirectoryEntryType
  /** Only these kinds (undefined: any). */
  readonly kinds?: ReadonlyArray<string>
  /** Ids starting with this. */
  readonly prefix?: string
  /** Entries strictly after this (kind, id), in (kind, id) order. */
  readonly after?: { readonly kind: string; readonly id: string }
  readonly limit: number
}

export interface DirectoryPage {
  readonly entries: ReadonlyArray<DirectoryEntry>
  /** Where the next page starts (after this entry); null when this page is the last. */
  readonly next: { readonly kind: string; readonly id: string } | null
}

/** The directory object's RPC methods (EmberlogTopic serves them under the directory's name only). */
export interface DirectoryMethods {
  registerInDirectory(keys: ReadonlyArray<DirectoryKey>): number
  listDirectory(query: DirectoryQuery): DirectoryPage
  removeFromDirectory(keys: ReadonlyArray<DirectoryRemoval>): number
  countDirectory(): Record<DirectoryEntryType, number>
  /** Counts the entries and, only when there are none, erases the directory: in one synchronous call. */
  eraseIfEmpty(): DirectoryErasure
}

export type DirectoryApi = ObjectStub<DirectoryMethods>

const TABLE = `CREATE TABLE IF NOT EXISTS directory (
  type TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, listed_at INTEGER NOT NULL,
  gen INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (type, kind, id)) WITHOUT ROWID`

/** The directory's table in the object's SQLite; reads create nothing. */
export class TenantDirectory implements DirectoryMethods {
  private created: boolean

  constructor(private readonly storage: DurableObjectStorage) {
    this.created =
      storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'directory'").toArray().length > 0
    // A directory written before rows had a generation: the column, once, at wake.
    if (
      this.created &&
      !storage.sql
        .exec("SELECT name FROM pragma_table_info('directory')")
        .toArray()
        .some((row) => row.name === "gen")
    )
      storage.sql.exec("ALTER TABLE directory ADD COLUMN gen INTEGER NOT NULL DEFAULT 0")
  }

  /** The object's storage was erased. */
  forget(): void {
    this.created = false
  }

  registerInDirectory(keys: ReadonlyArray<DirectoryKey>): number {
    if (keys.length === 0) return 0
    const { sql } = this.storage
    const now = Date.now()
    let added = 0
    this.storage.transactionSync(() => {
      sql.exec(TABLE)
      for (const { type, kind, id } of keys) {
        // A row already there is kept (its listed_at too) at a new generation: see DirectoryEntry.gen.
        const row = sql
          .exec(
            `INSERT INTO directory (type, kind, id, listed_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (type, kind, id) DO UPDATE SET gen = gen + 1 RETURNING gen`,
            type,
            kind,
            id,
            now,
          )
          .one()
        if (row.gen === 0) added++
      }
    })
    this.created = true
    return added
  }

  listDirectory(query: DirectoryQuery): DirectoryPage {
    if (!this.created) return { entries: [], next: null }
    const where = ["type = ?"]
    const bindings: Array<SqlStorageValue> = [query.type]
    if (query.kinds !== undefined) {
      // One JSON parameter: a statement takes at most 100 bound parameters.
      where.push("kind IN (SELECT value FROM json_each(?))")
      bindings.push(JSON.stringify(query.kinds))
    }
    if (query.prefix !== undefined && query.prefix.length > 0) {
      // A range, not LIKE: ids may hold "_", which LIKE reads as a wildcard.
      where.push("substr(id, 1, ?) = ?")
      bindings.push(query.prefix.length, query.prefix)
    }
    if (query.after !== undefined) {
      where.push("(kind, id) > (?, ?)")
      bindings.push(query.after.kind, query.after.id)
    }
    const rows = this.storage.sql
      .exec(
        `SELECT type, kind, id, listed_at, gen FROM directory WHERE ${where.join(" AND ")} ORDER BY kind, id LIMIT ?`,
        ...bindings,
        query.limit + 1,
      )
      .toArray()
    const entries = rows.slice(0, query.limit).map((row) => ({
      type: row.type as DirectoryEntryType,
      kind: row.kind as string,
      id: row.id as string,
      listedAt: row.listed_at as number,
      gen: row.gen as number,
    }))
    const last = entries[entries.length - 1]
    return { entries, next: rows.length > query.limit && last !== undefined ? { kind: last.kind, id: last.id } : null }
  }

  removeFromDirectory(keys: ReadonlyArray<DirectoryRemoval>): number {
    if (!this.created || keys.length === 0) return 0
    let removed = 0
    this.storage.transactionSync(() => {
      for (const { type, kind, id, gen } of keys) {
        removed += this.storage.sql.exec(
          "DELETE FROM directory WHERE type = ? AND kind = ? AND id = ? AND (? IS NULL OR gen = ?)",
          type,
          kind,
          id,
          gen ?? null,
          gen ?? null,
        ).rowsWritten
      }
    })
    return removed
  }

  eraseIfEmpty(): DirectoryErasure {
    const counts = this.countDirectory()
    if (Object.values(counts).some((n) => n > 0)) return { counts, erased: false }
    // No await between the count and the erase: nothing can be listed in between.
    if (this.created) this.storage.sql.exec("DROP TABLE IF EXISTS directory")
    this.created = false
    return { counts, erased: true }
  }

  countDirectory(): Record<DirectoryEntryType, number> {
    const counts: Record<DirectoryEntryType, number> = { actor: 0, topic: 0, "mcp-session": 0 }
    if (!this.created) return counts
    for (const row of this.storage.sql.exec("SELECT type, count(*) AS n FROM directory GROUP BY type").toArray()) {
      counts[row.type as DirectoryEntryType] = row.n as number
    }
    return counts
  }
}
