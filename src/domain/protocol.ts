/**
 * What clients and the server agree on, beyond the JSON shapes: client-chosen ids, socket
 * close codes, acks and error frames. The edge, the host and the typed client all import
 * it from here, so no layer keeps its own copy (it imports nothing, so it runs anywhere).
 */

/** Client-chosen ids that are stored in every event's meta: 1–255 visible ASCII characters. */
export const CLIENT_ID = /^[\x21-\x7e]{1,255}$/

/** Frames a client sends are limited to this many bytes. */
export const MAX_FRAME_BYTES = 1024 * 1024
/** Close code for frames over MAX_FRAME_BYTES (RFC 6455 "message too big"). */
export const CLOSE_TOO_LARGE = 1009
/**
 * Close code for a socket over its cap: reconnect with `after` = the last seq received
 * (a room member: read what it missed from the room's log). Nothing is lost.
 */
export const CLOSE_RESUME = 4100
/** Close code for a socket whose token expired: reconnect with a fresh token. */
export const CLOSE_TOKEN_EXPIRED = 4001
/** Close code for a socket whose log was erased (its tenant was deleted): nothing is left to follow. */
export const CLOSE_ERASED = 4410

/** Bytes a socket may have been sent past its last ack before it is closed with CLOSE_RESUME. */
export const WS_MAX_UNCONFIRMED = 8 * 1024 * 1024
/**
 * How often a subscriber confirms what it has read (`{"type":"ack","seq":N}`), in UTF-16
 * units received (at most the bytes sent): well under WS_MAX_UNCONFIRMED.
 */
export const ACK_EVERY = 1024 * 1024

/**
 * A subscription opened with `?batch=1` is sent its backlog as frames of many entries, in
 * order: `{"type":"events","events":[WireEvent…]}` on an actor's socket and
 * `{"type":"entries","entries":[TopicEntry…]}` on a topic's (live appends still come one
 * `event`/`entry` frame each). Such a client acks every batch frame it reads with the frame's
 * last seq, and, when frames stop coming, the last seq it read, so the server can send a backlog
 * larger than WS_MAX_UNCONFIRMED on one connection: it pauses at the cap (in the backlog or live)
 * and goes on as the acks come in (a client without `batch=1` is closed with CLOSE_RESUME
 * instead, and reconnects). Opt-in, because a client that only knows single
 * frames would skip a batch frame and silently miss its entries.
 */
export const BATCH_PARAM = "batch"
export const ACTOR_BATCH_TYPE = "events"
export const TOPIC_BATCH_TYPE = "entries"
/**
 * A batch frame holds entries up to this many bytes of UTF-8, wrapper included, and always at
 * least one entry: an entry larger than this (events go up to 2 MB) is a frame of its own, larger
 * than this and than MAX_FRAME_BYTES (which bounds what a client sends), within the cap as one
 * frame when nothing else is unconfirmed.
 */
export const BATCH_FRAME_BYTES = 256 * 1024

/** A batch frame of type `type` (the field too) from its entries' JSON texts, e.g. `{"type":"events","events":[…]}`. */
export const batchFrame = (type: string, entriesJson: ReadonlyArray<string>) =>
  `{"type":"${type}","${type}":[${entriesJson.join(",")}]}`

/**
 * A frame confirming what the client has read: `{"type":"ack","seq":N}` up to seq N, or
 * `{"type":"ack"}` for everything sent so far (room members, whose frames carry no seq).
 * `type: "ack"` is reserved: a room cannot be posted a message of that type.
 */
export const ACK_TYPE = "ack"

/** The ack a client sends: up to `seq`, or (without one) everything received so far. */
export const ackFrame = (seq?: number): string =>
  JSON.stringify(seq === undefined ? { type: ACK_TYPE } : { type: ACK_TYPE, seq })

export type AckFrame = { readonly seq?: number } | { readonly invalid: string }

/** An ack frame (or a malformed one), or undefined when the frame is something else. */
export const parseAck = (message: string): AckFrame | undefined => {
  // Cheap test first: every other frame (commands, room posts) goes on to its own parser.
  if (message.length > 64 || !message.includes('"ack"')) return undefined
  let frame: unknown
  try {
    frame = JSON.parse(message)
  } catch {
    return undefined
  }
  if (typeof frame !== "object" || frame === null || (frame as { type?: unknown }).type !== ACK_TYPE) return undefined
  const { seq } = frame as { seq?: unknown }
  if (seq === undefined) return {}
  if (Number.isSafeInteger(seq) && (seq as number) >= 0) return { seq: seq as number }
  return { invalid: "An ack's seq must be a non-negative integer" }
}

/** The one shape of an error sent on a socket; `id` echoes the frame it answers (null when it has none). */
export const errorFrame = (id: unknown, code: string, message: string, details?: unknown): string =>
  JSON.stringify({
    type: "error",
    id: typeof id === "string" || typeof id === "number" ? id : null,
    error: { code, message, ...(details === undefined ? {} : { details }) },
  })

/**
 * What a subscription filtered by event type (`types=`) is sent when the entries it skipped end
 * a stretch: `{"type":"head","seq":N}`, "everything up to N that you asked for, you have". Positions
 * stay those of the full log, so a client resumes with `after` = N and neither loses nor repeats
 * anything (on SSE the same is an `event: head` message with `id: N`, which moves Last-Event-ID).
 */
export const HEAD_TYPE = "head"

export const headFrame = (seq: number): string => JSON.stringify({ type: HEAD_TYPE, seq })
