/**
 * Hosts an entity in a SQLite-backed Durable Object. The class is glue: each RPC
 * method hands its request to the `ActorCore`, built once per object (recovery runs
 * in `blockConcurrencyWhile`, so no request sees a half-recovered actor), and every
 * committed append is then delivered to the actor's subscribers.
 */
import { DurableObject } from "cloudflare:workers"
import { Layer, ManagedRuntime } from "effect"
import type { Entity } from "../domain/entity.js"
import { Ids, RandomIds } from "../infra/ids.js"
import { SqliteEventStore } from "../infra/sqlite-event-store.js"
import { ActorCore, type ActorRuntime } from "./actor-core.js"
import type { ActorReply, CommandOutcome, CommandRequest, StateQuery, WireEvent } from "../core/wire.js"
import { failureResponse } from "./failures.js"
import { parseScopedName, scopedName } from "../core/names.js"
import { drainOutbox } from "./outbox.js"
import { CLIENT_ID, CLOSE_TOO_LARGE, MAX_FRAME_BYTES, errorFrame } from "../domain/protocol.js"
import { rateLimitMessage, withinLimit } from "./rate-limit.js"
import {
  Subscribers,
  acceptSubscription,
  authorityOf,
  closeExpiredSocket,
  isExpired,
  isOversize,
  type LogEntry,
  type LogSource,
  type SocketAttachment,
} from "./subscribers.js"
import { stubOf, type ObjectStub } from "./stubs.js"
import type { TopicLog } from "./topic.js"

/** The bindings an actor uses: topics receive its outbox. */
export interface ActorEnv {
  readonly TOPIC: DurableObjectNamespace
  /** The edge's rate limiter: frames sent on sockets count against the key the edge put in their attachment. */
  readonly LIMITER?: RateLimit
}

export interface ActorOptions {
  /** Replaces the id source (tests make ids predictable); time comes from Effect's Clock. */
  readonly ids?: Layer.Layer<Ids>
  /** Presence hosting: sockets opened as room members join, post and leave through commands. */
  readonly room?: RoomHosting
  /**
   * Work that follows a committed event outside the command path (I/O such as a job's
   * executor), feeding its outcome back as commands. It runs after the append is durable;
   * if the object dies mid-way, the entity's timer must notice and recover.
   */
  readonly react?: (event: WireEvent, actor: ReactionContext) => Promise<void> | undefined
  /** Tables the host keeps beside the log, written in each command's transaction (e.g. a search index). */
  readonly project?: Projection
}

export interface Projection {
  readonly setup: (sql: SqlStorage) => void
  /** Applies appended events; `command` is the command that produced them (its data may live only here). */
  readonly apply: (sql: SqlStorage, events: ReadonlyArray<WireEvent>, command: unknown) => void
  /** Rebuilds the projection from the whole log (and whatever the projection keeps that the log does not). */
  readonly rebuild: (sql: SqlStorage, events: Iterable<WireEvent>) => void
}

export interface ReactionContext {
  /** The object's bindings and settings. */
  readonly env: unknown
  readonly state: () => unknown
  readonly command: (command: unknown) => ActorReply<CommandOutcome>
}

export interface RoomHosting {
  readonly join: (member: string) => unknown
  readonly leave: (member: string) => unknown
  readonly post: (member: string, message: { readonly type: string; readonly payload: unknown }) => unknown
  /** The frame members receive for an event, if any. */
  readonly frame: (event: any, at: number) => unknown
}

/**
 * One key per member socket the host opened (ctx.storage.kv: prefix + socket id → member
 * name), written in the stretch of its Join and deleted in that of its Leave. On wake it
 * tells which sockets died with the runtime, so their members can leave; and since only
 * the handler that deletes the key commits the Leave, a socket's Leave happens once, even
 * when a wake's reconciliation and the socket's close handler both see it end. Members
 * that joined by a plain command have no socket to lose and are left alone.
 */
const MEMBER_SOCKET_PREFIX = "emberlog/room-socket/"
/** Counts per member name, written before sockets had ids; none of those sockets outlives the deploy. */
const LEGACY_ROOM_SOCKETS_KEY = "emberlog/room-sockets"

/** The member name a room socket was opened with (set by the edge). */
export const MEMBER_HEADER = "X-Emberlog-Member"

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

export const actorClass = (entity: Entity, options: ActorOptions = {}): ActorClass =>
  class Actor extends DurableObject<ActorEnv> {
    core!: ActorCore
    readonly subscribers: Subscribers
    /** Reactions still running; the alarm waits for them so the object stays alive. */
    private readonly reactions = new Set<Promise<void>>()
    /** When the one alarm is set for, as far as this instance knows (null: none). */
    private alarmAt: number | null = null
    /** When a timer standing in for the alarm fires (null: none), while the object has no storage. */
    private standInAt: number | null = null
    private failedDeliveries = 0

    constructor(ctx: DurableObjectState, env: ActorEnv) {
      super(ctx, env)
      void ctx.blockConcurrencyWhile(async () => {
        const projection = options.project
        // Reads create nothing: a projection's tables come with the log's, at the first write.
        if (hasStorage(ctx.storage.sql)) this.ensureProjection()
        this.core = new ActorCore(
          entity,
          actorRuntime(ctx.storage, options, () => this.ensureProjection()),
          projection && ((appended, command) => projection.apply(ctx.storage.sql, appended, command)),
          parseScopedName(ctx.id.name ?? "").name,
        )
        this.alarmAt = await ctx.storage.getAlarm()
        this.reconcileMembers()
        // A crash between a commit and its alarm being set must strand neither the outbox nor a timer.
        await this.scheduleFollowUps(0)
      })
      ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"))
      this.subscribers = new Subscribers(ctx, this.logSource(), { wakeAt: (at) => void this.scheduleAlarm(at) })
    }

    /**
     * Sockets that died with the runtime (a crash, a deploy) never ran their close handler,
     * so on wake every member socket the host opened and no longer lists ends, through the
     * Leave command: the correction is in the log like any other.
     */
    private reconcileMembers(): void {
      const room = options.room
      if (room === undefined) return
      const live = new Set<string>()
      for (const socket of this.ctx.getWebSockets("room")) {
        const socketId = (socket.deserializeAttachment() as SocketAttachment | null)?.socketId
        if (socketId !== undefined) live.add(socketId)
      }
      const kv = this.ctx.storage.kv
      for (const [key, name] of [...kv.list<string>({ prefix: MEMBER_SOCKET_PREFIX })]) {
        const socketId = key.slice(MEMBER_SOCKET_PREFIX.length)
        if (!live.has(socketId) && this.memberSocketEnded(socketId)) {
          this.commit({ command: room.leave(name), principal: "system", internal: true })
        }
      }
      const legacy = kv.get<Map<string, number>>(LEGACY_ROOM_SOCKETS_KEY)
      if (legacy === undefined) return
      kv.delete(LEGACY_ROOM_SOCKETS_KEY)
      for (const [name, count] of legacy) {
        for (let i = 0; i < count; i++) this.commit({ command: room.leave(name), principal: "system", internal: true })
      }
    }

    /** Records a member socket opened; written in the stretch of its Join. */
    private memberSocketOpened(socketId: string, name: string): void {
      this.ctx.storage.kv.put(MEMBER_SOCKET_PREFIX + socketId, name)
    }

    /** Whether this call ended the member socket (true once per socket): only then may its Leave be committed. */
    private memberSocketEnded(socketId: string): boolean {
      return this.ctx.storage.kv.delete(MEMBER_SOCKET_PREFIX + socketId)
    }

    /**
     * Whether the object has storage, and so its projection's tables: until the first write
     * (and after a first write that rolled back) a projection's reads answer as empty.
     */
    get projectionReady(): boolean {
      return hasStorage(this.ctx.storage.sql)
    }

    /** Sets up the projection's tables (idempotent): with the log's, or before a write that needs them first. */
    ensureProjection(): void {
      const projection = options.project
      // One transaction: a crash half-way through a setup that migrates (rebuilds an index) redoes it whole.
      if (projection !== undefined) this.ctx.storage.transactionSync(() => projection.setup(this.ctx.storage.sql))
    }

    private logSource(): LogSource {
      return {
        head: () => this.core.currentVersion,
        readAfter: (after, limit) => {
          const reply = this.core.readEvents(after, limit)
          return reply.ok ? reply.value.events.map(toLogEntry) : []
        },
        frame: (entry) => JSON.stringify({ type: "event", event: entry.payload }),
      }
    }

    /** The RPC entry; kinds that need I/O before the transaction (memory content in R2) override it. */
    command(request: CommandRequest): ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>> {
      return this.commit(request)
    }

    /** Runs a command in one transaction and hands its events to subscribers, topics and reactions. */
    commit(request: CommandRequest): ActorReply<CommandOutcome> {
      const reply = this.core.command(request)
      if (reply.ok && reply.value.events.length > 0 && !reply.value.replayed) {
        // The command is committed: nothing after this point may make it look failed.
        void this.scheduleFollowUps(DELIVERY_BATCH_DELAY_MS, true)
        const { events } = reply.value
        const followUps = [
          () => this.subscribers.deliver(events.map(toLogEntry)),
          () => this.sendToMembers(events),
          () => this.startReactions(events),
        ]
        for (const followUp of followUps) {
          try {
            followUp()
          } catch (error) {
            console.error("emberlog: a follow-up of a committed command failed", error)
          }
        }
      }
      return reply
    }

    private startReactions(events: ReadonlyArray<WireEvent>): void {
      if (options.react === undefined) return
      const context: ReactionContext = {
        env: this.env,
        state: () => this.core.currentState,
        command: (command) => this.commit({ command, principal: "system", internal: true }),
      }
      for (const event of events) {
        const running = options.react(event, context)
        if (running === undefined) continue
        const tracked: Promise<void> = running
          .catch((error) => console.error(`emberlog: reaction to ${event.type} failed`, error))
          .finally(() => this.reactions.delete(tracked))
        this.reactions.add(tracked)
      }
    }

    /** Members' frames go through the subscribers' accounting, so a member that never reads is capped too. */
    private sendToMembers(events: ReadonlyArray<WireEvent>): void {
      const room = options.room
      if (room === undefined) return
      const frames = events.flatMap((event) => {
        const frame = room.frame(entity.decodeEvent(event), event.meta.at)
        return frame === undefined ? [] : [{ text: JSON.stringify(frame), seq: event.seq }]
      })
      this.subscribers.sendFrames("room", frames, (lastSeq) => this.missedPostsReason(lastSeq))
    }

    /** Member frames carry no seq: a member closed at its cap is told where the log has what it missed. */
    private missedPostsReason(lastSeq: number): string {
      const name = this.ctx.id.name === undefined ? undefined : parseScopedName(this.ctx.id.name).name
      const reason = `Too much unread: what you missed is in /v1/${entity.kind}/${name}/events?after=${lastSeq}`
      // A close reason is at most 123 bytes; ids are ASCII, so a long one is left out.
      if (name !== undefined && reason.length <= 123) return reason
      return `Too much unread: what you missed is in this room's log, /v1/${entity.kind}/{id}/events?after=${lastSeq}`
    }

    /**
     * Sets the alarm for the earliest follow-up: an outbox delivery, or the entity's timer.
     * After a command the caller knows deliveries are pending (its events went to the
     * outbox), which spares the hot path a storage query; elsewhere the outbox is asked.
     */
    private async scheduleFollowUps(deliveryDelayMs: number, deliveriesPending?: boolean): Promise<void> {
      const pending = deliveriesPending ?? this.core.pendingDeliveries(1).length > 0
      const due = [
        pending ? Date.now() + deliveryDelayMs : undefined,
        entity.timer?.dueAt(this.core.currentState),
        this.subscribers.nextExpiry(),
      ].filter((at): at is number => at !== undefined)
      if (due.length > 0) await this.scheduleAlarm(Math.min(...due))
    }

    async scheduleAlarm(at: number): Promise<void> {
      if (!hasStorage(this.ctx.storage.sql)) return this.standInForAlarm(at)
      if (this.alarmAt !== null && this.alarmAt <= at) return
      this.alarmAt = at
      await this.ctx.storage.setAlarm(at)
    }

    /**
     * An alarm is storage too, and reads create nothing: until the first write (a socket's token
     * expiry is all an empty actor waits for), a timer stands in. An object evicted before it
     * fires has nothing to send its sockets until a write, and that write sets the real alarm.
     */
    private standInForAlarm(at: number): void {
      if (this.standInAt !== null && this.standInAt <= at) return
      this.standInAt = at
      setTimeout(
        () => {
          this.standInAt = null
          void this.alarm()
        },
        Math.max(0, at - Date.now()),
      )
    }

    /**
     * Drains the outbox to topics, then fires the entity's timer if it is due. A failed
     * delivery is retried by our own alarm with capped exponential backoff and jitter,
     * never given up on: the platform's alarm retries stop after a few attempts, which
     * would strand the outbox. Alarms can run twice; both steps are idempotent.
     */
    override async alarm(): Promise<void> {
      this.alarmAt = null
      this.subscribers.closeExpired()
      // Deliveries are addressed by the object's name (tenant/id); without it they would land in
      // the wrong topic, so they wait (the alarm is retried) rather than guess.
      if (this.ctx.id.name === undefined)
        throw new Error("emberlog: this object has no name; outbox delivery postponed")
      const { tenant, name } = parseScopedName(this.ctx.id.name)
      const source = { kind: entity.kind, id: name }
      const topicOf = (topic: string) => stubOf<TopicLog>(this.env.TOPIC, scopedName(tenant, topic))
      let deliveryDelay = 0
      try {
        if (!(await drainOutbox(this.core, source, topicOf))) deliveryDelay = DELIVERY_BATCH_DELAY_MS
        this.failedDeliveries = 0
      } catch (error) {
        this.failedDeliveries++
        deliveryDelay =
          Math.min(DELIVERY_RETRY_MAX_MS, DELIVERY_RETRY_BASE_MS * 2 ** (this.failedDeliveries - 1)) *
          (0.5 + Math.random() / 2)
        console.warn(
          `emberlog: outbox delivery failed (attempt ${this.failedDeliveries}); retrying in ${Math.round(deliveryDelay)} ms`,
          error,
        )
      }
      const timerDue = entity.timer?.dueAt(this.core.currentState)
      if (entity.timer !== undefined && timerDue !== undefined && timerDue <= Date.now()) {
        this.commit({ command: entity.timer.command, principal: "system", internal: true })
      }
      // Reactions the timer started (a job's attempt) finish inside this alarm.
      while (this.reactions.size > 0) await Promise.allSettled([...this.reactions])
      await this.scheduleFollowUps(deliveryDelay)
    }

    /** The seq of the last event (0 before any): what a subscription's cursor is checked against, no state read. */
    head(): number {
      return this.core.currentVersion
    }

    readState(query: StateQuery) {
      return this.core.readState(query)
    }

    readEvents(after: number, limit: number, asStored?: boolean) {
      return this.core.readEvents(after, limit, asStored)
    }

    verifyLog() {
      return this.core.verify()
    }

    /** Subscriptions: the edge validated the request and forwards it here. */
    override async fetch(request: Request): Promise<Response> {
      const member = request.headers.get(MEMBER_HEADER)
      if (options.room === undefined || member === null) return acceptSubscription(this.subscribers, request)
      const authority = authorityOf(request)
      const joined = this.commit({ command: options.room.join(member), principal: authority.principal })
      if (!joined.ok) return failureResponse(joined.error)
      const socketId = crypto.randomUUID()
      this.memberSocketOpened(socketId, member)
      return this.subscribers.acceptWebSocket(0, { mode: "room", name: member, socketId, ...authority })
    }

    /** Frames that act wait for the one before them: a limiter call in between must not reorder them. */
    private frames: Promise<void> = Promise.resolve()

    override webSocketMessage(socket: WebSocket, message: string | ArrayBuffer): Promise<void> {
      // Acks (on log and member sockets) only confirm reading; they neither act nor wait behind frames that do.
      if (typeof message === "string" && this.subscribers.receiveAck(socket, message)) return Promise.resolve()
      const handled = this.frames.then(() => this.actOnFrame(socket, message))
      this.frames = handled.catch(() => undefined)
      return handled
    }

    /**
     * Commands and room posts: only within the token's lifetime (an expired socket is told
     * and closed) and within the rate limit of whoever opened the socket, as on HTTP.
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
      if (attachment.mode === "room") return this.postFromMember(socket, attachment.name!, message)
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

    private postFromMember(socket: WebSocket, member: string, message: string): void {
      let frame: unknown
      try {
        frame = JSON.parse(message)
      } catch {
        return socket.send(errorFrame(null, "invalid_frame", 'A frame must be JSON: {"type": …, "payload": …}'))
      }
      const { type, payload } = (typeof frame === "object" && frame !== null ? frame : {}) as Record<string, unknown>
      if (typeof type !== "string")
        return socket.send(errorFrame(null, "invalid_frame", "A room frame needs a string type"))
      const principal = (socket.deserializeAttachment() as SocketAttachment).principal ?? member
      const reply = this.commit({ command: options.room!.post(member, { type, payload }), principal })
      if (!reply.ok) socket.send(errorFrame(null, reply.error.code, reply.error.message, reply.error.details))
    }

    /** A room member socket leaves once, whether it closed, failed, or a wake found it gone first. */
    private leave(socket: WebSocket): void {
      const attachment = socket.deserializeAttachment() as SocketAttachment | null
      if (attachment?.mode !== "room" || options.room === undefined || attachment.socketId === undefined) return
      if (!this.memberSocketEnded(attachment.socketId)) return
      this.commit({ command: options.room.leave(attachment.name!), principal: attachment.principal ?? attachment.name })
    }

    override async webSocketError(socket: WebSocket): Promise<void> {
      this.leave(socket)
    }

    override async webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void> {
      this.leave(socket)
      // Echo the close so the client's close handshake completes (1005/1006 cannot be sent).
      try {
        socket.close(code === 1005 || code === 1006 ? 1000 : code, reason)
      } catch {
        // Already closed.
      }
    }
  }

/** What callers see of an actor over DO RPC (every reply is plain, structured-cloneable data). */
export type ActorApi = ObjectStub<Pick<ActorObject, "command" | "head" | "readState" | "readEvents" | "verifyLog">>

/**
 * An `actorClass` instance: its RPC methods and the hooks a subclass builds on (MemoryActor). Named
 * because declarations cannot be emitted for an anonymous class type with private members (TS4094).
 */
export interface ActorObject extends DurableObject<ActorEnv> {
  core: ActorCore
  readonly subscribers: Subscribers
  readonly projectionReady: boolean
  ensureProjection(): void
  command(request: CommandRequest): ActorReply<CommandOutcome> | Promise<ActorReply<CommandOutcome>>
  commit(request: CommandRequest): ActorReply<CommandOutcome>
  scheduleAlarm(at: number): Promise<void>
  alarm(): Promise<void>
  head(): number
  readState(query: StateQuery): ReturnType<ActorCore["readState"]>
  readEvents(after: number, limit: number, asStored?: boolean): ReturnType<ActorCore["readEvents"]>
  verifyLog(): ReturnType<ActorCore["verify"]>
  fetch(request: Request): Promise<Response>
}

export type ActorClass = new (ctx: DurableObjectState, env: ActorEnv) => ActorObject
