/**
 * The Worker's HTTP surface (DESIGN.md, "The public HTTP surface"): Hono routes that
 * validate input, address an actor (or topic) by name, and call it over DO RPC.
 */
import { type Context, Hono } from "hono"
import type { CommandRequest } from "../actors/actor-core.js"
import type { CounterTotalsApi } from "../actors/counter-totals.js"
import type { ActorApi } from "../actors/durable-actor.js"
import { kinds, type Kind } from "../actors/kinds.js"
import { AFTER_HEADER, SUBSCRIBE_HEADER } from "../actors/subscribers.js"
import { MAX_TOPIC_PAGE, type TopicApi } from "../actors/topic.js"
import pkg from "../../package.json"
import { HttpError, badRequest, handleError, handleNotFound, unwrap } from "./errors.js"
import { limitBody, type Env } from "./env.js"
import * as Params from "./params.js"
import { roomRoutes } from "./room-routes.js"

type AppContext = Context<{ Bindings: Env }>

const actorOf = (env: Env, kind: string, id: string): ActorApi => {
  const registration = kinds[kind as Kind]
  if (!Object.hasOwn(kinds, kind) || registration === undefined) {
    throw new HttpError(404, "unknown_kind", `Unknown kind ${JSON.stringify(kind)}; known kinds: ${Object.keys(kinds).join(", ")}`)
  }
  return env[registration.binding].getByName(Params.actorId(id)) as unknown as ActorApi
}

const topicOf = (env: Env, name: string) => env.TOPIC.getByName(Params.logName("topic", name)) as unknown as TopicApi

/** A subscription cursor: `?after=` or, when a client reconnects an SSE stream, `Last-Event-ID`. */
const subscriptionAfter = async (request: Request, head: () => Promise<number>) => {
  const lastEventId = request.headers.get("Last-Event-ID") ?? undefined
  const after = new URL(request.url).searchParams.get("after") ?? undefined
  const cursor = Params.nonNegativeInt(lastEventId !== undefined ? "Last-Event-ID" : "after", lastEventId ?? after, 0)
  const version = await head()
  if (cursor > version) throw badRequest("invalid_query", `after ${cursor} is beyond the head of the log (${version})`, { after: cursor, head: version })
  return cursor
}

/** Hands a validated WebSocket or SSE subscription to the object that owns the log. */
const subscribe = async (owner: { fetch(request: Request): Promise<Response> }, request: Request, head: () => Promise<number>) => {
  const websocket = new URL(request.url).pathname.endsWith("/ws")
  if (websocket && request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "upgrade_required", "This route is a WebSocket: send Upgrade: websocket")
  }
  const after = await subscriptionAfter(request, head)
  const headers = new Headers(request.headers)
  headers.set(SUBSCRIBE_HEADER, websocket ? "websocket" : "sse")
  headers.set(AFTER_HEADER, String(after))
  return owner.fetch(new Request(request.url, { method: "GET", headers }))
}

const pageLimit = (value: string | undefined, max: number) => {
  const limit = Params.nonNegativeInt("limit", value, 100)
  if (limit < 1 || limit > max) throw badRequest("invalid_query", `limit must be an integer from 1 to ${max}`)
  return limit
}

const topicSubscription = (c: AppContext) => {
  const topic = topicOf(c.env, c.req.param("topic")!)
  return subscribe(topic, c.req.raw, () => topic.head())
}

const actorSubscription = (c: AppContext) => {
  const actor = actorOf(c.env, c.req.param("kind")!, c.req.param("id")!)
  return subscribe(actor, c.req.raw, async () => unwrap(await actor.readState({})).version)
}

export const createApp = () => {
  const app = new Hono<{ Bindings: Env }>()
  app.onError(handleError)
  app.notFound(handleNotFound)

  app.get("/health", (c) => c.json({ status: "ok", version: pkg.version }))
  roomRoutes(app)

  app.use("/v1/*", limitBody)

  // Topics and projections first, so that "topics" and "projections" are never read as kinds.
  app.get("/v1/topics/:topic/events", async (c) => {
    const topic = topicOf(c.env, c.req.param("topic"))
    return c.json(await topic.readEntries(Params.nonNegativeInt("after", c.req.query("after"), 0), pageLimit(c.req.query("limit"), MAX_TOPIC_PAGE)))
  })
  app.get("/v1/topics/:topic/events/stream", topicSubscription)
  app.get("/v1/topics/:topic/ws", topicSubscription)

  app.get("/v1/projections/counter-totals", async (c) =>
    c.json(await (c.env.COUNTER_TOTALS.getByName("global") as unknown as CounterTotalsApi).read()),
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
    return c.json(unwrap(await actor.readEvents(after, Params.nonNegativeInt("limit", c.req.query("limit"), 100))))
  })
  app.get("/v1/:kind/:id/events/stream", actorSubscription)
  app.get("/v1/:kind/:id/ws", actorSubscription)

  app.get("/v1/:kind/:id/verify", async (c) => {
    const actor = actorOf(c.env, c.req.param("kind"), c.req.param("id"))
    return c.json(await actor.verifyLog())
  })

  return app
}
