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
import { SqliteEventStore } from "../infra/sqlite-event-store.js"
import { ActorCore, type ActorRuntime } from "./actor-core.js"
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
  type SocketAttachment,
} from "./subscribers.js"
import { StreamReads, streamReadsSettings } from "./stream-reads.js"
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
}

/** A kind the host serves: its entity and what its kind adds. */
export interface HostedKind {
  readonly entity: Entity
  readonly capabilities?: ReadonlyArray<Capability>
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
): ActorRuntime => ManagedRuntime.make(Layer.mergeAll(SqliteEventStore(storage, onCreate), options.ids ?? RandomIds))

/**
 * Whether the object has any table of its own yet: the platform's are not (Cloudflare's `_cf_*`,
 * local miniflare's `__miniflare_do_name`, SQLite's `sqlite_*`).
 */
const OWN_TABLE = `SELECT 1 FROM sqlite_master WHERE type = 'table'
  AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE '\\_\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
  LIMIT 1`
const hasStorage = (sql: SqlStorage): boolean => sql.exec(OWN_TABLE).toArray().length > 0
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
          readPage: async (after, limit) => {
            const reply = this.core.readEvents(after, limit, true)
            if (!reply.ok) throw new Error(`emberlog: reading the log for the replica failed: ${reply.error.message}`)
            return reply.value.events
          },
          current: () => generation === this.generation,
          now: () => Date.now(),
        })
      }
      const projections = this.capabilities.flatMap((capability) => capability.projection ?? [])
      // Reads create nothing: a projection's tables come with the log's, at the first write.
      if (projections.length > 0 && hasStorage(ctx.storage.sql)) this.ensureTables()
      this.core = new ActorCore(
        served.kind.entity,
        actorRuntime(ctx.storage, options, () => {
          ctx.storage.sql.exec(LISTED)
          this.ensureTables()
        }),
        projections.length === 0
          ? undefined
          : (appended, command) => {
              for (const projection of projections) projection.apply(ctx.storage.sql, appended, command)
            },
        served.id,
        DIRECTORY_TOPIC,
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
        origin: () => {
          const reply = this.core.readEvents(0, 1)
          return reply.ok ? reply.value.events[0]?.hash : undefined
        },
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
      // Last: its sends await the queue, which must not hold up the timer or the capabilities.
      tasks.push({ name: "replica", dueAt: () => this.replica?.dueAt(), run: (now) => this.replica?.send(now) })
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
        this.deliveryDelay = more ? 0 : DELIVERY_BATCH_DELAY_MS
        this.deliveryBackoff.succeeded()
      } catch (error) {
        if (!current()) return
        this.deliveryDelay = this.deliveryBackoff.failed()
        console.warn(
          `emberlog: outbox delivery failed (attempt ${this.deliveryBackoff.failures}); retrying in ${Math.round(this.deliveryDelay)} ms`,
          error,
        )
      }
    }

    /** The RPC entry: through the capabilities' command wrappers (I/O before the transaction), then `commit`. */
    command(request: CommandRequest): ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>> {
      if (this.served === undefined) return unknownKind(this.ctx.id.name)
      return this.commandPath(request)
    }

    /** Runs a command in one transaction and hands its events to subscribers, topics and capabilities. */
    commit(request: CommandRequest): ActorReply<CommandOutcome> {
      const reply = this.core.command(request)
      if (reply.ok && reply.value.events.length > 0 && !reply.value.replayed) {
        // The command is committed: nothing after this point may make it look failed.
        // Its events are in the log, the outbox (the alarm is armed without a storage query for it).
        void this.alarms.due(Date.now() + DELIVERY_BATCH_DELAY_MS)
        const timerDue = this.entity.timer?.dueAt(this.core.currentState)
        if (timerDue !== undefined) void this.alarms.due(timerDue)
        const { events } = reply.value
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
      if (this.served === undefined) return
      await this.alarms.ring()
    }

    /** The seq of the last event (0 before any): what a subscription's cursor is checked against, no state read. */
    head(): number {
      if (this.served === undefined) throw new UnknownKind(this.ctx.id.name)
      return this.core.currentVersion
    }

    readState(query: StateQuery): ActorReply<{ version: number; state: unknown }> {
      if (this.served === undefined) return unknownKind(this.ctx.id.name)
      return this.core.readState(query)
    }

    readEvents(after: number, limit: number, asStored?: boolean): ReturnType<ActorCore["readEvents"]> {
      if (this.served === undefined) return unknownKind(this.ctx.id.name)
      return this.core.readEvents(after, limit, asStored)
    }

    /** `readEvents`' page as the JSON text `{"events":[…],"next":…}`: one string over RPC, not a thousand objects. */
    readEventsJson(after: number, limit: number, asStored?: boolean): ActorReply<string> {
      if (this.served === undefined) return unknownKind(this.ctx.id.name)
      return this.core.readEventsPageJson(after, limit, asStored)
    }

    verifyLog(): VerifyReport {
      if (this.served === undefined) throw new UnknownKind(this.ctx.id.name)
      return this.core.verify()
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
          if (this.core.currentVersion > 0) counts.events = this.core.currentVersion
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
        await this.boot()
      })
      return counts
    }

    /** A capability's own RPC method (memory's `search`, …), by name. */
    async invoke(method: string, args: ReadonlyArray<unknown> = []): Promise<ActorReply<unknown>> {
      if (this.served === undefined) return unknownKind(this.ctx.id.name)
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
      if (this.served === undefined) return failureResponse(unknownKind(this.ctx.id.name).error)
      for (const hooks of this.hooks.values()) {
        const response = hooks.fetch?.(request)
        if (response !== undefined) return response
      }
      if (request.headers.get(SUBSCRIBE_HEADER) === LOG_READ) {
        const generation = this.generation
        const erased = () => generation !== this.generation
        return answerLogRead(this.logReads, this.logSource(), this.ctx.id.name ?? "", request, erased)
      }
      return acceptSubscription(this.subscribers, request)
    }

    /** Frames that act wait for the one before them: a limiter call in between must not reorder them. */
    private frames: Promise<void> = Promise.resolve()

    override webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
      // Acks (on every socket) only confirm reading; they neither act nor wait behind frames that do.
      if (typeof message === "string" && this.subscribers.receiveAck(socket, message)) return Promise.resolve()
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
  readState(query: StateQuery): ActorReply<{ version: number; state: unknown }>
  readEvents(after: number, limit: number, asStored?: boolean): ReturnType<ActorCore["readEvents"]>
  readEventsJson(after: number, limit: number, asStored?: boolean): ActorReply<string>
  verifyLog(): VerifyReport
  invoke(method: string, args?: ReadonlyArray<unknown>): Promise<ActorReply<unknown>>
  eraseAll(): Promise<ErasedCounts>
  fetch(request: Request): Promise<Response>
}

export type ActorClass = new (ctx: DurableObjectState, env: ActorEnv) => ActorObject
