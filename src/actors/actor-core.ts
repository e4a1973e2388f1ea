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
import { Cause, Clock, Context, Effect, Exit, Option, type ManagedRuntime } from "effect"
import { Caller, Forbidden, type CallerShape } from "../domain/caller.js"
import { DomainError, type Entity, type Tagged } from "../domain/entity.js"
import { PAGE_BYTES, jsonBytes, utf8Length } from "../domain/json-size.js"
import {
  ArchiveMiss,
  EventStore,
  HistoryDeleted,
  StoreError,
  archiveSignal,
  type EventMeta,
  type EventStoreShape,
  type SerializedEvent,
  type Snapshot,
  type StoredEvent,
  type StoredRow,
} from "../core/event-store.js"
import { Ids, type IdsShape } from "../infra/ids.js"
import { directBody } from "../core/sync-effect.js"
import { ChainWalk, GENESIS_HASH, canonicalJson, linkEvent, sha256 } from "../core/hash-chain.js"
import type {
  ActorFailure,
  ActorReply,
  CommandOutcome,
  CommandRequest,
  StateQuery,
  VerifyReport,
  WireEvent,
} from "../core/wire.js"
import { MAX_ROW_BYTES, MAX_RPC_BYTES, exceedsDepth, overBytes, serializedBound, tooDeep } from "./limits.js"

export type ActorRuntime = ManagedRuntime.ManagedRuntime<EventStore | Ids, never>

/** Idempotency keys are remembered at least this long. */
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000
/**
 * A page's count limit; PAGE_BYTES bounds it too. Ten thousand, not one: a catch-up pays
 * each request's fixed cost (the Worker, the RPC, the proxy) once per page (issue 13).
 */
export const MAX_EVENTS_PAGE = 10_000
const VERIFY_PAGE = 2000
/** Rows read at first for a page of events; later reads are sized by the bytes still free. */
const FIRST_READ = 16
/** Where an object key may start with a digit (or a string value in an array does: harmless, it only takes the parse). */
const DIGIT_KEY = /[{,]"[0-9]/
/** Room in a row for the columns beside the JSON (seq, type, version, at, hash). */
const ROW_OVERHEAD = 1024
/** Room in a reply for each event's fields beside its data and meta. */
const REPLY_EVENT_OVERHEAD = 256

/** An expected failure: the actor's answer to this request (invalid, refused, conflicting, too large). */
class Failure {
  constructor(readonly failure: ActorFailure) {}
}

type Services = EventStore | Ids

const rolledBack: ActorFailure = {
  _tag: "RolledBack",
  code: "internal",
  message: "The command failed inside its transaction and was rolled back: nothing was appended, so a retry is safe",
}

/** Thrown out of the store transaction so that a failed program's writes (if any) roll back. */
class Abort {
  constructor(readonly cause: Cause.Cause<unknown>) {}
}

/**
 * A follower's cursor shares the topics' cursor table (what is kept past it must not be archived
 * away) but not their delivery: its name starts with "~", which no topic name can (NAME_PATTERN).
 */
export const isFollowerCursor = (name: string): boolean => name.startsWith("~")

/**
 * Runs `program` inside one store transaction, with the services of the fiber that runs this.
 * The transaction takes a synchronous body, so the program runs to its end in there (one fiber);
 * when it fails, typed or not, every write it made rolls back and the failure comes out as it was.
 */
const inTransaction = <A, E>(program: Effect.Effect<A, E, Services>): Effect.Effect<A, E, Services> =>
  Effect.contextWith((services: Context.Context<Services>) => {
    try {
      return Effect.succeed(
        Context.get(services, EventStore).transaction(() => {
          const exit = Effect.runSyncExitWith(services)(program)
          if (Exit.isSuccess(exit)) return exit.value
          throw new Abort(exit.cause)
        }),
      )
    } catch (error) {
      // Anything else was thrown by the commit itself: as much a defect as one inside the program.
      return error instanceof Abort ? Effect.failCause(error.cause as Cause.Cause<E>) : Effect.die(error)
    }
  })

/**
 * A keyed command's attempt that did not commit, thrown out of its transaction (which rolls it
 * back): the key's record, if there is one, answers instead of `cause`.
 */
class KeyedAttemptFailed {
  constructor(
    readonly requestHash: string,
    readonly cause: unknown,
  ) {}
}

/** The attempt's cause when its Idempotency-Key already had a record (which then answers). */
const keyTaken = new Error("emberlog: the Idempotency-Key was claimed by an earlier command")

/** What a store failure is to a caller outside a transaction: the storage's own error, rethrown. */
const storeDefect = (error: unknown) => (error instanceof StoreError ? error.cause : error)

/** Events a topic is still to be sent. */
export interface PendingDelivery {
  readonly topic: string
  readonly events: ReadonlyArray<WireEvent>
  /**
   * For a followed topic: how far the log was read for it (the events routed elsewhere in between
   * included): once every event here is delivered, its cursor moves to `through`. Absent for queued rows.
   */
  readonly through?: number
  /** More is pending for the topic after these. */
  readonly more: boolean
}

interface Appended<S> {
  readonly appended: ReadonlyArray<StoredEvent>
  readonly version: number
  readonly state: S
  /** Encoded inside the transaction, so nothing the input controls can fail after the commit. */
  readonly encodedState: unknown
  readonly hash: string
  readonly at: number
  /** Topics this command's events are the first to be routed to, and the cursor each starts from. */
  readonly followed: ReadonlyArray<{ readonly topic: string; readonly through: number }>
}

const fail = (failure: ActorFailure) => Effect.fail(new Failure(failure))

/** The same answer as `fail`, thrown from plain code: inside a command's transaction it rolls back. */
const refuse = (failure: ActorFailure): never => {
  throw new Failure(failure)
}

/** What a read of events retention deleted answers (410). */
export const historyDeleted = (firstAvailableSeq: number): ActorFailure => ({
  _tag: "Gone",
  code: "history_deleted",
  message: `Events before seq ${firstAvailableSeq} were deleted by this kind's retention`,
  details: { firstAvailableSeq },
})

/**
 * Where `verify` starts when the log's oldest events are archived (the host walked them) or
 * deleted: after event `seq`, whose hash is `hash`, with the state the log gives there.
 */
export interface VerifyStart<S = unknown> {
  readonly seq: number
  readonly hash: string
  readonly state: S
}

/** Throws a failed exit's error, as the synchronous methods around the runtime always have. */
const rethrow = (cause: Cause.Cause<unknown>): never => {
  throw storeDefect(Cause.squash(cause))
}

export class ActorCore<S = unknown> {
  private state: S
  private version = 0
  private headHash = GENESIS_HASH
  private lastAt = 0
  /** The runtime's services, built once: the command path runs its effects with them (`runHere`). */
  private readonly services: Context.Context<Services>
  private readonly store: EventStoreShape
  private readonly ids: IdsShape
  private readonly clock: Clock.Clock
  /** Where delivery to each followed topic stands (EventStoreShape.topicCursors), as committed. */
  private readonly topicCursors = new Map<string, number>()
  /** Cursors of followers outside the entity's routing (a replica's queue), kept apart from the topics' (isFollowerCursor). */
  private readonly followerCursors = new Map<string, number>()

  constructor(
    readonly entity: Entity<S>,
    private readonly runtime: ActorRuntime,
    /** Runs inside the command's transaction after the append: side tables kept by the host. */
    private readonly onAppend?: (appended: ReadonlyArray<StoredEvent>, command: unknown) => void,
    /** The actor's id, from the host's own name (not a request), for entities owned by who their id names. */
    private readonly actorId = "",
    /**
     * A topic the actor's first event is also delivered to, through the outbox (the host's: the
     * tenant's directory), so an actor that committed once is listed even after a crash.
     */
    private readonly firstEventTopic?: string,
  ) {
    this.state = entity.initial
    this.services = this.run(Effect.context<Services>())
    this.store = Context.get(this.services, EventStore)
    this.ids = Context.get(this.services, Ids)
    // A test's Clock layer is in the services; else Effect's default, the wall clock, as before.
    this.clock = Context.get(this.services, Clock.Clock)
    this.run(this.recover())
  }

  get currentVersion(): number {
    return this.version
  }

  get currentState(): S {
    return this.state
  }

  /** The hash of event `seq`, from the store (or its archive's index) without reading the event. */
  hashOf(seq: number): string | undefined {
    return this.run(this.store.hashAt(seq))
  }

  /** Runs an effect that has no answer of its own to fail with: a store failure or a defect throws. */
  private run<A>(effect: Effect.Effect<A, StoreError, Services>): A {
    const exit = this.runtime.runSyncExit(effect)
    return Exit.isSuccess(exit) ? exit.value : rethrow(exit.cause)
  }

  /** Runs an effect whose expected failures are `Failure`s (the reply); a store failure or a defect throws. */
  private reply<A>(effect: Effect.Effect<A, Failure | StoreError, Services>): ActorReply<A> {
    const exit = this.runtime.runSyncExit(effect)
    if (Exit.isSuccess(exit)) return { ok: true, value: exit.value }
    const error = Cause.squash(exit.cause)
    if (error instanceof Failure) return { ok: false, error: error.failure }
    const signal = archiveSignal(error)
    if (signal instanceof HistoryDeleted) return { ok: false, error: historyDeleted(signal.firstAvailableSeq) }
    return rethrow(exit.cause)
  }

  private recover() {
    return Effect.gen({ self: this }, function* () {
      const store = yield* EventStore
      for (const { topic, through } of yield* store.topicCursors)
        (isFollowerCursor(topic) ? this.followerCursors : this.topicCursors).set(topic, through)
      const last = yield* store.last
      if (last === undefined) return
      this.state = yield* this.foldUpTo(last.seq)
      this.version = last.seq
      this.headHash = last.hash
      this.lastAt = last.meta.at
    })
  }

  /**
   * State after event `seq`: the nearest trustworthy snapshot at or below it, then the events
   * after that. A snapshot whose hashes do not bind it to the log is passed over for an
   * earlier one (or a fold from the start); verify reports it.
   */
  private foldUpTo(seq: number) {
    return Effect.gen({ self: this }, function* () {
      const store = yield* EventStore
      let below = seq
      let from = 0
      let start = this.entity.initial
      for (;;) {
        const snapshot = yield* store.snapshotAtOrBelow(below, this.entity.stateVersion)
        if (snapshot === undefined) break
        const state = yield* this.trustedState(snapshot)
        if (state !== undefined) {
          from = snapshot.seq
          start = state
          break
        }
        console.warn(`emberlog: the ${this.entity.kind} snapshot at seq ${snapshot.seq} does not match the log; unused`)
        below = snapshot.seq - 1
      }
      const { evolve, decodeEvent } = this.entity
      return yield* store.fold(from, seq, start, (state, stored) => evolve(state, decodeEvent(stored)))
    })
  }

  /** The snapshot's state if its own hash holds and it names the hash of the event it follows. */
  private trustedState(snapshot: Snapshot) {
    return Effect.gen({ self: this }, function* () {
      if (sha256(snapshot.stateJson) !== snapshot.stateHash) return undefined
      // By hash alone: a snapshot at an archive boundary follows an event no longer in the store.
      if ((yield* (yield* EventStore).hashAt(snapshot.seq)) !== snapshot.headHash) return undefined
      try {
        return this.entity.decodeState(JSON.parse(snapshot.stateJson)) as S
      } catch {
        return undefined
      }
    })
  }

  private toWire = (stored: StoredEvent): WireEvent => {
    const current = this.entity.currentEventVersion(stored.type)
    return stored.schemaVersion === current
      ? stored
      : { ...stored, schemaVersion: current, data: this.entity.upcastData(stored) }
  }

  /**
   * decode → decide → append → snapshot when due → idempotency row, inside one store
   * transaction. Written as plain synchronous code, not as an Effect program: one command is
   * the unit a busy actor is bound by, and a program with a generator per step costs more than
   * the steps (bench/RESULTS.md, "What binds a busy actor"). The entity's decide and the
   * store's operations are still Effects; each is run where it stands with the runtime's own
   * services (`runHere`). The in-memory head moves only after the transaction has committed.
   */
  command(request: CommandRequest): ActorReply<CommandOutcome> {
    let outcome: CommandOutcome | Appended<S>
    try {
      outcome = this.attempt(request)
    } catch (error) {
      if (error instanceof Failure) return { ok: false, error: error.failure }
      // A retried key whose first events are archived: nothing was appended, so the host loads and retries.
      const signal = archiveSignal(error)
      if (signal instanceof ArchiveMiss) throw signal
      if (signal instanceof HistoryDeleted) return { ok: false, error: historyDeleted(signal.firstAvailableSeq) }
      // A store failure or a bug, inside the transaction, so everything rolled back: this,
      // unlike a 500 from further away, knows that nothing was appended.
      console.error(`emberlog: a ${this.entity.kind} command failed and was rolled back`, storeDefect(error))
      return { ok: false, error: rolledBack }
    }
    if (!("appended" in outcome)) return { ok: true, value: outcome }
    this.state = outcome.state
    this.version = outcome.version
    this.headHash = outcome.hash
    this.lastAt = outcome.at
    for (const { topic, through } of outcome.followed) this.topicCursors.set(topic, through)
    const { version, appended: events, encodedState: state } = outcome
    return { ok: true, value: { version, events, state, replayed: false } }
  }

  /**
   * One attempt at the command, in its transaction. With an Idempotency-Key the attempt claims the
   * key as its last write (one INSERT, no read first); when it does not commit (the key was taken,
   * or it was refused or failed) the key's record, if any, answers instead, as a lookup before
   * deciding would have: a retry replays the first result, a reused key is refused. Retries are
   * the rare case, so they pay for the decide that was rolled back, not every fresh key for a read.
   */
  private attempt(request: CommandRequest): CommandOutcome | Appended<S> {
    try {
      return this.store.transaction(() => this.decideAndAppend(request))
    } catch (error) {
      if (!(error instanceof KeyedAttemptFailed)) throw error
      const earlier = this.earlierAnswer(request.idempotencyKey!, error.requestHash)
      if (earlier === undefined) throw error.cause
      return earlier
    }
  }

  /** What a key already used answers: its first result again, or a refusal when the command differs. */
  private earlierAnswer(key: string, requestHash: string): CommandOutcome | undefined {
    const prior = this.runHere(this.store.findCommand(key))
    if (prior === undefined) return undefined
    if (prior.requestHash !== requestHash) {
      return refuse({
        _tag: "Rejected",
        code: "idempotency_key_reused",
        message: `Idempotency-Key ${JSON.stringify(key)} was already used for a different command`,
      })
    }
    const events = this.runHere(this.store.read(prior.firstSeq - 1, prior.version, MAX_EVENTS_PAGE))
    const state = this.runHere(this.foldUpTo(prior.version))
    return {
      version: prior.version,
      events: events.map(this.toWire),
      state: this.entity.encodeState(state),
      replayed: true,
    }
  }

  /**
   * Runs an effect to its end, here and now, with the runtime's services: its value, or its
   * failure thrown (inside a command's transaction, a throw rolls the transaction back). An
   * effect that is already an Exit (what `Effect.succeed` and `Effect.fail` return) is read
   * as it is, without starting a fiber.
   */
  private runHere<A, E>(effect: Effect.Effect<A, E, Services>): A {
    // The store's SQLite operations and the random ids: their body is the whole effect.
    const direct = directBody(effect)
    if (direct !== undefined) return direct()
    const exit = Exit.isExit(effect) ? (effect as Exit.Exit<A, E>) : Effect.runSyncExitWith(this.services)(effect)
    if (Exit.isSuccess(exit)) return exit.value
    throw Cause.squash(exit.cause)
  }

  /**
   * The entity's decide, with the request's Caller. A decide that answers with an Exit (most do:
   * `Effect.succeed([...])`, `reject(...)`) reads no service, so it needs no fiber; any other runs
   * with the runtime's services and the Caller, as a program of its own. A DomainError it fails
   * with is the reply (Forbidden: 403); any other failure is a defect, which rolls back.
   */
  private decideCommand(request: CommandRequest, command: Tagged): ReadonlyArray<Tagged> {
    // The entity's own services are the runtime's (its type cannot say so): Caller is added here.
    const decided = this.entity.decide(this.state, command) as Effect.Effect<ReadonlyArray<Tagged>, unknown, Services>
    const exit = Exit.isExit(decided)
      ? (decided as Exit.Exit<ReadonlyArray<Tagged>, unknown>)
      : Effect.runSyncExitWith(Context.add(this.services, Caller, this.callerOf(request)))(decided)
    if (Exit.isSuccess(exit)) return exit.value
    // As `Effect.catchIf` recovers: a typed failure only when the cause holds no defect.
    const error = Cause.hasDies(exit.cause) ? undefined : Cause.findErrorOption(exit.cause)
    if (error !== undefined && Option.isSome(error) && error.value instanceof DomainError) {
      const { code, message, details } = error.value
      return refuse({ _tag: error.value instanceof Forbidden ? "Forbidden" : "Rejected", code, message, details })
    }
    throw Cause.squash(exit.cause)
  }

  private callerOf(request: CommandRequest): CallerShape {
    return {
      principal: request.principal ?? "anonymous",
      scopes: new Set(request.scopes ?? []),
      internal: request.internal === true,
      actorId: this.actorId,
    }
  }

  private decideAndAppend(request: CommandRequest): CommandOutcome | Appended<S> {
    // Every transport reaches this point; deeper input would overflow the recursive encoders below.
    if (exceedsDepth(request.command)) return refuse({ _tag: "InvalidInput", ...tooDeep })
    const decoded = this.entity.decodeCommand(request.command)
    if (!decoded.ok)
      return refuse({
        _tag: "InvalidInput",
        code: "invalid_command",
        message: decoded.error.message,
        details: { issues: decoded.error.issues },
      })
    if (!request.internal && this.entity.internalCommands?.includes(decoded.command.type)) {
      return refuse({
        _tag: "InvalidInput",
        code: "internal_command",
        message: `${decoded.command.type} is sent by emberlog itself, not by clients`,
      })
    }
    const key = request.idempotencyKey
    if (key === undefined) return this.append(request, decoded.command, undefined)
    const requestHash = sha256(canonicalJson(request.command))
    try {
      return this.append(request, decoded.command, { key, requestHash })
    } catch (error) {
      throw new KeyedAttemptFailed(requestHash, error)
    }
  }

  /** The command's events, appended with everything that goes with them; `keyed` claims its Idempotency-Key. */
  private append(
    request: CommandRequest,
    command: Tagged,
    keyed: { readonly key: string; readonly requestHash: string } | undefined,
  ): Appended<S> {
    const store = this.store
    const key = keyed?.key
    if (request.ifMatch !== undefined && request.ifMatch !== this.version) {
      return refuse({
        _tag: "Conflict",
        code: "version_conflict",
        message: `If-Match names version ${request.ifMatch} but the actor is at version ${this.version}`,
        details: { expected: request.ifMatch, current: this.version },
      })
    }
    const emitted = this.decideCommand(request, command)
    const now = this.clock.currentTimeMillisUnsafe()
    const commandId = key ?? this.runHere(this.ids.next)
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
      const linked = linkEvent(
        hash,
        { seq: this.version + appended.length + 1, ...this.entity.encodeEvent(event), meta },
        metaJson,
      )
      hash = linked.hash
      appended.push(linked)
    }
    const version = this.version + appended.length
    const every = this.entity.snapshotEvery
    const snapshotDue = Math.floor(version / every) > Math.floor(this.version / every)
    const encodedState = this.entity.encodeState(state)
    const stateJson = snapshotDue ? canonicalJson(encodedState) : JSON.stringify(encodedState)
    this.checkFits(appended, metaJson, stateJson)
    this.runHere(store.append(appended))
    // The log is the outbox: an event routed to a topic already followed needs no write at all.
    const followed: Array<{ readonly topic: string; readonly through: number }> = []
    for (let i = 0; i < emitted.length; i++) {
      for (const topic of this.entity.topics(emitted[i]!)) {
        if (this.topicCursors.has(topic) || followed.some((cursor) => cursor.topic === topic)) continue
        // No topic can have such a name (the outbox would refuse it): it must not start a follower's cursor.
        if (isFollowerCursor(topic)) continue
        const through = appended[i]!.seq - 1
        this.runHere(store.followTopic(topic, through))
        followed.push({ topic, through })
      }
    }
    if (this.version === 0 && appended.length > 0 && this.firstEventTopic !== undefined)
      this.runHere(store.enqueue([{ seq: 1, topic: this.firstEventTopic }]))
    if (this.onAppend !== undefined && appended.length > 0) this.onAppend(appended, command)
    // Claimed before the snapshot's prune of old keys, so an old record still answers a late retry.
    if (keyed !== undefined) {
      const record = { requestHash: keyed.requestHash, version, firstSeq: this.version + 1, at: meta.at }
      if (!this.runHere(store.saveCommand(keyed.key, record))) throw keyTaken
    }
    if (snapshotDue) {
      const stateVersion = this.entity.stateVersion
      const stateHash = sha256(stateJson)
      this.runHere(store.saveSnapshot({ seq: version, stateVersion, stateJson, headHash: hash, stateHash }))
      // Each command claims at most one key, so forgetting twice a snapshot's worth keeps up.
      this.runHere(store.pruneCommands(meta.at - IDEMPOTENCY_RETENTION_MS, 2 * every))
    }
    const events = appended.map(({ dataJson: _d, metaJson: _m, ...event }) => event)
    return { appended: events, version, state, encodedState, hash, at: meta.at, followed } satisfies Appended<S>
  }

  /**
   * Refuses, before anything is written, what production could not store or send: an event
   * row or a state (the snapshot it will become) over 2 MB, or a reply over the RPC cap.
   * The state is held to the row limit on every command, not only when a snapshot is due,
   * so an actor can never grow into a state it cannot snapshot.
   */
  private checkFits(appended: ReadonlyArray<SerializedEvent>, metaJson: string, stateJson: string): void {
    if (appended.length === 0) return
    const rowLimit = MAX_ROW_BYTES - ROW_OVERHEAD - utf8Length(metaJson)
    let replyBytes = serializedBound(stateJson)
    for (const event of appended) {
      if (overBytes(event.dataJson, rowLimit)) {
        refuse({
          _tag: "TooLarge",
          code: "event_too_large",
          message: `A ${event.type} event would take more than the ${MAX_ROW_BYTES} bytes a stored event may`,
          details: { type: event.type, limitBytes: MAX_ROW_BYTES },
        })
      }
      replyBytes += serializedBound(event.dataJson) + serializedBound(metaJson) + REPLY_EVENT_OVERHEAD
    }
    if (overBytes(stateJson, MAX_ROW_BYTES - ROW_OVERHEAD)) {
      refuse({
        _tag: "Rejected",
        code: "state_too_large",
        message: `The ${this.entity.kind}'s state would take more than the ${MAX_ROW_BYTES} bytes a snapshot may`,
        details: { limitBytes: MAX_ROW_BYTES },
      })
    }
    if (replyBytes > MAX_RPC_BYTES) {
      refuse({
        _tag: "TooLarge",
        code: "reply_too_large",
        message: `The reply to this command would be larger than the ${MAX_RPC_BYTES} bytes a reply may be`,
        details: { limitBytes: MAX_RPC_BYTES },
      })
    }
  }

  /**
   * Events still to be delivered, per topic, oldest first (upcast like any read), at most `limit`
   * per topic: the queued rows (the directory's), then each followed topic's events after its
   * cursor. A topic with queued rows (a log from before cursors) gets those first: its order holds.
   */
  pendingDeliveries(limit: number): ReadonlyArray<PendingDelivery> {
    return this.run(
      Effect.gen({ self: this }, function* () {
        const store = yield* EventStore
        const queued = (yield* store.pendingDeliveries(limit)).filter(({ events }) => events.length > 0)
        const batches: Array<PendingDelivery> = queued.map(({ topic, events }) => ({
          topic,
          events: events.map(this.toWire),
          more: events.length === limit,
        }))
        const head = this.version
        // Topics at the same cursor (most often all of them) share one read of the log and its routing.
        const pages = new Map<
          number,
          {
            readonly events: ReadonlyArray<StoredEvent>
            readonly routes: ReadonlyArray<ReadonlyArray<string>>
            readonly end: number
          }
        >()
        for (const [topic, cursor] of [...this.topicCursors].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          if (cursor >= head || queued.some((batch) => batch.topic === topic)) continue
          let page = pages.get(cursor)
          if (page === undefined) {
            const events = yield* store.read(cursor, head, limit)
            const routes = events.map((event) => this.entity.topics(this.entity.decodeEvent(event)))
            page = { events, routes, end: events.length < limit ? head : events[events.length - 1]!.seq }
            pages.set(cursor, page)
          }
          const { events, routes, end } = page
          const routed = events.filter((_, i) => routes[i]!.includes(topic))
          batches.push({ topic, events: routed.map(this.toWire), through: end, more: end < head })
        }
        return batches
      }),
    )
  }

  /**
   * How many events the slowest followed topic's cursor is behind the head (no event is read):
   * the outbox lag metrics report. Queued rows (the directory's first event) are not counted.
   */
  outboxLag(): number {
    let lag = 0
    for (const through of this.topicCursors.values()) lag = Math.max(lag, this.version - through)
    return lag
  }

  /** Whether anything is still to be delivered to a topic (no event is read to tell). */
  hasPendingDeliveries(): boolean {
    for (const through of this.topicCursors.values()) if (through < this.version) return true
    return this.run(this.store.hasQueuedDeliveries)
  }

  /** Delivers the first event to `topic` (again): an actor whose log predates `firstEventTopic` catches up. */
  redeliverFirst(topic: string): void {
    if (this.version === 0) return
    this.run(
      inTransaction(
        Effect.gen(function* () {
          yield* (yield* EventStore).enqueue([{ seq: 1, topic }])
        }),
      ),
    )
  }

  /** Every event routed to `topic` up to `through` was delivered: its cursor moves there. */
  advanceTopic(topic: string, through: number): void {
    this.run(
      inTransaction(
        Effect.gen(function* () {
          yield* (yield* EventStore).advanceTopic(topic, through)
        }),
      ),
    )
    if ((this.topicCursors.get(topic) ?? Infinity) < through) this.topicCursors.set(topic, through)
  }

  /** Where a follower outside the entity's routing stands: every event up to it was handed over (0: none yet). */
  followerCursor(name: string): number {
    return this.followerCursors.get(name) ?? 0
  }

  /**
   * Starts the follower `name` at the log's start if it has no cursor yet: from then on, what is past
   * its cursor is kept (an archiver keeps every event after the lowest cursor).
   */
  follow(name: string): void {
    if (this.followerCursors.has(name)) return
    this.advanceFollower(name, 0)
    this.followerCursors.set(name, 0)
  }

  /** Every event up to `through` was handed over to the follower `name`: its cursor moves there (never back). */
  advanceFollower(name: string, through: number): void {
    if (!isFollowerCursor(name)) throw new Error(`emberlog: ${JSON.stringify(name)} is not a follower's cursor name`)
    const started = this.followerCursors.has(name)
    this.run(
      inTransaction(
        Effect.gen(function* () {
          const store = yield* EventStore
          if (!started) yield* store.followTopic(name, 0)
          yield* store.advanceTopic(name, through)
        }),
      ),
    )
    if (this.followerCursor(name) < through) this.followerCursors.set(name, through)
  }

  /** The followers that have a cursor (isFollowerCursor names). */
  followers(): ReadonlyArray<string> {
    return [...this.followerCursors.keys()]
  }

  /** Forgets the follower `name`'s cursor: what lies past it is no longer kept for it. */
  unfollow(name: string): void {
    if (!this.followerCursors.has(name)) return
    this.run(
      inTransaction(
        Effect.gen(function* () {
          yield* (yield* EventStore).unfollowTopic(name)
        }),
      ),
    )
    this.followerCursors.delete(name)
  }

  acknowledge(topic: string, throughSeq: number): void {
    this.run(
      inTransaction(
        Effect.gen(function* () {
          yield* (yield* EventStore).acknowledge(topic, throughSeq)
        }),
      ),
    )
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
          if (!Number.isFinite(query.asOf))
            return yield* fail({ _tag: "InvalidInput", code: "invalid_query", message: "asOf must be a time" })
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
  readEvents(
    after: number,
    limit: number = 100,
    asStored = false,
  ): ActorReply<{ events: ReadonlyArray<WireEvent>; next: number | null }> {
    return this.reply(
      Effect.gen({ self: this }, function* () {
        const store = yield* EventStore
        const page = yield* this.page(
          after,
          limit,
          (cursor, want) => store.read(cursor, this.version, want),
          (row) => (asStored ? row : this.toWire(row)),
          jsonBytes,
        )
        return { events: page.items, next: page.next }
      }),
    )
  }

  /**
   * The same page as `readEvents`, each event as its JSON text, the same text
   * `JSON.stringify` gives for it: a reader that only passes the page on (the HTTP route, a
   * WebSocket backlog) then neither parses each row's JSON nor carries objects over RPC.
   */
  readEventsJson(
    after: number,
    limit: number = 100,
    asStored = false,
  ): ActorReply<{
    events: ReadonlyArray<{ readonly seq: number; readonly type: string; readonly json: string }>
    next: number | null
  }> {
    return this.reply(
      Effect.gen({ self: this }, function* () {
        const store = yield* EventStore
        const page = yield* this.page(
          after,
          limit,
          (cursor, want) => store.readRows(cursor, this.version, want),
          (row) => ({ seq: row.seq, type: row.type, json: this.wireJson(row, asStored) }),
          (item) => utf8Length(item.json),
        )
        return { events: page.items, next: page.next }
      }),
    )
  }

  /**
   * `readEvents`' page as its JSON text, `{"events":[…],"next":…}`, byte for byte what
   * `JSON.stringify` gives for it: the body of GET …/events, one string over RPC.
   */
  readEventsPageJson(after: number, limit: number = 100, asStored = false): ActorReply<string> {
    const reply = this.readEventsJson(after, limit, asStored)
    if (!reply.ok) return reply
    const { events, next } = reply.value
    return { ok: true, value: `{"events":[${events.map((event) => event.json).join(",")}],"next":${next}}` }
  }

  /**
   * Events after `after`, at most `limit` and PAGE_BYTES of JSON (sized by `bytes`), but
   * always one. Rows are read a few at a time, so a page of large events is never all in
   * memory at once on top of what the page keeps.
   */
  private page<R extends { readonly seq: number }, A>(
    after: number,
    limit: number,
    read: (cursor: number, want: number) => Effect.Effect<ReadonlyArray<R>, StoreError>,
    encode: (row: R) => A,
    bytes: (item: A) => number,
  ): Effect.Effect<{ items: Array<A>; next: number | null }, Failure | StoreError> {
    return Effect.gen({ self: this }, function* () {
      if (!Number.isInteger(after) || after < 0) {
        return yield* fail({
          _tag: "InvalidInput",
          code: "invalid_query",
          message: "after must be a non-negative integer",
        })
      }
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EVENTS_PAGE) {
        return yield* fail({
          _tag: "InvalidInput",
          code: "invalid_query",
          message: `limit must be an integer from 1 to ${MAX_EVENTS_PAGE}`,
        })
      }
      const items: Array<A> = []
      // The array's brackets; each event adds its JSON and a comma.
      let used = 1
      let cursor = after
      for (let full = false; !full && used < PAGE_BYTES && items.length < limit && cursor < this.version;) {
        // Sized by the average event so far: about as many rows as the bytes still free hold.
        const want = items.length === 0 ? FIRST_READ : Math.floor((PAGE_BYTES - used) / (used / items.length))
        const rows = yield* read(cursor, Math.max(1, Math.min(want, limit - items.length)))
        if (rows.length === 0) break
        for (const row of rows) {
          const item = encode(row)
          const size = bytes(item) + 1
          if (items.length > 0 && used + size > PAGE_BYTES) {
            full = true
            break
          }
          items.push(item)
          used += size
          cursor = row.seq
        }
      }
      return { items, next: items.length > 0 && cursor < this.version ? cursor : null }
    })
  }

  /**
   * An event's wire JSON spliced from its row's stored JSON: `JSON.stringify` of the parsed
   * event gives the same text, because the stored text is canonical JSON, except where an
   * object has a key that starts with a digit (JSON.parse moves integer keys first) or the
   * event is upcast; those take the parse.
   */
  private wireJson(row: StoredRow, asStored: boolean): string {
    const upcast = !asStored && row.schemaVersion !== this.entity.currentEventVersion(row.type)
    if (upcast || DIGIT_KEY.test(row.dataJson) || DIGIT_KEY.test(row.metaJson)) {
      // The fields in the order the store's `read` gives them, which is the order readers see.
      const event: StoredEvent = {
        seq: row.seq,
        type: row.type,
        schemaVersion: row.schemaVersion,
        data: JSON.parse(row.dataJson),
        meta: JSON.parse(row.metaJson),
        hash: row.hash,
      }
      return JSON.stringify(asStored ? event : this.toWire(event))
    }
    return `{"seq":${row.seq},"type":${JSON.stringify(row.type)},"schemaVersion":${row.schemaVersion},"data":${row.dataJson},"meta":${row.metaJson},"hash":${JSON.stringify(row.hash)}}`
  }

  /**
   * Walks the whole chain: gapless seqs from 1, every hash recomputed, and the head where
   * memory says it is. It also refolds the state along the way and checks every snapshot
   * against it (state, and the head hash at its seq), so a snapshot edited in storage,
   * which would change state and time-travel answers, is reported too.
   */
  verify(start?: VerifyStart<S>): VerifyReport {
    return this.run(
      Effect.gen({ self: this }, function* () {
        const store = yield* EventStore
        const { entity } = this
        const from = start?.seq ?? 0
        // Snapshots at or below the start were checked by whoever walked the events before it.
        const snapshotSeqs = (yield* store.snapshotSeqs(entity.stateVersion)).filter((seq) => seq > from)
        let nextSnapshot = 0
        let state = start?.state ?? entity.initial
        const walk = new ChainWalk()
        walk.events = from
        walk.head = start?.hash ?? GENESIS_HASH
        for (;;) {
          const page = yield* store.read(walk.events, Number.MAX_SAFE_INTEGER, VERIFY_PAGE)
          for (const event of page) {
            const broken = walk.check(event)
            if (broken !== undefined) return { ok: false, ...broken } as const
            try {
              state = entity.evolve(state, entity.decodeEvent(event))
            } catch (error) {
              const reason = `event ${event.seq} cannot be replayed: ${String(error)}`
              return { ok: false, firstBadSeq: event.seq, reason } as const
            }
            for (; snapshotSeqs[nextSnapshot] === event.seq; nextSnapshot++) {
              const snapshot = yield* store.snapshotAtOrBelow(event.seq, entity.stateVersion)
              const matches =
                snapshot !== undefined &&
                snapshot.headHash === walk.head &&
                sha256(snapshot.stateJson) === snapshot.stateHash &&
                canonicalJson(entity.encodeState(state)) === snapshot.stateJson
              if (!matches) {
                const reason = `the snapshot at seq ${event.seq} does not match the state the log gives there`
                return { ok: false, firstBadSeq: event.seq, reason, snapshotSeq: event.seq } as const
              }
            }
          }
          if (page.length < VERIFY_PAGE) break
        }
        if (walk.events !== this.version) {
          return {
            ok: false,
            firstBadSeq: walk.events + 1,
            reason: `the log ends at ${walk.events} but ${this.version} events were appended`,
          } as const
        }
        if (nextSnapshot < snapshotSeqs.length) {
          const seq = snapshotSeqs[nextSnapshot]!
          const reason = `a snapshot claims seq ${seq}, past the end of the log`
          return { ok: false, firstBadSeq: seq, reason, snapshotSeq: seq } as const
        }
        return { ok: true, events: walk.events, head: walk.head, snapshots: snapshotSeqs.length } as const
      }),
    )
  }
}
