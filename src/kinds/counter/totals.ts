/**
 * A cross-object projection: the sum of every counter, fed by the `counter` topic and kept
 * in that topic's object. It folds each counter's events with the counter entity's own
 * `evolve`, so the projection can never disagree with the actors about what an event
 * means. There is one per tenant, in the tenant's counter topic.
 */
import type { TopicEntry } from "../../index.js"
import { defineProjection } from "../../worker.js"
import { Counter } from "./entity.js"

export const COUNTER_TOPIC = "counter"

export interface CounterTotalsView {
  readonly total: number
  readonly counters: number
  /** ms epoch of the last event applied, or null before any. */
  readonly lastUpdate: number | null
  /** The topic position the view reflects. */
  readonly topicSeq: number
}

const TABLES = [
  "CREATE TABLE IF NOT EXISTS counter_totals (id TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
  `CREATE TABLE IF NOT EXISTS counter_totals_progress (one INTEGER PRIMARY KEY CHECK (one = 1), last_update INTEGER)`,
  "INSERT OR IGNORE INTO counter_totals_progress (one, last_update) VALUES (1, NULL)",
]

export const counterTotals = defineProjection<CounterTotalsView>({
  name: "counter-totals",
  topic: COUNTER_TOPIC,
  setup: (sql) => {
    for (const statement of TABLES) sql.exec(statement)
  },
  apply: (sql, entries: ReadonlyArray<TopicEntry>) => {
    // Any kind may publish to the counter topic: only counters' events are counters' to fold.
    const counters = entries.filter((entry) => entry.source.kind === Counter.kind)
    if (counters.length === 0) return
    for (const entry of counters) {
      const row = sql.exec("SELECT value FROM counter_totals WHERE id = ?", entry.source.id).toArray()[0]
      const next = Counter.evolve({ value: (row?.value as number | undefined) ?? 0 }, Counter.decodeEvent(entry.event))
      sql.exec(
        "INSERT INTO counter_totals (id, value) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value",
        entry.source.id,
        next.value,
      )
    }
    const lastUpdate = counters[counters.length - 1]!.event.meta.at
    sql.exec("UPDATE counter_totals_progress SET last_update = ? WHERE one = 1", lastUpdate)
  },
  read: (sql, topicSeq) => {
    const sums = sql.exec("SELECT coalesce(sum(value), 0) AS total, count(*) AS counters FROM counter_totals").one()
    const lastUpdate = sql.exec("SELECT last_update FROM counter_totals_progress WHERE one = 1").one().last_update
    return {
      total: sums.total as number,
      counters: sums.counters as number,
      lastUpdate: (lastUpdate as number | null) ?? null,
      topicSeq,
    }
  },
  empty: { total: 0, counters: 0, lastUpdate: null, topicSeq: 0 },
})
