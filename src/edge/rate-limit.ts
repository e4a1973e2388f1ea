/**
 * Rate limiting with the Workers Rate Limiting binding (`LIMITER` in wrangler.toml),
 * keyed by tenant and principal: over the limit → 429 with Retry-After. The limit and
 * period are set in wrangler.toml (see README). Sockets count too: the edge hands the
 * key to the object (`limitKey`), which charges every command and room post sent on it
 * to the same budget, so no transport gets around the limit.
 *
 * ```ts
 * app.use("/v1/*", authenticate, rateLimit)
 * ```
 */
import type { MiddlewareHandler } from "hono"
import type { Principal } from "../infra/tokens.js"
import type { AppEnv } from "./env.js"
import { HttpError } from "./errors.js"
import { RETRY_AFTER_SECONDS, rateLimitMessage, withinLimit } from "../actors/rate-limit.js"

/** Defined inward (the host spends the same budget for socket frames); re-exported for edge code. */
export { RETRY_AFTER_SECONDS, rateLimitMessage, withinLimit }

/**
 * One budget per principal. Anonymous callers exist only with auth off, where any header
 * (CF-Connecting-IP included, under `wrangler dev`) is the client's to set: a key taken
 * from one would hand every request a fresh budget, so they share their tenant's.
 */
export const limitKey = (principal: Principal): string =>
  principal.sub === "anonymous" ? `anon:${principal.tenant}` : `sub:${principal.tenant}:${principal.sub}`

export const rateLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!(await withinLimit(c.env.LIMITER, limitKey(c.get("principal"))))) {
    const headers = { "Retry-After": String(RETRY_AFTER_SECONDS) }
    throw new HttpError(429, "rate_limited", rateLimitMessage, undefined, headers)
  }
  await next()
}
