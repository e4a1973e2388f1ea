/**
 * The protocol's requests and answers, as the stream's object reads and writes them: header
 * and body parsing (each malformed value a 400 naming it), items in their stored form (base64
 * bytes or one JSON message's text), and a refused command as the protocol's status and headers.
 */
import type { ActorReply } from "../../index.js"
import {
  STATUS_BY_FAILURE,
  STREAM_CLOSED,
  STREAM_NEXT_OFFSET,
  encodeOffset,
  streamError,
  toBase64,
} from "../../worker.js"
import type { ProducerClaim, StreamState } from "./entity.js"

const DECIMAL = /^(0|[1-9]\d{0,15})$/
export const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

export class ProtocolError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
  response(): Response {
    return streamError(this.status, this.code, this.message, this.headers)
  }
}

export const bad = (code: string, message: string) => new ProtocolError(400, code, message)

export const decimalHeader = (request: Request, name: string): number | undefined => {
  const value = request.headers.get(name)
  if (value === null) return undefined
  if (!DECIMAL.test(value) || !Number.isSafeInteger(Number(value)))
    throw bad("invalid_header", `${name} must be a non-negative decimal integer without leading zeros`)
  return Number(value)
}

/**
 * The text of each element of a JSON array, exactly as sent (whitespace around it aside). The
 * text must be valid JSON (checked before): only strings, brackets and commas need tracking.
 */
const elementTexts = (text: string): Array<string> => {
  const elements: Array<string> = []
  let depth = 0
  let start = text.indexOf("[") + 1
  for (let i = start; i < text.length; i++) {
    const char = text[i]
    if (char === '"') {
      // Skip the string, escapes and all.
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++
    } else if (char === "[" || char === "{") depth++
    else if ((char === "]" || char === "}") && depth > 0) depth--
    else if (depth === 0 && (char === "," || char === "]")) {
      const element = text.slice(start, i).trim()
      if (element.length > 0) elements.push(element)
      if (char === "]") break
      start = i + 1
    }
  }
  return elements
}

/**
 * A body as items: JSON streams flatten one level of a top-level array (§7.1), anything else
 * is one item. A JSON message is stored as the client's text, not re-serialized, so numbers
 * beyond double precision, 1e400 and -0 read back as they were sent. `allowEmptyArray`: a
 * PUT's `[]` creates an empty stream; a POST's is a 400.
 */
export const itemsOf = (bytes: Uint8Array, json: boolean, allowEmptyArray: boolean): Array<string> => {
  if (bytes.byteLength === 0) return []
  if (!json) return [toBase64(bytes)]
  let text: string
  let value: unknown
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)
    value = JSON.parse(text)
  } catch {
    throw bad("invalid_json", "A JSON stream takes valid JSON")
  }
  if (!Array.isArray(value)) return [text.trim()]
  if (value.length === 0 && !allowEmptyArray)
    throw bad("empty_append", "An append of an empty JSON array appends nothing")
  return elementTexts(text)
}

export const producerOf = (request: Request): ProducerClaim | null => {
  const id = request.headers.get("Producer-Id")
  const epoch = request.headers.get("Producer-Epoch")
  const seq = request.headers.get("Producer-Seq")
  if (id === null && epoch === null && seq === null) return null
  if (id === null || epoch === null || seq === null)
    throw bad("invalid_producer", "Producer-Id, Producer-Epoch and Producer-Seq go together")
  if (id === "") throw bad("invalid_producer", "Producer-Id must not be empty")
  return { id, epoch: decimalHeader(request, "Producer-Epoch")!, seq: decimalHeader(request, "Producer-Seq")! }
}

export const isTrue = (value: string | null) => value !== null && value.toLowerCase() === "true"

/** A failed command as the protocol's status and headers (§5.1, §5.2, §5.2.1); the body is the edge's error shape. */
export const protocolFailure = (
  reply: Extract<ActorReply<unknown>, { ok: false }>,
  state: StreamState,
): ProtocolError => {
  const { code, message, details } = reply.error
  const detail = (details ?? {}) as Record<string, number>
  switch (code) {
    case "stream_not_found":
      return new ProtocolError(404, code, message)
    case "stream_gone":
      return new ProtocolError(410, code, message)
    case "stale_producer_epoch":
      return new ProtocolError(403, code, message, { "Producer-Epoch": String(detail.epoch) })
    case "producer_sequence_gap":
      return new ProtocolError(409, code, message, {
        "Producer-Expected-Seq": String(detail.expected),
        "Producer-Received-Seq": String(detail.received),
      })
    case "stream_closed":
      return new ProtocolError(409, code, message, {
        [STREAM_CLOSED]: "true",
        [STREAM_NEXT_OFFSET]: encodeOffset(state.tail),
      })
    case "stream_exists":
    case "content_type_mismatch":
    case "stream_seq_regression":
    case "path_offsets_taken":
      return new ProtocolError(409, code, message)
    case "invalid_producer_seq":
    case "content_type_required":
      return new ProtocolError(400, code, message)
    default:
      // The host's own refusals keep their statuses: an event over 2 MB (a fork of a large stream) is 413.
      return new ProtocolError(STATUS_BY_FAILURE[reply.error._tag], code, message)
  }
}
