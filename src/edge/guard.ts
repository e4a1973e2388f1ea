/**
 * What every route with data passes first: the Host/Origin check, authentication (the
 * principal and its tenant), the rate limit. The app puts it on /v1 and /mcp; a kind puts
 * it on routes of its own outside /v1 (the job kind's /api/*, the room kind's /ws).
 */
import type { MiddlewareHandler } from "hono"
import { authenticate } from "./auth.js"
import type { AppEnv } from "./env.js"
import { errorBody } from "./errors.js"
import { jsonRpcError } from "./mcp/session-object.js"
import { foreignRequest } from "./origin.js"
import { rateLimit } from "./rate-limit.js"

/** With auth off, Host and Origin are all that keep other sites out (origin.ts); /mcp checks them always. */
const refuseForeign: MiddlewareHandler<AppEnv> = async (c, next) => {
  const mcp = c.req.path === "/mcp"
  const refused = mcp || c.env.AUTH_MODE === "off" ? foreignRequest(c.env, c.req.raw) : undefined
  if (refused === undefined) return next()
  return mcp ? jsonRpcError(403, -32000, refused.message) : c.json(errorBody(refused.code, refused.message), 403)
}

/** The middleware, in order, for `app.use(path, ...guarded)`. */
export const guarded: ReadonlyArray<MiddlewareHandler<AppEnv>> = [refuseForeign, authenticate, rateLimit]
