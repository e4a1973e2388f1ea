/**
 * The Worker's HTTP surface (DESIGN.md, "The public HTTP surface"), built from the kinds an
 * app lists: Hono routes that authenticate, validate input, address an actor (or topic) in
 * the caller's tenant, and call it over DO RPC. Errors map to statuses in errors.ts and nowhere else.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono"
import { cors } from "hono/cors"
import type { CommandRequest } from "../core/wire.js"
import type { Entity } from "../domain/entity.js"
import { SCOPES, type Scope } from "../infra/tokens.js"
import {
  AFTER_HEADER,
  BATCH_HEADER,
  SUBSCRIBE_HEADER,
  TYPES_HEADER,
  clientHeaders,
  setAuthority,
} from "../actors/subscribers.js"
import { BATCH_PARAM } from "../domain/protocol.js"
import { MAX_TOPIC_PAGE } from "../actors/topic.js"
import { LOG_READ } from "../actors/log-streams.js"
import { STREAM_REQUEST_HEADERS, STREAM_RESPONSE_HEADERS, streamError } from "../actors/stream-reads.js"
import { protectedResourceMetadata, requireScope } from "./auth.js"
import type { AuthProvider } from "./auth-provider.js"
import { inspectorRoutes } from "./inspector/routes.js"
import { MAX_BODY_BYTES, limitBody, limitBodyTo, type App, type AppEnv } from "./env.js"
import { HttpError, badRequest, errorBody, failed, handleError, handleNotFound, unwrap } from "./errors.js"
import { guarded } from "./guard.js"
import { streamHeaders, withHeaders } from "./stream-headers.js"
import { RESERVED_KINDS, kindRegistry, type KindModule, type KindRegistry } from "./kind.js"
import * as Params from "./params.js"
import { actorEventTypes, subscriptionTypes, topicEventTypes, type KnownTypes } from "./subscription-types.js"
import { actorOf, projectionOf, topicOf as topicIn, unknownKind } from "./objects.js"
import { limitKey } from "./rate-limit.js"
import { mcpRoutes } from "./mcp/route.js"
import { whoamiRoutes } from "./whoami.js"
import { countRequests, usageRoutes } from "./usage.js"
import { tenantRoutes } from "./tenants.js"
import { healthReport } from "./health.js"
import { RequestMetrics, metricsRoutes } from "./metrics.js"
import { observeRequests, recordingMiddleware } from "./request-log.js"

type AppContext = Context<AppEnv>

/** A projection an app serves at `/v1/projections/{name}`. */
export interface ProjectionOption {
  readonly name: string
  /** The topic that feeds it: the projection lives in that topic's object. */
  readonly topic: string
}

export interface AppOptions {
  /** The kinds served, as plain entities or kind modules; any other kind is 404 `unknown_kind`. */
  readonly kinds: ReadonlyArray<Entity | KindModule>
  readonly projections?: ReadonlyArray<ProjectionOption>
  /** Routes of the app's own, mounted after the kinds' routes and before the generic `/v1/{kind}/{id}` routes. */
  readonly routes?: (app: App) => void
  /** An authorization server of the app's own (`githubOAuth()`): its routes, and its tokens beside JWTs. */
  readonly auth?: AuthProvider
  /** Counts usage per tenant and day (edge/usage.ts, README "Usage per tenant"); off by default. */
  readonly usage?: boolean
}

const topicOf = (c: AppContext, name: string) => topicIn(c.env, c.get("principal").tenant, name)

/** A subscription cursor: `?after=` or, when a client reconnects an SSE stream, `Last-Event-ID`. */
const subscriptionAfter = async (request: Request, head: () => Promise<number>) => {
  const lastEventId = request.headers.get("Last-Event-ID") ?? undefined
  const after = new URL(request.url).searchParams.get("after") ?? undefined
  const cursor = Params.nonNegativeInt(lastEventId !== undefined ? "Last-Event-ID" : "after", lastEventId ?? after, 0)
  const version = await head()
  if (cursor > version)
    throw badRequest("invalid_query", `after ${cursor} is beyond the head of the log (${version})`, {
      after: cursor,
      head: version,
    })
  return cursor
}

/** `?batch=1`: the WebSocket backlog in frames of many entries (protocol.ts, BATCH_PARAM); `0` or absent: one a frame. */
const batchBacklog = (request: Request): boolean => {
  const batch = new URL(request.url).searchParams.get(BATCH_PARAM)
  if (batch !== null && batch !== "0" && batch !== "1")
    throw badRequest("invalid_query", `${BATCH_PARAM} must be 0 or 1`)
  return batch === "1"
}

/**
 * The headers of a read the edge validated, for the object that owns the log: the client's own
 * (none of ours), the kind of read, its filter, and who asked (principal, scopes, expiry, limit key).
 */
const forwardedRead = (c: AppContext, mode: string, types: ReadonlyArray<string> | undefined): Headers => {
  const headers = clientHeaders(c.req.raw)
  headers.set(SUBSCRIBE_HEADER, mode)
  if (types !== undefined) headers.set(TYPES_HEADER, types.join(","))
  const principal = c.get("principal")
  const { sub, scopes, expiresAt } = principal
  setAuthority(headers, { principal: sub, scopes, expiresAt, limitKey: limitKey(principal) })
  return headers
}

/** Hands a validated WebSocket or SSE subscription to the object that owns the log. */
const subscribe = async (
  c: AppContext,
  owner: { fetch(request: Request): Promise<Response> },
  head: () => Promise<number>,
  known: KnownTypes,
) => {
  const request = c.req.raw
  const websocket = new URL(request.url).pathname.endsWith("/ws")
  if (websocket) Params.requireWebSocketUpgrade(request)
  const types = subscriptionTypes(c.req.queries("types"), known)
  const batch = batchBacklog(request)
  const after = await subscriptionAfter(request, head)
  const headers = forwardedRead(c, websocket ? "websocket" : "sse", types)
  headers.set(AFTER_HEADER, String(after))
  if (websocket && batch) headers.set(BATCH_HEADER, "1")
  return owner.fetch(new Request(request.url, { method: "GET", headers }))
}

const pageLimit = (value: string | undefined, max: number) => {
  const limit = Params.nonNegativeInt("limit", value, 100)
  if (limit < 1 || limit > max) throw badRequest("invalid_query", `limit must be an integer from 1 to ${max}`)
  return limit
}

const stateQuery = (c: AppContext) => {
  const at = c.req.query("at")
  const asOf = c.req.query("asOf")
  if (at !== undefined && asOf !== undefined) throw badRequest("invalid_query", "Use at or asOf, not both")
  return at !== undefined
    ? { at: Params.nonNegativeInt("at", at, 0) }
    : asOf !== undefined
      ? { asOf: Params.isoTime("asOf", asOf) }
      : {}
}

const readActor = async (c: AppContext, tenant?: string) => {
  const kind = c.req.param("kind")!
  const id = c.req.param("id")!
  const { version, state } = unwrap(await actorOf(c, kind, id, tenant).readState(stateQuery(c)))
  return c.json({ kind, id, version, state })
}

const readActorEvents = async (c: AppContext, tenant?: string) => {
  const actor = actorOf(c, c.req.param("kind")!, c.req.param("id")!, tenant)
  const after = Params.nonNegativeInt("after", c.req.query("after"), 0)
  const stored = c.req.query("stored")
  if (stored !== undefined && stored !== "true" && stored !== "false")
    throw badRequest("invalid_query", "stored must be true or false")
  const limit = Params.nonNegativeInt("limit", c.req.query("limit"), 100)
  // The object answers the page's JSON text: the body as c.json would write it, without a thousand objects over RPC.
  const page = unwrap(await actor.readEventsJson(after, limit, stored === "true"))
  return c.body(page, 200, { "Content-Type": "application/json" })
}

const verifyActor = async (c: AppContext, tenant?: string) => {
  const report = await actorOf(c, c.req.param("kind")!, c.req.param("id")!, tenant).verifyLog()
  // An actor that cannot rebuild its state answers its failure (503 history_unavailable), not a report.
  if ("error" in report) throw failed(report.error)
  return c.json(report)
}

/**
 * A `/log` read (Durable Streams, JSON mode) handed to the object that owns the log; the object
 * parses the offset and live mode (one read module for every log), the edge only the filter.
 */
const logRead = (c: AppContext, owner: { fetch(request: Request): Promise<Response> }, known: KnownTypes) => {
  const headers = forwardedRead(c, LOG_READ, subscriptionTypes(c.req.queries("types"), known))
  return owner.fetch(new Request(c.req.url, { method: c.req.method === "HEAD" ? "HEAD" : "GET", headers }))
}

/** A `/log` is read-only: what it holds is appended by commands (or, for a topic, by the actors that feed it). */
const readOnlyLog = (c: AppContext, appendThrough: string) =>
  streamError(
    405,
    "method_not_allowed",
    `${c.req.method} is not allowed: this log is a read-only Durable Stream (GET, HEAD); ${appendThrough}`,
    { Allow: "GET, HEAD" },
  )

const LOG_WRITES = ["POST", "PUT", "DELETE", "PATCH"]

/** The app of `options.kinds`; `served` is their registry when the caller (the factory) has built it already. */
export const createApp = (options: AppOptions, served: KindRegistry = kindRegistry(options.kinds)): App => {
  /**
   * A generic `/v1/{kind}/{id}` route: a kind the app does not serve falls through (before any
   * scope check) to routes added after it, and at last to not-found's `unknown_kind`.
   */
  const kindRoute =
    (scope: Scope, handler: (c: AppContext) => Response | Promise<Response>): MiddlewareHandler<AppEnv> =>
    async (c, next) => {
      if (served.get(c.req.param("kind") ?? "") === undefined) return next()
      let response: Response | undefined
      await requireScope(scope)(c, async () => {
        response = await handler(c as AppContext)
      })
      return response
    }
  const topicTypes = topicEventTypes(served)
  const topicSubscription = (c: AppContext) => {
    const topic = topicOf(c, c.req.param("topic")!)
    return subscribe(c, topic, () => topic.head(), topicTypes)
  }
  const actorSubscription = (c: AppContext) => {
    const kind = c.req.param("kind")!
    const actor = actorOf(c, kind, c.req.param("id")!)
    return subscribe(c, actor, () => actor.head(), actorEventTypes(served, kind))
  }
  const projections = new Map((options.projections ?? []).map((projection) => [projection.name, projection]))
  // First: the request log tells the middleware added with `use` from `app.all` routes by it.
  const app = recordingMiddleware(new Hono<AppEnv>())
  app.onError(handleError)
  // Not-found, not a catch-all route, answers a kind not served: routes added to the app later
  // (under /v1 too) still match. Only `/v1/{kind}/{id}…` names a kind; `/v1/{word}` is no route.
  app.notFound((c) => {
    const kind = /^\/v1\/([^/]+)\/[^/]/.exec(c.req.path)?.[1]
    if (
      kind === undefined ||
      served.get(kind) !== undefined ||
      served.claims.has(kind) ||
      RESERVED_KINDS.includes(kind)
    )
      return handleNotFound(c)
    const { code, message } = unknownKind(kind, served.names)
    return c.json(errorBody(code, message), 404)
  })
  app.use("*", async (c, next) => {
    c.set("kinds", served.names)
    c.set("auth", options.auth)
    return next()
  })
  const metrics = new RequestMetrics()
  app.use("*", observeRequests(metrics))
  if (options.usage === true) app.use("*", countRequests)

  // CORS only for the configured origins; with none configured, no CORS headers at all.
  app.use("*", async (c, next) => {
    const allowed = Params.commaList(c.env.CORS_ORIGINS)
    if (allowed.length === 0) return next()
    return cors({
      origin: (origin) => (allowed.includes(origin) ? origin : null),
      allowHeaders: [
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "If-Match",
        "Last-Event-ID",
        "X-Correlation-Id",
        "X-Causation-Id",
        ...STREAM_REQUEST_HEADERS,
      ],
      exposeHeaders: ["Idempotent-Replayed", "Retry-After", "WWW-Authenticate", ...STREAM_RESPONSE_HEADERS],
    })(c, next)
  })

  // The kinds' parts (the job kind's executor) go between the version and the time.
  const healthParts = served.modules.flatMap(({ entity, health }) =>
    health === undefined ? [] : [{ kind: entity.kind, health }],
  )
  const retained = served.modules.map(({ entity, retention }) => ({ kind: entity.kind, retention }))
  app.get("/health", async (c) => c.json(await healthReport(c.env, healthParts, retained)))

  // RFC 9728: where clients learn how to get a token for this resource.
  app.on(["GET", "OPTIONS"], "/.well-known/oauth-protected-resource", (c) =>
    protectedResourceMetadata(c, {
      resource: new URL(c.req.url).origin,
      scopes_supported: SCOPES,
    }),
  )

  options.auth?.routes(app, served)

  // The inspector's page and script hold no data; what it shows is read through /v1 with the visitor's token.
  inspectorRoutes(app, served)

  // Ahead of the guard: its refusals (401, 403, 413, 429) are answers of a Durable Stream too.
  for (const path of ["/v1/:kind/:id/log", "/v1/topics/:topic/log"]) app.use(path, streamHeaders)
  // A kind's headers for its claimed paths (the stream kind's /v1/stream/*) wrap the guard the same way.
  for (const [word, { claimHeaders }] of served.claims)
    if (claimHeaders !== undefined) app.use(`/v1/${word}/*`, withHeaders(claimHeaders))
  for (const path of ["/v1/*", "/mcp"]) app.use(path, ...guarded)
  // A kind may take larger commands (memories carry content); every other body stays small.
  const commandLimits = new Map(
    served.modules.flatMap(({ entity, commandBodyBytes }) =>
      commandBodyBytes === undefined || commandBodyBytes === MAX_BODY_BYTES
        ? []
        : [[entity.kind, limitBodyTo(commandBodyBytes)] as const],
    ),
  )
  app.use("/v1/*", (c, next) => {
    const command = c.req.method === "POST" ? /^\/v1\/([^/]+)\/[^/]+\/commands$/.exec(c.req.path) : null
    return ((command === null ? undefined : commandLimits.get(command[1]!)) ?? limitBody)(c, next)
  })

  mcpRoutes(app, served)
  // Each kind's routes, then the app's own, before the generic routes could read their paths as `kind/id`.
  for (const { routes } of served.modules) routes?.(app)
  options.routes?.(app)

  whoamiRoutes(app, served)
  // Topics, projections and admin first, so that those words are never read as kinds.
  tenantRoutes(app, served)
  app.get("/v1/topics/:topic/events", requireScope("read"), async (c) => {
    const topic = topicOf(c, c.req.param("topic"))
    return c.json(
      await topic.readEntries(
        Params.nonNegativeInt("after", c.req.query("after"), 0),
        pageLimit(c.req.query("limit"), MAX_TOPIC_PAGE),
      ),
    )
  })
  app.get("/v1/topics/:topic/events/stream", requireScope("read"), topicSubscription)
  app.get("/v1/topics/:topic/ws", requireScope("read"), topicSubscription)
  // GET routes answer HEAD too (Hono): the log's metadata.
  app.get("/v1/topics/:topic/log", requireScope("read"), (c) =>
    logRead(c, topicOf(c, c.req.param("topic")), topicTypes),
  )
  app.on(LOG_WRITES, "/v1/topics/:topic/log", (c) =>
    readOnlyLog(c, "a topic's entries are the events of the actors that publish to it"),
  )

  app.get("/v1/projections/:name", requireScope("read"), async (c) => {
    const name = c.req.param("name")
    const projection = projections.get(name)
    if (projection === undefined)
      throw new HttpError(
        404,
        "unknown_projection",
        `Unknown projection ${JSON.stringify(name)}; projections: ${[...projections.keys()].join(", ") || "none"}`,
      )
    return c.json(await projectionOf(c.env, c.get("principal").tenant, projection).read())
  })

  usageRoutes(app, options.usage === true)
  metricsRoutes(app, metrics)

  // Operators read any tenant's actors, explicitly, and only here; `admin` stays within its own tenant.
  const operator = requireScope("operator")
  app.get("/v1/admin/tenants/:tenant/:kind/:id", operator, (c) => readActor(c, c.req.param("tenant")))
  app.get("/v1/admin/tenants/:tenant/:kind/:id/events", operator, (c) => readActorEvents(c, c.req.param("tenant")))
  app.get("/v1/admin/tenants/:tenant/:kind/:id/verify", operator, (c) => verifyActor(c, c.req.param("tenant")))

  app.post(
    "/v1/:kind/:id/commands",
    kindRoute("write", async (c) => {
      const actor = actorOf(c, c.req.param("kind")!, c.req.param("id")!)
      const example = '{"type":"Increment","by":1}'
      const notJson = badRequest("invalid_json", `The body must be a JSON command object such as ${example}`)
      const command = await Params.jsonBody(c, notJson)
      const request: CommandRequest = {
        command,
        ifMatch: Params.ifMatch(c.req.header("If-Match")),
        idempotencyKey: Params.idempotencyKey(c.req.header("Idempotency-Key")),
        correlationId: Params.clientIdHeader("X-Correlation-Id", c.req.header("X-Correlation-Id")),
        causationId: Params.clientIdHeader("X-Causation-Id", c.req.header("X-Causation-Id")),
        principal: c.get("principal").sub,
        scopes: [...c.get("principal").scopes],
      }
      const reply = await actor.command(request)
      c.get("usage")?.commandAnswered(reply)
      metrics.commandAnswered(reply)
      const outcome = unwrap(reply)
      if (outcome.replayed) c.header("Idempotent-Replayed", "true")
      return c.json({ version: outcome.version, events: outcome.events, state: outcome.state })
    }),
  )

  app.get(
    "/v1/:kind/:id",
    kindRoute("read", (c) => readActor(c)),
  )
  app.get(
    "/v1/:kind/:id/events",
    kindRoute("read", (c) => readActorEvents(c)),
  )
  app.get("/v1/:kind/:id/events/stream", kindRoute("read", actorSubscription))
  app.get("/v1/:kind/:id/ws", kindRoute("read", actorSubscription))
  app.get(
    "/v1/:kind/:id/log",
    kindRoute("read", (c) => {
      const kind = c.req.param("kind")!
      return logRead(c, actorOf(c, kind, c.req.param("id")!), actorEventTypes(served, kind))
    }),
  )
  app.on(LOG_WRITES, "/v1/:kind/:id/log", async (c, next) => {
    if (served.get(c.req.param("kind")) === undefined) return next()
    return readOnlyLog(c, `append through POST /v1/${c.req.param("kind")}/${c.req.param("id")}/commands`)
  })
  app.get(
    "/v1/:kind/:id/verify",
    kindRoute("admin", (c) => verifyActor(c)),
  )

  return app
}
