/**
 * Who sent the command being decided, for entities whose rules depend on it (a session
 * belongs to one user; granting tools needs `admin`). The host provides it for every
 * command from the request's principal and scopes; `internal` marks the host's own
 * timer and reactions. Code that runs `decide` without a host (unit tests, the
 * harness) gets the host's own identity, so the caller-free properties stay the same.
 *
 * ```ts
 * const caller = yield* Caller
 * if (!caller.internal && !caller.scopes.has("admin")) return yield* forbid("insufficient_scope", "Needs admin")
 * ```
 */
import { Context, Effect } from "effect"
import { DomainError } from "./entity.js"

export interface CallerShape {
  /** The token's `sub` (recorded as `meta.principal`). */
  readonly principal: string
  readonly scopes: ReadonlySet<string>
  /** The host itself (its timer and reactions), never a request. */
  readonly internal: boolean
}

export const Caller = Context.Reference<CallerShape>("emberlog/Caller", {
  defaultValue: () => ({ principal: "system", scopes: new Set(), internal: true }),
})

/** A command this caller may not send (HTTP 403). It is a DomainError, so refusals are handled alike. */
export class Forbidden extends DomainError {}

export const forbid = (code: string, message: string, details?: unknown): Effect.Effect<never, Forbidden> =>
  Effect.fail(new Forbidden(details === undefined ? { code, message } : { code, message, details }))
