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
 * A body as items: JSON streams flatten one level of a top-level array (§7.1), anything else
 * is one item. `allowEmptyArray`: a PUT's `[]` creates an empty stream; a POST's is a 400.
 */
export const itemsOf = (bytes: Uint8Array, json: boolean, allowEmptyArray: boolean): Array<string> => {
  if (bytes.byteLength === 0) return []
  if (!json) return [toBase64(bytes)]
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes))
  } catch {
    throw bad("invalid_json", "A JSON stream takes valid JSON")
  }
  if (!Array.isArray(value)) return [JSON.stringify(value)]
  if (value.length === 0 && !allowEmptyArray)
    throw bad("empty_append", "An append of an empty JSON array appends nothing")
  return value.map((item) => JSON.stringify(item))
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
      return new ProtocolError(409, code, message)
    case "invalid_producer_seq":
    case "content_type_required":
      return new ProtocolError(400, code, message)
    default:
      // The host's own refusals keep their statuses: an event over 2 MB (a fork of a large stream) is 413.
      return new ProtocolError(STATUS_BY_FAILURE[reply.error._tag], code, message)
  }
}
