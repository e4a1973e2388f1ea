/**
 * Rate limiting with the Workers Rate Limiting binding (`LIMITER` in wrangler.toml),
 * keyed by principal, or by client IP for anonymous callers: over the limit → 429 with
 * Retry-After. The limit and period are set in wrangler.toml (see README).
 *
 * ```ts
 * app.use("/v1/*", authenticate, rateLimit)
 * ```
 */
import type { MiddlewareHandler } from "hono"
import type { AppEnv } from "./env.js"
import { HttpError } from "./errors.js"

/** The binding's period is 10 or 60 seconds; waiting one whole period is always enough. */
export const RETRY_AFTER_SECONDS = 60

export const rateLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  const limiter = c.env.LIMITER
  if (limiter !== undefined) {
    const principal = c.get("principal")
    const key = principal.sub === "anonymous" ? `ip:${c.req.header("CF-Connecting-IP") ?? "local"}` : `sub:${principal.tenant}:${principal.sub}`
    const { success } = await limiter.limit({ key })
    if (!success) {
      throw new HttpError(429, "rate_limited", `Too many requests; retry after ${RETRY_AFTER_SECONDS} seconds`, undefined, {
        "Retry-After": String(RETRY_AFTER_SECONDS),
      })
    }
  }
  await next()
}
