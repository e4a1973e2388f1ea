/**
 * `/v1/stream/{path}`: the Durable Streams protocol's URLs (the path may hold `/`). The edge
 * does what it does for every /v1 route (the app's `guarded` middleware: Host/Origin, auth,
 * rate limit; the body limit), then: the scope (read for GET and HEAD, write for PUT, POST and
 * DELETE), the caller's tenant (`actorOf`), and the stream's id (paths.ts); the protocol itself
 * is answered inside the stream's object (protocol.ts).
 */
import type { Context } from "hono"
import {
  actorOf,
  clientHeaders,
  limitKey,
  requireScope,
  setAuthority,
  streamError,
  type App,
  type AppEnv,
} from "../../worker.js"
import { STREAM_KIND, STREAM_ROUTE, streamIdOf, streamPathIn } from "./paths.js"
import { STREAM_PATH_HEADER } from "./protocol.js"

const READS = new Set(["GET", "HEAD"])
const METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"]

const forward = async (c: Context<AppEnv>): Promise<Response> => {
  const urlPath = new URL(c.req.url).pathname
  const path = streamPathIn(urlPath)
  const id = path === undefined ? undefined : streamIdOf(path)
  if (id === undefined)
    return streamError(
      400,
      "invalid_stream_path",
      "A stream path is 1 or more characters (at most 128 once characters outside A-Z a-z 0-9 . _ - are written as :XX)",
    )
  const actor = actorOf(c, STREAM_KIND, id)
  const request = c.req.raw
  const headers = clientHeaders(request)
  headers.set(STREAM_PATH_HEADER, urlPath)
  const principal = c.get("principal")
  setAuthority(headers, {
    principal: principal.sub,
    scopes: principal.scopes,
    expiresAt: principal.expiresAt,
    limitKey: limitKey(principal),
  })
  const method = request.method
  const body = method === "PUT" || method === "POST" ? await request.arrayBuffer() : undefined
  return actor.fetch(new Request(request.url, { method, headers, body }))
}

export const streamRoutes = (app: App) => {
  app.on(
    METHODS,
    `${STREAM_ROUTE}*`,
    (c, next) => requireScope(READS.has(c.req.method) ? "read" : "write")(c, next),
    forward,
  )
  // §5: a stream URL takes these methods; any other is the protocol's 405, not an unknown kind.
  app.all(`${STREAM_ROUTE}*`, () =>
    streamError(405, "method_not_allowed", `A stream takes ${METHODS.join(", ")}`, { Allow: METHODS.join(", ") }),
  )
}
