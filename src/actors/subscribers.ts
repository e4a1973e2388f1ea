/**
 * Live subscribers of one append-only log (an actor's events or a topic's entries),
 * over hibernatable WebSockets and Server-Sent Events.
 *
 * Exactly once, in order. A new subscriber is sent its whole backlog (everything
 * after its cursor up to the head) in the same synchronous stretch that accepts it, so
 * from then on it is "live": it has everything up to the head. Every append is then
 * delivered to every live subscriber in the stretch that committed it. A Durable Object
 * runs one synchronous stretch at a time, so a backlog being sent and an append being
 * published cannot interleave, and nothing is skipped or sent twice. Because a live
 * socket's cursor is always the head, nothing per socket needs to be written per event,
 * and hibernated sockets wake up live: appends only happen while the object is awake,
 * and each is delivered before the stretch ends.
 *
 * Bounded buffers. workerd does not implement `bufferedAmount` on server-side sockets
 * (cloudflare/workerd#988: it is undefined here), so a socket that stops reading would
 * make the runtime queue every frame. Each socket's bytes are accounted here instead,
 * whatever it carries (log frames, or a room's frames to its members): a client confirms
 * what it has read with `{"type":"ack","seq":N}` (or `{"type":"ack"}`: everything sent so
 * far), and a socket with more than WS_MAX_UNCONFIRMED bytes sent after its last
 * confirmation is closed with CLOSE_RESUME, which tells the client to reconnect with
 * `after` = the last seq it saw. A backlog larger than the cap is sent the same way, one
 * cap's worth per connection. An ack can only confirm what was sent: one naming a later
 * seq is refused, or a single forged ack would lift the cap for good.
 *
 * Filters. A subscriber may ask for some event types only (`types`). Its cursor stays a
 * position in the full log: when a stretch it was sent (a backlog page, an append) ends with
 * entries it skipped, it is told the position it has seen up to (a WebSocket head frame, an
 * SSE `head` event with that id), so it resumes after what it skipped and never sees a gap it
 * cannot explain.
 *
 * Batched backlogs. A socket opened with `batch=1` (protocol.ts, BATCH_PARAM) is sent its
 * backlog as frames of many entries; one frame per entry is what bounds a catch-up (issue 13).
 * Such a client acks every batch frame, so at the cap it pauses instead of closing, in its
 * backlog or live (a catch-up that reaches the head still has nearly the cap unconfirmed, and
 * a busy actor appends before the acks arrive): the socket is not live while paused (appends
 * are not sent to it; they are in the log, after its cursor), and each ack sends on from the
 * last seq sent, in the ack's own synchronous stretch, until the backlog reaches the head and
 * the socket is live again. The cursor of a paused socket is in its attachment, so a paused
 * socket hibernates and wakes paused; the cap is kept the whole time, since nothing more is
 * sent until an ack confirms what was, and an ack resumes only within the token's lifetime.
 * A filtered batch socket's frames hold only the entries it asked for; its backlog resumes
 * from the position examined (past entries it skipped), while its acks still name the last
 * seq it was sent (or a head frame's), which is what the attachment keeps for them.
 */
import { utf8Length } from "../domain/json-size.js"
import { archiveSignal } from "../core/event-store.js"
import { sendBatches, type BatchAccount } from "./batched-backlog.js"
import {
  CLOSE_ERASED,
  CLOSE_RESUME,
  CLOSE_TOKEN_EXPIRED,
  MAX_FRAME_BYTES,
  WS_MAX_UNCONFIRMED,
  HEAD_TYPE,
  errorFrame,
  headFrame,
  parseAck,
} from "../domain/protocol.js"
import { groupByFilter, selectEntries, typeFilter, typesOf, type TypeFilter } from "./type-filters.js"

/** Re-exported for the host and the edge, which take the rest of the socket machinery from here. */
export {
  CLOSE_ERASED,
  CLOSE_RESUME,
  CLOSE_TOKEN_EXPIRED,
  CLOSE_TOO_LARGE,
  MAX_FRAME_BYTES,
  WS_MAX_UNCONFIRMED,
} from "../domain/protocol.js"

/** One entry of the log as subscribers see it. */
export interface LogEntry {
  readonly position: number
  /** The SSE `event:` name. */
  readonly name: string
  /** The JSON payload: a WebSocket frame's `event`/`entry` field and the SSE `data:`. */
  readonly payload: unknown
}

export interface LogSource {
  readonly head: () => number
  /** Entries after `after`, oldest first, at most `limit`. */
  readonly readAfter: (after: number, limit: number) => ReadonlyArray<LogEntry>
  /** The same entries as their payloads' JSON text, where the log has it without a parse (a batch frame's parts). */
  readonly readAfterJson?: (
    after: number,
    limit: number,
  ) => ReadonlyArray<{ readonly position: number; readonly name: string; readonly json: string }>
  /** The WebSocket frame for an entry, e.g. `{"type":"event","event":…}`. */
  readonly frame: (entry: LogEntry) => string
  /** The type (and field) of a backlog frame of many entries' payloads, e.g. `{"type":"events","events":[…]}`. */
  readonly batchType: string
  /**
   * What tells this log from one that replaced it under the same name (an erasure, then new
   * writes from position 1), e.g. its first entry's hash; undefined while the log is empty.
   */
  readonly origin?: () => string | undefined
}

export interface SocketAttachment {
  /** "log": the log's frames, and commands; else the name of the capability that accepted it (its frames). */
  readonly mode: string
  /** A capability socket's name (a room member's). */
  readonly name?: string
  /** Who opened the socket (meta.principal of commands sent on it). */
  readonly principal?: string
  /** The scopes of the token that opened it: commands need `write`, and entities decide by them (Caller). */
  readonly scopes?: ReadonlyArray<string>
  /** A capability socket's identity (a room member's Leave is committed once, by whichever handler sees it end first). */
  readonly socketId?: string
  /** When the token that opened the socket expires (ms epoch): frames that act are refused, the socket closed. */
  readonly expiresAt?: number
  /** The rate-limit key of whoever opened it: frames that act count against the same budget as HTTP. */
  readonly limitKey?: string
  /** Bytes sent and not confirmed, as of the last checkpoint (so the cap survives hibernation). */
  readonly unconfirmed?: number
  /** A log socket's filter: the only entry names (event types) it is sent; undefined: every entry. */
  readonly types?: ReadonlyArray<string>
  /** Opened with `batch=1`: its backlog comes in batch frames, and pauses at the cap instead of closing. */
  readonly batch?: boolean
  /**
   * A batched backlog paused at the cap after this position (every entry up to it sent, or
   * skipped by the filter): not live until an ack resumes it.
   */
  readonly backlogAfter?: number
  /** A paused backlog's last seq sent, when its filter skipped entries after it (acks name it); else backlogAfter. */
  readonly lastSentSeq?: number
}
/** How the edge asks a log's object for a subscription (the request is forwarded to its `fetch`). */
export const SUBSCRIBE_HEADER = "X-Emberlog-Subscribe"
export const AFTER_HEADER = "X-Emberlog-After"
export const PRINCIPAL_HEADER = "X-Emberlog-Principal"
export const SCOPES_HEADER = "X-Emberlog-Scopes"
export const EXPIRES_HEADER = "X-Emberlog-Expires"
export const LIMIT_KEY_HEADER = "X-Emberlog-Limit-Key"
/** The event types a subscription is filtered to, comma-separated (absent: every entry); the edge validated them. */
export const TYPES_HEADER = "X-Emberlog-Types"
/** "1": the client asked for a batched backlog (`?batch=1`). */
export const BATCH_HEADER = "X-Emberlog-Batch"
export const SSE_KEEP_ALIVE_MS = 15_000
/** The SSE cap, the same as the WebSocket one. */
export const SSE_MAX_BUFFERED = WS_MAX_UNCONFIRMED
/** A close reason is at most 123 bytes of UTF-8 (RFC 6455); a longer one would make `close` throw. */
const MAX_CLOSE_REASON_BYTES = 123
/** Checkpoints of (seq, bytes sent) this far apart let an ack of an older seq confirm what it covers. */
const CHECKPOINT_BYTES = 256 * 1024
const PAGE = 500
/** RFC 6455 "internal error". */
const CLOSE_UNREADABLE = 1011

const encoder = new TextEncoder()

interface SseSubscriber {
  readonly writer: WritableStreamDefaultWriter<Uint8Array>
  readonly filter: TypeFilter | undefined
  expiry?: ReturnType<typeof setTimeout>
}

/** What a socket was sent: bytes in total, the last seq, and checkpoints after its last confirmation. */
interface Account extends BatchAccount {
  sent: number
  confirmed: number
  lastSeq: number
  checkpoints: Array<{ readonly seq: number; readonly sent: number }>
  /** `sent` as of the last time the unconfirmed bytes were written to the attachment. */
  persistedSent: number
  /** Opened with `batch=1`: at the cap it pauses (the log has what follows) instead of closing. */
  batch: boolean
  /** A batched backlog waiting at the cap for an ack (see the header comment). */
  paused: boolean
  /**
   * Where a paused backlog goes on from: every entry up to it was sent or skipped by the
   * socket's filter (past lastSeq when it skipped entries after the last it sent).
   */
  backlogAfter?: number
}

/** One frame to send to sockets: its text and the seq of the entry it carries. */
export interface OutgoingFrame {
  readonly text: string
  readonly seq: number
  /** The names of the capability sockets it is for (a room's direct message); undefined: every socket. */
  readonly audience?: ReadonlySet<string>
}

/** Why a socket over its cap was closed, and where to pick up (at most MAX_CLOSE_REASON_BYTES). */
export type OverCapReason = (lastSeqSent: number) => string

const resumeReason: OverCapReason = () =>
  "Too much unread: reconnect with after=<the seq of the last event or head frame you received>"

const sseMessage = (entry: LogEntry) =>
  `id: ${entry.position}\nevent: ${entry.name}\ndata: ${JSON.stringify(entry.payload)}\n\n`

/**
 * Where a filtered SSE subscriber has seen up to: a `head` event whose id is that position, so the
 * client's last event ID moves past what it skipped. It carries data (the WebSocket head frame):
 * the HTML spec would take an id from a message with no data, but common EventSource clients
 * (Node's `eventsource`, over `eventsource-parser`) drop such a message, id and all.
 */
const sseSkipped = (position: number) => `id: ${position}\nevent: ${HEAD_TYPE}\ndata: ${headFrame(position)}\n\n`

/** The SSE text of a stretch of entries for one filter. */
const sseText = (entries: ReadonlyArray<LogEntry>, filter: TypeFilter | undefined): string => {
  const { visible, skippedThrough } = selectEntries(entries, filter)
  const text = visible.map(sseMessage).join("")
  return skippedThrough === undefined ? text : text + sseSkipped(skippedThrough)
}

export interface SubscribersOptions {
  /**
   * Asked to wake the object at `at` (ms epoch), when the earliest socket expiry changes;
   * the object's alarm then calls `closeExpired`. Hibernated sockets need an alarm, not a timer.
   */
  readonly wakeAt?: (at: number) => void
}

export class Subscribers {
  private readonly sse = new Set<SseSubscriber>()
  private keepAlive: ReturnType<typeof setInterval> | undefined
  private readonly accounts = new WeakMap<WebSocket, Account>()
  /** Each log socket's filter, read from its attachment once per wake. */
  private readonly filters = new WeakMap<WebSocket, TypeFilter | undefined>()
  /** The earliest expiry of an open socket (undefined: none expires); read from attachments on wake. */
  private earliestExpiry: number | undefined

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly source: LogSource,
    private readonly options: SubscribersOptions = {},
  ) {
    this.earliestExpiry = this.scanExpiries()
  }

  /** Accepts a WebSocket subscriber and sends it its backlog before anything else can run. */
  acceptWebSocket(after: number, attachment: SocketAttachment = { mode: "log" }): Response {
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server, [attachment.mode])
    server.serializeAttachment(attachment)
    // A capability's socket (a room member) gets no backlog: it starts at the head.
    const lastSeq = attachment.mode === "log" ? after : this.source.head()
    const account: Account = {
      sent: 0,
      confirmed: 0,
      lastSeq,
      checkpoints: [],
      persistedSent: 0,
      batch: attachment.mode === "log" && attachment.batch === true,
      paused: false,
    }
    this.accounts.set(server, account)
    const filter = typeFilter(attachment.types)
    this.filters.set(server, filter)
    if (account.batch) this.sendBatches(server, account)
    else if (attachment.mode === "log") this.sendBacklog(server, after, filter)
    if (attachment.expiresAt !== undefined) this.noteExpiry(attachment.expiresAt)
    return new Response(null, { status: 101, webSocket: client })
  }

  /**
   * Opens an SSE stream: backlog first, then live entries, `id:` = position (of `types` only, when
   * given); it ends when `expiresAt` passes.
   */
  acceptSse(after: number, expiresAt?: number, types?: ReadonlyArray<string>): Response {
    // Counted in bytes, so desiredSize tells how much a slow client has left unread.
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(
      undefined,
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    )
    const subscriber: SseSubscriber = { writer: writable.getWriter(), filter: typeFilter(types) }
    this.sse.add(subscriber)
    // An SSE stream keeps the object awake anyway, so a timer is enough here.
    if (expiresAt !== undefined) {
      subscriber.expiry = setTimeout(() => this.dropSse(subscriber), Math.max(0, expiresAt - Date.now()))
    }
    this.writeSse(subscriber, ": emberlog stream\nretry: 1000\n\n")
    const head = this.source.head()
    // Until the head, or until the subscriber is dropped for reading too slowly (it resumes with Last-Event-ID).
    for (let cursor = after; cursor < head && this.sse.has(subscriber);) {
      const page = this.readBacklog(cursor)
      // Not readable now (an archived segment not in memory, or a failure): the stream ends, the
      // client resumes from its last id (EventSource waits the `retry` above).
      if (typeof page === "string") {
        this.dropSse(subscriber)
        break
      }
      if (page.length === 0) break
      const text = sseText(page, subscriber.filter)
      if (text.length > 0) this.writeSse(subscriber, text)
      cursor = page[page.length - 1]!.position
    }
    this.keepAlive ??= setInterval(() => this.sendKeepAlive(), SSE_KEEP_ALIVE_MS)
    return new Response(readable, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    })
  }

  /** Sends newly appended entries (contiguous, oldest first) to every live subscriber. */
  deliver(appended: ReadonlyArray<LogEntry>): void {
    if (appended.length === 0) return
    // Frames are serialized only for sockets that are there: a busy actor with no subscriber
    // would otherwise encode every event once more, for nobody (issue 13).
    // A paused backlog is not live: what is appended now reaches it from the log when it resumes.
    const sockets = this.ctx.getWebSockets("log").filter((socket) => !this.accountOf(socket).paused)
    if (sockets.length > 0) {
      // Each entry is framed once, however many filters want it.
      const texts = new Map<LogEntry, string>()
      const frameOf = (entry: LogEntry): OutgoingFrame => {
        let text = texts.get(entry)
        if (text === undefined) texts.set(entry, (text = this.source.frame(entry)))
        return { text, seq: entry.position }
      }
      for (const { filter, members } of groupByFilter(sockets, (socket) => this.filterOf(socket))) {
        const { visible, skippedThrough } = selectEntries(appended, filter)
        const frames = visible.map(frameOf)
        if (skippedThrough !== undefined) frames.push({ text: headFrame(skippedThrough), seq: skippedThrough })
        this.sendToSockets(members, frames, resumeReason)
      }
    }
    if (this.sse.size > 0) {
      for (const { filter, members } of groupByFilter(this.sse, (subscriber) => subscriber.filter)) {
        const text = sseText(appended, filter)
        if (text.length > 0) for (const subscriber of members) this.writeSse(subscriber, text)
      }
    }
  }

  private filterOf(socket: WebSocket): TypeFilter | undefined {
    if (!this.filters.has(socket)) {
      const types = (socket.deserializeAttachment() as SocketAttachment | null)?.types
      this.filters.set(socket, typeFilter(types))
    }
    return this.filters.get(socket)
  }

  /**
   * Sends frames (in seq order) to every socket in `mode`, each within its cap: rooms send
   * their own frames to their members this way, so member sockets are bounded like the rest.
   */
  sendFrames(mode: SocketAttachment["mode"], frames: ReadonlyArray<OutgoingFrame>, overCap = resumeReason): void {
    if (frames.length === 0) return
    this.sendToSockets(this.ctx.getWebSockets(mode), frames, overCap)
  }

  private sendToSockets(
    sockets: ReadonlyArray<WebSocket>,
    frames: ReadonlyArray<OutgoingFrame>,
    overCap: (lastSeqSent: number) => string,
  ): void {
    if (sockets.length === 0) return
    const sized = frames.map((frame) => ({ ...frame, bytes: utf8Length(frame.text) }))
    for (const socket of sockets) {
      // Read only when a frame has an audience (a room's direct message): most frames are for every socket.
      let name: { readonly value: string | undefined } | undefined
      for (const frame of sized) {
        if (frame.audience !== undefined) {
          name ??= { value: (socket.deserializeAttachment() as SocketAttachment | null)?.name }
          if (name.value === undefined || !frame.audience.has(name.value)) continue
        }
        if (!this.send(socket, frame.text, frame.bytes, frame.seq, overCap)) break
      }
    }
  }

  /**
   * Sends one frame within the socket's cap; a socket over it is closed with CLOSE_RESUME
   * instead, or, opened with `batch=1`, paused after the last seq it was sent: what did not fit
   * is in the log, and the ack that makes room sends it from there (false: nothing more now).
   */
  private send(socket: WebSocket, text: string, bytes: number, seq: number, overCap = resumeReason): boolean {
    const account = this.accountOf(socket)
    if (!withinCap(account, bytes)) {
      if (account.batch) this.pause(socket, account)
      else closeQuietly(socket, CLOSE_RESUME, overCap(account.lastSeq))
      return false
    }
    return this.write(socket, account, text, bytes, seq)
  }

  /**
   * Sends a frame whose room under the cap was checked; false: the socket is closing.
   * `everyFrame`: a checkpoint at this frame whatever its size (a batch frame, which its
   * client acks by its last seq: that ack then confirms exactly it).
   */
  private write(socket: WebSocket, account: Account, text: string, bytes: number, seq: number, everyFrame = false) {
    try {
      socket.send(text)
    } catch {
      // A socket that cannot be written to is closing; nothing to keep for it.
      return false
    }
    account.sent += bytes
    account.lastSeq = seq
    const last = account.checkpoints[account.checkpoints.length - 1]
    const due = account.sent - (last?.sent ?? account.confirmed) >= CHECKPOINT_BYTES
    if (due || everyFrame) account.checkpoints.push({ seq: account.lastSeq, sent: account.sent })
    // Measured from what the attachment holds, not from the last checkpoint (a batch frame makes
    // one each), so after hibernation the cap undercounts by less than CHECKPOINT_BYTES.
    if (account.sent - account.persistedSent >= CHECKPOINT_BYTES) this.persistAccount(socket, account)
    return true
  }

  /**
   * Handles `message` if it is an ack (true), answering a malformed or forged one with an
   * error frame; anything else (false) is the caller's to handle.
   */
  receiveAck(socket: WebSocket, message: string): boolean {
    const ack = parseAck(message)
    if (ack === undefined) return false
    const refusal = "invalid" in ack ? ack.invalid : this.acknowledge(socket, ack.seq)
    if (refusal !== undefined) {
      try {
        socket.send(errorFrame(null, "invalid_ack", refusal))
      } catch {
        // Closing: nothing to answer.
      }
    }
    return true
  }

  /**
   * The client has everything up to `seq` (undefined: everything sent so far): what was sent
   * up to it no longer counts against the cap. An ack beyond the last seq sent confirms
   * nothing (the refusal is returned): the client cannot have read what was never sent.
   */
  acknowledge(socket: WebSocket, seq?: number): string | undefined {
    const account = this.accountOf(socket)
    if (seq !== undefined && seq > account.lastSeq) {
      const sent = account.lastSeq
      return `An ack of seq ${seq} is beyond the last seq sent on this socket (${sent}); nothing was confirmed`
    }
    if (seq === undefined || seq === account.lastSeq) {
      account.confirmed = account.sent
      account.checkpoints = []
    } else {
      let covered = 0
      while (covered < account.checkpoints.length && account.checkpoints[covered]!.seq <= seq) covered++
      if (covered === 0) return undefined
      account.confirmed = account.checkpoints[covered - 1]!.sent
      account.checkpoints = account.checkpoints.slice(covered)
    }
    this.persistAccount(socket, account)
    if (account.paused && account.sent - account.confirmed < WS_MAX_UNCONFIRMED) {
      // An ack is no frame that acts, but resuming sends on under the token that opened the
      // socket: once it has expired, nothing more goes (the expiry alarm may not have rung yet).
      const attachment = socket.deserializeAttachment() as SocketAttachment | null
      if (attachment !== null && isExpired(attachment)) closeExpiredSocket(socket)
      else this.sendBatches(socket, account)
    }
    return undefined
  }

  /** Where a paused batched backlog goes on from when an ack resumes it (undefined: not paused). */
  pausedAt(socket: WebSocket): number | undefined {
    const account = this.accountOf(socket)
    return account.paused ? (account.backlogAfter ?? account.lastSeq) : undefined
  }

  /** When the next socket expires (ms epoch), if any does. */
  nextExpiry(): number | undefined {
    return this.earliestExpiry
  }

  /** Closes every socket whose token has expired (CLOSE_TOKEN_EXPIRED); returns the next expiry. */
  closeExpired(now = Date.now()): number | undefined {
    if (this.earliestExpiry === undefined || this.earliestExpiry > now) return this.earliestExpiry
    for (const socket of this.ctx.getWebSockets()) {
      const expiresAt = (socket.deserializeAttachment() as SocketAttachment | null)?.expiresAt
      if (expiresAt !== undefined && expiresAt <= now) closeExpiredSocket(socket)
    }
    this.earliestExpiry = this.scanExpiries(now)
    return this.earliestExpiry
  }

  /** Ends every socket and stream (the log was erased): what they followed no longer exists. */
  closeAll(): void {
    for (const socket of this.ctx.getWebSockets()) closeQuietly(socket, CLOSE_ERASED, "This log was erased")
    for (const subscriber of [...this.sse]) this.dropSse(subscriber)
    this.earliestExpiry = undefined
  }

  private noteExpiry(at: number): void {
    if (this.earliestExpiry !== undefined && this.earliestExpiry <= at) return
    this.earliestExpiry = at
    this.options.wakeAt?.(at)
  }

  private scanExpiries(after = -Infinity): number | undefined {
    let earliest: number | undefined
    for (const socket of this.ctx.getWebSockets()) {
      const expiresAt = (socket.deserializeAttachment() as SocketAttachment | null)?.expiresAt
      if (expiresAt === undefined || expiresAt <= after) continue
      if (earliest === undefined || expiresAt < earliest) earliest = expiresAt
    }
    return earliest
  }

  /**
   * A socket's account; after hibernation, from its attachment (no checkpoints: an ack confirms
   * all or nothing, which is why a batch client acks each frame's last seq).
   */
  private accountOf(socket: WebSocket): Account {
    let account = this.accounts.get(socket)
    if (account === undefined) {
      const attachment = socket.deserializeAttachment() as SocketAttachment | null
      const backlogAfter = attachment?.backlogAfter
      const sent = attachment?.unconfirmed ?? 0
      account = {
        sent,
        confirmed: 0,
        lastSeq: attachment?.lastSentSeq ?? backlogAfter ?? this.source.head(),
        checkpoints: [],
        persistedSent: sent,
        batch: attachment?.mode === "log" && attachment.batch === true,
        paused: backlogAfter !== undefined,
        ...(backlogAfter === undefined ? {} : { backlogAfter }),
      }
      this.accounts.set(socket, account)
    }
    return account
  }

  /** Writes what must survive hibernation: the unconfirmed bytes, and where a paused backlog stands. */
  private persistAccount(socket: WebSocket, account: Account): void {
    const attachment = socket.deserializeAttachment() as SocketAttachment | null
    if (attachment === null) return
    const { backlogAfter: _, lastSentSeq: __, ...rest } = attachment
    const backlogAfter = account.backlogAfter ?? account.lastSeq
    socket.serializeAttachment({
      ...rest,
      unconfirmed: account.sent - account.confirmed,
      ...(account.paused ? { backlogAfter } : {}),
      ...(account.paused && backlogAfter !== account.lastSeq ? { lastSentSeq: account.lastSeq } : {}),
    })
    account.persistedSent = account.sent
  }

  /** A batch socket at its cap: not live until an ack resumes it (see the header comment). */
  private pause(socket: WebSocket, account: Account): void {
    account.paused = true
    this.persistAccount(socket, account)
  }

  /** A `batch=1` socket's backlog from where it stands, of what its filter lets through (batched-backlog.ts). */
  private sendBatches(socket: WebSocket, account: Account): void {
    sendBatches({
      source: this.source,
      account,
      filter: this.filterOf(socket),
      fits: (bytes) => withinCap(account, bytes),
      // A checkpoint at every frame: its client acks it by its last seq, which then confirms exactly it.
      write: (text, bytes, seq) => this.write(socket, account, text, bytes, seq, true),
      pause: (after) => {
        account.backlogAfter = after
        this.pause(socket, account)
      },
      live: () => {
        if (!account.paused) return
        account.paused = false
        account.backlogAfter = undefined
        this.persistAccount(socket, account)
      },
      unreadable: () => closeQuietly(socket, CLOSE_UNREADABLE, "The log could not be read"),
    })
  }

  private sendBacklog(socket: WebSocket, after: number, filter: TypeFilter | undefined): void {
    const head = this.source.head()
    for (let cursor = after; cursor < head;) {
      const page = this.readBacklog(cursor)
      // Past what was loaded for it (an archived segment not in memory): the client resumes from its
      // last seq at once, as over the cap, having made progress. A failure: it backs off first.
      if (page === "resume") return closeQuietly(socket, CLOSE_RESUME, resumeReason(cursor))
      if (page === "unreadable") return closeQuietly(socket, CLOSE_UNREADABLE, "The log could not be read")
      if (page.length === 0) break
      // The filter picks the page's entries before they are framed; a skipped tail ends in a head frame.
      const { visible, skippedThrough } = selectEntries(page, filter)
      for (const entry of visible) {
        const text = this.source.frame(entry)
        if (!this.send(socket, text, utf8Length(text), entry.position)) return
      }
      if (skippedThrough !== undefined) {
        const text = headFrame(skippedThrough)
        if (!this.send(socket, text, utf8Length(text), skippedThrough)) return
      }
      cursor = page[page.length - 1]!.position
    }
  }

  /**
   * A page of the backlog, "resume" when it reaches an archived segment not in memory (or one
   * retention deleted: the reconnection is refused with 410), "unreadable" on any other failure.
   */
  private readBacklog(cursor: number): ReadonlyArray<LogEntry> | "resume" | "unreadable" {
    try {
      return this.source.readAfter(cursor, PAGE)
    } catch (error) {
      if (archiveSignal(error) !== undefined) return "resume"
      console.error("emberlog: a subscription's backlog could not be read", error)
      return "unreadable"
    }
  }

  /**
   * A client that stops reading would make the object buffer without limit; past
   * SSE_MAX_BUFFERED bytes it is dropped, and reconnects with Last-Event-ID losing nothing.
   */
  private writeSse(subscriber: SseSubscriber, text: string): void {
    if ((subscriber.writer.desiredSize ?? 0) < -SSE_MAX_BUFFERED) return this.dropSse(subscriber)
    void subscriber.writer.write(encoder.encode(text)).catch(() => this.dropSse(subscriber))
  }

  private sendKeepAlive(): void {
    for (const subscriber of this.sse) this.writeSse(subscriber, ": keep-alive\n\n")
    if (this.sse.size === 0 && this.keepAlive !== undefined) {
      clearInterval(this.keepAlive)
      this.keepAlive = undefined
    }
  }

  private dropSse(subscriber: SseSubscriber): void {
    if (subscriber.expiry !== undefined) clearTimeout(subscriber.expiry)
    this.sse.delete(subscriber)
    void subscriber.writer.close().catch(() => undefined)
  }
}

/** Whether `bytes` more fit the socket's cap; a frame larger than the cap goes when nothing is unconfirmed. */
const withinCap = (account: Account, bytes: number) =>
  account.sent + bytes - account.confirmed <= WS_MAX_UNCONFIRMED || account.sent <= account.confirmed

const closeQuietly = (socket: WebSocket, code: number, reason: string) => {
  try {
    socket.close(code, utf8Length(reason) <= MAX_CLOSE_REASON_BYTES ? reason : "")
  } catch {
    // Already closed.
  }
}

/** Ends a socket whose token expired (frames that act are refused before this, see `isExpired`). */
export const closeExpiredSocket = (socket: WebSocket) =>
  closeQuietly(socket, CLOSE_TOKEN_EXPIRED, "The token has expired: reconnect with a fresh one")

export const isExpired = (attachment: SocketAttachment, now = Date.now()) =>
  attachment.expiresAt !== undefined && attachment.expiresAt <= now

/** Whether a received frame is over MAX_FRAME_BYTES, without encoding strings that clearly fit. */
export const isOversize = (message: string | ArrayBuffer): boolean => {
  if (typeof message !== "string") return message.byteLength > MAX_FRAME_BYTES
  // UTF-8 takes at least one and at most three bytes per UTF-16 code unit.
  if (message.length > MAX_FRAME_BYTES) return true
  if (message.length * 3 <= MAX_FRAME_BYTES) return false
  return utf8Length(message) > MAX_FRAME_BYTES
}

/**
 * A copy of a client's headers without any `X-Emberlog-*` header: those carry what the
 * edge established (principal, scopes, cursor, member) to an object, so a client must
 * never be able to set them. Credentials stay at the edge too: the object never needs them.
 */
export const clientHeaders = (request: Request): Headers => {
  const headers = new Headers()
  for (const [name, value] of request.headers) {
    const lower = name.toLowerCase()
    if (!lower.startsWith("x-emberlog-") && lower !== "authorization" && lower !== "sec-websocket-protocol")
      headers.set(name, value)
  }
  return headers
}

/** What the edge established about who opened a subscription (the headers it set; clients cannot). */
export const authorityOf = (
  request: Request,
): Pick<SocketAttachment, "principal" | "scopes" | "expiresAt" | "limitKey"> => {
  const expires = Number(request.headers.get(EXPIRES_HEADER) ?? NaN)
  const limitKey = request.headers.get(LIMIT_KEY_HEADER)
  return {
    principal: request.headers.get(PRINCIPAL_HEADER) ?? "anonymous",
    scopes: (request.headers.get(SCOPES_HEADER) ?? "").split(" ").filter((scope) => scope.length > 0),
    ...(Number.isFinite(expires) ? { expiresAt: expires } : {}),
    ...(limitKey === null ? {} : { limitKey }),
  }
}

/** Sets the headers `authorityOf` reads, on a request the edge forwards to an object. */
export const setAuthority = (
  headers: Headers,
  authority: {
    readonly principal: string
    readonly scopes: Iterable<string>
    readonly expiresAt?: number
    readonly limitKey?: string
  },
) => {
  headers.set(PRINCIPAL_HEADER, authority.principal)
  headers.set(SCOPES_HEADER, [...authority.scopes].join(" "))
  if (authority.expiresAt !== undefined) headers.set(EXPIRES_HEADER, String(authority.expiresAt))
  if (authority.limitKey !== undefined) headers.set(LIMIT_KEY_HEADER, authority.limitKey)
}

/** Answers a subscription request the edge validated and forwarded to the object. */
export const acceptSubscription = (subscribers: Subscribers, request: Request): Response => {
  const after = Number(request.headers.get(AFTER_HEADER) ?? "0")
  const authority = authorityOf(request)
  const types = typesOf(request.headers.get(TYPES_HEADER))
  switch (request.headers.get(SUBSCRIBE_HEADER)) {
    case "websocket":
      return subscribers.acceptWebSocket(after, {
        mode: "log",
        ...authority,
        ...(types === undefined ? {} : { types }),
        ...(request.headers.get(BATCH_HEADER) === "1" ? { batch: true } : {}),
      })
    case "sse":
      return subscribers.acceptSse(after, authority.expiresAt, types)
    default:
      return new Response("Not found", { status: 404 })
  }
}
