/**
 * A tenant's usage counters, object side: one row per (UTC day, metric, key) with a count, in the
 * SQLite storage of one object per tenant. That object is an EMBERLOG_TOPIC object under the name
 * `USAGE_OBJECT` (outside the topic name alphabet, so no topic of the tenant can be it): usage
 * needs no binding of its own, and it is kept apart from every topic's tables.
 *
 * The edge (edge/usage.ts) sends batches of increments; the object only adds them up.
 */
import { parseScopedName } from "../core/names.js"

/** `~` is outside NAME_CHARS: a topic, actor or room name can never be this. */
export const USAGE_OBJECT = "~usage"

/** What is counted, per day. */
export const USAGE_METRICS = ["requests", "commands", "events", "tools", "refusals", "rate_limited"] as const
export type UsageMetric = (typeof USAGE_METRICS)[number]

/** One counter of one day: `key` is the route class, tool or error code ("" for plain counts). */
export interface UsageRow {
  readonly day: string
  readonly metric: UsageMetric
  readonly key: string
  readonly count: number
}

/**
 * Distinct keys a day keeps per metric; further ones are added to `OVERFLOW_KEY`. Keys are route
 * classes, tool names and error codes, all of the server's own making, so this only bounds a bug.
 */
export const MAX_KEYS_PER_METRIC = 200
export const OVERFLOW_KEY = "(other)"
const MAX_KEY_LENGTH = 128
/** Days older than this are dropped when the object wakes and records. */
export const RETENTION_DAYS = 400

const DAY = /^\d{4}-\d{2}-\d{2}$/

const TABLE = `CREATE TABLE IF NOT EXISTS usage (
  day TEXT NOT NULL, metric TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (day, metric, key)) WITHOUT ROWID`

/** Refuses to touch an object that is not a usage object (a real topic's storage must never be erased by this). */
const usageStorage = (ctx: DurableObjectState): DurableObjectStorage => {
  const name = ctx.id.name === undefined ? undefined : parseScopedName(ctx.id.name).name
  if (name !== USAGE_OBJECT) throw new Error("emberlog: usage is kept only in a tenant's usage object")
  return ctx.storage
}

const hasTable = (sql: SqlStorage) =>
  sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage'").toArray().length > 0

/** Objects that pruned old days since they woke (once a wake is enough: a day is long). */
const pruned = new WeakSet<DurableObjectState>()

/** Adds a batch of increments, in one transaction. */
export const recordUsage = (ctx: DurableObjectState, rows: ReadonlyArray<UsageRow>): void => {
  const storage = usageStorage(ctx)
  const sql = storage.sql
  storage.transactionSync(() => {
    sql.exec(TABLE)
    if (!pruned.has(ctx)) {
      pruned.add(ctx)
      const oldest = new Date(Date.now() - RETENTION_DAYS * 86_400_000).toISOString().slice(0, 10)
      sql.exec("DELETE FROM usage WHERE day < ?", oldest)
    }
    for (const { day, metric, key, count } of rows) {
      if (!DAY.test(day) || !USAGE_METRICS.includes(metric) || !(Number.isSafeInteger(count) && count > 0)) continue
      const bounded = key.slice(0, MAX_KEY_LENGTH)
      const updated = sql.exec(
        "UPDATE usage SET count = count + ? WHERE day = ? AND metric = ? AND key = ?",
        count,
        day,
        metric,
        bounded,
      ).rowsWritten
      if (updated > 0) continue
      const keys = sql.exec("SELECT count(*) AS n FROM usage WHERE day = ? AND metric = ?", day, metric).one()
        .n as number
      sql.exec(
        "INSERT INTO usage (day, metric, key, count) VALUES (?, ?, ?, ?) ON CONFLICT (day, metric, key) DO UPDATE SET count = count + excluded.count",
        day,
        metric,
        keys < MAX_KEYS_PER_METRIC ? bounded : OVERFLOW_KEY,
        count,
      )
    }
  })
}

/** Every counter of the days `from` ≤ day ≤ `to` (YYYY-MM-DD), oldest first; reads create nothing. */
export const readUsage = (ctx: DurableObjectState, from: string, to: string): Array<UsageRow> => {
  const sql = usageStorage(ctx).sql
  if (!hasTable(sql)) return []
  return sql
    .exec("SELECT day, metric, key, count FROM usage WHERE day >= ? AND day <= ? ORDER BY day, metric, key", from, to)
    .toArray()
    .map((row) => ({
      day: row.day as string,
      metric: row.metric as UsageMetric,
      key: row.key as string,
      count: row.count as number,
    }))
}

/** Erases every counter of the tenant (the object holds nothing else). */
export const eraseUsage = async (ctx: DurableObjectState): Promise<void> => {
  await usageStorage(ctx).deleteAll()
  pruned.delete(ctx)
}
