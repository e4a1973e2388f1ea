/**
 * Who sent the command being decided, for entities whose rules depend on it (a session
 * belongs to one user; granting tools needs `admin`). The host provides it for every
 * command from the request's principal and scopes and its own actor id; `internal` marks
 * the host's own timer and reactions. Code that runs `decide` without a host (unit tests, the
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
  /**
   * The id of the actor deciding (`session/{sub}` names its user), from the host's own name,
   * never from the request: an entity whose owner is in its id checks it against `principal`.
   * Empty when the host has no name.
   */
  readonly actorId: string
}

export const Caller = Context.Reference<CallerShape>("emberlog/Caller", {
  defaultValue: () => ({ principal: "system", scopes: new Set(), internal: true, actorId: "" }),
})

/** A command this caller may not send (HTTP 403). It is a DomainError, so refusals are handled alike. */
export class Forbidden extends DomainError {}

export const forbid = (code: string, message: string, details?: unknown): Effect.Effect<never, Forbidden> =>
  Effect.fail(new Forbidden(details === undefined ? { code, message } : { code, message, details }))
