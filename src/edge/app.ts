/**
 * The Worker's HTTP surface (DESIGN.md, "The public HTTP surface"): Hono routes that
 * validate input, address an actor by kind and id, and call it over DO RPC.
 */
import { Hono } from "hono"
import { bodyLimit } from "hono/body-limit"
import type { CommandRequest } from "../actors/actor-core.js"
import { AFTER_HEADER, SUBSCRIBE_HEADER, type ActorApi } from "../actors/durable-actor.js"
import { kinds, type Kind } from "../actors/kinds.js"
import pkg from "../../package.json"
import { HttpError, badRequest, errorBody, handleError, handleNotFound, unwrap } from "./errors.js"
import * as Params from "./params.js"

export type Env = { readonly [K in (typeof kinds)[Kind]["binding"]]: DurableObjectNamespace }

export const MAX_BODY_BYTES = 256 * 1024

const actorOf = (env: Env, kind: string, id: string): ActorApi => {
  const registration = kinds[kind as Kind]
  if (!Object.hasOwn(kinds, kind) || registration === undefined) {
    throw new HttpError(404, "unknown_kind", `Unknown kind ${JSON.stringify(kind)}; known kinds: ${Object.keys(kinds).join(", ")}`)
  }
  return env[registration.binding].getByName(Params.actorId(id)) as unknown as ActorApi
}

export const createApp = () => {
  const app = new Hono<{ Bindings: Env }>()
  app.onError(handleError)
  app.notFound(handleNotFound)

  app.get("/health", (c) => c.json({ status: "ok", version: pkg.version }))

  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => c.json(errorBody("too_large", `Request bodies are limited to ${MAX_BODY_BYTES} bytes`), 413),
    }),
  )

  app.post("/v1/:kind/:id/commands", async (c) => {
    const actor = actorOf(c.env, c.req.param("kind"), c.req.param("id"))
    let command: unknown
    try {
      command = await c.req.json()
    } catch {
      throw badRequest("invalid_json", "The body must be a JSON command object such as {\"type\":\"Increment\",\"by\":1}")
    }
    const request: CommandRequest = {
      command,
      ifMatch: Params.ifMatch(c.req.header("If-Match")),
      idempotencyKey: Params.idempotencyKey(c.req.header("Idempotency-Key")),
      correlationId: c.req.header("X-Correlation-Id") || undefined,
      causationId: c.req.header("X-Causation-Id") || undefined,
    }
    const outcome = unwrap(await actor.command(request))
    if (outcome.replayed) c.header("Idempotent-Replayed", "true")
    return c.json({ version: outcome.version, events: outcome.events, state: outcome.state })
  })

  app.get("/v1/:kind/:id", async (c) => {
    const kind = c.req.param("kind")
    const id = c.req.param("id")
    const actor = actorOf(c.env, kind, id)
    const at = c.req.query("at")
    const asOf = c.req.query("asOf")
    if (at !== undefined && asOf !== undefined) throw badRequest("invalid_query", "Use at or asOf, not both")
    const query = at !== undefined ? { at: Params.nonNegativeInt("at", at, 0) } : asOf !== undefined ? { asOf: Params.isoTime("asOf", asOf) } : {}
    const { version, state } = unwrap(await actor.readState(query))
    return c.json({ kind, id, version, state })
  })

  app.get("/v1/:kind/:id/events", async (c) => {
    const actor = actorOf(c.env, c.req.param("kind"), c.req.param("id"))
    const after = Params.nonNegativeInt("after", c.req.query("after"), 0)
    const limit = Params.nonNegativeInt("limit", c.req.query("limit"), 100)
    return c.json(unwrap(await actor.readEvents(after, limit)))
  })

  /** A subscription cursor: `?after=` or, when a client reconnects an SSE stream, `Last-Event-ID`. */
  const subscriptionAfter = async (actor: ActorApi, after: string | undefined, lastEventId?: string) => {
    const cursor = Params.nonNegativeInt(lastEventId !== undefined ? "Last-Event-ID" : "after", lastEventId ?? after, 0)
    const { version } = unwrap(await actor.readState({}))
    if (cursor > version) throw badRequest("invalid_query", `after ${cursor} is beyond the head of the log (version ${version})`, { after: cursor, version })
    return cursor
  }

  const forward = (actor: ActorApi, request: Request, mode: "websocket" | "sse", after: number) => {
    const headers = new Headers(request.headers)
    headers.set(SUBSCRIBE_HEADER, mode)
    headers.set(AFTER_HEADER, String(after))
    return actor.fetch(new Request(request.url, { method: "GET", headers }))
  }

  app.get("/v1/:kind/:id/ws", async (c) => {
    const actor = actorOf(c.env, c.req.param("kind"), c.req.param("id"))
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      throw new HttpError(426, "upgrade_required", "This route is a WebSocket: send Upgrade: websocket")
    }
    return forward(actor, c.req.raw, "websocket", await subscriptionAfter(actor, c.req.query("after")))
  })

  app.get("/v1/:kind/:id/events/stream", async (c) => {
    const actor = actorOf(c.env, c.req.param("kind"), c.req.param("id"))
    const after = await subscriptionAfter(actor, c.req.query("after"), c.req.header("Last-Event-ID"))
    return forward(actor, c.req.raw, "sse", after)
  })

  app.get("/v1/:kind/:id/verify", async (c) => {
    const actor = actorOf(c.env, c.req.param("kind"), c.req.param("id"))
    return c.json(await actor.verifyLog())
  })

  return app
}
