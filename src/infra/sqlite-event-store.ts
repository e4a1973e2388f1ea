/**
 * The event store in a Durable Object's SQLite database.
 *
 * Events are one row each (a row may be at most 2 MB, so one JSON blob per actor
 * would cap the actor's size). `at` is copied out of `meta` into its own indexed
 * column for time-travel queries.
 */
import { Effect, Layer } from "effect"
import { EventStore, type CommandRecord, type EventStoreShape, type StoredEvent } from "./event-store.js"

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS events (
     seq INTEGER PRIMARY KEY, type TEXT NOT NULL, schema_version INTEGER NOT NULL,
     data TEXT NOT NULL, meta TEXT NOT NULL, at INTEGER NOT NULL, hash TEXT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS events_by_time ON events (at)`,
  `CREATE TABLE IF NOT EXISTS snapshots (seq INTEGER PRIMARY KEY, state_version INTEGER NOT NULL, state TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS outbox (topic TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (topic, seq)) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS commands (
     command_id TEXT PRIMARY KEY, request_hash TEXT NOT NULL, version INTEGER NOT NULL,
     first_seq INTEGER NOT NULL, at INTEGER NOT NULL)`,
]

type Row = Record<string, SqlStorageValue>

const toEvent = (row: Row): StoredEvent => ({
  seq: row.seq as number,
  type: row.type as string,
  schemaVersion: row.schema_version as number,
  data: JSON.parse(row.data as string),
  meta: JSON.parse(row.meta as string),
  hash: row.hash as string,
})

export const makeSqliteEventStore = (storage: DurableObjectStorage): EventStoreShape => {
  const sql = storage.sql
  for (const statement of SCHEMA) sql.exec(statement)

  return {
    last: Effect.sync(() => {
      const rows = sql.exec("SELECT * FROM events ORDER BY seq DESC LIMIT 1").toArray()
      return rows.length === 0 ? undefined : toEvent(rows[0]!)
    }),
    append: (events) =>
      Effect.sync(() => {
        for (const e of events) {
          sql.exec(
            "INSERT INTO events (seq, type, schema_version, data, meta, at, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            e.seq, e.type, e.schemaVersion, e.dataJson, e.metaJson, e.meta.at, e.hash,
          )
        }
      }),
    read: (after, through, limit) =>
      Effect.sync(() =>
        sql.exec("SELECT * FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", after, through, limit).toArray().map(toEvent),
      ),
    fold: (after, through, initial, step) =>
      Effect.sync(() => {
        let state = initial
        const rows = sql.exec("SELECT type, schema_version, data FROM events WHERE seq > ? AND seq <= ? ORDER BY seq", after, through).raw()
        for (const [type, schemaVersion, data] of rows) {
          state = step(state, { type: type as string, schemaVersion: schemaVersion as number, data: JSON.parse(data as string) })
        }
        return state
      }),
    seqAsOf: (at) =>
      Effect.sync(() => (sql.exec("SELECT max(seq) AS seq FROM events WHERE at <= ?", at).one().seq as number | null) ?? 0),
    snapshotAtOrBelow: (seq, stateVersion) =>
      Effect.sync(() => {
        const rows = sql
          .exec("SELECT * FROM snapshots WHERE seq <= ? AND state_version = ? ORDER BY seq DESC LIMIT 1", seq, stateVersion)
          .toArray()
        const row = rows[0]
        return row === undefined
          ? undefined
          : { seq: row.seq as number, stateVersion: row.state_version as number, state: JSON.parse(row.state as string) }
      }),
    saveSnapshot: (snapshot) =>
      Effect.sync(() => {
        sql.exec(
          "INSERT OR REPLACE INTO snapshots (seq, state_version, state) VALUES (?, ?, ?)",
          snapshot.seq, snapshot.stateVersion, JSON.stringify(snapshot.state),
        )
      }),
    findCommand: (commandId) =>
      Effect.sync((): CommandRecord | undefined => {
        const row = sql.exec("SELECT * FROM commands WHERE command_id = ?", commandId).toArray()[0]
        return row === undefined
          ? undefined
          : {
              requestHash: row.request_hash as string,
              version: row.version as number,
              firstSeq: row.first_seq as number,
              at: row.at as number,
            }
      }),
    saveCommand: (commandId, record) =>
      Effect.sync(() => {
        sql.exec(
          "INSERT INTO commands (command_id, request_hash, version, first_seq, at) VALUES (?, ?, ?, ?, ?)",
          commandId, record.requestHash, record.version, record.firstSeq, record.at,
        )
      }),
    enqueue: (deliveries) =>
      Effect.sync(() => {
        for (const { seq, topic } of deliveries) sql.exec("INSERT OR IGNORE INTO outbox (topic, seq) VALUES (?, ?)", topic, seq)
      }),
    pendingDeliveries: (limit) =>
      Effect.sync(() =>
        sql
          .exec("SELECT DISTINCT topic FROM outbox ORDER BY topic")
          .toArray()
          .map(({ topic }) => ({
            topic: topic as string,
            events: sql
              .exec("SELECT e.* FROM outbox o JOIN events e ON e.seq = o.seq WHERE o.topic = ? ORDER BY o.seq LIMIT ?", topic, limit)
              .toArray()
              .map(toEvent),
          })),
      ),
    acknowledge: (topic, throughSeq) => Effect.sync(() => void sql.exec("DELETE FROM outbox WHERE topic = ? AND seq <= ?", topic, throughSeq)),
    pruneCommands: (before) => Effect.sync(() => void sql.exec("DELETE FROM commands WHERE at < ?", before)),
    transaction: (body) => storage.transactionSync(body),
  }
}

export const SqliteEventStore = (storage: DurableObjectStorage) => Layer.sync(EventStore, () => makeSqliteEventStore(storage))
