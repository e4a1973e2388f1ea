/**
 * What a Durable Streams read returns from a log: the log as a `ReadSource` (positions 1, 2, …
 * with no meaning to clients), a page of it (`readPage`, bounded in items, bytes and, for a
 * filtered read, in positions examined), and its body in one of two renderings (JSON mode: a
 * JSON array of items; byte mode: the items' bytes concatenated) or as SSE events (§5.7).
 */
import { encodeOffset } from "./stream-offsets.js"

/** One item of the log; its position is 1 + the position of the item before (gaps are allowed). */
export interface ReadItem {
  readonly position: number
}

/**
 * Whether the log a read began on still exists: `missing` (deleted, or replaced by another
 * generation, 404) or `gone` (deleted but kept for its forks, 410). A live read checks it after
 * every wake, so a reader never gets another generation's items under the first one's headers.
 */
export type SourceStatus = "live" | "missing" | "gone"

export interface ReadSource<I extends ReadItem> {
  /** The position of the last item (0 before any, or `start()` when the log starts later). */
  readonly head: () => number
  /** What `offset=-1` reads after (0 unless set: a recreated or forked stream starts later). */
  readonly start?: () => number
  /** Items after `after`, oldest first, at most `limit`. */
  readonly readAfter: (after: number, limit: number) => ReadonlyArray<I>
  /** Whether nothing more will ever be appended (a closed stream). */
  readonly closed?: () => boolean
  /** "live" unless set. */
  readonly status?: () => SourceStatus
}

export type Rendering<I> =
  | { readonly mode: "json"; readonly contentType: string; readonly json: (item: I) => string }
  | { readonly mode: "bytes"; readonly contentType: string; readonly bytes: (item: I) => Uint8Array }

export interface ReadOptions<I extends ReadItem> {
  readonly source: ReadSource<I>
  readonly rendering: Rendering<I>
  /** Items the reader does not want; positions stay those of the full log. */
  readonly filter?: (item: I) => boolean
  /**
   * Names this log in ETags and in the object's cache of rendered pages: reads whose bodies can
   * differ for the same range (another filter, another rendering, another generation) must give
   * different names.
   */
  readonly etag: string
  /** Cache-Control of catch-up reads behind the tail (PRIVATE_CACHE unless set). */
  readonly cacheControl?: string
  /** Extra response headers (e.g. Stream-Expires-At). */
  readonly headers?: Readonly<Record<string, string>>
  /** When live reads must end (ms epoch: the reader's token expires), if sooner than the settings say. */
  readonly endsAt?: number
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
  /** A filtered read examines at most this many items of the log, matching or not (10 pages' worth unless set). */
  readonly examined?: number
}

/** A page is at most this much (§5.5: "up to a server-defined maximum chunk size"). */
export const DEFAULT_PAGE: ReadLimits = { items: 1_000, bytes: 1024 * 1024, examined: 10_000 }
const SCAN_BATCH = 500

const itemSize = <I>(rendering: Rendering<I>, item: I): number =>
  rendering.mode === "json" ? rendering.json(item).length : rendering.bytes(item).byteLength

/**
 * Reads one page after `after`. A filtered read stops after `limits.examined` items of the log
 * however few matched, so sparse matches never turn one request into a scan of the whole log;
 * its `next` still moves on over what it skipped.
 */
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
  let examined = 0
  let full = false
  const bound = limits.examined ?? limits.items * 10
  while (!full && next < head && (filter === undefined || examined < bound)) {
    const want = filter === undefined ? limits.items : bound - examined
    const batch = source.readAfter(next, Math.min(SCAN_BATCH, want))
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
      examined += 1
      next = item.position
    }
  }
  const upToDate = next >= head
  return { items, next, upToDate, closedAtEnd: upToDate && (source.closed?.() ?? false) }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

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

/**
 * §5.7: text/* and application/json streams are sent as SSE text; any other content type
 * (application/ndjson and `+json` types included: they are neither) as base64, announced by
 * Stream-SSE-Data-Encoding.
 */
export const isTextual = (contentType: string): boolean => {
  const type = contentType.split(";")[0]!.trim().toLowerCase()
  return type.startsWith("text/") || type === "application/json"
}

export const toBase64 = (bytes: Uint8Array): string => {
  let binary = ""
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

export const fromBase64 = (text: string): Uint8Array => {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
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

/** The `data` event of a page's items, encoded once for every SSE reader that gets it. */
export const sseDataEvent = <I>(rendering: Rendering<I>, items: ReadonlyArray<I>): Uint8Array => {
  const body = renderBody(rendering, items)
  const textual = rendering.mode === "json" || isTextual(rendering.contentType)
  return encoder.encode(sseData(textual ? decoder.decode(body) : toBase64(body)))
}

export const sseControlEvent = (next: number, cursor: string, upToDate: boolean, closed: boolean): Uint8Array => {
  // §5.7: the final control event of a closed stream carries no cursor.
  const control: Record<string, unknown> = { streamNextOffset: encodeOffset(next) }
  if (closed) control.streamClosed = true
  else control.streamCursor = cursor
  if (upToDate) control.upToDate = true
  return encoder.encode(`event: control\ndata:${JSON.stringify(control)}\n\n`)
}
