/**
 * The Durable Streams protocol's browser security headers (§10.7) on every answer of a route
 * that serves a stream, errors included: a 401 from the guard, a 400 for an unknown type or a
 * 404 is read by the same browser client as a page of the log. An error is never stored either.
 *
 * ```ts
 * app.use("/v1/:kind/:id/log", streamHeaders) // before `guarded`, so its refusals get them too
 * ```
 */
import type { MiddlewareHandler } from "hono"
import { NO_STORE, SECURITY_HEADERS } from "../actors/stream-reads.js"

export const streamHeaders: MiddlewareHandler = async (c, next) => {
  await next()
  const missing = Object.entries(SECURITY_HEADERS).filter(([name]) => !c.res.headers.has(name))
  const uncached = c.res.status >= 400 && !c.res.headers.has("Cache-Control")
  if (missing.length === 0 && !uncached) return
  // An object's answer may have immutable headers (it came over fetch): copy them.
  const headers = new Headers(c.res.headers)
  for (const [name, value] of missing) headers.set(name, value)
  if (uncached) headers.set("Cache-Control", NO_STORE)
  c.res = new Response(c.res.body, { status: c.res.status, statusText: c.res.statusText, headers })
}
