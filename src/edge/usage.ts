/**
 * Usage per tenant and UTC day (`emberlog({ usage: true })`): requests by route class, commands
 * appended and their events, MCP tool calls by tool, refusals by error code, 429s. Counted at the
 * edge from what requests already do, kept in the tenant's usage object (actors/usage.ts), read at
 * `GET /v1/usage` (the tenant's own) and `GET /v1/admin/tenants/{tenant}/usage` (operator).
 *
 * Counting never costs a request its latency or its answer: a request adds to counters in this
 * isolate's memory (a few map updates), and the counters are written to the usage object after
 * the response, in `waitUntil`, at most once per USAGE_FLUSH_MS (1 s by default) per tenant and
 * isolate, so a busy tenant's thousands of requests cost its usage object one write a second
 * from each isolate. A failed write is logged and its counts dropped: usage is an account of
 * traffic, not a log, and never fails the traffic it counts. So a read may trail the traffic by
 * up to that interval (a read flushes its own isolate's counts first).
 *
 * With a Workers Analytics Engine binding `USAGE`, every counter written is also a data point:
 * `indexes: [tenant]`, `blobs: [day, metric, key]`, `doubles: [count]`.
 */
import type { MiddlewareHandler } from "hono"
import { scopedName } from "../core/names.js"
import { stubOf } from "../actors/stubs.js"
import type { EmberlogTopicObject } from "../actors/topic.js"
import { USAGE_OBJECT, type UsageMetric, type UsageRow } from "../actors/usage.js"
import type { Principal } from "../infra/tokens.js"
import { writeDataPoint } from "./analytics.js"
import { requireScope } from "./auth.js"
import type { App, AppEnv, Env, UsageRecorder } from "./env.js"

export type { UsageRecorder }
import { HttpError, answerCodeOf, badRequest } from "./errors.js"
import type { ActorDirectory } from "./mcp/server.js"
import type { ToolResult } from "./mcp/tools.js"

/** The settings usage reads beside the app's. */
export type UsageEnv = Env & {
  /** Optional Workers Analytics Engine dataset: every counter written is also a data point there. */
  readonly USAGE?: AnalyticsEngineDataset
  /** At most one write per tenant and isolate this often, in ms (1000 by default; 0: as soon as the last one is done). */
  readonly USAGE_FLUSH_MS?: string
}

/** What a request is, for counting. */
export type RouteClass = "command" | "read" | "subscribe" | "mcp" | "admin" | "other"

export const DEFAULT_FLUSH_MS = 1000
/** `from`/`to` default to the last 30 days; a read spans at most this many. */
export const DEFAULT_DAYS = 30
export const MAX_DAYS = 366

/** Set by the edge on requests it hands to an MCP session object when the app counts usage (clients cannot set it). */
export const USAGE_HEADER = "X-Emberlog-Usage"

export const routeClass = (method: string, path: string): RouteClass => {
  if (path === "/mcp") return "mcp"
  if (path.startsWith("/v1/admin/")) return "admin"
  if (method === "POST" && /^\/v1\/[^/]+\/[^/]+\/commands$/.test(path)) return "command"
  if (path.endsWith("/ws") || path.endsWith("/events/stream")) return "subscribe"
  if (path.startsWith("/v1/") && (method === "GET" || method === "HEAD")) return "read"
  return "other"
}

export const utcDay = (at: number): string => new Date(at).toISOString().slice(0, 10)

// ---- Counters in this isolate, written in batches ----

interface Target {
  readonly namespace: DurableObjectNamespace | undefined
  readonly dataset: AnalyticsEngineDataset | undefined
  readonly flushMs: number
}

interface Pending {
  target: Target
  /** `day \t metric \t key` → count. */
  counts: Map<string, number>
  scheduled: boolean
  lastFlush: number
}

const pending = new Map<string, Pending>()
/** Tenants remembered (for their last write's time) beyond those with counts waiting. */
const MAX_REMEMBERED = 1000

const targetOf = (env: UsageEnv): Target => {
  const configured = Number(env.USAGE_FLUSH_MS)
  return {
    namespace: (env as Partial<Env>).EMBERLOG_TOPIC,
    dataset: env.USAGE,
    flushMs:
      env.USAGE_FLUSH_MS !== undefined && Number.isFinite(configured) && configured >= 0
        ? configured
        : DEFAULT_FLUSH_MS,
  }
}

const usageObject = (namespace: DurableObjectNamespace, tenant: string) =>
  stubOf<EmberlogTopicObject>(namespace, scopedName(tenant, USAGE_OBJECT))

type WaitUntil = (work: Promise<unknown>) => void

const count = (
  env: UsageEnv,
  waitUntil: WaitUntil,
  tenant: string,
  increments: ReadonlyArray<readonly [UsageMetric, string, number]>,
): void => {
  if (increments.length === 0) return
  let entry = pending.get(tenant)
  if (entry === undefined)
    pending.set(tenant, (entry = { target: targetOf(env), counts: new Map(), scheduled: false, lastFlush: 0 }))
  else entry.target = targetOf(env)
  const day = utcDay(Date.now())
  for (const [metric, key, n] of increments) {
    const at = `${day}\t${metric}\t${key}`
    entry.counts.set(at, (entry.counts.get(at) ?? 0) + n)
  }
  if (entry.scheduled) return
  entry.scheduled = true
  const delay = Math.max(0, entry.lastFlush + entry.target.flushMs - Date.now())
  const due = delay === 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, delay))
  waitUntil(due.then(() => flush(tenant)))
}

/** Writes the tenant's waiting counts (to its usage object, and to Analytics Engine when bound). */
const flush = async (tenant: string): Promise<void> => {
  const entry = pending.get(tenant)
  if (entry === undefined) return
  entry.scheduled = false
  if (entry.counts.size === 0) return
  const { counts, target } = entry
  entry.counts = new Map()
  entry.lastFlush = Date.now()
  if (pending.size > MAX_REMEMBERED) {
    for (const [other, { counts, scheduled }] of pending) if (counts.size === 0 && !scheduled) pending.delete(other)
  }
  const rows: Array<UsageRow> = [...counts].map(([at, n]) => {
    const [day, metric, key] = at.split("\t") as [string, UsageMetric, string]
    return { day, metric, key, count: n }
  })
  for (const { day, metric, key, count } of rows)
    writeDataPoint(target.dataset, { indexes: [tenant], blobs: [day, metric, key], doubles: [count] }, "usage")
  try {
    if (target.namespace === undefined) throw new Error("no EMBERLOG_TOPIC binding")
    await usageObject(target.namespace, tenant).recordUsage(rows)
  } catch (error) {
    console.warn(
      `emberlog: usage of tenant ${JSON.stringify(tenant)} not recorded (${rows.length} counters dropped)`,
      error,
    )
  }
}

/** A failed MCP tool result's error code (the text of `failure()`), or undefined for a success. */
const toolFailureCode = (result: ToolResult): string | undefined => {
  if (result.isError !== true) return undefined
  try {
    const code = (JSON.parse(result.content[0]?.text ?? "") as { error?: { code?: unknown } }).error?.code
    return typeof code === "string" ? code : "tool_error"
  } catch {
    return "tool_error"
  }
}

const recorderFor = (env: UsageEnv, waitUntil: WaitUntil, tenant: () => string | undefined): UsageRecorder => {
  const add = (increments: ReadonlyArray<readonly [UsageMetric, string, number]>) => {
    const of = tenant()
    if (of !== undefined) count(env, waitUntil, of, increments)
  }
  return {
    commandAnswered: (reply) => {
      if (reply.ok && !reply.value.replayed && reply.value.events.length > 0)
        add([
          ["commands", "", 1],
          ["events", "", reply.value.events.length],
        ])
    },
    toolCalled: (tool, result) => {
      const code = toolFailureCode(result)
      add(
        code === undefined
          ? [["tools", tool, 1]]
          : [
              ["tools", tool, 1],
              ["refusals", code, 1],
            ],
      )
    },
  }
}

/**
 * Counts every request that authenticated (a tenant is known) once it is answered: its route
 * class, and a 4xx by its error code (429s also on their own). Put first, so it sees every answer.
 */
export const countRequests: MiddlewareHandler<AppEnv> = async (c, next) => {
  const waitUntil: WaitUntil = (work) => {
    try {
      c.executionCtx.waitUntil(work)
    } catch {
      // No execution context (an app called directly): the work runs unwaited.
    }
  }
  const env = c.env as UsageEnv
  c.set(
    "usage",
    recorderFor(env, waitUntil, () => (c.get("principal") as Principal | undefined)?.tenant),
  )
  await next()
  try {
    const tenant = (c.get("principal") as Principal | undefined)?.tenant
    if (tenant === undefined) return
    const status = c.res.status
    const increments: Array<readonly [UsageMetric, string, number]> = [
      ["requests", routeClass(c.req.method, c.req.path), 1],
    ]
    if (status === 429) increments.push(["rate_limited", "", 1])
    if (status >= 400 && status < 500) {
      const code = answerCodeOf(c)
      if (code instanceof Promise)
        waitUntil(code.then((known) => count(env, waitUntil, tenant, [["refusals", known, 1]])))
      else if (code !== undefined) increments.push(["refusals", code, 1])
    }
    count(env, waitUntil, tenant, increments)
  } catch (error) {
    console.warn("emberlog: a request's usage was not counted", error)
  }
}

/** The MCP tools' directory, counting tool calls and the commands tools send. */
export const countingDirectory = (directory: ActorDirectory, recorder: UsageRecorder | undefined): ActorDirectory =>
  recorder === undefined
    ? directory
    : {
        ...directory,
        usage: recorder,
        actor: (kind, id) => {
          const actor = directory.actor(kind, id)
          return new Proxy(actor, {
            get: (target, key) => {
              if (key === "command")
                return async (request: Parameters<typeof actor.command>[0]) => {
                  const reply = await target.command(request)
                  recorder.commandAnswered(reply)
                  return reply
                }
              // Stub methods run on the stub itself (RPC stubs have no usable `bind`).
              const value: unknown = Reflect.get(target, key)
              return typeof value === "function"
                ? (...args: Array<unknown>) => Reflect.apply(value, target, args)
                : value
            },
          })
        },
      }

/**
 * An MCP session object's directory (2025-11-25 sessions run their tools there): counting when
 * the edge said the app counts usage; written through the object's own waitUntil.
 */
export const sessionDirectory = (
  request: Request,
  env: Env,
  ctx: { waitUntil(work: Promise<unknown>): void },
  directory: ActorDirectory,
): ActorDirectory =>
  request.headers.get(USAGE_HEADER) === "on"
    ? countingDirectory(
        directory,
        recorderFor(
          env,
          (work) => ctx.waitUntil(work),
          () => directory.principal.tenant,
        ),
      )
    : directory

// ---- Reading and erasing ----

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/
const DAY_MS = 86_400_000

/** A `YYYY-MM-DD` query value as a UTC midnight; 400 invalid_query for anything else (2026-02-30 included). */
const dayParam = (name: string, value: string): number => {
  const match = DAY.exec(value)
  const at = match === null ? Number.NaN : Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]))
  if (Number.isNaN(at) || utcDay(at) !== value)
    throw badRequest("invalid_query", `${name} must be a UTC day as YYYY-MM-DD, e.g. ${utcDay(Date.now())}`, {
      [name]: value,
    })
  return at
}

/** `from`..`to`, both included: by default the last DEFAULT_DAYS days up to today (or up to `to`). */
export const usageRange = (from: string | undefined, to: string | undefined): { from: string; to: string } => {
  const end = to === undefined ? Date.parse(utcDay(Date.now())) : dayParam("to", to)
  const start = from === undefined ? end - (DEFAULT_DAYS - 1) * DAY_MS : dayParam("from", from)
  if (start > end)
    throw badRequest("invalid_query", "from must not be after to", { from: utcDay(start), to: utcDay(end) })
  if ((end - start) / DAY_MS + 1 > MAX_DAYS)
    throw badRequest("invalid_query", `A usage read spans at most ${MAX_DAYS} days`, {
      from: utcDay(start),
      to: utcDay(end),
    })
  return { from: utcDay(start), to: utcDay(end) }
}

/** One day's (or the range's) counts. */
export interface UsageCounts {
  requests: Record<string, number>
  commands: number
  events: number
  tools: Record<string, number>
  refusals: Record<string, number>
  rateLimited: number
}

export interface UsageReport {
  readonly tenant: string
  readonly from: string
  readonly to: string
  /** The days with any usage, oldest first. */
  readonly days: ReadonlyArray<{ readonly day: string } & UsageCounts>
  readonly total: UsageCounts
}

const emptyCounts = (): UsageCounts => ({
  requests: {},
  commands: 0,
  events: 0,
  tools: {},
  refusals: {},
  rateLimited: 0,
})

const addRow = (counts: UsageCounts, { metric, key, count }: UsageRow) => {
  if (metric === "requests" || metric === "tools" || metric === "refusals")
    counts[metric][key] = (counts[metric][key] ?? 0) + count
  else if (metric === "rate_limited") counts.rateLimited += count
  else counts[metric] += count
}

export const usageReport = (
  tenant: string,
  range: { from: string; to: string },
  rows: ReadonlyArray<UsageRow>,
): UsageReport => {
  const days = new Map<string, UsageCounts>()
  const total = emptyCounts()
  for (const row of rows) {
    let day = days.get(row.day)
    if (day === undefined) days.set(row.day, (day = emptyCounts()))
    addRow(day, row)
    addRow(total, row)
  }
  return { tenant, ...range, days: [...days].map(([day, counts]) => ({ day, ...counts })), total }
}

/** Erases a tenant's usage (tenant deletion calls it): its usage object, and what this isolate has not written yet. */
export const eraseUsage = async (env: Pick<Env, "EMBERLOG_TOPIC">, tenant: string): Promise<void> => {
  pending.delete(tenant)
  await usageObject(env.EMBERLOG_TOPIC, tenant).eraseUsage()
}

/** `GET /v1/usage` and the operator's `GET /v1/admin/tenants/{tenant}/usage`; without `usage: true`, 404 usage_off. */
export const usageRoutes = (app: App, enabled: boolean) => {
  const read = async (c: Parameters<MiddlewareHandler<AppEnv>>[0], tenant: string) => {
    if (!enabled)
      throw new HttpError(404, "usage_off", "This app does not count usage: turn it on with emberlog({ usage: true })")
    const range = usageRange(c.req.query("from"), c.req.query("to"))
    // This isolate's own counts first, so a caller sees what it just did.
    await flush(tenant)
    const namespace = targetOf(c.env as UsageEnv).namespace
    if (namespace === undefined) throw new HttpError(503, "binding_missing", "No Durable Object binding EMBERLOG_TOPIC")
    return c.json(usageReport(tenant, range, await usageObject(namespace, tenant).readUsage(range.from, range.to)))
  }
  app.get("/v1/usage", requireScope("read"), (c) => read(c, c.get("principal").tenant))
  app.get("/v1/admin/tenants/:tenant/usage", requireScope("operator"), (c) => read(c, c.req.param("tenant")))
}
