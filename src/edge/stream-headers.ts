/**
 * Headers on every answer of a route, errors included: mounted ahead of the guard, so its
 * refusals (401, 403, 413, 429) carry them too. The Durable Streams routes use it for the
 * protocol's browser security headers (§10.7): a 401 or a 404 is read by the same browser
 * client as a page of the log. An error is never stored either.
 *
 * ```ts
 * app.use("/v1/:kind/:id/log", streamHeaders) // before `guarded`
 * ```
 */
import type { MiddlewareHandler } from "hono"
import { NO_STORE, SECURITY_HEADERS } from "../actors/stream-reads.js"

/** Sets each of `headers` a response does not set itself, and `Cache-Control: no-store` on an error without one. */
export const withHeaders =
  (headers: Readonly<Record<string, string>>): MiddlewareHandler =>
  async (c, next) => {
    await next()
    // A WebSocket upgrade's response cannot be copied (it carries the socket).
    if (c.res.status === 101) return
    const missing = Object.entries(headers).filter(([name]) => !c.res.headers.has(name))
    const uncached = c.res.status >= 400 && !c.res.headers.has("Cache-Control")
    if (missing.length === 0 && !uncached) return
    // An object's answer may have immutable headers (it came over fetch): copy them.
    const copied = new Headers(c.res.headers)
    for (const [name, value] of missing) copied.set(name, value)
    if (uncached) copied.set("Cache-Control", NO_STORE)
    c.res = new Response(c.res.body, { status: c.res.status, statusText: c.res.statusText, headers: copied })
  }

/** The protocol's security headers, for the routes that serve an actor's or a topic's log as a Durable Stream. */
export const streamHeaders = withHeaders(SECURITY_HEADERS)
