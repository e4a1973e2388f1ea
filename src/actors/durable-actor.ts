/**
 * The generic host: one SQLite-backed Durable Object class for every kind. An object learns
 * its tenant, kind and id from its own name (`actorName`); each RPC method hands its request
 * to the `ActorCore`, built once per object (recovery runs in `blockConcurrencyWhile`, so no
 * request sees a half-recovered actor), and every committed append is then delivered to the
 * actor's subscribers, its topics (through the outbox) and its kind's capabilities. The host
 * knows no kind: what a kind adds (presence, reactions, a content store) comes in through
 * the capabilities it is given (actors/capability.ts).
 */
import { DurableObject } from "cloudflare:workers"
import { Layer, ManagedRuntime } from "effect"
import type { Entity } from "../domain/entity.js"
import { Ids, RandomIds } from "../infra/ids.js"
import { makeSqliteEventStore } from "../infra/sqlite-event-store.js"
import { EventStore, HistoryDeleted, archiveSignal, type EventStoreShape } from "../core/event-store.js"
import { ActorCore, historyDeleted, type ActorRuntime } from "./actor-core.js"
import { SegmentIndex, archivedStore } from "./archive-store.js"
import { Archiver, HistoryUnavailable } from "./archiver.js"
import { archiveUnavailable, type Retention } from "./retention.js"
import type {
  ActorFailure,
  ActorReply,
  CommandOutcome,
  CommandRequest,
  StateQuery,
  VerifyReport,
  WireEvent,
} from "../core/wire.js"
import { failureResponse } from "./failures.js"
import { parseActorName, scopedName } from "../core/names.js"
import { drainOutbox } from "./outbox.js"
import { reportOutboxLag } from "./outbox-lag.js"
import { RetryBackoff } from "./follower.js"
import { ACTOR_BATCH_TYPE, CLIENT_ID, CLOSE_TOO_LARGE, MAX_FRAME_BYTES, errorFrame } from "../domain/protocol.js"
import { rateLimitMessage, withinLimit } from "./rate-limit.js"
import {
  Subscribers,
  acceptSubscription,
  closeExpiredSocket,
  isExpired,
  isOversize,
  type LogEntry,
  type LogSource,
  SUBSCRIBE_HEADER,
  AFTER_HEADER,
  type SocketAttachment,
} from "./subscribers.js"
import { StreamReads, parseReadRequest, streamError, streamReadsSettings } from "./stream-reads.js"
import { DEFAULT_PAGE } from "./stream-pages.js"
import { LOG_READ, answerLogRead } from "./log-streams.js"
import { stubOf, type ObjectStub } from "./stubs.js"
import type { EmberlogTopicObject, TopicApi } from "./topic.js"
import { DIRECTORY_TOPIC, directoryName, type DirectoryMethods } from "./directory.js"
import type { ErasedCounts } from "./deletion.js"
import { AlarmOwner, type AlarmTask } from "./alarm.js"
import type { Capability, CapabilityHooks, Host } from "./capability.js"
import { replicatedKinds, type ReplicaOptions } from "../core/replica.js"
import { dropStaleReplicaCursors, ReplicaFollower } from "./replica.js"

/** The bindings an actor uses: topics receive its outbox. */
export interface ActorEnv {
  readonly EMBERLOG_TOPIC: DurableObjectNamespace
  /** The edge's rate limiter: frames sent on sockets count against the key the edge put in their attachment. */
  readonly LIMITER?: RateLimit
  /** Archived segments of the kinds that have a retention (without it their actors keep every event). */
  readonly EMBERLOG_ARCHIVE?: R2Bucket
}

/** A kind the host serves: its entity and what its kind adds. */
export interface HostedKind {
  readonly entity: Entity
  readonly capabilities?: ReadonlyArray<Capability>
  /** Archive the oldest events to R2 past a threshold, and delete old archives (archiver.ts). */
  readonly retention?: Retention
}

export interface ActorOptions {
  /** Replaces the id source (tests make ids predictable); time comes from Effect's Clock. */
  readonly ids?: Layer.Layer<Ids>
  /** Follows the logs of these kinds (all when `kinds` is absent) into the queue bound as `binding` (core/replica.ts). */
  readonly replica?: ReplicaOptions
}

/**
 * Outbox deliveries wait this long after the first undelivered append, so a burst of
 * commands reaches its topics in one batch (one alarm, one RPC per topic) instead of
 * one delivery per command: topics trail their actors by about this much.
 */
export const DELIVERY_BATCH_DELAY_MS = 25
export const DELIVERY_RETRY_BASE_MS = 1_000
export const DELIVERY_RETRY_MAX_MS = 60_000

/** `onCreate` runs inside the first write's transaction, when the log's tables are created. */
export const actorRuntime = (
  storage: DurableObjectStorage,
  options: ActorOptions = {},
  onCreate?: () => void,
  /** Wraps the SQLite store (the archive's segments below its live tail). */
  wrapStore: (store: EventStoreShape) => EventStoreShape = (store) => store,
): ActorRuntime =>
  ManagedRuntime.make(
    Layer.mergeAll(
      Layer.sync(EventStore, () => wrapStore(makeSqliteEventStore(storage, onCreate))),
      options.ids ?? RandomIds,
    ),
  )

/**
 * Whether the object has any table of its own yet: the platform's are not (Cloudflare's `_cf_*`,
 * local miniflare's `__miniflare_do_name`, SQLite's `sqlite_*`).
 */
const OWN_TABLE = `SELECT 1 FROM sqlite_master WHERE type = 'table'
  AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE '\\_\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
  LIMIT 1`
const hasStorage = (sql: SqlStorage): boolean => sql.exec(OWN_TABLE).toArray().length > 0
/** The last seq stored (SQLite's tail, else the archive's end), without the core. */
const storedHead = (sql: SqlStorage): number => {
  const live = hasTable(sql, "events")
    ? (sql.exec("SELECT max(seq) AS seq FROM events").one().seq as number | null)
    : null
  if (live !== null) return live
  return hasTable(sql, "segments")
    ? ((sql.exec("SELECT max(last_seq) AS seq FROM segments").one().seq as number | null) ?? 0)
    : 0
}

const hasTable = (sql: SqlStorage, name: string) =>
  sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0

/** The marker that the actor's first event is on its way to the tenant's directory (written with the log's tables). */
const LISTED = "CREATE TABLE IF NOT EXISTS emberlog_listed (listed INTEGER)"

/** What a capability's hook started before an erasure gets when it commits. */
const erased: ActorReply<never> = {
  ok: false,
  error: { _tag: "Rejected", code: "actor_erased", message: "This actor was erased: its tenant was deleted" },
}

/** A command sent on a subscription socket. */
interface CommandFrame {
  readonly type: "command"
  readonly id: string | number
  readonly command: unknown
  readonly ifMatch?: number
  readonly idempotencyKey?: string
}

const parseCommandFrame = (message: string): CommandFrame | { readonly invalid: string; readonly id?: unknown } => {
  let frame: unknown
  try {
    frame = JSON.parse(message)
  } catch {
    return { invalid: "A frame must be JSON" }
  }
  if (typeof frame !== "object" || frame === null) return { invalid: "A frame must be a JSON object" }
  const { type, id, command, ifMatch, idempotencyKey } = frame as Record<string, unknown>
  if (type !== "command") return { invalid: `Unknown frame type ${JSON.stringify(type)}; expected "command"`, id }
  if (typeof id !== "string" && typeof id !== "number")
    return { invalid: "A command frame needs an id (string or number)", id }
  if (ifMatch !== undefined && !(Number.isSafeInteger(ifMatch) && (ifMatch as number) >= 0))
    return { invalid: "ifMatch must be a version number", id }
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== "string" || !CLIENT_ID.test(idempotencyKey))) {
    return { invalid: "idempotencyKey must be 1–255 visible ASCII characters", id }
  }
  return {
    type,
    id,
    command,
    ifMatch: ifMatch as number | undefined,
    idempotencyKey: idempotencyKey as string | undefined,
  }
}

/** A frame's `id`, for the error frame that answers it (null when it has none or is not JSON). */
const idOf = (message: string): unknown => {
  try {
    return (JSON.parse(message) as { id?: unknown })?.id
  } catch {
    return null
  }
}

/**
 * A paused backlog whose archive could not be loaded (R2 failing, or deleted meanwhile): closed
 * with 1011, which the client backs off from before it reconnects (a deleted start is then refused with 410).
 */
const closeUnreadable = (socket: WebSocket) => {
  try {
    socket.close(1011, "The log's archive could not be read: reconnect later with after=<the last seq you received>")
  } catch {
    // Already closed.
  }
}

const toLogEntry = (event: WireEvent): LogEntry => ({ position: event.seq, name: event.type, payload: event })

/** What an object whose name holds no kind it hosts answers, creating nothing. */
const unknownKind = (name: string | undefined): { readonly ok: false; readonly error: ActorFailure } => {
  const kind = name === undefined ? undefined : parseActorName(name)?.kind
  return {
    ok: false,
    error: {
      _tag: "InvalidInput",
      code: "unknown_kind",
      message:
        kind === undefined
          ? "This object's name names no actor (tenant/kind/id)"
          : `Unknown kind ${JSON.stringify(kind)}: this Worker does not serve it`,
    },
  }
}

class UnknownKind extends Error {
  constructor(name: string | undefined) {
    super(unknownKind(name).error.message)
  }
}

const unknownMethod = (method: string): ActorReply<never> => ({
  ok: false,
  error: { _tag: "InvalidInput", code: "unknown_method", message: `This kind has no method ${JSON.stringify(method)}` },
})

/** Work after a committed command: it must never make the command look failed. */
const followUp = (work: () => void): void => {
  try {
    work()
  } catch (error) {
    console.error("emberlog: a follow-up of a committed command failed", error)
  }
}

/** The actor an object hosts, as its name tells (undefined: a kind not served). */
interface Served {
  readonly tenant: string
  readonly kind: HostedKind
  readonly id: string
}

/**
 * The one actor class: every kind in `kinds` is hosted by it, each object by the kind its
 * name holds. A name whose kind is not hosted answers every RPC with `unknown_kind` and
 * creates nothing.
 */
export const actorHostClass = (kinds: ReadonlyArray<HostedKind>, options: ActorOptions = {}): ActorClass => {
  const byKind = new Map<string, HostedKind>()
  for (const kind of kinds) {
    if (byKind.has(kind.entity.kind)) throw new Error(`emberlog: the kind ${kind.entity.kind} is hosted twice`)
    const names = (kind.capabilities ?? []).map((capability) => capability.name)
    if (new Set(names).size !== names.length || names.includes("log"))
      throw new Error(`emberlog: the capabilities of ${kind.entity.kind} need distinct names other than "log"`)
    byKind.set(kind.entity.kind, kind)
  }
  const replicated = options.replica === undefined ? undefined : replicatedKinds(options.replica, [...byKind.keys()])

  return class EmberlogActor extends DurableObject<ActorEnv> {
    core!: ActorCore
    readonly served: Served | undefined
    subscribers!: Subscribers
    /** Durable Streams readers of the log (`/log`: long-polls and SSE), woken by every commit. */
    private readonly logReads = new StreamReads(streamReadsSettings(this.env))
    private alarms!: AlarmOwner
    /** The log's archived segments in R2 and the reads that reach them. */
    archiver!: Archiver
    /** Each capability's hooks for this object, by capability name, once started. */
    private hooks = new Map<string, CapabilityHooks>()
    private commandPath: (request: CommandRequest) => ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>> =
      (request) => this.commit(request)
    private readonly deliveryBackoff = new RetryBackoff(DELIVERY_RETRY_BASE_MS, DELIVERY_RETRY_MAX_MS)
    private deliveryDelay = 0
    /** The replica this actor's log is followed into, when its kind is replicated. */
    private replica: ReplicaFollower | undefined
    /**
     * Commits made while capabilities start (presence's reconcile commits Leave), held for every
     * capability's `committed` until all have hooks: else a capability started later, or the one
     * committing, would never hear of them. Unset once every capability has started.
     */
    private startCommits: Array<ReadonlyArray<WireEvent>> | undefined
    /** Counts the object's erasures: hooks of capabilities started before the last one may no longer act. */
    private generation = 0
    /** Set when the state cannot be rebuilt (archiver.ts, HistoryUnavailable): every request is refused with it. */
    private unavailable: ActorFailure | undefined

    constructor(ctx: DurableObjectState, env: ActorEnv) {
      super(ctx, env)
      const name = ctx.id.name === undefined ? undefined : parseActorName(ctx.id.name)
      const kind = name === undefined ? undefined : byKind.get(name.kind)
      this.served = name === undefined || kind === undefined ? undefined : { tenant: name.tenant, kind, id: name.id }
      // Nothing for a kind not served: no recovery, no tables, no alarm.
      if (this.served === undefined) return
      ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"))
      void ctx.blockConcurrencyWhile(() => this.boot())
    }

    /** Recovery and every capability's start: at construction, and again after the storage was erased. */
    private async boot(): Promise<void> {
      const { ctx } = this
      const served = this.served!
      this.subscribers = new Subscribers(ctx, this.logSource(), { wakeAt: (at) => void this.alarms.wakeAt(at) })
      this.alarms = new AlarmOwner(
        {
          getAlarm: () => ctx.storage.getAlarm(),
          setAlarm: (at) => ctx.storage.setAlarm(at),
          hasStorage: () => hasStorage(ctx.storage.sql),
          setTimer: (run, delayMs) => void setTimeout(run, delayMs),
          now: () => Date.now(),
        },
        this.alarmTasks(),
      )
      const source = { tenant: served.tenant, kind: served.kind.entity.kind, id: served.id }
      if (options.replica !== undefined && replicated!.has(served.kind.entity.kind)) {
        const generation = this.generation
        const binding = options.replica.binding
        this.replica = new ReplicaFollower({
          core: () => this.core,
          source,
          binding,
          queue: () => (this.env as unknown as Record<string, Queue | undefined>)[binding],
          // Through the archive: a cursor may be below what was archived (the queue bound after archiving).
          readPage: async (after, limit) => {
            const reply = await this.archiver.readThrough(() => this.core.readEvents(after, limit, true))
            if (!reply.ok) throw new Error(`emberlog: reading the log for the replica failed: ${reply.error.message}`)
            return reply.value.events
          },
          deletedThrough: () => this.archiver.deletedThrough(),
          current: () => generation === this.generation,
          now: () => Date.now(),
        })
      }
      const projections = this.capabilities.flatMap((capability) => capability.projection ?? [])
      // Reads create nothing: a projection's tables come with the log's, at the first write.
      if (projections.length > 0 && hasStorage(ctx.storage.sql)) this.ensureTables()
      // A retention with nowhere to archive to: the actor keeps every event (warned once per kind).
      archiveUnavailable(this.env, [{ kind: served.kind.entity.kind, retention: served.kind.retention }])
      const segments = new SegmentIndex(ctx.storage.sql)
      this.archiver = new Archiver(ctx.storage, this.env.EMBERLOG_ARCHIVE, served.kind.retention, segments, {
        name: ctx.id.name ?? "",
        entity: served.kind.entity,
        head: () => this.core.currentVersion,
        encodedStateAt: (seq) =>
          this.archiver.readThrough(() => this.readReply(this.core.readState({ at: seq })).state),
      })
      const runtime = actorRuntime(
        ctx.storage,
        options,
        () => {
          ctx.storage.sql.exec(LISTED)
          this.ensureTables()
        },
        (store) => archivedStore(store, segments),
      )
      this.unavailable = undefined
      try {
        // A state version with no snapshot at the archive's end yet: the archive is refolded once, one
        // segment at a time, writing the snapshot at each boundary. Then recovery reads from the
        // newest usable snapshot (one at the archive's boundary at the oldest) and reaches no segment.
        if (this.archiver.enabled || segments.all.length > 0) await this.archiver.refoldArchive()
      } catch (error) {
        if (!(error instanceof HistoryUnavailable)) throw error
        // Refused, not broken: every request answers 503 with what to do; boot says it once.
        console.error(error.message)
        this.unavailable = { _tag: "Unavailable", code: "history_unavailable", message: error.message }
        return
      }
      this.core = await this.archiver.readThrough(
        () =>
          new ActorCore(
            served.kind.entity,
            runtime,
            projections.length === 0
              ? undefined
              : (appended, command) => {
                  for (const projection of projections) projection.apply(ctx.storage.sql, appended, command)
                },
            served.id,
            DIRECTORY_TOPIC,
          ),
      )
      // A log that predates the tenant directory: its first event goes there now, once.
      if (this.core.currentVersion > 0 && !hasTable(ctx.storage.sql, "emberlog_listed")) {
        ctx.storage.transactionSync(() => {
          this.core.redeliverFirst(DIRECTORY_TOPIC)
          ctx.storage.sql.exec(LISTED)
        })
      }
      // A replica cursor no replica here moves any more (binding gone, kind or option dropped) is dropped.
      followUp(() =>
        this.replica !== undefined ? this.replica.follow() : dropStaleReplicaCursors(this.core, source, undefined),
      )
      await this.alarms.load()
      this.startCommits = []
      for (const capability of this.capabilities) {
        this.hooks.set(capability.name, await capability.start(this.hostFor(capability.name)))
      }
      const held = this.startCommits
      this.startCommits = undefined
      for (const events of held) this.tellCapabilities(events)
      // The base is guarded as host.commit is: a wrapper still awaiting I/O when the object was erased
      // (a memory's upload) must not commit into the log that replaced the erased one.
      const generation = this.generation
      this.commandPath = [...this.hooks.values()].reduceRight<typeof this.commandPath>(
        (next, hooks) => (hooks.command === undefined ? next : (request) => hooks.command!(request, next)),
        (request) => (generation === this.generation ? this.commit(request) : erased),
      )
      // A crash between a commit and its alarm being set must strand neither the outbox nor a timer.
      await this.alarms.reschedule()
    }

    private get capabilities(): ReadonlyArray<Capability> {
      return this.served?.kind.capabilities ?? []
    }

    private get entity(): Entity {
      return this.served!.kind.entity
    }

    /** What a capability sees of this object; its sockets are tagged with its name. */
    private hostFor(tag: string): Host {
      const { ctx } = this
      const served = this.served!
      const generation = this.generation
      const current = () => generation === this.generation
      return {
        ctx,
        env: this.env,
        tenant: served.tenant,
        kind: served.kind.entity.kind,
        id: served.id,
        entity: served.kind.entity,
        state: () => this.core.currentState,
        version: () => this.core.currentVersion,
        readEvents: (after, limit) => {
          const reply = this.core.readEvents(after, limit)
          return reply.ok ? reply.value.events : []
        },
        // A capability started before the object was erased acts no more (a job's reaction still running).
        commit: (request) => (current() ? this.commit(request) : erased),
        wakeAt: (at) => (current() ? this.alarms.wakeAt(at) : Promise.resolve()),
        hasStorage: () => hasStorage(ctx.storage.sql),
        ensureTables: () => this.ensureTables(),
        acceptSocket: (attachment) => this.subscribers.acceptWebSocket(0, { ...attachment, mode: tag }),
        sockets: () => ctx.getWebSockets(tag),
        sendFrames: (frames, overCap) => this.subscribers.sendFrames(tag, frames, overCap),
      }
    }

    /** Sets up every capability's side tables (idempotent): with the log's, or before a write that needs them first. */
    private ensureTables(): void {
      const projections = this.capabilities.flatMap((capability) => capability.projection ?? [])
      if (projections.length === 0) return
      // One transaction: a crash half-way through a setup that migrates (rebuilds an index) redoes it whole.
      this.ctx.storage.transactionSync(() => {
        for (const projection of projections) projection.setup(this.ctx.storage.sql)
      })
    }

    private logSource(): LogSource {
      return {
        head: () => this.core.currentVersion,
        readAfter: (after, limit) => {
          const reply = this.core.readEvents(after, limit)
          return reply.ok ? reply.value.events.map(toLogEntry) : []
        },
        readAfterJson: (after, limit) => {
          const reply = this.core.readEventsJson(after, limit)
          return reply.ok ? reply.value.events.map(({ seq, type, json }) => ({ position: seq, name: type, json })) : []
        },
        frame: (entry) => JSON.stringify({ type: "event", event: entry.payload }),
        batchType: ACTOR_BATCH_TYPE,
        // From the segment index when the first event is archived: no segment is read for it.
        origin: () => this.core.hashOf(1),
      }
    }

    /** The alarm's steps, in order: socket expiries, the outbox, the entity's timer, each capability's, then the replica. */
    private alarmTasks(): ReadonlyArray<AlarmTask> {
      const tasks: Array<AlarmTask> = [
        {
          name: "socket expiry",
          dueAt: () => this.subscribers.nextExpiry(),
          run: (now) => void this.subscribers.closeExpired(now),
        },
        {
          name: "outbox",
          dueAt: () => (this.core.hasPendingDeliveries() ? Date.now() + this.deliveryDelay : undefined),
          run: () => this.deliver(),
        },
        {
          name: "timer",
          dueAt: () => this.entity.timer?.dueAt(this.core.currentState),
          run: (now) => {
            const timer = this.entity.timer
            const due = timer?.dueAt(this.core.currentState)
            if (timer !== undefined && due !== undefined && due <= now) {
              this.commit({ command: timer.command, principal: "system", internal: true })
            }
          },
        },
      ]
      for (const capability of this.capabilities) {
        tasks.push({ name: capability.name, run: () => this.hooks.get(capability.name)?.onAlarm?.() })
      }
      // After the timer and the capabilities: its sends await the queue, which must not hold them up.
      tasks.push({ name: "replica", dueAt: () => this.replica?.dueAt(), run: (now) => this.replica?.send(now) })
      // Last: after the outbox and the replica moved the cursors that bound how far it may archive.
      tasks.push({ name: "archive", dueAt: () => this.archiver.dueAt(), run: (now) => this.archiver.step(now) })
      return tasks
    }

    /**
     * Drains the outbox to topics. A failed delivery is retried by our own alarm with capped
     * exponential backoff and jitter, never given up on: the platform's alarm retries stop
     * after a few attempts, which would strand the outbox. Deliveries are idempotent.
     */
    private async deliver(): Promise<void> {
      const { tenant, id } = this.served!
      const source = { kind: this.entity.kind, id }
      const topicOf = (topic: string): Pick<TopicApi, "deliver"> => {
        if (topic !== DIRECTORY_TOPIC)
          return stubOf<EmberlogTopicObject>(this.env.EMBERLOG_TOPIC, scopedName(tenant, topic))
        // The first event, delivered to the tenant's directory: the actor is listed, nothing of the event is kept.
        const directory = stubOf<DirectoryMethods>(this.env.EMBERLOG_TOPIC, directoryName(tenant))
        return {
          deliver: async (from) => {
            await directory.registerInDirectory([{ type: "actor", kind: from.kind, id: from.id }])
            return { accepted: 1, duplicates: 0 }
          },
        }
      }
      // A drain still awaiting a topic when the object was erased stops there: it delivers no erased
      // event and acknowledges nothing of the fresh log's outbox.
      const generation = this.generation
      const current = () => generation === this.generation
      try {
        const more = await drainOutbox(this.core, source, topicOf, current)
        if (!current()) return
        reportOutboxLag(this.ctx.id.toString(), this.core.outboxLag(), true)
        this.deliveryDelay = more ? 0 : DELIVERY_BATCH_DELAY_MS
        this.deliveryBackoff.succeeded()
      } catch (error) {
        if (!current()) return
        reportOutboxLag(this.ctx.id.toString(), this.core.outboxLag(), false)
        this.deliveryDelay = this.deliveryBackoff.failed()
        console.warn(
          `emberlog: outbox delivery failed (attempt ${this.deliveryBackoff.failures}); retrying in ${Math.round(this.deliveryDelay)} ms`,
          error,
        )
      }
    }

    /** The RPC entry: through the capabilities' command wrappers (I/O before the transaction), then `commit`. */
    command(request: CommandRequest): ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>> {
      const refused = this.refusal()
      if (refused !== undefined) return refused
      // A retried Idempotency-Key whose first events are archived: they are loaded first, so the
      // command path (capabilities' I/O before the transaction) runs once.
      const replayed = this.archivedReplay(request.idempotencyKey)
      if (replayed !== undefined)
        return this.archiver.prefetch(replayed.after, { events: replayed.events }).then(
          (release) => Promise.resolve(this.runCommandPath(request)).finally(release),
          (error: unknown) => {
            const signal = archiveSignal(error)
            if (!(signal instanceof HistoryDeleted)) throw error
            return { ok: false, error: historyDeleted(signal.firstAvailableSeq) } as const
          },
        )
      return this.runCommandPath(request)
    }

    /** Where a replayed key's events start and how many, when the first of them is archived. */
    private archivedReplay(key: string | undefined): { after: number; events: number } | undefined {
      const archivedThrough = this.archiver.index.archivedThrough
      if (key === undefined || archivedThrough === 0) return undefined
      const row = this.ctx.storage.sql
        .exec("SELECT first_seq, version FROM commands WHERE command_id = ?", key)
        .toArray()[0]
      const first = row?.first_seq as number | undefined
      if (first === undefined || first > archivedThrough) return undefined
      return { after: first - 1, events: (row!.version as number) - first + 1 }
    }

    private runCommandPath(request: CommandRequest): ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>> {
      // A read the prefetch did not cover (nothing was appended): the path runs again with it loaded.
      const again = (error: unknown) => {
        if (archiveSignal(error) === undefined) throw error
        return this.archiver.readThrough(() => this.commandPath(request))
      }
      try {
        const reply = this.commandPath(request)
        return reply instanceof Promise ? reply.catch(again) : reply
      } catch (error) {
        return again(error)
      }
    }

    /** What a request answers instead of its work: the kind is not served, or its state cannot be rebuilt. */
    private refusal(): { readonly ok: false; readonly error: ActorFailure } | undefined {
      if (this.served === undefined) return unknownKind(this.ctx.id.name)
      if (this.unavailable !== undefined) return { ok: false, error: this.unavailable }
      return undefined
    }

    /** A read's value; its failure thrown (for the archiver's own reads, which never fail but by a defect). */
    private readReply<A>(reply: ActorReply<A>): A {
      if (reply.ok) return reply.value
      throw new Error(`emberlog: ${reply.error.message}`)
    }

    /** Runs a command in one transaction and hands its events to subscribers, topics and capabilities. */
    commit(request: CommandRequest): ActorReply<CommandOutcome> {
      const refused = this.refusal()
      if (refused !== undefined) return refused
      const reply = this.core.command(request)
      if (reply.ok && reply.value.events.length > 0 && !reply.value.replayed) {
        // The command is committed: nothing after this point may make it look failed.
        // Its events are in the log, the outbox (the alarm is armed without a storage query for it).
        void this.alarms.due(Date.now() + DELIVERY_BATCH_DELAY_MS)
        const timerDue = this.entity.timer?.dueAt(this.core.currentState)
        if (timerDue !== undefined) void this.alarms.due(timerDue)
        const { events } = reply.value
        reportOutboxLag(this.ctx.id.toString(), this.core.outboxLag(), false)
        followUp(() => this.subscribers.deliver(events.map(toLogEntry)))
        followUp(() => this.logReads.notify())
        if (this.replica !== undefined) followUp(() => this.replica!.follow())
        if (this.startCommits !== undefined) this.startCommits.push(events)
        else this.tellCapabilities(events)
      }
      return reply
    }

    /** Every capability's `committed` hook, each on its own. */
    private tellCapabilities(events: ReadonlyArray<WireEvent>): void {
      for (const hooks of this.hooks.values()) followUp(() => hooks.committed?.(events))
    }

    override async alarm(): Promise<void> {
      if (this.served === undefined || this.unavailable !== undefined) return
      await this.alarms.ring()
    }

    /** The seq of the last event (0 before any): what a subscription's cursor is checked against, no state read. */
    head(): number {
      if (this.served === undefined) throw new UnknownKind(this.ctx.id.name)
      // Refused: the stored head (a route that checks it goes on to the request that answers 503).
      if (this.unavailable !== undefined) return storedHead(this.ctx.storage.sql)
      return this.core.currentVersion
    }

    // Every read entry point goes through the archiver: a read reaching an archived segment not in
    // memory has it loaded and runs again (archiver.ts, readThrough).
    async readState(query: StateQuery): Promise<ActorReply<{ version: number; state: unknown }>> {
      const refused = this.refusal()
      if (refused !== undefined) return refused
      return this.archiver.readThrough(() => this.core.readState(query))
    }

    async readEvents(after: number, limit: number, asStored?: boolean): Promise<ReturnType<ActorCore["readEvents"]>> {
      const refused = this.refusal()
      if (refused !== undefined) return refused
      return this.archiver.readThrough(() => this.core.readEvents(after, limit, asStored))
    }

    /** `readEvents`' page as the JSON text `{"events":[…],"next":…}`: one string over RPC, not a thousand objects. */
    async readEventsJson(after: number, limit: number, asStored?: boolean): Promise<ActorReply<string>> {
      const refused = this.refusal()
      if (refused !== undefined) return refused
      return this.archiver.readThrough(() => this.core.readEventsPageJson(after, limit, asStored))
    }

    /**
     * The archived segments first (from R2, one at a time), then the live tail from where they end;
     * a log whose oldest segments retention deleted is walked from the first kept one (`from`).
     */
    async verifyLog(): Promise<VerifyReport | { readonly ok: false; readonly error: ActorFailure }> {
      if (this.served === undefined) throw new UnknownKind(this.ctx.id.name)
      if (this.unavailable !== undefined) return { ok: false, error: this.unavailable }
      if (this.archiver.index.all.length === 0) return this.core.verify()
      const archived = await this.archiver.verifySegments()
      if (!archived.ok) return archived.report
      const { seq, hash, state, snapshots, from } = archived
      const live = this.core.verify({ seq, hash, state })
      if (!live.ok) return live
      return { ...live, snapshots: live.snapshots + snapshots, ...(from === undefined ? {} : { from }) }
    }

    /**
     * Erases the actor (its tenant is being deleted): what its capabilities keep elsewhere (R2,
     * vectors), then every table and the alarm; its sockets and streams are closed, and the object
     * starts again as an actor that never had an event. Nothing else runs meanwhile. Idempotent.
     */
    async eraseAll(): Promise<ErasedCounts> {
      const counts: Record<string, number> = {}
      await this.ctx.blockConcurrencyWhile(async () => {
        if (this.served !== undefined) {
          const events = this.unavailable === undefined ? this.core.currentVersion : storedHead(this.ctx.storage.sql)
          if (events > 0) counts.events = events
          const segments = await this.archiver.eraseAll()
          if (segments > 0) counts.archivedSegments = segments
          for (const hooks of this.hooks.values()) {
            for (const [what, n] of Object.entries((await hooks.erase?.()) ?? {}))
              counts[what] = (counts[what] ?? 0) + n
          }
          this.generation++
          this.subscribers.closeAll()
          this.logReads.closeAll()
        }
        await this.ctx.storage.deleteAlarm()
        await this.ctx.storage.deleteAll()
        if (this.served === undefined) return
        this.hooks = new Map()
        this.deliveryBackoff.succeeded()
        this.deliveryDelay = 0
        reportOutboxLag(this.ctx.id.toString(), 0, true)
        await this.boot()
      })
      return counts
    }

    /** A capability's own RPC method (memory's `search`, …), by name. */
    async invoke(method: string, args: ReadonlyArray<unknown> = []): Promise<ActorReply<unknown>> {
      const refused = this.refusal()
      if (refused !== undefined) return refused
      for (const hooks of this.hooks.values()) {
        const methods = hooks.methods
        if (methods !== undefined && Object.hasOwn(methods, method)) {
          return { ok: true, value: await methods[method]!(...args) }
        }
      }
      return unknownMethod(method)
    }

    /** Requests a capability claims (a room member socket), else subscriptions and `/log` reads: the edge validated them. */
    override async fetch(request: Request): Promise<Response> {
      const refused = this.refusal()
      if (refused !== undefined) return failureResponse(refused.error)
      for (const hooks of this.hooks.values()) {
        const response = hooks.fetch?.(request)
        if (response !== undefined) return response
      }
      const logRead = request.headers.get(SUBSCRIBE_HEADER) === LOG_READ
      // What a backlog or a read of the log reaches below the live tail is loaded first: both read synchronously.
      const release = await this.prefetchArchive(request, logRead)
      if (typeof release !== "function") return release
      try {
        if (logRead) {
          const generation = this.generation
          const erased = () => generation !== this.generation
          return await answerLogRead(this.logReads, this.logSource(), this.ctx.id.name ?? "", request, erased)
        }
        return acceptSubscription(this.subscribers, request)
      } finally {
        release()
      }
    }

    /**
     * Loads the archived segments a subscription's backlog or a `/log` read starts in (released by
     * the function returned), or the 410 of a start that retention deleted.
     */
    private async prefetchArchive(request: Request, logRead: boolean): Promise<(() => void) | Response> {
      if (this.archiver.index.all.length === 0) return () => undefined
      let after: number
      if (logRead) {
        const parsed = parseReadRequest(new URL(request.url))
        if ("invalid" in parsed || parsed.offset === "now") return () => undefined
        after = parsed.offset === "start" ? 0 : parsed.offset.after
      } else after = Number(request.headers.get(AFTER_HEADER) ?? "0")
      try {
        // A /log page examines at most DEFAULT_PAGE.examined events (a filtered read), fewer unfiltered.
        return await this.archiver.prefetch(after, logRead ? { events: DEFAULT_PAGE.examined! } : undefined)
      } catch (error) {
        const signal = archiveSignal(error)
        if (!(signal instanceof HistoryDeleted)) throw error
        const gone = historyDeleted(signal.firstAvailableSeq)
        return logRead ? streamError(410, gone.code, gone.message) : failureResponse(gone)
      }
    }

    /** Frames that act wait for the one before them: a limiter call in between must not reorder them. */
    private frames: Promise<void> = Promise.resolve()

    override webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
      // An ack may resume a paused backlog below the live tail: what it reads is loaded first.
      // Asked only of an archiving actor's sockets (the question reads the socket's account).
      const pausedAt =
        typeof message === "string" && this.archiver.index.archivedThrough > 0
          ? this.subscribers.pausedAt(socket)
          : undefined
      if (pausedAt !== undefined && pausedAt < this.archiver.index.archivedThrough) {
        return this.archiver.prefetch(pausedAt).then(
          (release) => {
            let ack: boolean
            try {
              ack = this.subscribers.receiveAck(socket, message as string)
            } finally {
              release()
            }
            return ack ? undefined : this.queueFrame(socket, message)
          },
          (error: unknown) => {
            console.error("emberlog: a paused backlog's archive could not be loaded", error)
            closeUnreadable(socket)
          },
        )
      }
      // Acks (on every socket) only confirm reading; they neither act nor wait behind frames that do.
      if (typeof message === "string" && this.subscribers.receiveAck(socket, message)) return Promise.resolve()
      return this.queueFrame(socket, message)
    }

    private queueFrame(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
      const handled = this.frames.then(() => this.actOnFrame(socket, message))
      this.frames = handled.catch(() => undefined)
      return handled
    }

    /**
     * Commands and capabilities' frames: only within the token's lifetime (an expired socket is
     * told and closed) and within the rate limit of whoever opened the socket, as on HTTP.
     */
    private async actOnFrame(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
      if (isOversize(message)) return socket.close(CLOSE_TOO_LARGE, `Frames are limited to ${MAX_FRAME_BYTES} bytes`)
      if (typeof message !== "string")
        return socket.send(errorFrame(null, "invalid_frame", "Frames must be text (JSON)"))
      const attachment = socket.deserializeAttachment() as SocketAttachment
      if (isExpired(attachment)) {
        socket.send(errorFrame(idOf(message), "token_expired", "This socket's token has expired; nothing was done"))
        return closeExpiredSocket(socket)
      }
      if (attachment.limitKey !== undefined && !(await withinLimit(this.env.LIMITER, attachment.limitKey))) {
        return socket.send(errorFrame(idOf(message), "rate_limited", `${rateLimitMessage}; nothing was done`))
      }
      if (attachment.mode !== "log") {
        const onMessage = this.hooks.get(attachment.mode)?.socketMessage
        if (onMessage !== undefined) return onMessage(socket, message)
        return socket.send(errorFrame(idOf(message), "invalid_frame", "This socket takes no frames"))
      }
      const frame = parseCommandFrame(message)
      if ("invalid" in frame) return socket.send(errorFrame(frame.id, "invalid_frame", frame.invalid))
      if (attachment.scopes !== undefined && !attachment.scopes.includes("write")) {
        return socket.send(errorFrame(frame.id, "insufficient_scope", "Sending commands needs the write scope"))
      }
      const reply = await this.command({
        command: frame.command,
        ifMatch: frame.ifMatch,
        idempotencyKey: frame.idempotencyKey,
        principal: attachment.principal,
        scopes: attachment.scopes,
      })
      socket.send(
        reply.ok
          ? JSON.stringify({ type: "ack", id: frame.id, version: reply.value.version })
          : errorFrame(frame.id, reply.error.code, reply.error.message, reply.error.details),
      )
    }

    /** A capability's socket ends once, whether it closed, failed, or the capability found it gone first. */
    private ended(socket: WebSocket): void {
      const mode = (socket.deserializeAttachment() as SocketAttachment | null)?.mode
      if (mode !== undefined && mode !== "log") this.hooks.get(mode)?.socketClosed?.(socket)
    }

    override async webSocketError(socket: WebSocket): Promise<void> {
      this.ended(socket)
    }

    override async webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> {
      this.ended(socket)
      // Echo the close so the client's close handshake completes (1005/1006 cannot be sent).
      try {
        socket.close(code === 1005 || code === 1006 ? 1000 : code, reason)
      } catch {
        // Already closed.
      }
    }
  }
}

/** What callers see of an actor over DO RPC (every reply is plain, structured-cloneable data). */
export type ActorApi = ObjectStub<
  Pick<
    ActorObject,
    "command" | "head" | "readState" | "readEvents" | "readEventsJson" | "verifyLog" | "invoke" | "eraseAll"
  >
>

/**
 * An EmberlogActor instance: its RPC methods. Named because declarations cannot be emitted
 * for an anonymous class type with private members (TS4094).
 */
export interface ActorObject extends DurableObject<ActorEnv> {
  /** The actor runtime of the kind this object hosts (unset for a kind not served). */
  readonly core: ActorCore
  readonly subscribers: Subscribers
  command(request: CommandRequest): ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>>
  commit(request: CommandRequest): ActorReply<CommandOutcome>
  alarm(): Promise<void>
  head(): number
  readonly archiver: Archiver
  readState(query: StateQuery): Promise<ActorReply<{ version: number; state: unknown }>>
  readEvents(after: number, limit: number, asStored?: boolean): Promise<ReturnType<ActorCore["readEvents"]>>
  readEventsJson(after: number, limit: number, asStored?: boolean): Promise<ActorReply<string>>
  /** The report, or the failure of an actor that cannot serve it (history_unavailable). */
  verifyLog(): Promise<VerifyReport | { readonly ok: false; readonly error: ActorFailure }>
  invoke(method: string, args?: ReadonlyArray<unknown>): Promise<ActorReply<unknown>>
  eraseAll(): Promise<ErasedCounts>
  fetch(request: Request): Promise<Response>
}

export type ActorClass = new (ctx: DurableObjectState, env: ActorEnv) => ActorObject
