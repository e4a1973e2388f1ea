/**
 * Every actor's events and every topic's entries as a read-only Durable Stream in JSON mode
 * (`GET|HEAD /v1/{kind}/{id}/log`, `/v1/topics/{topic}/log`), over the shared read module
 * (stream-reads.ts): each item is the event (or topic entry) exactly as the `events` routes
 * return it, the offset of item N resumes after it, and `types` filters by event type while
 * Stream-Next-Offset still advances over what was skipped. Appends go through commands, so the
 * edge answers any other method 405 before it reaches the object.
 */
import { parseReadRequest, streamError, type ReadOptions, type StreamReads } from "./stream-reads.js"
import { TYPES_HEADER, authorityOf, type LogEntry, type LogSource } from "./subscribers.js"
import { typeFilter, typesOf } from "./type-filters.js"

/** The value of SUBSCRIBE_HEADER for a Durable Streams read of the log (beside "websocket" and "sse"). */
export const LOG_READ = "log"

const jsonRendering = {
  mode: "json",
  contentType: "application/json",
  json: (entry: LogEntry) => JSON.stringify(entry.payload),
} as const

/**
 * The read options of one object's log; `name` and the log's origin tell this log from others
 * in ETags: an erased log written anew has the same name and positions, and a page of the old
 * one kept by a cache must not be confirmed (304) for it.
 */
export const logReadOptions = (
  source: LogSource,
  name: string,
  types?: ReadonlyArray<string>,
  endsAt?: number,
  erased: () => boolean = () => false,
): ReadOptions<LogEntry> => {
  const filter = typeFilter(types)
  const origin = source.origin?.()
  const tag = origin === undefined ? name : `${name}:${origin.slice(0, 16)}`
  return {
    ...(endsAt === undefined ? {} : { endsAt }),
    // A live read woken by an erasure ends (404): going on at an offset of the erased log would
    // read into whatever is written there anew, skipping its first entries.
    source: { head: source.head, readAfter: source.readAfter, status: () => (erased() ? "missing" : "live") },
    rendering: jsonRendering,
    ...(filter === undefined ? {} : { filter: (entry: LogEntry) => filter.types.has(entry.name) }),
    // A filtered read of a range has another body than the full one: its tag must differ too.
    etag: filter === undefined ? tag : `${tag}:${filter.key}`,
  }
}

/**
 * Answers a `/log` read the edge validated and forwarded (HEAD or GET). An offset past the head
 * was never issued by this log (offsets are positions in it): 400, not an empty read that would
 * wait for positions the reader claims to have seen. `erased` tells whether the object's log was
 * erased since the request came in.
 */
export const answerLogRead = (
  reads: StreamReads,
  source: LogSource,
  name: string,
  request: Request,
  erased: () => boolean,
): Response | Promise<Response> => {
  // A long-poll or an SSE stream ends with the token that opened it, as every subscription does.
  const options = logReadOptions(
    source,
    name,
    typesOf(request.headers.get(TYPES_HEADER)),
    authorityOf(request).expiresAt,
    erased,
  )
  if (request.method === "HEAD") return reads.head(options)
  const parsed = parseReadRequest(new URL(request.url))
  if (!("invalid" in parsed) && typeof parsed.offset === "object" && parsed.offset.after > source.head()) {
    return streamError(
      400,
      "invalid_offset",
      `The offset is beyond the head of this log (${source.head()} items): it was not issued by this log`,
    )
  }
  return reads.read(request, options)
}
