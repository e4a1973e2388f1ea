/**
 * The stream's items by position, beside its log: `stream_items` is written in each command's
 * transaction (a projection) and holds the current generation only, so a read at an offset is
 * one indexed range query instead of a walk over events. `batch` is the position of the first
 * item of the POST an item came in, so a fork can take part of a JSON batch (a sub-offset).
 * The log stays the source of truth: `rebuild` derives the table from it.
 */
import type { WireEvent } from "../../index.js"
import type { Projection } from "../../worker.js"

const TABLE = `CREATE TABLE IF NOT EXISTS stream_items (
  position INTEGER PRIMARY KEY, batch INTEGER NOT NULL, body TEXT NOT NULL)`

export interface StoredItem {
  readonly position: number
  readonly batch: number
  /** base64 bytes, or one JSON message's text. */
  readonly body: string
}

const insert = (sql: SqlStorage, from: number, items: ReadonlyArray<string>, batchOf: (position: number) => number) => {
  items.forEach((body, i) => {
    const position = from + i
    sql.exec("INSERT INTO stream_items (position, batch, body) VALUES (?, ?, ?)", position, batchOf(position), body)
  })
}

const apply = (sql: SqlStorage, event: WireEvent) => {
  const data = event.data as Record<string, unknown>
  switch (event.type) {
    case "Created": {
      sql.exec("DELETE FROM stream_items")
      const start = data.start as number
      const items = data.items as ReadonlyArray<string>
      const inherited = data.inherited as number
      // Inherited items keep no batch of their own; the body's items are one batch.
      insert(sql, start + 1, items, (position) => (position - start <= inherited ? position : start + inherited + 1))
      return
    }
    case "Appended": {
      const from = data.from as number
      insert(sql, from, data.items as ReadonlyArray<string>, () => from)
      return
    }
    case "Deleted":
      if (data.soft !== true) sql.exec("DELETE FROM stream_items")
      return
  }
}

export const streamItems: Projection = {
  setup: (sql) => void sql.exec(TABLE),
  apply: (sql, events) => {
    for (const event of events) apply(sql, event)
  },
  rebuild: (sql, events) => {
    sql.exec("DELETE FROM stream_items")
    for (const event of events) apply(sql, event)
  },
}

export const readItems = (sql: SqlStorage, after: number, limit: number): Array<StoredItem> =>
  sql
    .exec("SELECT position, batch, body FROM stream_items WHERE position > ? ORDER BY position LIMIT ?", after, limit)
    .toArray() as unknown as Array<StoredItem>

/** Items from `from` up to `through` (positions), oldest first. */
export const itemsBetween = (sql: SqlStorage, after: number, through: number): Array<StoredItem> =>
  sql
    .exec(
      "SELECT position, batch, body FROM stream_items WHERE position > ? AND position <= ? ORDER BY position",
      after,
      through,
    )
    .toArray() as unknown as Array<StoredItem>

/**
 * The least a fork of the items from `after` up to `through` adds to its Created event, in bytes
 * (the items' UTF-8 and each one's quotes and comma; JSON escaping only adds), counted in SQL.
 */
export const inheritedSize = (sql: SqlStorage, after: number, through: number): number =>
  sql
    .exec<{ size: number | null }>(
      "SELECT SUM(length(CAST(body AS BLOB)) + 3) AS size FROM stream_items WHERE position > ? AND position <= ?",
      after,
      through,
    )
    .one().size ?? 0
