// Observability (README, "Observability"): one JSON line per request with the fields it claims and
// nothing secret, GET /v1/admin/metrics counting what was sent (operators only), METRICS data points,
// and /health degraded by a failing R2 bucket or an outbox backlog. Each test builds its own app, so
// its counters start at zero whatever other files sent through the shared isolate.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test"
import { SignJWT } from "jose"
import { afterEach, describe, expect, it, vi } from "vitest"
import { deliveryFaults } from "../../src/actors/outbox.js"
import { outboxLag, reportOutboxLag } from "../../src/actors/outbox-lag.js"
import { createApp } from "../../src/edge/app.js"
import type { MetricsSnapshot } from "../../src/edge/metrics.js"
import type { RequestLine } from "../../src/edge/request-log.js"
import { Counter } from "../../src/kinds/counter/entity.js"
import { job } from "../../src/kinds/job/index.js"
import { memory } from "../../src/kinds/memory/index.js"
import { durableStream } from "../../src/kinds/stream/index.js"
import { defineKind } from "../../src/edge/kind.js"
import { githubOAuth } from "../../src/edge/oauth/github.js"
import { HEALTH_PART_TIMEOUT_MS } from "../../src/edge/health.js"
import { actorApi, BASE, freshId } from "./helpers.js"

const SECRET = "observability-test-" + crypto.randomUUID()
let n = 0
const freshTenant = () => `obs${Date.now().toString(36)}${++n}`

const token = (sub: string, scope: string, tenant: string, secret = SECRET) =>
  new SignJWT({ sub, scope, tenant })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(secret))

type Settings = Record<string, unknown>
/** Auth on, as in production, and request lines on (the test project turns them off). */
const AUTH_ON: Settings = { AUTH_MODE: undefined, JWT_SECRET: SECRET, REQUEST_LOGS: undefined }

/** A request to `app`, waiting for its waitUntil work (a line whose error code is read off the body). */
const call = async (
  app: { fetch: (request: Request, env: any, ctx: ExecutionContext) => Response | Promise<Response> },
  path: string,
  init: RequestInit & { bearer?: string; settings?: Settings } = {},
) => {
  const { bearer, settings = AUTH_ON, ...rest } = init
  const headers = new Headers(rest.headers)
  if (bearer !== undefined) headers.set("Authorization", `Bearer ${bearer}`)
  const ctx = createExecutionContext()
  const url = path.startsWith("https://") ? path : `${BASE}${path}`
  const response = await app.fetch(new Request(url, { ...rest, headers }), { ...env, ...settings }, ctx)
  const text = await response.text()
  await waitOnExecutionContext(ctx)
  return { status: response.status, body: text.startsWith("{") ? JSON.parse(text) : text }
}

/** The request lines written to the console while `run` runs (everything else logged is kept apart). */
const capturingLines = async (run: () => Promise<void>) => {
  const written: Array<string> = []
  const spy = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
    written.push(args.map(String).join(" "))
  })
  try {
    await run()
  } finally {
    spy.mockRestore()
  }
  return { written, lines: written.map((text) => JSON.parse(text) as RequestLine) }
}

afterEach(() => {
  deliveryFaults.fail = 0
})

describe("request logs and metrics", () => {
  it("logs one line per request with its route, principal, actor, status and code, and no secret", async () => {
    const app = createApp({ kinds: [Counter] })
    const tenant = freshTenant()
    const writer = await token("alice", "read write admin", tenant)
    const operator = await token("olga", "read operator", tenant)
    const id = freshId("obs")
    const increment = JSON.stringify({ type: "Increment", by: 2 })
    const querySecrets = "token=QUERY-TOKEN-VALUE&code=OAUTH-CODE-VALUE&access_token=ACCESS-TOKEN-VALUE"
    // A well-formed token signed with another key: its claims decode, and must not be believed.
    const forged = await token("mallory", "read write admin operator", "mallory", "not-the-server-key")
    const answers: Array<number> = []
    const { written, lines } = await capturingLines(async () => {
      const send = async (path: string, init: Parameters<typeof call>[2]) =>
        answers.push((await call(app, path, init)).status)
      const post = { method: "POST", headers: { "content-type": "application/json", "cf-ray": "8c1f4e0f2a3b4c5d-AMS" } }
      await send(`/v1/counter/${id}/commands?${querySecrets}`, { ...post, body: increment, bearer: writer })
      // A cf-ray that is no ray id (a client can send one where Cloudflare is not in front) is not logged.
      const bogusRay = { "cf-ray": "a".repeat(64) }
      await send(`/v1/counter/${id}/commands`, { method: "POST", body: increment, bearer: writer, headers: bogusRay })
      await send(`/v1/counter/${id}?${querySecrets}`, { bearer: writer })
      await send(`/v1/counter/${id}/commands`, { method: "POST", body: "{not json", bearer: writer })
      await send(`/v1/counter/${id}`, { bearer: forged })
      await send(`/v1/no-such-route`, { bearer: writer })
      await send(`/v1/admin/metrics`, { bearer: writer })
    })
    expect(answers).toEqual([200, 200, 200, 400, 401, 404, 403])

    // One line a request, in order, each of them JSON.
    expect(lines.map(({ log, method, route, status, code }) => ({ log, method, route, status, code }))).toEqual([
      { log: "request", method: "POST", route: "/v1/:kind/:id/commands", status: 200, code: undefined },
      { log: "request", method: "POST", route: "/v1/:kind/:id/commands", status: 200, code: undefined },
      { log: "request", method: "GET", route: "/v1/:kind/:id", status: 200, code: undefined },
      { log: "request", method: "POST", route: "/v1/:kind/:id/commands", status: 400, code: "invalid_json" },
      { log: "request", method: "GET", route: "/v1/:kind/:id", status: 401, code: "invalid_token" },
      { log: "request", method: "GET", route: null, status: 404, code: "not_found" },
      { log: "request", method: "GET", route: "/v1/admin/metrics", status: 403, code: "insufficient_scope" },
    ])
    expect(lines[0]).toEqual({
      log: "request",
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      requestId: "8c1f4e0f2a3b4c5d-AMS",
      method: "POST",
      route: "/v1/:kind/:id/commands",
      routeClass: "command",
      tenant,
      principal: "alice",
      kind: "counter",
      id,
      status: 200,
      durationMs: expect.any(Number),
    })
    // Without a cf-ray id, a generated one; without a verified token, no tenant and no principal.
    expect(lines[1]!.requestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(lines[4]).toMatchObject({ routeClass: "read", tenant: null, principal: null, kind: "counter", id })
    expect(lines[6]).toMatchObject({ routeClass: "admin", principal: "alice" })
    expect(lines[6]).not.toHaveProperty("kind")

    for (const text of written) {
      for (const secret of [writer, forged, "QUERY-TOKEN-VALUE", "OAUTH-CODE-VALUE", "ACCESS-TOKEN-VALUE"])
        expect(text).not.toContain(secret)
      expect(text).not.toContain("mallory")
      expect(text).not.toContain("a".repeat(64))
      expect(text).not.toMatch(/bearer|authorization|cookie|token=|code=|\?/i)
    }

    // The metrics count exactly what was sent (this read itself is counted after it answers).
    const quiet = { ...AUTH_ON, REQUEST_LOGS: "off" }
    const read = await call(app, "/v1/admin/metrics", { bearer: operator, settings: quiet })
    expect(read.status).toBe(200)
    const metrics = read.body as MetricsSnapshot
    expect(metrics.scope).toBe("isolate")
    expect(metrics.requests).toBe(7)
    expect(metrics.errors).toEqual({ insufficient_scope: 1, invalid_json: 1, invalid_token: 1, not_found: 1 })
    expect(metrics.commands).toEqual({ appended: 2, events: 2 })
    expect(Object.fromEntries(Object.entries(metrics.latency).map(([name, { count }]) => [name, count]))).toEqual({
      admin: 1,
      command: 3,
      read: 3,
    })
    for (const { p50, p95, p99 } of Object.values(metrics.latency)) {
      expect(p50).toEqual(expect.any(Number))
      expect(p50!).toBeLessThanOrEqual(p95!)
      expect(p95!).toBeLessThanOrEqual(p99!)
    }
    const slots = metrics.recent.slots
    expect(slots.reduce((sum, slot) => sum + slot.requests, 0)).toBe(7)
    expect(slots.reduce((sum, slot) => sum + slot.errors, 0)).toBe(4)
    expect((await call(app, "/v1/admin/metrics", { bearer: operator, settings: quiet })).body.requests).toBe(8)
  })

  it("logs app.all routes, OPTIONS, WebSockets, 500s and answers no HttpError made, each by its route and code", async () => {
    // A kind's routes that fail: an Error, and a value that is not one (Hono's onError never sees it).
    const failing = defineKind({
      entity: Counter,
      routes: (app) => {
        app.get("/failing/error", () => {
          throw new Error("boom")
        })
        app.get("/failing/string", () => {
          throw "not an Error"
        })
        app.get("/failing/teapot", (c) => c.text("short and stout", 418))
      },
    })
    const app = createApp({ kinds: [failing, durableStream] })
    const settings = { REQUEST_LOGS: undefined }
    const answers: Array<number> = []
    const error = vi.spyOn(console, "error").mockImplementation(() => {})
    const { lines } = await capturingLines(async () => {
      const send = async (path: string, init: Parameters<typeof call>[2] = {}) =>
        answers.push((await call(app, path, { settings, ...init })).status)
      const mcpHeaders = { "content-type": "application/json", accept: "application/json, text/event-stream" }
      await send("/mcp", { method: "POST", headers: mcpHeaders, body: "{not json" })
      await send(`/v1/stream/${freshId("obs")}`, { method: "PATCH" })
      await send(`/v1/counter/${freshId("obs")}`, { method: "OPTIONS" })
      await send("/failing/error")
      await send("/failing/string")
      await send("/failing/teapot")
      const socket = await app.fetch(
        new Request(`${BASE}/v1/counter/${freshId("obs")}/ws`, { headers: { Upgrade: "websocket" } }),
        { ...env, ...settings },
        createExecutionContext(),
      )
      answers.push(socket.status)
      socket.webSocket!.accept()
      socket.webSocket!.close(1000, "done")
    })
    error.mockRestore()
    expect(answers).toEqual([400, 405, 404, 500, 500, 418, 101])
    expect(
      lines.map(({ method, route, routeClass, status, code }) => ({ method, route, routeClass, status, code })),
    ).toEqual([
      { method: "POST", route: "/mcp", routeClass: "mcp", status: 400, code: "jsonrpc_-32700" },
      { method: "PATCH", route: "/v1/stream/*", routeClass: "other", status: 405, code: "method_not_allowed" },
      { method: "OPTIONS", route: null, routeClass: "other", status: 404, code: "not_found" },
      { method: "GET", route: "/failing/error", routeClass: "other", status: 500, code: "internal" },
      { method: "GET", route: "/failing/string", routeClass: "other", status: 500, code: "internal" },
      { method: "GET", route: "/failing/teapot", routeClass: "other", status: 418, code: "http_418" },
      { method: "GET", route: "/v1/:kind/:id/ws", routeClass: "subscribe", status: 101, code: undefined },
    ])
    const metrics = (await call(app, "/v1/admin/metrics", { settings: { REQUEST_LOGS: "off" } }))
      .body as MetricsSnapshot
    expect(metrics.requests).toBe(7)
    expect(metrics.errors).toMatchObject({ internal: 2, http_418: 1, "jsonrpc_-32700": 1 })
  })

  it("logs the OAuth server's endpoints by their route, and no code or secret sent to them", async () => {
    const app = createApp({ kinds: [Counter], auth: githubOAuth() })
    const settings = {
      AUTH_MODE: undefined,
      REQUEST_LOGS: undefined,
      GITHUB_CLIENT_ID: "gh-client-id",
      GITHUB_CLIENT_SECRET: "gh-client-secret",
    }
    const form = "grant_type=authorization_code&code=BODY-CODE-VALUE&client_id=nobody&code_verifier=VERIFIER-VALUE"
    const answers: Array<number> = []
    const { written, lines } = await capturingLines(async () => {
      const headers = { "content-type": "application/x-www-form-urlencoded" }
      answers.push(
        (
          await call(app, "https://emberlog.test/oauth/token?code=QUERY-CODE-VALUE", {
            method: "POST",
            headers,
            body: form,
            settings,
          })
        ).status,
      )
      answers.push(
        (
          await call(app, "https://emberlog.test/oauth/register", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: "{}",
            settings,
          })
        ).status,
      )
    })
    expect(answers.every((status) => status >= 400 && status < 500)).toBe(true)
    expect(lines.map(({ route, status }) => ({ route, status }))).toEqual([
      { route: "/oauth/token", status: answers[0] },
      { route: "/oauth/register", status: answers[1] },
    ])
    for (const line of lines) expect(line.code).toEqual(expect.any(String))
    for (const text of written)
      for (const secret of ["BODY-CODE-VALUE", "QUERY-CODE-VALUE", "VERIFIER-VALUE", "gh-client-secret"])
        expect(text).not.toContain(secret)
  })

  it("caps the logged kind and id at MAX_LOGGED_SEGMENT characters", async () => {
    const app = createApp({ kinds: [Counter] })
    const { lines } = await capturingLines(async () => {
      await call(app, `/v1/counter/${"x".repeat(5_000)}`, { settings: { REQUEST_LOGS: undefined } })
    })
    expect(lines).toHaveLength(1)
    expect(lines[0]!.id).toBe(`${"x".repeat(256)}…`)
  })

  it("reads an error body once when the usage counters count it too", async () => {
    const app = createApp({ kinds: [durableStream], usage: true })
    const clone = vi.spyOn(Response.prototype, "clone")
    try {
      const { lines } = await capturingLines(async () => {
        const settings = { REQUEST_LOGS: undefined }
        const { status } = await call(app, `/v1/stream/${freshId("obs")}`, { method: "PATCH", settings })
        expect(status).toBe(405)
      })
      expect(lines.map(({ code }) => code)).toEqual(["method_not_allowed"])
      expect(clone).toHaveBeenCalledTimes(1)
    } finally {
      clone.mockRestore()
    }
  })

  it("REQUEST_LOGS=off writes no line, and the metrics count all the same", async () => {
    const app = createApp({ kinds: [Counter] })
    const { written } = await capturingLines(async () => {
      const settings = { REQUEST_LOGS: "off" }
      await call(app, `/v1/counter/${freshId("quiet")}`, { settings })
      expect((await call(app, "/v1/admin/metrics", { settings })).body.requests).toBe(1)
    })
    expect(written).toEqual([])
  })

  it("writes one METRICS data point per request when the binding is there", async () => {
    const app = createApp({ kinds: [Counter] })
    const points: Array<AnalyticsEngineDataPoint> = []
    const METRICS = { writeDataPoint: (point: AnalyticsEngineDataPoint) => void points.push(point) }
    const settings = { METRICS, REQUEST_LOGS: "off" }
    const id = freshId("points")
    const body = JSON.stringify({ type: "Increment", by: 1 })
    await call(app, `/v1/counter/${id}/commands`, { method: "POST", body, settings })
    await call(app, `/v1/counter/${id}?at=x`, { settings })
    expect(points).toEqual([
      {
        indexes: ["public"],
        blobs: ["command", "200", "", "/v1/:kind/:id/commands"],
        doubles: [expect.any(Number)],
      },
      { indexes: ["public"], blobs: ["read", "400", "invalid_query", "/v1/:kind/:id"], doubles: [expect.any(Number)] },
    ])
  })

  it("counts subscriptions opened, and SSE streams open until their reader goes", async () => {
    const app = createApp({ kinds: [Counter] })
    const settings = { REQUEST_LOGS: "off" }
    const metrics = async () => (await call(app, "/v1/admin/metrics", { settings })).body as MetricsSnapshot
    const id = freshId("subs")
    const ctx = createExecutionContext()
    const sse = await app.fetch(new Request(`${BASE}/v1/counter/${id}/events/stream`), { ...env, ...settings }, ctx)
    expect(sse.status).toBe(200)
    expect((await metrics()).subscriptions).toEqual({ opened: { websocket: 0, sse: 1 }, open: { sse: 1 } })
    const socket = await app.fetch(
      new Request(`${BASE}/v1/counter/${id}/ws`, { headers: { Upgrade: "websocket" } }),
      { ...env, ...settings },
      createExecutionContext(),
    )
    expect(socket.status).toBe(101)
    socket.webSocket!.accept()
    socket.webSocket!.close(1000, "done")
    await sse.body!.cancel()
    await expect
      .poll(async () => (await metrics()).subscriptions)
      .toEqual({ opened: { websocket: 1, sse: 1 }, open: { sse: 0 } })
    await waitOnExecutionContext(ctx)
  })

  it("counts a Durable Stream's live=sse as a subscription, and a HEAD of an event stream as none", async () => {
    const app = createApp({ kinds: [Counter] })
    const settings = { REQUEST_LOGS: "off" }
    const metrics = async () => (await call(app, "/v1/admin/metrics", { settings })).body as MetricsSnapshot
    const id = freshId("live")
    const head = await app.fetch(
      new Request(`${BASE}/v1/counter/${id}/events/stream`, { method: "HEAD" }),
      { ...env, ...settings },
      createExecutionContext(),
    )
    expect(head.status).toBe(200)
    expect((await metrics()).subscriptions).toEqual({ opened: { websocket: 0, sse: 0 }, open: { sse: 0 } })
    const ctx = createExecutionContext()
    const live = await app.fetch(
      new Request(`${BASE}/v1/counter/${id}/log?offset=-1&live=sse`),
      { ...env, ...settings },
      ctx,
    )
    expect(live.status).toBe(200)
    expect((await metrics()).subscriptions).toEqual({ opened: { websocket: 0, sse: 1 }, open: { sse: 1 } })
    await live.body!.cancel()
    await expect.poll(async () => (await metrics()).subscriptions.open).toEqual({ sse: 0 })
    await waitOnExecutionContext(ctx)
  })
})

describe("/health", () => {
  const app = createApp({ kinds: [Counter, job, memory] })
  const health = async (settings: Settings) => call(app, "/health", { settings: { REQUEST_LOGS: "off", ...settings } })
  const answering = { head: async () => null }

  it("is ok with every bound dependency answering, and says what is not configured", async () => {
    const { status, body } = await health({ MEMORY_BUCKET: answering, EMBERLOG_ARCHIVE: answering, AI: undefined })
    expect(status).toBe(200)
    expect(body.status).toBe("ok")
    expect(body.dependencies).toEqual({
      executor: { status: "ok", name: "local", healthy: true, latencyMs: expect.any(Number) },
      memoryBucket: { status: "ok", binding: "MEMORY_BUCKET", latencyMs: expect.any(Number) },
      archive: { status: "ok", binding: "EMBERLOG_ARCHIVE", latencyMs: expect.any(Number) },
      ai: { status: "not_configured", binding: "AI" },
    })
    // The fields /health always had are still there.
    expect(body).toMatchObject({ service: "emberlog", executor: { name: "local", healthy: true } })
    const bare = await health({ MEMORY_BUCKET: undefined, EMBERLOG_ARCHIVE: undefined })
    expect(bare.body.status).toBe("ok")
    expect(bare.body.dependencies.memoryBucket).toEqual({ status: "not_configured", binding: "MEMORY_BUCKET" })
  })

  it("is degraded when an R2 bucket throws or does not answer, without the error's text", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    try {
      const failing = { head: () => Promise.reject(new Error("R2 is down: secret detail")) }
      const thrown = await health({ MEMORY_BUCKET: failing })
      expect(thrown.status).toBe(200)
      expect(thrown.body.status).toBe("degraded")
      expect(thrown.body.dependencies.memoryBucket).toEqual({
        status: "degraded",
        binding: "MEMORY_BUCKET",
        error: "head() failed",
        latencyMs: expect.any(Number),
      })
      expect(JSON.stringify(thrown.body)).not.toContain("secret detail")
      const hanging = { head: () => new Promise<never>(() => {}) }
      const started = Date.now()
      const silent = await health({ EMBERLOG_ARCHIVE: hanging, MEMORY_BUCKET: answering })
      expect(Date.now() - started).toBeLessThan(5_000)
      expect(silent.body.status).toBe("degraded")
      expect(silent.body.dependencies.archive).toEqual({
        status: "degraded",
        binding: "EMBERLOG_ARCHIVE",
        error: "head() did not answer within 1000 ms",
      })
      expect(silent.body.dependencies.memoryBucket.status).toBe("ok")
    } finally {
      warn.mockRestore()
    }
  })

  it("is degraded by an outbox backlog the actors report, and ok again once it is delivered", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    try {
      deliveryFaults.fail = 1_000
      const id = freshId("backlog")
      const body = JSON.stringify({ type: "Increment", by: 1 })
      for (let i = 0; i < 3; i++)
        expect((await call(app, `/v1/counter/${id}/commands`, { method: "POST", body, settings: {} })).status).toBe(200)
      expect(outboxLag().maxBehind).toBeGreaterThanOrEqual(3)
      const backlogged = await health({ MEMORY_BUCKET: answering, OUTBOX_LAG_DEGRADED: "2" })
      expect(backlogged.body.status).toBe("degraded")
      expect(backlogged.body.outbox).toMatchObject({ status: "degraded", degradedAbove: 2 })
      expect(backlogged.body.outbox.eventsBehind).toBeGreaterThanOrEqual(3)
      const metrics = (await call(app, "/v1/admin/metrics", { settings: {} })).body as MetricsSnapshot
      expect(metrics.outboxLag.actorsBehind).toBeGreaterThanOrEqual(1)

      // The actor's own retry (backoff from about a second) delivers, and reports it is caught up.
      deliveryFaults.fail = 0
      await expect
        .poll(async () => (await health({ MEMORY_BUCKET: answering, OUTBOX_LAG_DEGRADED: "2" })).body.outbox.status, {
          timeout: 20_000,
          interval: 200,
        })
        .toBe("ok")
    } finally {
      warn.mockRestore()
    }
  })
  it("reuses an R2 probe for a few seconds: anyone may call /health", async () => {
    let heads = 0
    const counting = {
      head: async () => {
        heads++
        return null
      },
    }
    for (let i = 0; i < 3; i++) expect((await health({ MEMORY_BUCKET: counting })).body.status).toBe("ok")
    expect(heads).toBe(1)
  })

  it("probes no memory bucket and looks for no AI in an app that does not serve the memory kind", async () => {
    const bare = createApp({ kinds: [Counter] })
    const failing = { head: () => Promise.reject(new Error("down")) }
    const { body } = await call(bare, "/health", { settings: { REQUEST_LOGS: "off", MEMORY_BUCKET: failing } })
    expect(body.status).toBe("ok")
    expect(body.dependencies).not.toHaveProperty("memoryBucket")
    expect(body.dependencies).not.toHaveProperty("ai")
  })

  it("is degraded when a kind archives and EMBERLOG_ARCHIVE is not bound (its actors keep every event)", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    try {
      const archiving = defineKind({ entity: Counter, retention: { archiveAfterEvents: 1000 } })
      const { body } = await call(createApp({ kinds: [archiving] }), "/health", {
        settings: { REQUEST_LOGS: "off", EMBERLOG_ARCHIVE: undefined },
      })
      expect(body.status).toBe("degraded")
      expect(body.dependencies.archive).toEqual({ status: "degraded", error: expect.stringContaining("counter") })
      const keeping = await call(createApp({ kinds: [Counter] }), "/health", {
        settings: { REQUEST_LOGS: "off", EMBERLOG_ARCHIVE: undefined },
      })
      expect(keeping.body.status).toBe("ok")
      expect(keeping.body.dependencies).not.toHaveProperty("archive")
    } finally {
      warn.mockRestore()
    }
  })

  it("reports a kind's report field that is no object as its value, not spread into characters", async () => {
    const versioned = defineKind({ ...job, health: async () => ({ healthy: true, report: { model: "v2" } }) })
    const { body } = await call(createApp({ kinds: [Counter, versioned] }), "/health", {
      settings: { REQUEST_LOGS: "off" },
    })
    expect(body.model).toBe("v2")
    expect(body.dependencies.model).toEqual({ status: "ok", value: "v2" })
  })

  it("answers in time, degraded, when a kind's part does not answer", async () => {
    const hanging = defineKind({ ...job, health: () => new Promise<never>(() => {}) })
    const slow = createApp({ kinds: [Counter, hanging] })
    const started = Date.now()
    const { body } = await call(slow, "/health", { settings: { REQUEST_LOGS: "off" } })
    expect(Date.now() - started).toBeLessThan(HEALTH_PART_TIMEOUT_MS + 2_000)
    expect(body.status).toBe("degraded")
    expect(body.dependencies.job).toEqual({
      status: "degraded",
      error: `no answer within ${HEALTH_PART_TIMEOUT_MS} ms`,
    })
  })

  it("is not degraded by many actors each a little behind, but by one stalled too long", async () => {
    const now = Date.now()
    const actors = Array.from({ length: 50 }, (_, i) => `obs-many-${now}-${i}`)
    try {
      for (const actor of actors) reportOutboxLag(actor, 30, false)
      const many = await health({ MEMORY_BUCKET: answering })
      expect(many.body.outbox).toMatchObject({ status: "ok", degradedAbove: 1000 })
      expect(many.body.outbox.eventsBehind).toBeGreaterThan(1000)
      // Behind since a minute and more ago, with no delivery since.
      reportOutboxLag(actors[0]!, 0, true)
      reportOutboxLag(actors[0]!, 30, false, now - 61_000)
      reportOutboxLag(actors[0]!, 30, false)
      const stalled = await health({ MEMORY_BUCKET: answering })
      expect(stalled.body.outbox).toMatchObject({ status: "degraded", stalledAboveMs: 60_000 })
      expect(stalled.body.outbox.stalledMs).toBeGreaterThan(60_000)
    } finally {
      for (const actor of actors) reportOutboxLag(actor, 0, true)
    }
  })

  it("forgets an actor's lag when it is erased", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    try {
      deliveryFaults.fail = 1_000
      const id = freshId("erased-lag")
      const body = JSON.stringify({ type: "Increment", by: 1 })
      expect((await call(app, `/v1/counter/${id}/commands`, { method: "POST", body, settings: {} })).status).toBe(200)
      const before = outboxLag().actorsBehind
      expect(before).toBeGreaterThanOrEqual(1)
      await actorApi("counter", id).eraseAll()
      expect(outboxLag().actorsBehind).toBe(before - 1)
    } finally {
      warn.mockRestore()
    }
  })
})
