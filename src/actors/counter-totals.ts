/**
 * A cross-object projection: the sum of every counter, maintained by consuming the
 * `counter` topic. It folds each counter's events with the counter entity's own
 * `evolve`, so the projection can never disagree with the actors about what an event
 * means. Reads catch up from the topic first; with empty storage that rebuilds the
 * whole projection from the topic log. There is one per tenant, named after it.
 */
import { DurableObject } from "cloudflare:workers"
import { Counter } from "../domain/counter.js"
import { scopedName } from "../core/names.js"
import type { TopicEntry } from "../core/wire.js"
import { stubOf, type ObjectStub } from "./stubs.js"
import type { TopicLog } from "./topic.js"

export const COUNTER_TOPIC = "counter"

export interface CounterTotalsView {
  readonly total: number
  readonly counters: number
  /** ms epoch of the last event applied, or null before any. */
  readonly lastUpdate: number | null
  /** The topic position the view reflects. */
  readonly topicSeq: number
}

/** What callers see of the projection: its class's methods, over RPC. */
export type CounterTotalsApi = ObjectStub<CounterTotals>

const TABLES = [
  "CREATE TABLE IF NOT EXISTS counters (id TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
  "CREATE TABLE IF NOT EXISTS progress (one INTEGER PRIMARY KEY CHECK (one = 1), topic_seq INTEGER NOT NULL, last_update INTEGER)",
  "INSERT OR IGNORE INTO progress (one, topic_seq, last_update) VALUES (1, 0, NULL)",
]

export class CounterTotals extends DurableObject<{ readonly TOPIC: DurableObjectNamespace }> {
  private readonly sql: SqlStorage

  constructor(ctx: DurableObjectState, env: { readonly TOPIC: DurableObjectNamespace }) {
    super(ctx, env)
    this.sql = ctx.storage.sql
  }

  /** Reads create nothing: the tables come with the first entry applied. */
  private get created(): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'progress'").toArray().length > 0
  }

  async read(): Promise<CounterTotalsView> {
    // This object is named after its tenant; it reads that tenant's counter topic.
    const topic = stubOf<TopicLog>(this.env.TOPIC, scopedName(this.ctx.id.name ?? "", COUNTER_TOPIC))
    for (;;) {
      const page = await topic.readEntries(this.progress().topicSeq, 1000)
      this.apply(page.entries)
      if (page.next === null) break
    }
    return this.view()
  }

  /** Applies entries past the cursor in one transaction; entries already applied are skipped. */
  private apply(entries: ReadonlyArray<TopicEntry>): void {
    if (entries.length === 0) return
    this.ctx.storage.transactionSync(() => {
      for (const statement of TABLES) this.sql.exec(statement)
      let { topicSeq, lastUpdate } = this.progress()
      for (const entry of entries) {
        if (entry.topicSeq <= topicSeq) continue
        const row = this.sql.exec("SELECT value FROM counters WHERE id = ?", entry.source.id).toArray()[0]
        const next = Counter.evolve(
          { value: (row?.value as number | undefined) ?? 0 },
          Counter.decodeEvent(entry.event),
        )
        this.sql.exec(
          "INSERT INTO counters (id, value) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value",
          entry.source.id,
          next.value,
        )
        topicSeq = entry.topicSeq
        lastUpdate = entry.event.meta.at
      }
      this.sql.exec("UPDATE progress SET topic_seq = ?, last_update = ? WHERE one = 1", topicSeq, lastUpdate)
    })
  }

  private progress(): { topicSeq: number; lastUpdate: number | null } {
    if (!this.created) return { topicSeq: 0, lastUpdate: null }
    const row = this.sql.exec("SELECT topic_seq, last_update FROM progress WHERE one = 1").one()
    return { topicSeq: row.topic_seq as number, lastUpdate: row.last_update as number | null }
  }

  private view(): CounterTotalsView {
    if (!this.created) return { total: 0, counters: 0, lastUpdate: null, topicSeq: 0 }
    const sums = this.sql.exec("SELECT coalesce(sum(value), 0) AS total, count(*) AS counters FROM counters").one()
    const { topicSeq, lastUpdate } = this.progress()
    return { total: sums.total as number, counters: sums.counters as number, lastUpdate, topicSeq }
  }
}
