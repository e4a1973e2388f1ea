/**
 * The actor runtime, independent of where it is hosted: recovery (snapshot + replay),
 * the command path (decode → decide → append → snapshot → idempotency row, in one
 * transaction), time travel, paging and chain verification. The Durable Object class
 * is glue around this; tests host it on the in-memory store.
 *
 * Every method runs synchronously from start to finish: nothing awaits between
 * reading the state and appending, so commands to one actor are serialized by
 * construction (a Durable Object runs one synchronous stretch at a time).
 */
import { Cause, Clock, Effect, Exit, type ManagedRuntime } from "effect"
import { Caller, Forbidden } from "../domain/caller.js"
import { DomainError, type Entity } from "../domain/entity.js"
import { PAGE_BYTES, jsonBytes } from "../domain/json-size.js"
import { EventStore, type EventMeta, type EventStoreShape, type SerializedEvent, type StoredEvent } from "../infra/event-store.js"
import { Ids, type IdsShape } from "../infra/ids.js"
import { ChainWalk, GENESIS_HASH, canonicalJson, linkEvent, sha256 } from "./hash-chain.js"

export type ActorFailure = {
  /** InvalidInput 400, Forbidden 403, Conflict 409, Rejected 422, Unavailable 503 (mapped once, at the edge). */
  readonly _tag: "InvalidInput" | "Forbidden" | "Conflict" | "Rejected" | "Unavailable"
  readonly code: string
  readonly message: string
  readonly details?: unknown
}

export type ActorReply<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: ActorFailure }

/** An event as readers see it: data upcast to the current schema version. */
export type WireEvent = StoredEvent

export interface CommandRequest {
  readonly command: unknown
  /** Set by the hosting object for its own timer and reactions, never from a request. */
  readonly internal?: boolean
  readonly ifMatch?: number
  readonly idempotencyKey?: string
  readonly principal?: string
  /** The principal's scopes, for entities that decide by them (see Caller); none when absent. */
  readonly scopes?: ReadonlyArray<string>
  readonly correlationId?: string
  readonly causationId?: string
}

export interface CommandOutcome {
  readonly version: number
  readonly events: ReadonlyArray<WireEvent>
  readonly state: unknown
  /** True when this answers a retried Idempotency-Key: nothing was appended this time. */
  readonly replayed: boolean
}

export interface StateQuery {
  readonly at?: number
  /** ms since the epoch: the state after the last event with `meta.at` ≤ asOf. */
  readonly asOf?: number
}

export type VerifyReport =
  | { readonly ok: true; readonly events: number; readonly head: string }
  | { readonly ok: false; readonly firstBadSeq: number; readonly reason: string }

export type ActorRuntime = ManagedRuntime.ManagedRuntime<EventStore | Ids, never>

/** Idempotency keys are remembered at least this long. */
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000
export const MAX_EVENTS_PAGE = 1000
const VERIFY_PAGE = 2000
/** Rows read at first for a page of events; later reads are sized by the bytes still free. */
const FIRST_READ = 16

class Failure {
  constructor(readonly failure: ActorFailure) {}
}

/** Thrown out of the store transaction so that a refused command's writes (if any) roll back. */
class RolledBack {
  constructor(readonly reply: { readonly ok: false; readonly error: ActorFailure }) {}
}

interface Appended<S> {
  readonly appended: ReadonlyArray<StoredEvent>
  readonly version: number
  readonly state: S
  readonly hash: string
  readonly at: number
}

const fail = (failure: ActorFailure) => Effect.fail(new Failure(failure))

export class ActorCore<S = unknown> {
  private state: S
  private version = 0
  private headHash = GENESIS_HASH
  private lastAt = 0

  private readonly store: EventStoreShape
  private readonly ids: IdsShape

  constructor(
    readonly entity: Entity<S>,
    private readonly runtime: ActorRuntime,
    /** Runs inside the command's transaction after the append: side tables kept by the host. */
    private readonly onAppend?: (appended: ReadonlyArray<StoredEvent>, command: unknown) => void,
  ) {
    this.state = entity.initial
    this.store = runtime.runSync(Effect.service(EventStore))
    this.ids = runtime.runSync(Effect.service(Ids))
    this.run(this.recover())
  }

  get currentVersion(): number {
    return this.version
  }

  get currentState(): S {
    return this.state
  }

  private run<A>(effect: Effect.Effect<A, never, EventStore | Ids>): A {
    return this.runtime.runSync(effect)
  }

  /** Runs an effect whose expected failures are `Failure`s; defects still throw. */
  private reply<A>(effect: Effect.Effect<A, Failure, EventStore | Ids>): ActorReply<A> {
    const exit = this.runtime.runSyncExit(effect)
    if (Exit.isSuccess(exit)) return { ok: true, value: exit.value }
    const error = Cause.squash(exit.cause)
    if (error instanceof Failure) return { ok: false, error: error.failure }
    throw error
  }

  private recover() {
    return Effect.gen({ self: this }, function* () {
      const store = yield* EventStore
      const last = yield* store.last
      if (last === undefined) return
      this.state = yield* this.foldUpTo(last.seq)
      this.version = last.seq
      this.headHash = last.hash
      this.lastAt = last.meta.at
    })
  }

  /** State after event `seq`: the nearest snapshot at or below it, then the events after that. */
  private foldUpTo(seq: number) {
    return Effect.gen({ self: this }, function* () {
      const store = yield* EventStore
      const snapshot = yield* store.snapshotAtOrBelow(seq, this.entity.stateVersion)
      const start = snapshot === undefined ? this.entity.initial : this.entity.decodeState(snapshot.state)
      const { evolve, decodeEvent } = this.entity
      return yield* store.fold(snapshot?.seq ?? 0, seq, start, (state, stored) => evolve(state, decodeEvent(stored)))
    })
  }

  private toWire = (stored: StoredEvent): WireEvent => {
    const current = this.entity.currentEventVersion(stored.type)
    return stored.schemaVersion === current ? stored : { ...stored, schemaVersion: current, data: this.entity.upcastData(stored) }
  }

  /**
   * decode → decide → append → snapshot when due → idempotency row, as one Effect
   * program run (one fiber) inside one store transaction. The in-memory head moves
   * only after the transaction has committed.
   */
  command(request: CommandRequest): ActorReply<CommandOutcome> {
    let reply: ActorReply<CommandOutcome | Appended<S>>
    try {
      reply = this.store.transaction(() => {
        const result = this.reply(this.decideAndAppend(request))
        if (!result.ok) throw new RolledBack(result)
        return result
      })
    } catch (error) {
      if (!(error instanceof RolledBack)) throw error
      return error.reply
    }
    if (!reply.ok || !("appended" in reply.value)) return reply as ActorReply<CommandOutcome>
    const outcome = reply.value
    this.state = outcome.state
    this.version = outcome.version
    this.headHash = outcome.hash
    this.lastAt = outcome.at
    return { ok: true, value: { version: outcome.version, events: outcome.appended, state: this.entity.encodeState(outcome.state), replayed: false } }
  }

  private decideAndAppend(request: CommandRequest) {
    return Effect.gen({ self: this }, function* () {
      const store = this.store
      const decoded = this.entity.decodeCommand(request.command)
      if (!decoded.ok) return yield* fail({ _tag: "InvalidInput", code: "invalid_command", message: decoded.error.message, details: { issues: decoded.error.issues } })
      if (!request.internal && this.entity.internalCommands?.includes(decoded.command.type)) {
        return yield* fail({
          _tag: "InvalidInput",
          code: "internal_command",
          message: `${decoded.command.type} is sent by emberlog itself, not by clients`,
        })
      }
      const key = request.idempotencyKey
      const requestHash = key === undefined ? "" : sha256(canonicalJson(request.command))
      if (key !== undefined) {
        const prior = yield* store.findCommand(key)
        if (prior !== undefined) {
          if (prior.requestHash !== requestHash) {
            return yield* fail({
              _tag: "Rejected",
              code: "idempotency_key_reused",
              message: `Idempotency-Key ${JSON.stringify(key)} was already used for a different command`,
            })
          }
          const events = yield* store.read(prior.firstSeq - 1, prior.version, MAX_EVENTS_PAGE)
          const state = yield* this.foldUpTo(prior.version)
          return { version: prior.version, events: events.map(this.toWire), state: this.entity.encodeState(state), replayed: true } satisfies CommandOutcome
        }
      }
      if (request.ifMatch !== undefined && request.ifMatch !== this.version) {
        return yield* fail({
          _tag: "Conflict",
          code: "version_conflict",
          message: `If-Match names version ${request.ifMatch} but the actor is at version ${this.version}`,
          details: { expected: request.ifMatch, current: this.version },
        })
      }
      const caller = {
        principal: request.principal ?? "anonymous",
        scopes: new Set(request.scopes ?? []),
        internal: request.internal === true,
      }
      const emitted = yield* this.entity.decide(this.state, decoded.command).pipe(
        Effect.provideService(Caller, caller),
        Effect.catchIf(
          (error): error is DomainError => error instanceof DomainError,
          (error) => {
            const { code, message, details } = error
            return fail({ _tag: error instanceof Forbidden ? "Forbidden" : "Rejected", code, message, details })
          },
        ),
      )
      const now = yield* Clock.currentTimeMillis
      const commandId = key ?? (yield* this.ids.next)
      const meta: EventMeta = {
        at: Math.max(now, this.lastAt),
        causationId: request.causationId ?? null,
        commandId,
        correlationId: request.correlationId ?? commandId,
        principal: request.principal ?? "anonymous",
      }
      const metaJson = canonicalJson(meta)
      let state = this.state
      let hash = this.headHash
      const appended: Array<SerializedEvent> = []
      for (const event of emitted) {
        state = this.entity.evolve(state, event)
        const linked = linkEvent(hash, { seq: this.version + appended.length + 1, ...this.entity.encodeEvent(event), meta }, metaJson)
        hash = linked.hash
        appended.push(linked)
      }
      const version = this.version + appended.length
      yield* store.append(appended)
      yield* store.enqueue(emitted.flatMap((event, i) => this.entity.topics(event).map((topic) => ({ seq: appended[i]!.seq, topic }))))
      if (this.onAppend !== undefined && appended.length > 0) {
        const onAppend = this.onAppend
        yield* Effect.sync(() => onAppend(appended, decoded.command))
      }
      const every = this.entity.snapshotEvery
      if (Math.floor(version / every) > Math.floor(this.version / every)) {
        yield* store.saveSnapshot({ seq: version, stateVersion: this.entity.stateVersion, state: this.entity.encodeState(state) })
        yield* store.pruneCommands(meta.at - IDEMPOTENCY_RETENTION_MS)
      }
      if (key !== undefined) yield* store.saveCommand(key, { requestHash, version, firstSeq: this.version + 1, at: meta.at })
      return { appended: appended.map(({ dataJson: _d, metaJson: _m, ...event }) => event), version, state, hash, at: meta.at } satisfies Appended<S>
    })
  }

  /** Events still to be delivered to topics, per topic, oldest first (upcast like any read). */
  pendingDeliveries(limit: number): ReadonlyArray<{ readonly topic: string; readonly events: ReadonlyArray<WireEvent> }> {
    return this.run(
      Effect.map(this.store.pendingDeliveries(limit), (batches) => batches.map(({ topic, events }) => ({ topic, events: events.map(this.toWire) }))),
    )
  }

  acknowledge(topic: string, throughSeq: number): void {
    this.store.transaction(() => this.run(this.store.acknowledge(topic, throughSeq)))
  }

  readState(query: StateQuery = {}): ActorReply<{ version: number; state: unknown }> {
    return this.reply(
      Effect.gen({ self: this }, function* () {
        let seq = this.version
        if (query.at !== undefined) {
          if (!Number.isInteger(query.at) || query.at < 0 || query.at > this.version) {
            return yield* fail({
              _tag: "InvalidInput",
              code: "invalid_query",
              message: `at must be an integer from 0 to ${this.version}`,
              details: { at: query.at, version: this.version },
            })
          }
          seq = query.at
        } else if (query.asOf !== undefined) {
          if (!Number.isFinite(query.asOf)) return yield* fail({ _tag: "InvalidInput", code: "invalid_query", message: "asOf must be a time" })
          seq = yield* (yield* EventStore).seqAsOf(query.asOf)
        }
        const state = seq === this.version ? this.state : yield* this.foldUpTo(seq)
        return { version: seq, state: this.entity.encodeState(state) }
      }),
    )
  }

  /**
   * A page of events after `after`, upcast to today's schemas; `asStored` gives the rows
   * exactly as written (what the hash chain covers), so an exported log verifies offline.
   * A page holds at most `limit` events and PAGE_BYTES of JSON, but always one event;
   * `next` is the seq of its last event, so paging on from there misses and repeats nothing.
   */
  readEvents(after: number, limit: number = 100, asStored = false): ActorReply<{ events: ReadonlyArray<WireEvent>; next: number | null }> {
    return this.reply(
      Effect.gen({ self: this }, function* () {
        if (!Number.isInteger(after) || after < 0) {
          return yield* fail({ _tag: "InvalidInput", code: "invalid_query", message: "after must be a non-negative integer" })
        }
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EVENTS_PAGE) {
          return yield* fail({ _tag: "InvalidInput", code: "invalid_query", message: `limit must be an integer from 1 to ${MAX_EVENTS_PAGE}` })
        }
        const store = yield* EventStore
        const events: Array<WireEvent> = []
        // The array's brackets; each event adds its JSON and a comma.
        let bytes = 1
        // Rows are read a few at a time, so a page of large events is never all in memory
        // at once on top of what the page keeps.
        let cursor = after
        for (let full = false; !full && bytes < PAGE_BYTES && events.length < limit && cursor < this.version; ) {
          // Sized by the average event so far: about as many rows as the bytes still free hold.
          const want = events.length === 0 ? FIRST_READ : Math.floor((PAGE_BYTES - bytes) / (bytes / events.length))
          const rows = yield* store.read(cursor, this.version, Math.max(1, Math.min(want, limit - events.length)))
          if (rows.length === 0) break
          for (const row of rows) {
            const event = asStored ? row : this.toWire(row)
            const size = jsonBytes(event) + 1
            if (events.length > 0 && bytes + size > PAGE_BYTES) {
              full = true
              break
            }
            events.push(event)
            bytes += size
          }
          cursor = events[events.length - 1]!.seq
        }
        const lastSeq = events[events.length - 1]?.seq
        return { events, next: lastSeq !== undefined && lastSeq < this.version ? lastSeq : null }
      }),
    )
  }

  /** Walks the whole chain: gapless seqs from 1, every hash recomputed, and the head where memory says it is. */
  verify(): VerifyReport {
    return this.run(
      Effect.gen({ self: this }, function* () {
        const store = yield* EventStore
        const walk = new ChainWalk()
        for (;;) {
          const page = yield* store.read(walk.events, Number.MAX_SAFE_INTEGER, VERIFY_PAGE)
          for (const event of page) {
            const broken = walk.check(event)
            if (broken !== undefined) return { ok: false, ...broken } as const
          }
          if (page.length < VERIFY_PAGE) break
        }
        if (walk.events !== this.version) {
          return { ok: false, firstBadSeq: walk.events + 1, reason: `the log ends at ${walk.events} but ${this.version} events were appended` } as const
        }
        return { ok: true, events: walk.events, head: walk.head } as const
      }),
    )
  }
}
