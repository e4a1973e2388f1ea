/**
 * Durable Streams reads (PROTOCOL.md §5.5–5.7, §6, §8) over any append-only log inside its
 * Durable Object: the stream kind's items, an actor's events, a topic's entries. `StreamReads`
 * answers catch-up, `live=long-poll` and `live=sse` reads with the protocol's headers; the
 * protocol's words are in stream-offsets.ts and pages of a log in stream-pages.ts, both
 * re-exported here, so this module stays the one import of every log that serves these reads.
 *
 * Waking readers: the host calls `notify()` after every append or close (a capability's
 * `committed` hook does), and every long-poll and SSE reader waiting in this object reads
 * again from its own cursor. Nothing polls. Readers at the same place in the same log share
 * one read and one rendering of what woke them (a bounded cache of pages by log, offset and
 * head), so an append that wakes a thousand readers is read and encoded once.
 *
 * Bounds. A long-poll or an SSE stream holds a request open, so it keeps the object awake
 * (unlike hibernating WebSockets); at most `maxReaders` wait per object (503 beyond), a
 * long-poll waits `longPollMs`, an SSE stream lasts `sseMaxMs` (§8.2: the client reconnects
 * from its last offset). An SSE reader is sent its next page only once the last one has been
 * taken, so a read from the start of a large log holds about one page in
 * memory; bytes written to SSE readers and not yet taken are counted once per object (shared
 * pages once) and kept under `bufferedBytes`: a reader that would pass it, or that stops
 * reading past SSE_MAX_BUFFERED, is dropped, losing nothing (it reconnects from the last
 * offset it received). A disconnected reader (a cancelled SSE body, an aborted long-poll)
 * stops counting at once.
 *
 * A live read checks the source's `status` after every wake: a log deleted (or replaced by a
 * new generation) while a reader waited answers 404 or 410, or ends the SSE stream, never the
 * new log's items under the old one's headers.
 */
import {
  NO_STORE,
  PRIVATE_CACHE,
  SECURITY_HEADERS,
  SSE_DATA_ENCODING,
  STREAM_CLOSED,
  STREAM_CURSOR,
  STREAM_NEXT_OFFSET,
  STREAM_UP_TO_DATE,
  TAIL_CACHE,
  encodeOffset,
  nextCursor,
  parseReadRequest,
  rangeEtag,
  streamError,
} from "./stream-offsets.js"
import {
  isTextual,
  readPage,
  renderBody,
  sseControlEvent,
  sseDataEvent,
  type ReadItem,
  type ReadOptions,
  type ReadPage,
  type SourceStatus,
} from "./stream-pages.js"
import { SSE_KEEP_ALIVE_MS, SSE_MAX_BUFFERED } from "./subscribers.js"

export * from "./stream-offsets.js"
export * from "./stream-pages.js"

export interface StreamReadsSettings {
  /** How long a long-poll waits for an append before 204 (ms). */
  readonly longPollMs: number
  /** How long an SSE stream stays open before the server ends it (ms; §8.2 suggests ~60 s). */
  readonly sseMaxMs: number
  /** Long-polls and SSE streams waiting at once in one object; beyond, 503. */
  readonly maxReaders: number
  /** Bytes written to this object's SSE readers and not yet taken by them, at most. */
  readonly bufferedBytes: number
}

export const DEFAULT_STREAM_READS: StreamReadsSettings = {
  longPollMs: 30_000,
  sseMaxMs: 60_000,
  maxReaders: 1_000,
  bufferedBytes: 32 * 1024 * 1024,
}

/** The settings a Worker's vars give (STREAM_LONG_POLL_MS, STREAM_SSE_MAX_MS; the tests shorten both). */
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

/** What ended a long-poll's wait. */
type Wake = "append" | "timeout" | "ending" | "disconnected"

interface SseReader {
  readonly writer: WritableStreamDefaultWriter<Uint8Array>
  readonly options: ReadOptions<ReadItem>
  readonly clientCursor: string | undefined
  /** Reads from here on the next wake. */
  cursor: number
  done: boolean
  /** A page is being sent; a wake meanwhile sets `again`. */
  sending: boolean
  again: boolean
}

interface CachedPage {
  readonly page: ReadPage<ReadItem>
  body?: Uint8Array
  /** The page's data event and its control event, for readers given this cursor. */
  sse?: { readonly cursor: string; readonly bytes: Uint8Array }
}

/** Rendered pages kept for readers that ask for the same range: at most this many bytes, and entries. */
const PAGE_CACHE_BYTES = 8 * 1024 * 1024
const PAGE_CACHE_ENTRIES = 64
const SSE_HIGH_WATER = 64 * 1024
const KEEP_ALIVE = new TextEncoder().encode(": keep-alive\n\n")

const refusalOf = (status: SourceStatus): Response | undefined =>
  status === "missing"
    ? streamError(404, "stream_not_found", "No stream here (it was deleted while the read waited, or never existed)")
    : status === "gone"
      ? streamError(410, "stream_gone", "This stream was deleted")
      : undefined

/**
 * One object's readers: answers reads and wakes the waiting ones when the host calls `notify`.
 */
export class StreamReads {
  private readonly waiting = new Set<(wake: Wake) => void>()
  private readonly sse = new Set<SseReader>()
  private keepAlive: ReturnType<typeof setInterval> | undefined
  private readonly pages = new Map<string, CachedPage>()
  private pageBytes = 0
  private readonly inFlight = new Map<Uint8Array, number>()
  private inFlightBytes = 0

  private readonly settings: StreamReadsSettings

  /** Settings not given are DEFAULT_STREAM_READS'. */
  constructor(settings: Partial<StreamReadsSettings> = {}) {
    this.settings = { ...DEFAULT_STREAM_READS, ...settings }
  }

  /** How many long-polls and SSE streams are open. */
  get readers(): number {
    return this.waiting.size + this.sse.size
  }

  /** Bytes written to SSE readers that they have not taken yet (each shared page once). */
  get bufferedBytes(): number {
    return this.inFlightBytes
  }

  /** Something was appended (or the log closed): every waiting reader reads again. */
  notify(): void {
    for (const wake of [...this.waiting]) wake("append")
    for (const reader of [...this.sse]) void this.pump(reader)
  }

  /**
   * The log was deleted or erased: every SSE stream ends and every long-poll answers now (404 or
   * 410 when the source says so), and no page rendered before is served again.
   */
  closeAll(): void {
    this.pages.clear()
    this.pageBytes = 0
    for (const reader of [...this.sse]) this.endSse(reader)
    for (const wake of [...this.waiting]) wake("ending")
  }

  /** HEAD (§5.4): the tail and the stream's metadata, never cached. */
  head<I extends ReadItem>(options: ReadOptions<I>): Response {
    const status = options.source.status?.() ?? "live"
    if (status !== "live")
      return new Response(null, { status: status === "gone" ? 410 : 404, headers: { ...SECURITY_HEADERS } })
    const headers: Record<string, string> = {
      ...this.baseHeaders(options),
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
    const refusal = refusalOf(source.status?.() ?? "live")
    if (refusal !== undefined) return refusal
    const start = source.start?.() ?? 0
    const head = source.head()
    if (typeof parsed.offset === "object" && parsed.offset.after > head)
      // Offsets are positions in this log: one past its head was never issued by it.
      return streamError(400, "invalid_offset", `The offset is beyond the tail of this stream (${encodeOffset(head)})`)
    const after =
      parsed.offset === "now"
        ? head
        : parsed.offset === "start"
          ? start
          : // An offset from before this stream began (a deleted generation's) reads it from its start.
            Math.max(start, parsed.offset.after)
    const generic = options as unknown as ReadOptions<ReadItem>
    if (parsed.live === "sse") return this.openSse(request, generic, after, parsed.cursor)
    if (parsed.live === "long-poll") return this.longPoll(request, generic, after, parsed.cursor)
    return this.catchUp(request, generic, after, parsed.offset === "now")
  }

  private baseHeaders<I extends ReadItem>(options: ReadOptions<I>): Record<string, string> {
    return { ...SECURITY_HEADERS, ...options.headers, "Content-Type": options.rendering.contentType }
  }

  private pageHeaders(options: ReadOptions<ReadItem>, page: ReadPage<ReadItem>): Record<string, string> {
    const headers = this.baseHeaders(options)
    headers[STREAM_NEXT_OFFSET] = encodeOffset(page.next)
    if (page.upToDate) headers[STREAM_UP_TO_DATE] = "true"
    if (page.closedAtEnd) headers[STREAM_CLOSED] = "true"
    return headers
  }

  /** The page after `after` as the log stands now, read once for every reader at that place. */
  private pageAt(options: ReadOptions<ReadItem>, after: number): CachedPage {
    const { source } = options
    const key = `${options.etag}\u0000${after}\u0000${source.head()}\u0000${source.closed?.() === true}`
    const cached = this.pages.get(key)
    if (cached !== undefined) {
      // Most recently used last: eviction takes the oldest.
      this.pages.delete(key)
      this.pages.set(key, cached)
      return cached
    }
    const entry: CachedPage = { page: readPage(options, after) }
    this.pages.set(key, entry)
    this.trimPages()
    return entry
  }

  private renderedBody(entry: CachedPage, options: ReadOptions<ReadItem>): Uint8Array {
    if (entry.body !== undefined) return entry.body
    const bytes = renderBody(options.rendering, entry.page.items)
    entry.body = bytes
    this.pageBytes += bytes.byteLength
    this.trimPages()
    return bytes
  }

  /**
   * A page's data event and its control event as one chunk: a reader sees both or neither (a
   * client may stop reading at the end of an event, and a payload can look like one). Readers
   * given the same cursor, as all are within one cursor interval, share the chunk.
   */
  private renderedSse(entry: CachedPage, options: ReadOptions<ReadItem>, cursor: string): Uint8Array {
    if (entry.sse?.cursor === cursor) return entry.sse.bytes
    const { page } = entry
    const control = sseControlEvent(page.next, cursor, page.upToDate, page.closedAtEnd)
    if (page.items.length === 0) return control
    const data = sseDataEvent(options.rendering, page.items)
    const bytes = new Uint8Array(data.byteLength + control.byteLength)
    bytes.set(data)
    bytes.set(control, data.byteLength)
    this.pageBytes += bytes.byteLength - (entry.sse?.bytes.byteLength ?? 0)
    entry.sse = { cursor, bytes }
    this.trimPages()
    return bytes
  }

  private trimPages(): void {
    for (const [key, entry] of this.pages) {
      if (this.pageBytes <= PAGE_CACHE_BYTES && this.pages.size <= PAGE_CACHE_ENTRIES) return
      this.pages.delete(key)
      this.pageBytes -= (entry.body?.byteLength ?? 0) + (entry.sse?.bytes.byteLength ?? 0)
    }
  }

  private catchUp(request: Request, options: ReadOptions<ReadItem>, after: number, now: boolean): Response {
    const entry = this.pageAt(options, after)
    const { page } = entry
    const headers = this.pageHeaders(options, page)
    if (now) {
      // §6: offset=now is the tail, never cached, with no ETag.
      headers["Cache-Control"] = NO_STORE
      return new Response(renderBody(options.rendering, []), { status: 200, headers })
    }
    headers["Cache-Control"] = page.upToDate && !page.closedAtEnd ? TAIL_CACHE : (options.cacheControl ?? PRIVATE_CACHE)
    const etag = rangeEtag(options.etag, after, page.next, page.closedAtEnd)
    headers.ETag = etag
    const ifNoneMatch = request.headers.get("If-None-Match")
    if (ifNoneMatch !== null && ifNoneMatch.split(",").some((tag) => tag.trim() === etag)) {
      return new Response(null, { status: 304, headers })
    }
    return new Response(this.renderedBody(entry, options), { status: 200, headers })
  }

  private tooManyReaders(): Response {
    return streamError(503, "too_many_readers", "Too many live readers of this stream; retry shortly", {
      "Retry-After": "1",
    })
  }

  /** Waits until `notify`, `closeAll`, the timeout or the client's disconnect. */
  private waitForAppend(timeoutMs: number, signal: AbortSignal): Promise<Wake> {
    return new Promise((resolve) => {
      const finish = (wake: Wake) => {
        clearTimeout(timer)
        signal.removeEventListener("abort", disconnected)
        this.waiting.delete(finish)
        resolve(wake)
      }
      const disconnected = () => finish("disconnected")
      const timer = setTimeout(() => finish("timeout"), timeoutMs)
      signal.addEventListener("abort", disconnected)
      this.waiting.add(finish)
    })
  }

  private async longPoll(
    request: Request,
    options: ReadOptions<ReadItem>,
    after: number,
    clientCursor: string | undefined,
  ): Promise<Response> {
    const deadline = Math.min(Date.now() + this.settings.longPollMs, options.endsAt ?? Number.POSITIVE_INFINITY)
    let wake: Wake | undefined
    for (;;) {
      const refusal = refusalOf(options.source.status?.() ?? "live")
      if (refusal !== undefined) return refusal
      const entry = this.pageAt(options, after)
      const { page } = entry
      // A filtered read that examined its bound without a match answers where it got to, as a catch-up does.
      const answer = page.items.length > 0 || page.closedAtEnd || !page.upToDate
      const remaining = deadline - Date.now()
      if (answer || remaining <= 0 || wake === "ending" || wake === "disconnected" || request.signal.aborted) {
        const headers = this.pageHeaders(options, page)
        headers[STREAM_CURSOR] = nextCursor(clientCursor)
        if (page.items.length === 0 && page.upToDate) {
          headers["Cache-Control"] = NO_STORE
          return new Response(null, { status: 204, headers })
        }
        headers["Cache-Control"] = options.cacheControl ?? PRIVATE_CACHE
        headers.ETag = rangeEtag(options.etag, after, page.next, page.closedAtEnd)
        return new Response(this.renderedBody(entry, options), { status: 200, headers })
      }
      if (this.readers >= this.settings.maxReaders) return this.tooManyReaders()
      wake = await this.waitForAppend(remaining, request.signal)
    }
  }

  private openSse(
    request: Request,
    options: ReadOptions<ReadItem>,
    after: number,
    clientCursor: string | undefined,
  ): Response {
    if (this.readers >= this.settings.maxReaders) return this.tooManyReaders()
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(
      undefined,
      new ByteLengthQueuingStrategy({ highWaterMark: SSE_HIGH_WATER }),
    )
    const reader: SseReader = {
      writer: writable.getWriter(),
      options,
      clientCursor,
      cursor: after,
      done: false,
      sending: false,
      again: false,
    }
    this.sse.add(reader)
    const lifetimeMs = Math.min(this.settings.sseMaxMs, (options.endsAt ?? Number.POSITIVE_INFINITY) - Date.now())
    const lifetime = setTimeout(() => this.endSse(reader), Math.max(0, lifetimeMs))
    // The client went away (the body was cancelled) or the stream ended: it stops counting either way.
    const ended = () => {
      clearTimeout(lifetime)
      this.endSse(reader)
    }
    void reader.writer.closed.then(ended, ended)
    request.signal.addEventListener("abort", ended)
    this.keepAlive ??= setInterval(() => this.sendKeepAlive(), SSE_KEEP_ALIVE_MS)
    // The first control event comes at once, even for an empty stream (§6, offset=now with SSE).
    void this.pump(reader, true)
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

  /**
   * Sends a reader everything after its cursor, page by page, each data event followed by its
   * control event, the next page only once the reader has taken the last.
   */
  private async pump(reader: SseReader, first = false): Promise<void> {
    if (reader.done) return
    if (reader.sending) {
      reader.again = true
      return
    }
    reader.sending = true
    const { options } = reader
    let sentControl = !first
    try {
      do {
        reader.again = false
        for (;;) {
          if (reader.done) return
          if ((options.source.status?.() ?? "live") !== "live") return this.endSse(reader)
          const entry = this.pageAt(options, reader.cursor)
          const { page } = entry
          const moved = page.next !== reader.cursor
          reader.cursor = page.next
          let taken: Promise<void> = Promise.resolve()
          if (page.items.length > 0 || moved || page.closedAtEnd || !sentControl) {
            taken = this.write(reader, this.renderedSse(entry, options, nextCursor(reader.clientCursor)))
            sentControl = true
          }
          if (page.closedAtEnd) return this.endSse(reader)
          if (page.upToDate) break
          // A write settles once the reader has taken it (workerd resolves `writer.ready` sooner).
          await taken
          // A filtered scan that found nothing gives the object back before it examines more.
          if (page.items.length === 0) await new Promise((resolve) => setTimeout(resolve, 0))
        }
      } while (reader.again)
    } catch {
      this.endSse(reader)
    } finally {
      reader.sending = false
    }
  }

  /** Settles when the reader has taken the chunk, or will never take it. */
  private write(reader: SseReader, chunk: Uint8Array): Promise<void> {
    if (reader.done) return Promise.resolve()
    const holders = this.inFlight.get(chunk)
    if (
      (reader.writer.desiredSize ?? 0) < -SSE_MAX_BUFFERED ||
      (holders === undefined && this.inFlightBytes + chunk.byteLength > this.settings.bufferedBytes)
    ) {
      this.endSse(reader, true)
      return Promise.resolve()
    }
    this.inFlight.set(chunk, (holders ?? 0) + 1)
    if (holders === undefined) this.inFlightBytes += chunk.byteLength
    const taken = () => {
      const left = (this.inFlight.get(chunk) ?? 1) - 1
      if (left > 0) return void this.inFlight.set(chunk, left)
      this.inFlight.delete(chunk)
      this.inFlightBytes -= chunk.byteLength
    }
    return reader.writer.write(chunk).then(taken, () => {
      taken()
      this.endSse(reader)
    })
  }

  /** `drop`: the reader is too far behind; what is queued for it is released, not sent. */
  private endSse(reader: SseReader, drop = false): void {
    if (reader.done) return
    reader.done = true
    this.sse.delete(reader)
    void (drop ? reader.writer.abort(new Error("SSE reader too far behind")) : reader.writer.close()).catch(
      () => undefined,
    )
    if (this.sse.size === 0 && this.keepAlive !== undefined) {
      clearInterval(this.keepAlive)
      this.keepAlive = undefined
    }
  }

  private sendKeepAlive(): void {
    for (const reader of [...this.sse]) void this.write(reader, KEEP_ALIVE)
  }
}
