/**
 * Every error leaves the Worker as `{"error": {code, message, details?}}`; actor
 * failures map to HTTP status by the one table in actors/failures.ts (objects answering
 * over fetch use it too).
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono"
import type { ContentfulStatusCode } from "hono/utils/http-status"
import type { ActorFailure, ActorReply } from "../core/wire.js"
import { STATUS_BY_FAILURE, errorBody } from "../actors/failures.js"

export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

export { errorBody }

/** An actor's failure as the HTTP error of its status (the one table, STATUS_BY_FAILURE). */
export const failed = ({ _tag, code, message, details }: ActorFailure): HttpError =>
  new HttpError(STATUS_BY_FAILURE[_tag], code, message, details)

/** The value of a successful actor reply; a failure becomes the matching HTTP error. */
export const unwrap = <A>(reply: ActorReply<A>): A => {
  if (reply.ok) return reply.value
  throw failed(reply.error)
}

export const badRequest = (code: string, message: string, details?: unknown) =>
  new HttpError(400, code, message, details)

export const handleError: ErrorHandler = (error, c) => {
  if (error instanceof HttpError)
    return c.json(errorBody(error.code, error.message, error.details), error.status, error.headers)
  console.error("emberlog: unhandled error", error)
  // The failure may have come after a commit (e.g. the reply was lost), so claim nothing either way.
  return c.json(
    errorBody(
      "internal",
      "Internal error; it may or may not have taken effect: read the actor, or retry with the same Idempotency-Key",
    ),
    500,
  )
}

export const handleNotFound: NotFoundHandler = (c: Context) =>
  c.json(errorBody("not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404)

/** The error code of an answer that no HttpError made (a body limit, an MCP JSON-RPC error, a kind's own). */
const answeredCode = async (response: Response): Promise<string> => {
  // Only a JSON error body is read (it is small); any other body, which may be a stream, is never waited on.
  if (!(response.headers.get("content-type") ?? "").includes("json")) return `http_${response.status}`
  try {
    const body = (await response.json()) as { error?: { code?: unknown } }
    const code = body?.error?.code
    if (typeof code === "string") return code
    if (typeof code === "number") return `jsonrpc_${code}`
  } catch {
    // Not JSON: the status names it.
  }
  return `http_${response.status}`
}

/**
 * The error code of an answer of 400 or more: the HttpError's that made it (handleError maps it,
 * so Hono keeps it as `c.error`), `internal` for any other thrown error, else read from a copy of
 * the answer's body (`answeredCode`); undefined for a success.
 */
const errorCodeOf = (error: unknown, response: Response): string | Promise<string> | undefined => {
  if (error instanceof HttpError) return error.code
  if (error !== undefined) return "internal"
  return response.status >= 400 ? answeredCode(response.clone()) : undefined
}

/**
 * `errorCodeOf` the context's answer, worked out once a request: the request log and the usage
 * counters both ask, and a body is copied and parsed at most once (kept with `c.set`).
 */
export const answerCodeOf = (c: Context): string | Promise<string> | undefined => {
  const known = c.get("answerCode") as { readonly code: string | Promise<string> | undefined } | undefined
  if (known !== undefined) return known.code
  const code = errorCodeOf(c.error, c.res)
  c.set("answerCode", { code })
  return code
}
