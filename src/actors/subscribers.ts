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
 */

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
  /** The WebSocket frame for an entry, e.g. `{"type":"event","event":…}`. */
  readonly frame: (entry: LogEntry) => string
}

export interface SocketAttachment {
  /** What the socket receives: log frames, or (rooms) the compact post frames. */
  readonly mode: "log" | "room"
  /** A room member's name. */
  readonly name?: string
  /** Who opened the socket (meta.principal of commands sent on it). */
  readonly principal?: string
  /** Whether commands may be sent on it (the `write` scope). */
  readonly canWrite?: boolean
  /** A room member that has already left (close and error both end membership, once). */
  readonly left?: boolean
}
/** How the edge asks a log's object for a subscription (the request is forwarded to its `fetch`). */
export const SUBSCRIBE_HEADER = "X-Emberlog-Subscribe"
export const AFTER_HEADER = "X-Emberlog-After"
export const PRINCIPAL_HEADER = "X-Emberlog-Principal"
export const WRITE_HEADER = "X-Emberlog-Can-Write"
export const MAX_FRAME_BYTES = 1024 * 1024
/** Close code for frames over MAX_FRAME_BYTES (RFC 6455 "message too big"). */
export const CLOSE_TOO_LARGE = 1009
export const SSE_KEEP_ALIVE_MS = 15_000
export const SSE_MAX_BUFFERED = 8 * 1024 * 1024
const PAGE = 500

const encoder = new TextEncoder()

interface SseSubscriber {
  readonly writer: WritableStreamDefaultWriter<Uint8Array>
}

const sseMessage = (entry: LogEntry) => `id: ${entry.position}\nevent: ${entry.name}\ndata: ${JSON.stringify(entry.payload)}\n\n`

export class Subscribers {
  private readonly sse = new Set<SseSubscriber>()
  private keepAlive: ReturnType<typeof setInterval> | undefined

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly source: LogSource,
  ) {}

  /** Accepts a WebSocket subscriber and sends it its backlog before anything else can run. */
  acceptWebSocket(after: number, attachment: SocketAttachment = { mode: "log" }): Response {
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server, [attachment.mode])
    server.serializeAttachment(attachment)
    if (attachment.mode === "log") this.sendBacklog(after, (text) => server.send(text), this.source.frame)
    return new Response(null, { status: 101, webSocket: client })
  }

  /** Opens an SSE stream: backlog first, then live entries, `id:` = position. */
  acceptSse(after: number): Response {
    // Counted in bytes, so desiredSize tells how much a slow client has left unread.
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(undefined, new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }))
    const subscriber: SseSubscriber = { writer: writable.getWriter() }
    this.sse.add(subscriber)
    this.writeSse(subscriber, ": emberlog stream\nretry: 1000\n\n")
    this.sendBacklog(after, (text) => this.writeSse(subscriber, text), sseMessage)
    this.keepAlive ??= setInterval(() => this.sendKeepAlive(), SSE_KEEP_ALIVE_MS)
    return new Response(readable, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" },
    })
  }

  /** Sends newly appended entries (contiguous, oldest first) to every live subscriber. */
  deliver(appended: ReadonlyArray<LogEntry>): void {
    if (appended.length === 0) return
    const frames = appended.map(this.source.frame)
    for (const socket of this.ctx.getWebSockets("log")) {
      try {
        for (const frame of frames) socket.send(frame)
      } catch {
        // A socket that cannot be written to is closing; nothing to keep for it.
      }
    }
    if (this.sse.size > 0) {
      const text = appended.map(sseMessage).join("")
      for (const subscriber of this.sse) this.writeSse(subscriber, text)
    }
  }

  /** Sockets in a given mode (rooms send their own frames to their members). */
  sockets(mode: SocketAttachment["mode"]): Array<WebSocket> {
    return this.ctx.getWebSockets(mode)
  }

  private sendBacklog(after: number, send: (text: string) => void, format: (entry: LogEntry) => string): void {
    const head = this.source.head()
    for (let cursor = after; cursor < head; ) {
      const page = this.source.readAfter(cursor, PAGE)
      if (page.length === 0) break
      for (const entry of page) send(format(entry))
      cursor = page[page.length - 1]!.position
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
    this.sse.delete(subscriber)
    void subscriber.writer.close().catch(() => undefined)
  }
}

/** Whether a received frame is over MAX_FRAME_BYTES, without encoding strings that clearly fit. */
export const isOversize = (message: string | ArrayBuffer): boolean => {
  if (typeof message !== "string") return message.byteLength > MAX_FRAME_BYTES
  // UTF-8 takes at least one and at most three bytes per UTF-16 code unit.
  if (message.length > MAX_FRAME_BYTES) return true
  if (message.length * 3 <= MAX_FRAME_BYTES) return false
  return encoder.encode(message).byteLength > MAX_FRAME_BYTES
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
    if (!lower.startsWith("x-emberlog-") && lower !== "authorization" && lower !== "sec-websocket-protocol") headers.set(name, value)
  }
  return headers
}

/** Answers a subscription request the edge validated and forwarded to the object. */
export const acceptSubscription = (subscribers: Subscribers, request: Request): Response => {
  const after = Number(request.headers.get(AFTER_HEADER) ?? "0")
  switch (request.headers.get(SUBSCRIBE_HEADER)) {
    case "websocket":
      return subscribers.acceptWebSocket(after, {
        mode: "log",
        principal: request.headers.get(PRINCIPAL_HEADER) ?? "anonymous",
        canWrite: request.headers.get(WRITE_HEADER) === "1",
      })
    case "sse":
      return subscribers.acceptSse(after)
    default:
      return new Response("Not found", { status: 404 })
  }
}
