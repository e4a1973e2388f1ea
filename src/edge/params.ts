/** Parsing of path, query and header values; each bad value is a 400 naming what was wrong. */
import type { Context } from "hono"
import { textExceedsDepth, tooDeep } from "../actors/limits.js"
import { NAME_PATTERN } from "../core/names.js"
import { CLIENT_ID } from "../domain/protocol.js"
import { HttpError, badRequest } from "./errors.js"

const NON_NEGATIVE_INT = /^\d{1,16}$/
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/

/** Actor ids, topic and room names share one alphabet (NAME_PATTERN). */
export const logName = (what: "actor" | "topic" | "room", name: string): string => {
  if (!NAME_PATTERN.test(name))
    throw badRequest(
      `invalid_${what === "actor" ? "id" : what}`,
      `A ${what} ${what === "actor" ? "id" : "name"} is 1–128 characters of A-Z a-z 0-9 . _ : -`,
      { [what === "actor" ? "id" : what]: name },
    )
  return name
}

export const actorId = (id: string): string => logName("actor", id)

export const nonNegativeInt = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback
  const n = NON_NEGATIVE_INT.test(value) ? Number(value) : Number.NaN
  if (!Number.isSafeInteger(n))
    throw badRequest("invalid_query", `${name} must be a non-negative integer`, { [name]: value })
  return n
}

export const isoTime = (name: string, value: string): number => {
  const ms = ISO_8601.test(value) ? Date.parse(value) : Number.NaN
  if (Number.isNaN(ms))
    throw badRequest("invalid_query", `${name} must be an ISO-8601 time such as 2026-11-22T13:00:00Z`, {
      [name]: value,
    })
  return ms
}

/** `If-Match: 7` or `If-Match: "7"` (an ETag-style quoted version). */
export const ifMatch = (value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  const match = /^\s*(?:W\/)?"?(\d{1,16})"?\s*$/.exec(value)
  if (match === null) throw badRequest("invalid_header", "If-Match must be a version number", { "If-Match": value })
  return Number(match[1])
}

/** A client-chosen id header (Idempotency-Key, X-Correlation-Id, X-Causation-Id); absent or empty is none. */
export const clientIdHeader = (name: string, value: string | undefined): string | undefined => {
  if (value === undefined || (value === "" && name !== "Idempotency-Key")) return undefined
  if (!CLIENT_ID.test(value)) {
    throw badRequest("invalid_header", `${name} must be 1–255 visible ASCII characters`, { header: name })
  }
  return value
}

export const idempotencyKey = (value: string | undefined) => clientIdHeader("Idempotency-Key", value)
const refuseTooDeep = () => badRequest(tooDeep.code, tooDeep.message, tooDeep.details)

/**
 * Every JSON request body is read here, held to MAX_JSON_DEPTH before it is parsed. A body
 * that is not JSON throws `notJson`, or reads as undefined for routes that explain their own shape.
 */
export const jsonBody = async (c: Context, notJson?: HttpError): Promise<unknown> => {
  const text = await c.req.text()
  if (textExceedsDepth(text)) throw refuseTooDeep()
  try {
    return JSON.parse(text)
  } catch {
    if (notJson !== undefined) throw notJson
    return undefined
  }
}

/** A comma-separated setting or query value as its non-empty, trimmed items. */
export const commaList = (value: string | undefined): Array<string> =>
  (value ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0)

/** WebSocket routes answer 426 to anything that is not an upgrade. */
export const requireWebSocketUpgrade = (request: Request): void => {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "upgrade_required", "This route is a WebSocket: send Upgrade: websocket")
  }
}
