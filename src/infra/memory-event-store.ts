/** The event store held in memory: the same contract as SQLite, for pure tests and the harness. */
import { Effect, Layer } from "effect"
import {
  EventStore,
  type CommandRecord,
  type EventStoreShape,
  type Snapshot,
  type StoredEvent,
} from "../core/event-store.js"
import { canonicalJson } from "../core/hash-chain.js"

export interface MemoryEventStore extends EventStoreShape {
  /** Direct access for tests that tamper with the log (and its snapshots) on purpose. */
  readonly rows: Array<StoredEvent>
  readonly snapshots: Array<Snapshot>
}

export const makeMemoryEventStore = (): MemoryEventStore => {
  const events: Array<StoredEvent> = []
  const snapshots: Array<Snapshot> = []
  const commands = new Map<string, CommandRecord>()
  let outbox: Array<{ topic: string; seq: number }> = []
  const cursors = new Map<string, number>()
  const store: MemoryEventStore = {
    get rows() {
      return events
    },
    get snapshots() {
      return snapshots
    },
    last: Effect.sync(() => events[events.length - 1]),
    append: (appended) =>
      Effect.sync(() => {
        for (const { dataJson, metaJson, ...event } of appended)
          events.push({ ...event, data: JSON.parse(dataJson), meta: JSON.parse(metaJson) })
      }),
    read: (after, through, limit) =>
      Effect.sync(() =>
        events
          .filter((e) => e.seq > after && e.seq <= through)
          .slice(0, limit)
          .map((e) => structuredClone(e)),
      ),
    readRows: (after, through, limit) =>
      Effect.sync(() =>
        events
          .filter((e) => e.seq > after && e.seq <= through)
          .slice(0, limit)
          .map(({ data, meta, ...row }) => ({ ...row, dataJson: canonicalJson(data), metaJson: canonicalJson(meta) })),
      ),
    fold: (after, through, initial, step) =>
      Effect.sync(() =>
        events
          .filter((e) => e.seq > after && e.seq <= through)
          .reduce((state, e) => step(state, structuredClone(e)), initial),
      ),
    hashAt: (seq) => Effect.sync(() => events.find((e) => e.seq === seq)?.hash),
    seqAsOf: (at) =>
      Effect.sync(() => events.filter((e) => e.meta.at <= at).reduce((max, e) => Math.max(max, e.seq), 0)),
    snapshotAtOrBelow: (seq, stateVersion) =>
      Effect.sync(() =>
        snapshots
          .filter((s) => s.seq <= seq && s.stateVersion === stateVersion)
          .reduce<Snapshot | undefined>((best, s) => (best === undefined || s.seq > best.seq ? s : best), undefined),
      ),
    snapshotSeqs: (stateVersion) =>
      Effect.sync(() =>
        snapshots
          .filter((s) => s.stateVersion === stateVersion)
          .map((s) => s.seq)
          .sort((a, b) => a - b),
      ),
    saveSnapshot: (snapshot) => Effect.sync(() => void snapshots.push({ ...snapshot })),
    findCommand: (commandId) => Effect.sync(() => commands.get(commandId)),
    // As SQLite's ON CONFLICT DO NOTHING: the first record for an id stays.
    saveCommand: (commandId, record) =>
      Effect.sync(() => {
        if (commands.has(commandId)) return false
        commands.set(commandId, record)
        return true
      }),
    enqueue: (deliveries) => Effect.sync(() => void outbox.push(...deliveries)),
    pendingDeliveries: (limit) =>
      Effect.sync(() =>
        [...new Set(outbox.map((o) => o.topic))].sort().map((topic) => ({
          topic,
          events: outbox
            .filter((o) => o.topic === topic)
            .sort((a, b) => a.seq - b.seq)
            .slice(0, limit)
            .map((o) => structuredClone(events[o.seq - 1]!)),
        })),
      ),
    hasQueuedDeliveries: Effect.sync(() => outbox.some((o) => events[o.seq - 1] !== undefined)),
    acknowledge: (topic, throughSeq) =>
      Effect.sync(() => void (outbox = outbox.filter((o) => o.topic !== topic || o.seq > throughSeq))),
    // A Map iterates in insertion order: the records claimed first, as SQLite's rowid order.
    topicCursors: Effect.sync(() =>
      [...cursors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([topic, through]) => ({ topic, through })),
    ),
    followTopic: (topic, through) => Effect.sync(() => void (cursors.has(topic) || cursors.set(topic, through))),
    advanceTopic: (topic, through) =>
      Effect.sync(() => {
        const at = cursors.get(topic)
        if (at !== undefined && at < through) cursors.set(topic, through)
      }),
    unfollowTopic: (topic) => Effect.sync(() => void cursors.delete(topic)),
    pruneCommands: (before, limit) =>
      Effect.sync(() => {
        for (const [id, record] of [...commands].slice(0, limit)) if (record.at < before) commands.delete(id)
      }),
    // Events, snapshots and the outbox only grow within a transaction, so rolling them back is
    // truncation; idempotency records can also be pruned and cursors move, so they are restored whole.
    transaction: (body) => {
      const mark = {
        events: events.length,
        snapshots: snapshots.length,
        commands: new Map(commands),
        outbox: outbox.length,
        cursors: new Map(cursors),
      }
      try {
        return body()
      } catch (error) {
        events.length = mark.events
        snapshots.length = mark.snapshots
        commands.clear()
        for (const [id, record] of mark.commands) commands.set(id, record)
        outbox.length = mark.outbox
        cursors.clear()
        for (const [topic, through] of mark.cursors) cursors.set(topic, through)
        throw error
      }
    },
  }
  return store
}

export const MemoryEventStore = (store: MemoryEventStore = makeMemoryEventStore()) => Layer.succeed(EventStore, store)
