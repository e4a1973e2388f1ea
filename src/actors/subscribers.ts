/**
 * Live subscribers of one append-only log (an actor's events or a topic's entries),
 * over hibernatable WebSockets and Server-Sent Events.
 *
 * Exactly once, in order: every subscriber has a cursor (the last position it was
 * sent). `deliver` sends each subscriber everything after its cursor up to the head,
 * reading from storage when it is behind, and moves the cursor in the same synchronous
 * stretch as the send. A Durable Object runs one synchronous stretch at a time, so a
 * backlog being sent and an append being published cannot interleave, and nothing is
 * skipped or sent twice. WebSocket cursors live in the socket attachment, so they
 * survive hibernation and eviction.
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
  readonly cursor: number
  /** What the socket receives: log frames, or (rooms) the compact post frames. */
  readonly mode: "log" | "room"
  readonly name?: string
}

export const SUBSCRIBER_TAG = "subscriber"
/** How the edge asks a log's object for a subscription (the request is forwarded to its `fetch`). */
export const SUBSCRIBE_HEADER = "X-Emberlog-Subscribe"
export const AFTER_HEADER = "X-Emberlog-After"
export const MAX_FRAME_BYTES = 1024 * 1024
/** Close code for frames over MAX_FRAME_BYTES (RFC 6455 "message too big"). */
export const CLOSE_TOO_LARGE = 1009
export const SSE_KEEP_ALIVE_MS = 15_000
const PAGE = 500

const encoder = new TextEncoder()

interface SseSubscriber {
  cursor: number
  readonly writer: WritableStreamDefaultWriter<Uint8Array>
}

export class Subscribers {
  private readonly sse = new Set<SseSubscriber>()
  private keepAlive: ReturnType<typeof setInterval> | undefined

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly source: LogSource,
  ) {}

  /** Accepts a WebSocket subscriber and sends it its backlog before anything else can run. */
  acceptWebSocket(after: number, attachment: Omit<SocketAttachment, "cursor"> = { mode: "log" }): Response {
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server, [SUBSCRIBER_TAG])
    server.serializeAttachment({ ...attachment, cursor: after } satisfies SocketAttachment)
    if (attachment.mode === "log") this.catchUpSocket(server)
    return new Response(null, { status: 101, webSocket: client })
  }

  /** Opens an SSE stream: backlog first, then live entries, `id:` = position. */
  acceptSse(after: number): Response {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
    const subscriber: SseSubscriber = { cursor: after, writer: writable.getWriter() }
    this.sse.add(subscriber)
    void subscriber.writer.write(encoder.encode(": emberlog stream\nretry: 1000\n\n")).catch(() => this.dropSse(subscriber))
    this.catchUpSse(subscriber)
    this.keepAlive ??= setInterval(() => this.sendKeepAlive(), SSE_KEEP_ALIVE_MS)
    return new Response(readable, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" },
    })
  }

  /** Sends every subscriber what it has not seen yet. Call after each durable append. */
  deliver(): void {
    for (const socket of this.ctx.getWebSockets(SUBSCRIBER_TAG)) {
      const attachment = socket.deserializeAttachment() as SocketAttachment | null
      if (attachment?.mode === "log") this.catchUpSocket(socket)
    }
    for (const subscriber of this.sse) this.catchUpSse(subscriber)
  }

  /** Sockets in a given mode (rooms send their own frames to their members). */
  sockets(mode: SocketAttachment["mode"]): Array<{ socket: WebSocket; attachment: SocketAttachment }> {
    return this.ctx
      .getWebSockets(SUBSCRIBER_TAG)
      .map((socket) => ({ socket, attachment: socket.deserializeAttachment() as SocketAttachment }))
      .filter(({ attachment }) => attachment?.mode === mode)
  }

  private catchUpSocket(socket: WebSocket): void {
    const attachment = socket.deserializeAttachment() as SocketAttachment
    let cursor = attachment.cursor
    const head = this.source.head()
    try {
      while (cursor < head) {
        const page = this.source.readAfter(cursor, PAGE)
        if (page.length === 0) break
        for (const entry of page) socket.send(this.source.frame(entry))
        cursor = page[page.length - 1]!.position
      }
    } catch {
      // A socket that cannot be written to is closing; its close handler cleans up.
    }
    if (cursor !== attachment.cursor) socket.serializeAttachment({ ...attachment, cursor })
  }

  private catchUpSse(subscriber: SseSubscriber): void {
    const head = this.source.head()
    while (subscriber.cursor < head) {
      const page = this.source.readAfter(subscriber.cursor, PAGE)
      if (page.length === 0) break
      let text = ""
      for (const entry of page) text += `id: ${entry.position}\nevent: ${entry.name}\ndata: ${JSON.stringify(entry.payload)}\n\n`
      subscriber.cursor = page[page.length - 1]!.position
      void subscriber.writer.write(encoder.encode(text)).catch(() => this.dropSse(subscriber))
    }
  }

  private sendKeepAlive(): void {
    for (const subscriber of this.sse) void subscriber.writer.write(encoder.encode(": keep-alive\n\n")).catch(() => this.dropSse(subscriber))
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

/** Answers a subscription request the edge validated and forwarded to the object. */
export const acceptSubscription = (subscribers: Subscribers, request: Request): Response => {
  const after = Number(request.headers.get(AFTER_HEADER) ?? "0")
  switch (request.headers.get(SUBSCRIBE_HEADER)) {
    case "websocket":
      return subscribers.acceptWebSocket(after)
    case "sse":
      return subscribers.acceptSse(after)
    default:
      return new Response("Not found", { status: 404 })
  }
}
