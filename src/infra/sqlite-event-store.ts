/**
 * The event store in a Durable Object's SQLite database.
 *
 * Events are one row each (a row may be at most 2 MB, so one JSON blob per actor
 * would cap the actor's size). `at` is copied out of `meta` into its own indexed
 * column for time-travel queries.
 *
 * The tables are created by the first write, not by the constructor: reading an actor that
 * has no events (any GET of a fresh id) must not give it storage. Until then reads answer
 * as an empty log does.
 */
import { Effect, Layer } from "effect"
import {
  EventStore,
  StoreError,
  type CommandRecord,
  type EventStoreShape,
  type StoredEvent,
  type StoredRow,
} from "../core/event-store.js"
import { trySync } from "../core/sync-effect.js"
import { canonicalJson } from "../core/hash-chain.js"

/** Where delivery to each of the entity's topics stands (see EventStoreShape.topicCursors). */
const TOPIC_CURSORS = `CREATE TABLE IF NOT EXISTS topic_cursors (topic TEXT PRIMARY KEY, through INTEGER NOT NULL) WITHOUT ROWID`

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS events (
     seq INTEGER PRIMARY KEY, type TEXT NOT NULL, schema_version INTEGER NOT NULL,
     data TEXT NOT NULL, meta TEXT NOT NULL, at INTEGER NOT NULL, hash TEXT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS events_by_time ON events (at)`,
  `CREATE TABLE IF NOT EXISTS snapshots (
     seq INTEGER PRIMARY KEY, state_version INTEGER NOT NULL, state TEXT NOT NULL, head_hash TEXT, state_hash TEXT)`,
  `CREATE TABLE IF NOT EXISTS outbox (topic TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (topic, seq)) WITHOUT ROWID`,
  TOPIC_CURSORS,
  `CREATE TABLE IF NOT EXISTS commands (
     command_id TEXT PRIMARY KEY, request_hash TEXT NOT NULL, version INTEGER NOT NULL,
     first_seq INTEGER NOT NULL, at INTEGER NOT NULL)`,
]

/** Snapshots written before they were bound to the chain have no hashes; they are never read. */
const BIND_SNAPSHOTS = [
  "ALTER TABLE snapshots ADD COLUMN head_hash TEXT",
  "ALTER TABLE snapshots ADD COLUMN state_hash TEXT",
]

const BOUND_SNAPSHOT_SEQS = "SELECT seq FROM snapshots WHERE state_version = ? AND head_hash IS NOT NULL ORDER BY seq"

/**
 * Expired idempotency records among the oldest `limit`. `at` has no index (it would cost every
 * keyed command a second b-tree write), so `WHERE at < ?` alone would scan every record kept, a
 * day's worth, at each snapshot; rowid order is the order keys were claimed, so the oldest rows
 * are the ones that can have expired, and the scan stops after `limit` of them.
 */
const PRUNE_COMMANDS =
  "DELETE FROM commands WHERE at < ? AND rowid IN (SELECT rowid FROM commands ORDER BY rowid LIMIT ?)"

type Row = Record<string, SqlStorageValue>

const toEvent = (row: Row): StoredEvent => ({
  seq: row.seq as number,
  type: row.type as string,
  schemaVersion: row.schema_version as number,
  data: JSON.parse(row.data as string),
  meta: JSON.parse(row.meta as string),
  hash: row.hash as string,
})

/**
 * `valid`: SQLite's own check that data and meta are JSON (in C, cheap): a reader splices them
 * into a page's text as they are, so text that is not JSON must never reach it unchecked: a
 * tampered `data` could close its object and add fields (a forged `seq`) to the event around it.
 */
const EVENT_ROWS =
  "SELECT seq, type, schema_version, data, meta, hash, json_valid(data) AND json_valid(meta) AS valid FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?"

/** A row SQLite did not take for JSON goes through JSON.parse: a failure is a StoreError, as for `read`. */
const checkedJson = (text: string, valid: boolean) => (valid ? text : canonicalJson(JSON.parse(text)))

export const makeSqliteEventStore = (storage: DurableObjectStorage, onCreate?: () => void): EventStoreShape => {
  const sql = storage.sql
  const hasTable = (name: string) =>
    sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0
  let created = hasTable("events")
  if (created && !sql.exec("SELECT 1 FROM pragma_table_info('snapshots') WHERE name = 'head_hash'").toArray().length) {
    for (const statement of BIND_SNAPSHOTS) sql.exec(statement)
  }
  // A log written before topics followed it has its undelivered events in the outbox table: they
  // are drained from there, and its topics are followed from the next event routed to each.
  if (created && !hasTable("topic_cursors")) sql.exec(TOPIC_CURSORS)
  /** Creates the tables before the first write (inside the command's transaction, so a refusal undoes it). */
  const create = () => {
    if (created) return
    for (const statement of SCHEMA) sql.exec(statement)
    onCreate?.()
    created = true
  }
  /** What SQLite throws is a typed StoreError; only the caller's own code (a fold's step) stays a defect. */
  const attempt = <A>(body: () => A) => trySync(body, (cause) => new StoreError({ cause }))
  const write = <A>(nothing: boolean, body: () => A) => attempt(() => (nothing ? undefined : (create(), body())))
  const read = <A>(empty: A, body: () => A) => attempt(() => (created ? body() : empty))

  return {
    last: read(undefined, () => {
      const rows = sql.exec("SELECT * FROM events ORDER BY seq DESC LIMIT 1").toArray()
      return rows.length === 0 ? undefined : toEvent(rows[0]!)
    }),
    append: (events) =>
      write(events.length === 0, () => {
        for (const e of events) {
          sql.exec(
            "INSERT INTO events (seq, type, schema_version, data, meta, at, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            e.seq,
            e.type,
            e.schemaVersion,
            e.dataJson,
            e.metaJson,
            e.meta.at,
            e.hash,
          )
        }
      }),
    read: (after, through, limit) =>
      read([], () =>
        sql
          .exec("SELECT * FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?", after, through, limit)
          .toArray()
          .map(toEvent),
      ),
    // Raw arrays, not row objects: a page reader reads a thousand rows at a time.
    readRows: (after, through, limit) =>
      read([], () => {
        const rows: Array<StoredRow> = []
        for (const [seq, type, schemaVersion, dataJson, metaJson, hash, valid] of sql
          .exec(EVENT_ROWS, after, through, limit)
          .raw())
          rows.push({
            seq: seq as number,
            type: type as string,
            schemaVersion: schemaVersion as number,
            dataJson: checkedJson(dataJson as string, valid === 1),
            metaJson: checkedJson(metaJson as string, valid === 1),
            hash: hash as string,
          })
        return rows
      }),
    fold: (after, through, initial, step) => {
      let stepFailed: { readonly error: unknown } | undefined
      return read(initial, () => {
        let state = initial
        const rows = sql
          .exec("SELECT type, schema_version, data FROM events WHERE seq > ? AND seq <= ? ORDER BY seq", after, through)
          .raw()
        for (const [type, schemaVersion, data] of rows) {
          const event = {
            type: type as string,
            schemaVersion: schemaVersion as number,
            data: JSON.parse(data as string),
          }
          try {
            state = step(state, event)
          } catch (error) {
            stepFailed = { error }
            throw error
          }
        }
        return state
      }).pipe(
        Effect.catchIf(
          () => stepFailed !== undefined,
          () => Effect.die(stepFailed!.error),
        ),
      )
    },
    hashAt: (seq) =>
      read(
        undefined,
        () => sql.exec("SELECT hash FROM events WHERE seq = ?", seq).toArray()[0]?.hash as string | undefined,
      ),
    seqAsOf: (at) =>
      read(0, () => (sql.exec("SELECT max(seq) AS seq FROM events WHERE at <= ?", at).one().seq as number | null) ?? 0),
    snapshotAtOrBelow: (seq, stateVersion) =>
      read(undefined, () => {
        const row = sql
          .exec(
            `SELECT * FROM snapshots
             WHERE seq <= ? AND state_version = ? AND head_hash IS NOT NULL AND state_hash IS NOT NULL
             ORDER BY seq DESC LIMIT 1`,
            seq,
            stateVersion,
          )
          .toArray()[0]
        return row === undefined
          ? undefined
          : {
              seq: row.seq as number,
              stateVersion: row.state_version as number,
              stateJson: row.state as string,
              headHash: row.head_hash as string,
              stateHash: row.state_hash as string,
            }
      }),
    snapshotSeqs: (stateVersion) =>
      read([], () =>
        sql
          .exec(BOUND_SNAPSHOT_SEQS, stateVersion)
          .toArray()
          .map((row) => row.seq as number),
      ),
    saveSnapshot: (snapshot) =>
      write(false, () => {
        sql.exec(
          "INSERT OR REPLACE INTO snapshots (seq, state_version, state, head_hash, state_hash) VALUES (?, ?, ?, ?, ?)",
          snapshot.seq,
          snapshot.stateVersion,
          snapshot.stateJson,
          snapshot.headHash,
          snapshot.stateHash,
        )
      }),
    findCommand: (commandId) =>
      read<CommandRecord | undefined>(undefined, () => {
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
      attempt(() => {
        create()
        const inserted = sql.exec(
          `INSERT INTO commands (command_id, request_hash, version, first_seq, at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (command_id) DO NOTHING`,
          commandId,
          record.requestHash,
          record.version,
          record.firstSeq,
          record.at,
        )
        inserted.toArray() // runs the statement to its end, so rowsWritten is final
        return inserted.rowsWritten > 0
      }),
    enqueue: (deliveries) =>
      write(deliveries.length === 0, () => {
        for (const { seq, topic } of deliveries)
          sql.exec("INSERT OR IGNORE INTO outbox (topic, seq) VALUES (?, ?)", topic, seq)
      }),
    pendingDeliveries: (limit) =>
      read([], () =>
        sql
          .exec("SELECT DISTINCT topic FROM outbox ORDER BY topic")
          .toArray()
          .map(({ topic }) => ({
            topic: topic as string,
            events: sql
              .exec(
                "SELECT e.* FROM outbox o JOIN events e ON e.seq = o.seq WHERE o.topic = ? ORDER BY o.seq LIMIT ?",
                topic,
                limit,
              )
              .toArray()
              .map(toEvent),
          })),
      ),
    hasQueuedDeliveries: read(
      false,
      () => sql.exec("SELECT 1 FROM outbox o JOIN events e ON e.seq = o.seq LIMIT 1").toArray().length > 0,
    ),
    acknowledge: (topic, throughSeq) =>
      read(undefined, () => void sql.exec("DELETE FROM outbox WHERE topic = ? AND seq <= ?", topic, throughSeq)),
    topicCursors: read([], () =>
      sql
        .exec("SELECT topic, through FROM topic_cursors ORDER BY topic")
        .toArray()
        .map((row) => ({ topic: row.topic as string, through: row.through as number })),
    ),
    followTopic: (topic, through) =>
      write(false, () => {
        sql.exec("INSERT OR IGNORE INTO topic_cursors (topic, through) VALUES (?, ?)", topic, through)
      }),
    advanceTopic: (topic, through) =>
      read(undefined, () => {
        sql.exec("UPDATE topic_cursors SET through = ? WHERE topic = ? AND through < ?", through, topic, through)
      }),
    unfollowTopic: (topic) => read(undefined, () => void sql.exec("DELETE FROM topic_cursors WHERE topic = ?", topic)),
    pruneCommands: (before, limit) => read(undefined, () => void sql.exec(PRUNE_COMMANDS, before, limit)),
    transaction: (body) => {
      // A rolled-back transaction also rolls back the tables it created.
      const existed = created
      try {
        return storage.transactionSync(body)
      } catch (error) {
        created = existed
        throw error
      }
    },
  }
}

export const SqliteEventStore = (storage: DurableObjectStorage, onCreate?: () => void) =>
  Layer.sync(EventStore, () => makeSqliteEventStore(storage, onCreate))
