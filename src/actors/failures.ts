/**
 * Actor failures as HTTP answers: one status table and one body shape, for the edge's replies
 * (edge/errors.ts) and for the few answers an object gives over fetch itself (a refused room
 * join, before any socket exists), so a failure reads the same whichever answers it.
 */
import type { ActorFailure } from "../core/wire.js"

export const STATUS_BY_FAILURE = {
  InvalidInput: 400,
  Forbidden: 403,
  Conflict: 409,
  Gone: 410,
  TooLarge: 413,
  Rejected: 422,
  RolledBack: 500,
  Unimplemented: 501,
  Unavailable: 503,
} as const satisfies Record<ActorFailure["_tag"], number>

export const errorBody = (code: string, message: string, details?: unknown) => ({
  error: details === undefined ? { code, message } : { code, message, details },
})

export const failureResponse = ({ _tag, code, message, details }: ActorFailure): Response =>
  Response.json(errorBody(code, message, details), { status: STATUS_BY_FAILURE[_tag] })
