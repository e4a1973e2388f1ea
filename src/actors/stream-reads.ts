/**
 * Durable Streams reads (PROTOCOL.md §5.4–5.7, §6, §8) over any append-only log inside its
 * Durable Object: the stream kind's items, an actor's events, a topic's entries. The log is a
 * `ReadSource` (positions 1, 2, … with no meaning to clients), the body is a `Rendering` (JSON
 * mode: a JSON array of items; byte mode: the items' bytes concatenated), and `StreamReads`
 * answers catch-up, `live=long-poll` and `live=sse` reads with the protocol's headers.
 *
 * Offsets are opaque to clients: the offset of position N is `0000000000000000_` then N as 16
 * zero-padded decimal digits (lexicographic order is numeric order; no `,&=?/`; never `-1` or
 * `now`) and means "resume after item N". The shape is the reference server's (`{segment}_{n}`),
 * which clients and the conformance suite write literally for the start; our segment is always
 * zero, kept so that a later archival scheme can move offsets on and still sort after these. A filtered read still advances `Stream-Next-Offset` to the last
 * position it examined, so a filtered reader resumes where it left off and never re-reads.
 *
 * Waking readers: the host calls `notify()` after every append or close (a capability's
 * `committed` hook does), and every long-poll and SSE reader waiting in this object reads
 * again, in its own stretch, from its own cursor. Nothing polls. A long-poll or an SSE stream
 * holds a request open, so it keeps the object awake (unlike hibernating WebSockets); both are
 * bounded: at most `maxReaders` wait per object (503 beyond), a long-poll waits `longPollMs`,
 * an SSE stream lasts `sseMaxMs` (§8.2: the client reconnects from its last offset), and an SSE
 * reader that stops reading is dropped past SSE_MAX_BUFFERED bytes, as WebSocket readers are
 * (subscribers.ts), losing nothing: it reconnects from the last offset it received.
 */
import { errorBody } from "./failures.js"
import { SSE_KEEP_ALIVE_MS, SSE_MAX_BUFFERED } from "./subscribers.js"

export const STREAM_NEXT_OFFSET = "Stream-Next-Offset"
export const STREAM_UP_TO_DATE = "Stream-Up-To-Date"
export const STREAM_CLOSED = "Stream-Closed"
export const STREAM_CURSOR = "Stream-Cursor"
export const SSE_DATA_ENCODING = "Stream-SSE-Data-Encoding"

/** What a browser client of the protocol sends and reads (CORS: the app allows and exposes them). */
export const STREAM_REQUEST_HEADERS: ReadonlyArray<string> = [
  "If-None-Match",
  "Stream-TTL",
  "Stream-Expires-At",
  "Stream-Seq",
  "Stream-Closed",
  "Stream-Forked-From",
  "Stream-Fork-Offset",
  "Stream-Fork-Sub-Offset",
  "Producer-Id",
  "Producer-Epoch",
  "Producer-Seq",
]
export const STREAM_RESPONSE_HEADERS: ReadonlyArray<string> = [
  "ETag",
  "Location",
  "Stream-Next-Offset",
  "Stream-Up-To-Date",
  "Stream-Closed",
  "Stream-Cursor",
  "Stream-TTL",
  "Stream-Expires-At",
  "Stream-SSE-Data-Encoding",
  "Producer-Epoch",
  "Producer-Seq",
  "Producer-Expected-Seq",
  "Producer-Received-Seq",
]

/** §10.7, on every response of a stream route (errors too). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "Cross-Origin-Resource-Policy": "cross-origin",
}

/** §8.1 for data that belongs to a tenant: cacheable by the client only, keyed by its credentials. */
export const PRIVATE_CACHE = "private, max-age=60, stale-while-revalidate=300"
export const NO_STORE = "no-store"
/**
 * A catch-up read that reached the tail of a stream still open: the next append changes what the
 * same URL answers, so a cache must ask again every time (the ETag makes that a 304 while nothing
 * was appended). Pages behind the tail never change, and keep PRIVATE_CACHE.
 */
export const TAIL_CACHE = "private, no-cache"

const OFFSET_DIGITS = 16
const SEGMENT = "0".repeat(OFFSET_DIGITS)
const OFFSET = /^(\d{16})_(\d{16})$/

export const encodeOffset = (position: number): string => `${SEGMENT}_${String(position).padStart(OFFSET_DIGITS, "0")}`

export type ParsedOffset = { readonly after: number } | "start" | "now" | { readonly invalid: string }

/** `-1` (or no offset) is the start, `now` the tail; anything else must be an offset this module issued. */
export const parseOffset = (text: string | null | undefined): ParsedOffset => {
  if (text === null || text === undefined || text === "-1") return "start"
  if (text === "now") return "now"
  const match = OFFSET.exec(text)
  const position = match === null || match[1] !== SEGMENT ? Number.NaN : Number(match[2])
  if (!Number.isSafeInteger(position)) return { invalid: `Malformed offset ${JSON.stringify(text.slice(0, 64))}` }
  return { after: position }
}

/** One item of the log; its position is 1 + the position of the item before (gaps are allowed). */
export interface ReadItem {
  readonly position: number
}

export interface ReadSource<I extends ReadItem> {
  /** The position of the last item (0 before any, or `start()` when the log starts later). */
  readonly head: () => number
  /** What `offset=-1` reads after (0 unless set: a recreated or forked stream starts later). */
  readonly start?: () => number
  /** Items after `after`, oldest first, at most `limit`. */
  readonly readAfter: (after: number, limit: number) => ReadonlyArray<I>
  /** Whether nothing more will ever be appended (a closed stream). */
  readonly closed?: () => boolean
}

export type Rendering<I> =
  | { readonly mode: "json"; readonly contentType: string; readonly json: (item: I) => string }
  | { readonly mode: "bytes"; readonly contentType: string; readonly bytes: (item: I) => Uint8Array }

export interface ReadOptions<I extends ReadItem> {
  readonly source: ReadSource<I>
  readonly rendering: Rendering<I>
  /** Items the reader does not want; positions stay those of the full log. */
  readonly filter?: (item: I) => boolean
  /** Names this log in ETags (e.g. the object's name and the stream's generation). */
  readonly etag: string
  /** Cache-Control of catch-up reads (PRIVATE_CACHE unless set). */
  readonly cacheControl?: string
  /** Extra response headers (e.g. Stream-Expires-At). */
  readonly headers?: Readonly<Record<string, string>>
  /** When live reads must end (ms epoch: the reader's token expires), if sooner than the settings say. */
  readonly endsAt?: number
}

export type LiveMode = "long-poll" | "sse"

export interface ReadRequest {
  readonly offset: Exclude<ParsedOffset, { readonly invalid: string }>
  readonly live: LiveMode | undefined
  readonly cursor: string | undefined
}

/** The read a URL asks for (§5.5–5.7), or why it is malformed (a 400). */
export const parseReadRequest = (url: URL): ReadRequest | { readonly invalid: string } => {
  const offsets = url.searchParams.getAll("offset")
  const lives = url.searchParams.getAll("live")
  if (offsets.length > 1) return { invalid: "Give one offset" }
  if (lives.length > 1) return { invalid: "Give one live mode" }
  const live = lives[0]
  if (live !== undefined && live !== "long-poll" && live !== "sse")
    return { invalid: `live must be long-poll or sse, not ${JSON.stringify(live.slice(0, 32))}` }
  const text = offsets[0]
  if (text === "") return { invalid: "The offset is empty: give an offset, -1 for the start or now for the tail" }
  if (text === undefined && live !== undefined) return { invalid: `live=${live} needs an offset (-1 for the start)` }
  const offset = parseOffset(text)
  if (typeof offset === "object" && "invalid" in offset) return offset
  return { offset, live, cursor: url.searchParams.get("cursor") ?? undefined }
}

/** §8.1: 20-second intervals since 2024-10-09T00:00:00Z; never the client's cursor or less. */
const CURSOR_EPOCH = Date.UTC(2024, 9, 9)
const CURSOR_INTERVAL_MS = 20_000
export const nextCursor = (clientCursor: string | undefined, now = Date.now()): string => {
  const interval = Math.floor((now - CURSOR_EPOCH) / CURSOR_INTERVAL_MS)
  const theirs = clientCursor !== undefined && /^\d{1,15}$/.test(clientCursor) ? Number(clientCursor) : -1
  if (theirs < interval) return String(interval)
  // Jitter of 1–3600 seconds, in whole intervals, so a cached answer's cursor always moves on.
  const jitterSeconds = 1 + Math.floor(Math.random() * 3600)
  return String(theirs + Math.max(1, Math.round(jitterSeconds / (CURSOR_INTERVAL_MS / 1000))))
}

/** One read's result: the items the reader gets and where it stands in the log. */
export interface ReadPage<I> {
  readonly items: ReadonlyArray<I>
  /** The last position examined (the items' last, or a later one the filter skipped, or `after`). */
  readonly next: number
  readonly upToDate: boolean
  /** Closed, and the reader has reached the end. */
  readonly closedAtEnd: boolean
}

export interface ReadLimits {
  readonly items: number
  readonly bytes: number
}

/** A page is at most this much (§5.5: "up to a server-defined maximum chunk size"). */
export const DEFAULT_PAGE: ReadLimits = { items: 1_000, bytes: 1024 * 1024 }
const SCAN_BATCH = 500

const itemSize = <I>(rendering: Rendering<I>, item: I): number =>
  rendering.mode === "json" ? rendering.json(item).length : rendering.bytes(item).byteLength

/** Reads one page after `after`; with a filter it scans on until it has items or reaches the head. */
export const readPage = <I extends ReadItem>(
  options: ReadOptions<I>,
  after: number,
  limits: ReadLimits = DEFAULT_PAGE,
): ReadPage<I> => {
  const { source, rendering, filter } = options
  const head = source.head()
  const items: Array<I> = []
  let next = after
  let bytes = 0
  let full = false
  while (!full && next < head) {
    const batch = source.readAfter(next, Math.min(SCAN_BATCH, limits.items))
    if (batch.length === 0) break
    for (const item of batch) {
      if (filter === undefined || filter(item)) {
        const size = itemSize(rendering, item)
        if (items.length > 0 && (bytes + size > limits.bytes || items.length >= limits.items)) {
          full = true
          break
        }
        items.push(item)
        bytes += size
      }
      next = item.position
    }
    // A filtered scan stops at a page of items, or after examining a page's worth of the log.
    if (filter !== undefined && items.length === 0 && next - after >= limits.items * 10) break
  }
  const upToDate = next >= head
  return { items, next, upToDate, closedAtEnd: upToDate && (source.closed?.() ?? false) }
}

const encoder = new TextEncoder()

const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const total = parts.reduce((sum, part) => sum + part.byteLength, 0)
  const out = new Uint8Array(total)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.byteLength
  }
  return out
}

/** The body of a page: a JSON array (JSON mode) or the items' bytes. */
export const renderBody = <I>(rendering: Rendering<I>, items: ReadonlyArray<I>): Uint8Array =>
  rendering.mode === "json"
    ? encoder.encode(`[${items.map((item) => rendering.json(item)).join(",")}]`)
    : concatBytes(items.map((item) => rendering.bytes(item)))

/** Text and JSON streams are sent as SSE text; any other content type as base64 (Stream-SSE-Data-Encoding). */
export const isTextual = (contentType: string): boolean => {
  const type = contentType.split(";")[0]!.trim().toLowerCase()
  return type.startsWith("text/") || type === "application/json" || type.endsWith("+json")
}

const base64 = (bytes: Uint8Array): string => {
  let binary = ""
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

/**
 * One SSE `data` event: every line of the payload its own `data:` line, so no payload can end the
 * event. Parsers drop one space after `data:`, so a line that starts with one gets another.
 */
const sseData = (payload: string): string =>
  `event: data\n${payload
    .split(/\r\n|\r|\n/)
    .map((line) => (line.startsWith(" ") ? `data: ${line}\n` : `data:${line}\n`))
    .join("")}\n`

const sseControl = (next: number, cursor: string, upToDate: boolean, closed: boolean): string => {
  // §5.7: the final control event of a closed stream carries no cursor.
  const control: Record<string, unknown> = { streamNextOffset: encodeOffset(next) }
  if (closed) control.streamClosed = true
  else control.streamCursor = cursor
  if (upToDate) control.upToDate = true
  return `event: control\ndata:${JSON.stringify(control)}\n\n`
}

const ssePayload = <I>(rendering: Rendering<I>, items: ReadonlyArray<I>): string => {
  const body = renderBody(rendering, items)
  if (rendering.mode === "json") return new TextDecoder().decode(body)
  return isTextual(rendering.contentType) ? new TextDecoder().decode(body) : base64(body)
}

export interface StreamReadsSettings {
  /** How long a long-poll waits for an append before 204 (ms). */
  readonly longPollMs: number
  /** How long an SSE stream stays open before the server ends it (ms; §8.2 suggests ~60 s). */
  readonly sseMaxMs: number
  /** Long-polls and SSE streams waiting at once in one object; beyond, 503. */
  readonly maxReaders: number
}

export const DEFAULT_STREAM_READS: StreamReadsSettings = { longPollMs: 30_000, sseMaxMs: 60_000, maxReaders: 1_000 }

/** The settings a Worker's vars give (STREAM_LONG_POLL_MS, STREAM_SSE_MAX_MS; the tests shorten long-polls). */
export const streamReadsSettings = (env: unknown): StreamReadsSettings => {
  const vars = (env ?? {}) as Record<string, unknown>
  const ms = (name: string, fallback: number) => {
    const value = Number(vars[name])
    return Number.isSafeInteger(value) && value > 0 ? value : fallback
  }
  return {
    ...DEFAULT_STREAM_READS,
    longPollMs: ms("STREAM_LONG_POLL_MS", DEFAULT_STREAM_READS.longPollMs),
    sseMaxMs: ms("STREAM_SSE_MAX_MS", DEFAULT_STREAM_READS.sseMaxMs),
  }
}

/** A JSON error in the edge's shape, with the stream routes' headers. */
export const streamError = (
  status: number,
  code: string,
  message: string,
  headers: Readonly<Record<string, string>> = {},
): Response =>
  Response.json(errorBody(code, message), {
    status,
    headers: { ...SECURITY_HEADERS, "Cache-Control": NO_STORE, ...headers },
  })

interface SseReader {
  readonly writer: WritableStreamDefaultWriter<Uint8Array>
  /** Reads from here on the next wake. */
  cursor: number
  readonly wake: () => void
  done: boolean
}

/**
 * One object's readers: answers reads and wakes the waiting ones when the host calls `notify`.
 */
export class StreamReads {
  private readonly waiting = new Set<() => void>()
  private readonly sse = new Set<SseReader>()
  private keepAlive: ReturnType<typeof setInterval> | undefined

  constructor(private readonly settings: StreamReadsSettings = DEFAULT_STREAM_READS) {}

  /** How many long-polls and SSE streams are open. */
  get readers(): number {
    return this.waiting.size + this.sse.size
  }

  /** Something was appended (or the log closed): every waiting reader reads again. */
  notify(): void {
    for (const wake of [...this.waiting]) wake()
    for (const reader of [...this.sse]) reader.wake()
  }

  /** Ends every SSE stream and long-poll (the log was erased or deleted); each answers from what it sees now. */
  closeAll(): void {
    for (const reader of [...this.sse]) this.endSse(reader)
    this.notify()
  }

  /** HEAD (§5.4): the tail and the stream's metadata, never cached. */
  head<I extends ReadItem>(options: ReadOptions<I>): Response {
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      ...options.headers,
      "Content-Type": options.rendering.contentType,
      [STREAM_NEXT_OFFSET]: encodeOffset(options.source.head()),
      "Cache-Control": NO_STORE,
    }
    if (options.source.closed?.()) headers[STREAM_CLOSED] = "true"
    return new Response(null, { status: 200, headers })
  }

  /** GET: catch-up, long-poll or SSE, as the URL asks. */
  async read<I extends ReadItem>(request: Request, options: ReadOptions<I>): Promise<Response> {
    const parsed = parseReadRequest(new URL(request.url))
    if ("invalid" in parsed) return streamError(400, "invalid_offset", parsed.invalid)
    const { source } = options
    const start = source.start?.() ?? 0
    const now = parsed.offset === "now"
    const after =
      parsed.offset === "now"
        ? source.head()
        : parsed.offset === "start"
          ? start
          : // An offset from before this stream began (a deleted generation's) reads it from its start.
            Math.max(start, parsed.offset.after)
    if (parsed.live === "sse") return this.openSse(options, after, parsed.cursor)
    if (parsed.live === "long-poll") return this.longPoll(options, after, parsed.cursor)
    return this.catchUp(request, options, after, now)
  }

  private baseHeaders<I extends ReadItem>(options: ReadOptions<I>): Record<string, string> {
    return { ...SECURITY_HEADERS, ...options.headers, "Content-Type": options.rendering.contentType }
  }

  private pageHeaders<I extends ReadItem>(options: ReadOptions<I>, page: ReadPage<I>): Record<string, string> {
    const headers = this.baseHeaders(options)
    headers[STREAM_NEXT_OFFSET] = encodeOffset(page.next)
    if (page.upToDate) headers[STREAM_UP_TO_DATE] = "true"
    if (page.closedAtEnd) headers[STREAM_CLOSED] = "true"
    return headers
  }

  private catchUp<I extends ReadItem>(
    request: Request,
    options: ReadOptions<I>,
    after: number,
    now: boolean,
  ): Response {
    const page = readPage(options, after)
    const headers = this.pageHeaders(options, page)
    if (now) {
      // §6: offset=now is the tail, never cached, with no ETag.
      headers["Cache-Control"] = NO_STORE
      return new Response(renderBody(options.rendering, []), { status: 200, headers })
    }
    headers["Cache-Control"] = page.upToDate && !page.closedAtEnd ? TAIL_CACHE : (options.cacheControl ?? PRIVATE_CACHE)
    // Closing changes what the tail answers, so it is part of the tag.
    const etag = `"${options.etag}:${encodeOffset(after)}:${encodeOffset(page.next)}${page.closedAtEnd ? ":c" : ""}"`
    headers.ETag = etag
    const ifNoneMatch = request.headers.get("If-None-Match")
    if (ifNoneMatch !== null && ifNoneMatch.split(",").some((tag) => tag.trim() === etag)) {
      return new Response(null, { status: 304, headers })
    }
    return new Response(renderBody(options.rendering, page.items), { status: 200, headers })
  }

  private tooManyReaders(): Response {
    return streamError(503, "too_many_readers", "Too many live readers of this stream; retry shortly", {
      "Retry-After": "1",
    })
  }

  /** Waits until `notify` or the timeout; true when woken. */
  private waitForAppend(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        this.waiting.delete(wake)
        resolve(true)
      }
      const timer = setTimeout(() => {
        this.waiting.delete(wake)
        resolve(false)
      }, timeoutMs)
      this.waiting.add(wake)
    })
  }

  private async longPoll<I extends ReadItem>(
    options: ReadOptions<I>,
    after: number,
    clientCursor: string | undefined,
  ): Promise<Response> {
    const deadline = Math.min(Date.now() + this.settings.longPollMs, options.endsAt ?? Number.POSITIVE_INFINITY)
    for (;;) {
      const page = readPage(options, after)
      const answer = page.items.length > 0 || page.closedAtEnd
      const remaining = deadline - Date.now()
      if (answer || remaining <= 0) {
        const headers = this.pageHeaders(options, page)
        headers[STREAM_CURSOR] = nextCursor(clientCursor)
        if (page.items.length === 0) {
          headers["Cache-Control"] = NO_STORE
          return new Response(null, { status: 204, headers })
        }
        headers["Cache-Control"] = options.cacheControl ?? PRIVATE_CACHE
        headers.ETag = `"${options.etag}:${encodeOffset(after)}:${encodeOffset(page.next)}${page.closedAtEnd ? ":c" : ""}"`
        return new Response(renderBody(options.rendering, page.items), { status: 200, headers })
      }
      // A filtered reader whose page held nothing it wanted moves on to what it has seen.
      after = page.next
      if (this.readers >= this.settings.maxReaders) return this.tooManyReaders()
      await this.waitForAppend(remaining)
    }
  }

  private openSse<I extends ReadItem>(
    options: ReadOptions<I>,
    after: number,
    clientCursor: string | undefined,
  ): Response {
    if (this.readers >= this.settings.maxReaders) return this.tooManyReaders()
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(
      undefined,
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    )
    const reader: SseReader = {
      writer: writable.getWriter(),
      cursor: after,
      done: false,
      wake: () => this.sendSse(reader, options, clientCursor),
    }
    this.sse.add(reader)
    const lifetimeMs = Math.min(this.settings.sseMaxMs, (options.endsAt ?? Number.POSITIVE_INFINITY) - Date.now())
    const lifetime = setTimeout(() => this.endSse(reader), Math.max(0, lifetimeMs))
    void reader.writer.closed.finally(() => clearTimeout(lifetime)).catch(() => undefined)
    this.keepAlive ??= setInterval(() => this.sendKeepAlive(), SSE_KEEP_ALIVE_MS)
    // The first control event comes at once, even for an empty stream (§6, offset=now with SSE).
    this.sendSse(reader, options, clientCursor, true)
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      ...options.headers,
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
      "X-Accel-Buffering": "no",
    }
    if (options.rendering.mode === "bytes" && !isTextual(options.rendering.contentType))
      headers[SSE_DATA_ENCODING] = "base64"
    return new Response(readable, { status: 200, headers })
  }

  /** Sends a reader everything after its cursor, page by page, each data event followed by its control event. */
  private sendSse<I extends ReadItem>(
    reader: SseReader,
    options: ReadOptions<I>,
    clientCursor: string | undefined,
    first = false,
  ): void {
    if (reader.done) return
    let sentControl = false
    for (;;) {
      const page = readPage(options, reader.cursor)
      const moved = page.next !== reader.cursor
      // A data event and its control event go in one write: a reader sees both or neither.
      let text = page.items.length > 0 ? sseData(ssePayload(options.rendering, page.items)) : ""
      reader.cursor = page.next
      if (page.items.length > 0 || moved || page.closedAtEnd || (first && !sentControl)) {
        text += sseControl(page.next, nextCursor(clientCursor), page.upToDate, page.closedAtEnd)
        sentControl = true
      }
      if (text.length > 0) this.writeSse(reader, text)
      if (page.closedAtEnd) return this.endSse(reader)
      if (page.upToDate || reader.done) return
    }
  }

  private writeSse(reader: SseReader, text: string): void {
    if (reader.done) return
    if ((reader.writer.desiredSize ?? 0) < -SSE_MAX_BUFFERED) return this.endSse(reader)
    void reader.writer.write(encoder.encode(text)).catch(() => this.endSse(reader))
  }

  private endSse(reader: SseReader): void {
    if (reader.done) return
    reader.done = true
    this.sse.delete(reader)
    void reader.writer.close().catch(() => undefined)
    if (this.sse.size === 0 && this.keepAlive !== undefined) {
      clearInterval(this.keepAlive)
      this.keepAlive = undefined
    }
  }

  private sendKeepAlive(): void {
    for (const reader of [...this.sse]) this.writeSse(reader, ": keep-alive\n\n")
  }
}
