/**
 * One JSON line per request on the console (Workers Logs indexes JSON lines: README,
 * "Observability"), the request counted in the app's metrics (metrics.ts), and, with a Workers
 * Analytics Engine binding `METRICS`, one data point per request for the fleet's view.
 *
 * A line holds the route's pattern (`/v1/:kind/:id/commands`), never the raw path or query (a
 * query may carry a `token=` or an OAuth `code=`), no header and no body: what is logged is
 * chosen field by field, so nothing secret is logged by accident. `REQUEST_LOGS=off` silences the
 * lines; the metrics are counted either way. A WebSocket or SSE subscription is logged when it is
 * answered (101 or 200): its duration is the time to that answer.
 *
 * ```ts
 * app.use("*", observeRequests(new RequestMetrics()))
 * ```
 */
import type { Context, Hono, MiddlewareHandler } from "hono"
import { matchedRoutes } from "hono/route"
import type { Principal } from "../infra/tokens.js"
import { writeDataPoint } from "./analytics.js"
import type { AppEnv, Env } from "./env.js"
import { answerCodeOf, handleError } from "./errors.js"
import type { RequestMetrics } from "./metrics.js"
import { routeClass } from "./usage.js"

/** The settings the request log reads beside the app's. */
export type RequestLogEnv = Env & {
  /** "off": no request lines on the console (the metrics still count). */
  readonly REQUEST_LOGS?: string
  /** Optional Workers Analytics Engine dataset: one data point per request. */
  readonly METRICS?: AnalyticsEngineDataset
}

/** The fields of a request's line, in the order they are written. */
export interface RequestLine {
  readonly log: "request"
  readonly at: string
  readonly requestId: string
  readonly method: string
  /** The matched route's pattern; null when no route matched (a 404 not_found). */
  readonly route: string | null
  readonly routeClass: string
  readonly tenant: string | null
  /** The principal's subject, nothing else of its token. */
  readonly principal: string | null
  readonly kind?: string
  readonly id?: string
  readonly status: number
  readonly durationMs: number
  /** The error code of an answer of 400 or more (the `{"error":{"code"}}` of its body). */
  readonly code?: string
}

type AppContext = Context<AppEnv>

/**
 * The handlers added with `use`: Hono registers them with method ALL, as it does `app.all`
 * routes (`/mcp`, `/oauth/token`), so only this tells a middleware from a route.
 */
const middleware = new WeakSet<Function>()

/** `app`, with every handler later added by `app.use` known as a middleware (`answeringRoute`). Call it first. */
export const recordingMiddleware = <A extends Hono<any>>(app: A): A => {
  const use = app.use.bind(app) as (...args: Array<unknown>) => A
  app.use = ((...args: Array<unknown>) => {
    for (const arg of args) if (typeof arg === "function") middleware.add(arg)
    return use(...args)
  }) as A["use"]
  return app
}

const isHandler = (route: { readonly method: string; readonly handler: Function }) =>
  route.method !== "ALL" || !middleware.has(route.handler)

/**
 * The pattern of the route that answered, or, when a middleware answered first (a 401, a 429),
 * of the route the request was going to; null when none matched.
 */
const answeringRoute = (c: AppContext): string | null => {
  const routes = matchedRoutes(c)
  const at = c.req.routeIndex
  const answered = routes[at]
  if (answered !== undefined && isHandler(answered)) return answered.path
  return routes.slice(at + 1).find(isHandler)?.path ?? null
}

/** The longest kind or id a line holds: a path is the client's, and a line stays small. */
export const MAX_LOGGED_SEGMENT = 256

const segmentValue = (segment: string) => {
  let value = segment
  try {
    value = decodeURIComponent(segment)
  } catch {
    // Not percent-encoded as it should be: logged as sent.
  }
  return value.length > MAX_LOGGED_SEGMENT ? `${value.slice(0, MAX_LOGGED_SEGMENT)}…` : value
}

/** The kind and id a route pattern addresses (`/v1/:kind/:id/…`, a kind's own `/v1/memory/:id/…`), read off the path. */
const addressedActor = (route: string | null, path: string): { kind?: string; id?: string } => {
  if (route === null) return {}
  const patterns = route.split("/")
  const segments = path.split("/")
  const value = (name: string) => {
    const at = patterns.findIndex((pattern) => pattern.replace(/\{.*$/, "") === `:${name}`)
    return at === -1 || segments[at] === undefined ? undefined : segmentValue(segments[at]!)
  }
  const id = value("id")
  if (id === undefined) return {}
  const literal = /^\/v1\/([^/:*]+)\/:id(\/|$)/.exec(route)?.[1]
  const kind = value("kind") ?? literal
  return kind === undefined ? {} : { kind, id }
}

/** The body of an SSE subscription, counted open until it ends or its reader goes away. */
const countedStream = (body: ReadableStream<Uint8Array>, closed: () => void): ReadableStream<Uint8Array> => {
  const reader = body.getReader()
  let open = true
  const close = () => {
    if (!open) return
    open = false
    closed()
  }
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await reader.read()
        if (next.done) {
          close()
          controller.close()
        } else controller.enqueue(next.value)
      } catch (error) {
        close()
        controller.error(error)
      }
    },
    cancel(reason) {
      close()
      return reader.cancel(reason)
    },
  })
}

/** A Ray ID as Cloudflare sets `cf-ray`: 16 hex digits, then the data center. */
const RAY_ID = /^[0-9a-f]{16}(-[A-Z]{3})?$/

/** Cloudflare's `cf-ray` (its own request id, `8c1f4e0f2a3b4c5d-AMS`); else, or when it is not one, a fresh UUID. */
const requestIdOf = (c: AppContext): string => {
  const ray = c.req.header("cf-ray")
  return ray !== undefined && RAY_ID.test(ray) ? ray : crypto.randomUUID()
}

/**
 * Whether the answer opens a subscription: a WebSocket (101), or an event stream answering a GET
 * (an actor's events/stream, a Durable Stream's `live=sse`, the stream kind's, MCP's GET). A HEAD
 * has no body to hold open; an event stream answering a POST (an MCP call's) ends with its call.
 */
const subscriptionOf = (method: string, response: Response) => {
  if (response.status === 101) return "websocket" as const
  if (method !== "GET" || response.status !== 200 || response.body === null) return undefined
  return (response.headers.get("content-type") ?? "").startsWith("text/event-stream") ? ("sse" as const) : undefined
}

const waitUntilOf = (c: AppContext) => (work: Promise<unknown>) => {
  try {
    c.executionCtx.waitUntil(work)
  } catch {
    // No execution context (an app called directly): the work runs unwaited.
  }
}

/** Logs, counts and (with METRICS) records every request once it is answered. Put first, so it sees every answer. */
export const observeRequests =
  (metrics: RequestMetrics): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const started = performance.now()
    const at = new Date().toISOString()
    let threwNonError = false
    try {
      await next()
    } catch (value) {
      // Hono's onError takes only an Error: anything else thrown comes up to here unanswered.
      threwNonError = true
      c.res = await handleError(new Error("A value that is not an Error was thrown", { cause: value }), c)
    }
    try {
      const durationMs = Math.round((performance.now() - started) * 100) / 100
      const { method } = c.req
      const path = c.req.path
      const status = c.res.status
      const classOfRoute = routeClass(method, path)
      const subscription = subscriptionOf(method, c.res)
      if (subscription === "websocket") metrics.subscriptionOpened("websocket")
      else if (subscription === "sse" && c.res.body !== null) {
        metrics.subscriptionOpened("sse")
        const { body, headers, statusText } = c.res
        c.res = new Response(
          countedStream(body, () => metrics.sseClosed()),
          { status, statusText, headers },
        )
      }
      const env = c.env as RequestLogEnv
      const principal = c.get("principal") as Principal | undefined
      const route = answeringRoute(c)
      const finish = (code: string | undefined) => {
        metrics.answered({ routeClass: classOfRoute, status, durationMs, code })
        const tenant = principal?.tenant ?? null
        writeDataPoint(
          env.METRICS,
          {
            indexes: [tenant ?? ""],
            blobs: [classOfRoute, String(status), code ?? "", route ?? ""],
            doubles: [durationMs],
          },
          "request metrics",
        )
        if (env.REQUEST_LOGS === "off") return
        const line: RequestLine = {
          log: "request",
          at,
          requestId: requestIdOf(c),
          method,
          route,
          routeClass: classOfRoute,
          tenant,
          principal: principal?.sub ?? null,
          ...addressedActor(route, path),
          status,
          durationMs,
          ...(code === undefined ? {} : { code }),
        }
        console.log(JSON.stringify(line))
      }
      const code = threwNonError ? "internal" : answerCodeOf(c)
      if (code instanceof Promise) waitUntilOf(c)(code.then(finish))
      else finish(code)
    } catch (error) {
      console.warn("emberlog: a request was not logged", error)
    }
  }
