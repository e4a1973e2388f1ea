/** The event store held in memory: the same contract as SQLite, for pure tests and the harness. */
import { Effect, Exit, Layer } from "effect"
import { EventStore, type CommandRecord, type EventStoreShape, type Snapshot, type StoredEvent } from "./event-store.js"

export interface MemoryEventStore extends EventStoreShape {
  /** Direct access for tests that tamper with the log on purpose. */
  readonly rows: Array<StoredEvent>
}

export const makeMemoryEventStore = (): MemoryEventStore => {
  let events: Array<StoredEvent> = []
  let snapshots: Array<Snapshot> = []
  let commands = new Map<string, CommandRecord>()
  const store: MemoryEventStore = {
    get rows() {
      return events
    },
    last: Effect.sync(() => events[events.length - 1]),
    append: (appended) => Effect.sync(() => void events.push(...structuredClone(appended))),
    read: (after, through, limit) =>
      Effect.sync(() => events.filter((e) => e.seq > after && e.seq <= through).slice(0, limit).map((e) => structuredClone(e))),
    seqAsOf: (at) => Effect.sync(() => events.filter((e) => e.meta.at <= at).reduce((max, e) => Math.max(max, e.seq), 0)),
    snapshotAtOrBelow: (seq, stateVersion) =>
      Effect.sync(() =>
        snapshots.filter((s) => s.seq <= seq && s.stateVersion === stateVersion).reduce<Snapshot | undefined>(
          (best, s) => (best === undefined || s.seq > best.seq ? s : best),
          undefined,
        ),
      ),
    saveSnapshot: (snapshot) => Effect.sync(() => void snapshots.push(structuredClone(snapshot))),
    findCommand: (commandId) => Effect.sync(() => commands.get(commandId)),
    saveCommand: (commandId, record) => Effect.sync(() => void commands.set(commandId, record)),
    pruneCommands: (before) =>
      Effect.sync(() => {
        for (const [id, record] of commands) if (record.at < before) commands.delete(id)
      }),
    transaction: (effect) =>
      Effect.suspend(() => {
        const saved = { events: [...events], snapshots: [...snapshots], commands: new Map(commands) }
        return Effect.onExit(effect, (exit) =>
          Effect.sync(() => {
            if (Exit.isFailure(exit)) ({ events, snapshots, commands } = saved)
          }),
        )
      }),
  }
  return store
}

export const MemoryEventStore = (store: MemoryEventStore = makeMemoryEventStore()) => Layer.succeed(EventStore, store)
