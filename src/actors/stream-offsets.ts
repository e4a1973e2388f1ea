/**
 * The Durable Streams protocol's words (PROTOCOL.md §5–6, §8, §10.7) that every log serving its
 * reads shares: header names, offsets, the read a URL asks for, cursors and error answers.
 *
 * Offsets are opaque to clients: the offset of position N is `0000000000000000_` then N as 16
 * zero-padded decimal digits (lexicographic order is numeric order; no `,&=?/`; never `-1` or
 * `now`) and means "resume after item N". The shape is the reference server's (`{segment}_{n}`),
 * which clients and the conformance suite write literally for the start; our segment is always
 * zero, kept so that a later archival scheme can move offsets on and still sort after these.
 */
import { errorBody } from "./failures.js"

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

/**
 * §10.7, on every response of a stream route (errors too). A stream's content type is the
 * creator's choice (text/html, image/svg+xml…): `sandbox` keeps such a body from ever running
 * as a page of the API's origin when someone opens a read URL in a browser.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "Cross-Origin-Resource-Policy": "cross-origin",
  "Content-Security-Policy": "sandbox; default-src 'none'",
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

/** The ETag of the range (after, next] of one log (§5.5); closing changes what the tail answers, so it is part of the tag. */
export const rangeEtag = (log: string, after: number, next: number, closedAtEnd: boolean): string =>
  `"${log}:${encodeOffset(after)}:${encodeOffset(next)}${closedAtEnd ? ":c" : ""}"`

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
