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

/** The binding's period is 10 or 60 seconds; waiting one whole period is always enough. */
export const RETRY_AFTER_SECONDS = 60

/**
 * One budget per principal. Anonymous callers exist only with auth off, where any header
 * (CF-Connecting-IP included, under `wrangler dev`) is the client's to set: a key taken
 * from one would hand every request a fresh budget, so they share their tenant's.
 */
export const limitKey = (principal: Principal): string =>
  principal.sub === "anonymous" ? `anon:${principal.tenant}` : `sub:${principal.tenant}:${principal.sub}`

/** Spends one unit of `key`'s budget; true when within the limit (or when no limiter is bound). */
export const withinLimit = async (limiter: RateLimit | undefined, key: string): Promise<boolean> =>
  limiter === undefined || (await limiter.limit({ key })).success

export const rateLimitMessage = `Too many requests; retry after ${RETRY_AFTER_SECONDS} seconds`

export const rateLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!(await withinLimit(c.env.LIMITER, limitKey(c.get("principal"))))) {
    const headers = { "Retry-After": String(RETRY_AFTER_SECONDS) }
    throw new HttpError(429, "rate_limited", rateLimitMessage, undefined, headers)
  }
  await next()
}
