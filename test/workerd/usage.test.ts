// Usage per tenant: what requests, commands, MCP tool calls and refusals count, read back over
// GET /v1/usage (own tenant) and the operator's route; off without `usage: true`; erased by eraseUsage.
// Each test has a tenant of its own: with auth off, {tenant}.BASE_DOMAIN names the namespace.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test"
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { SignJWT } from "jose"
import { describe, expect, it, vi } from "vitest"
import worker from "../../src/app.js"
import { scopedName } from "../../src/core/names.js"
import { USAGE_OBJECT } from "../../src/actors/usage.js"
import { createApp } from "../../src/edge/app.js"
import { eraseUsage, utcDay } from "../../src/edge/usage.js"
import { Counter } from "../../src/kinds/counter/entity.js"

const DOMAIN = "usage.test"
const SECRET = "usage-test-" + crypto.randomUUID()
let n = 0
const freshTenant = () => `u${Date.now().toString(36)}${++n}`
const today = () => utcDay(Date.now())

type Fetch = { fetch(request: Request, env: any, ctx: ExecutionContext): Response | Promise<Response> }

/**
 * A request to the app on the tenant's subdomain; waits for its waitUntil work (the usage write)
 * as the platform would before the isolate may go, so what it counted is readable right after.
 */
const call = async (
  tenant: string,
  path: string,
  init: RequestInit & { settings?: Record<string, unknown>; app?: Fetch } = {},
) => {
  const { settings, app = worker, ...rest } = init
  const ctx = createExecutionContext()
  const response = await app.fetch(
    new Request(`http://${tenant}.${DOMAIN}${path}`, rest),
    {
      ...env,
      BASE_DOMAIN: DOMAIN,
      USAGE_FLUSH_MS: "0",
      MCP_ALLOWED_HOSTS: `${tenant}.${DOMAIN}`,
      ...settings,
    } as never,
    ctx,
  )
  const text = await response.text()
  await waitOnExecutionContext(ctx)
  return { status: response.status, body: text.startsWith("{") ? JSON.parse(text) : text, headers: response.headers }
}

const command = (tenant: string, id: string, body: unknown, headers: Record<string, string> = {}) =>
  call(tenant, `/v1/counter/${id}/commands`, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  })

const usage = async (tenant: string, query = "") => {
  const read = await call(tenant, `/v1/usage${query}`)
  expect(read.status, JSON.stringify(read.body)).toBe(200)
  return read.body
}

/** Today's counts of the tenant, as its own usage route reports them. */
const todayOf = async (tenant: string) => (await usage(tenant)).days.find((day: any) => day.day === today())

describe("usage per tenant", () => {
  it("counts requests by route class, commands and their events, refusals by code", async () => {
    const tenant = freshTenant()
    const id = "c1"
    expect((await command(tenant, id, { type: "Increment", by: 2 })).status).toBe(200)
    expect((await command(tenant, id, { type: "Increment", by: 3 }, { "Idempotency-Key": "k1" })).status).toBe(200)
    // A replay appends nothing: it is a request, not a command appended.
    const replay = await command(tenant, id, { type: "Increment", by: 3 }, { "Idempotency-Key": "k1" })
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true")
    expect((await call(tenant, `/v1/counter/${id}`)).body).toMatchObject({ version: 2, state: { value: 5 } })
    expect((await call(tenant, `/v1/counter/${id}/events`)).status).toBe(200)
    expect((await command(tenant, id, "{not json")).body.error.code).toBe("invalid_json")
    expect((await command(tenant, id, { type: "Increment", by: 1 }, { "If-Match": "0" })).status).toBe(409)
    // Answered by not-found and by the body limit, not by a thrown HttpError: still counted by code.
    expect((await call(tenant, "/v1/nokind/x")).body.error.code).toBe("unknown_kind")
    const large = await command(tenant, id, JSON.stringify({ type: "Increment", by: 1, pad: "x".repeat(300_000) }))
    expect(large.status).toBe(413)
    expect((await call(tenant, "/v1/admin/tenants/other/counter/x")).status).toBe(200)

    const report = await usage(tenant)
    expect(report).toMatchObject({ tenant, to: today() })
    expect(report.days).toEqual([
      {
        day: today(),
        requests: { command: 6, read: 3, admin: 1 },
        commands: 2,
        events: 2,
        tools: {},
        refusals: { invalid_json: 1, version_conflict: 1, unknown_kind: 1, too_large: 1 },
        rateLimited: 0,
      },
    ])
    const { day: _day, ...counts } = report.days[0]
    expect(report.total).toEqual(counts)
    // The read itself is counted once it is answered.
    expect((await todayOf(tenant)).requests.read).toBe(4)
  })

  it("keeps tenants apart; an operator reads any tenant's usage, other scopes are refused", async () => {
    const [alice, bob] = [freshTenant(), freshTenant()]
    await command(alice, "a", { type: "Increment", by: 1 })
    await command(alice, "a", { type: "Increment", by: 1 })
    await command(bob, "b", { type: "Increment", by: 1 })
    expect((await todayOf(alice)).commands).toBe(2)
    expect((await todayOf(bob)).commands).toBe(1)
    // With auth on: the tenant's own token reads its own usage only; the admin route needs operator.
    const jwt = (scope: string, tenant: string) =>
      new SignJWT({ sub: `${tenant}-user`, scope, tenant })
        .setProtectedHeader({ alg: "HS256" })
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(new TextEncoder().encode(SECRET))
    const authOn = { AUTH_MODE: undefined, JWT_SECRET: SECRET, BASE_DOMAIN: undefined }
    const asBob = await jwt("read", bob)
    const own = await call(alice, "/v1/usage", { headers: { Authorization: `Bearer ${asBob}` }, settings: authOn })
    expect(own.body).toMatchObject({ tenant: bob, total: { commands: 1 } })
    const refused = await call(alice, `/v1/admin/tenants/${alice}/usage`, {
      headers: { Authorization: `Bearer ${await jwt("read write admin", bob)}` },
      settings: authOn,
    })
    expect([refused.status, refused.body.error.code]).toEqual([403, "insufficient_scope"])
    const operator = await call(alice, `/v1/admin/tenants/${alice}/usage`, {
      headers: { Authorization: `Bearer ${await jwt("read operator", "ops")}` },
      settings: authOn,
    })
    expect(operator.body).toMatchObject({ tenant: alice, total: { commands: 2, events: 2 } })
  })

  it("counts 429s, by themselves and as refusals", async () => {
    const tenant = freshTenant()
    const exhausted = { LIMITER: { limit: async () => ({ success: false }) } }
    const limited = await command(tenant, "c", { type: "Increment", by: 1 }, {})
    expect(limited.status).toBe(200)
    const refused = await call(tenant, "/v1/counter/c", { settings: exhausted })
    expect([refused.status, refused.body.error.code]).toEqual([429, "rate_limited"])
    expect(await todayOf(tenant)).toMatchObject({
      requests: { command: 1, read: 1 },
      refusals: { rate_limited: 1 },
      rateLimited: 1,
    })
  })

  it("counts MCP tool calls by tool, their failures and the commands they send (2026-07-28 client)", async () => {
    const tenant = freshTenant()
    const client = new ClientV2({ name: "usage-test", version: "1" }, { versionNegotiation: { mode: "auto" } })
    const fetcher = async (url: string | URL, init?: RequestInit) => {
      const ctx = createExecutionContext()
      const response = await worker.fetch(
        new Request(url, init),
        { ...env, BASE_DOMAIN: DOMAIN, USAGE_FLUSH_MS: "0", MCP_ALLOWED_HOSTS: `${tenant}.${DOMAIN}` } as never,
        ctx,
      )
      // Buffered, so the request's waitUntil work (the usage write) is done when the client reads it.
      const body = await response.arrayBuffer()
      await waitOnExecutionContext(ctx)
      return new Response(body, { status: response.status, headers: response.headers })
    }
    await client.connect(new TransportV2(new URL(`http://${tenant}.${DOMAIN}/mcp`), { fetch: fetcher }))
    expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28")
    const sent = await client.callTool({ name: "counter_increment", arguments: { id: "m", command: { by: 4 } } })
    expect(sent.structuredContent).toMatchObject({ version: 1 })
    await client.callTool({ name: "counter_increment", arguments: { id: "m", command: { by: 1 } } })
    const bad = await client.callTool({ name: "read_state", arguments: { kind: "counter", id: "m", asOf: "never" } })
    expect(bad.isError).toBe(true)
    await client.close()
    const day = await todayOf(tenant)
    expect(day.tools).toEqual({ counter_increment: 2, read_state: 1 })
    expect(day).toMatchObject({ commands: 2, events: 2, refusals: { invalid_query: 1 } })
    expect(day.requests.mcp).toBeGreaterThanOrEqual(3)
  })

  it("counts tool calls of 2025-11-25 sessions, which run in the session's object", async () => {
    const tenant = freshTenant()
    const fetcher = async (url: string | URL, init?: RequestInit) =>
      worker.fetch(
        new Request(url, init),
        { ...env, BASE_DOMAIN: DOMAIN, USAGE_FLUSH_MS: "0", MCP_ALLOWED_HOSTS: `${tenant}.${DOMAIN}` } as never,
        createExecutionContext(),
      )
    const client = new Client({ name: "usage-test-v1", version: "1" })
    const transport = new StreamableHTTPClientTransport(new URL(`http://${tenant}.${DOMAIN}/mcp`), { fetch: fetcher })
    await client.connect(transport)
    expect(transport.sessionId).toBeDefined()
    await client.callTool({ name: "counter_increment", arguments: { id: "s", command: { by: 1 } } })
    await client.close()
    // The session object writes after its own interval (its settings are the deployment's).
    await vi.waitFor(async () => expect((await todayOf(tenant))?.tools).toEqual({ counter_increment: 1 }), {
      timeout: 10_000,
      interval: 200,
    })
    expect(await todayOf(tenant)).toMatchObject({ commands: 1, events: 1 })
  })

  it("validates from and to (YYYY-MM-DD, from ≤ to, at most 366 days), and defaults to the last 30 days", async () => {
    const tenant = freshTenant()
    const day = (offset: number) => utcDay(Date.now() + offset * 86_400_000)
    expect(await usage(tenant)).toMatchObject({ from: day(-29), to: day(0), days: [] })
    expect(await usage(tenant, "?from=2026-01-01&to=2026-01-31")).toMatchObject({
      from: "2026-01-01",
      to: "2026-01-31",
    })
    expect(await usage(tenant, "?to=2026-03-01")).toMatchObject({ from: "2026-01-31", to: "2026-03-01" })
    for (const query of [
      "?from=2026-1-1",
      "?from=2026-02-30",
      "?to=yesterday",
      "?from=2026-03-02&to=2026-03-01",
      "?from=2025-01-01&to=2026-01-02",
    ]) {
      const refused = await call(tenant, `/v1/usage${query}`)
      expect([refused.status, refused.body.error.code], query).toEqual([400, "invalid_query"])
    }
    // The refused reads are counted too, by code.
    expect((await todayOf(tenant)).refusals).toEqual({ invalid_query: 5 })
  })

  it("records nothing and says usage is off without usage: true", async () => {
    const tenant = freshTenant()
    const app = createApp({ kinds: [Counter] })
    const sent = await call(tenant, "/v1/counter/x/commands", {
      app,
      method: "POST",
      body: JSON.stringify({ type: "Increment", by: 1 }),
      headers: { "content-type": "application/json" },
    })
    expect(sent.status).toBe(200)
    const off = await call(tenant, "/v1/usage", { app })
    expect([off.status, off.body.error.code]).toEqual([404, "usage_off"])
    const stored = env.EMBERLOG_TOPIC.getByName(scopedName(tenant, USAGE_OBJECT)) as any
    expect(await stored.readUsage("2000-01-01", "2999-12-31")).toEqual([])
  })

  it("never fails a request when the usage store fails", async () => {
    const tenant = freshTenant()
    const broken = { getByName: () => ({ recordUsage: async () => Promise.reject(new Error("usage store down")) }) }
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined)
    try {
      const sent = await command(tenant, "x", { type: "Increment", by: 1 })
      expect(sent.status).toBe(200)
      const app = createApp({ kinds: [Counter], usage: true })
      const failing = await call(tenant, "/v1/counter/x", { app, settings: { EMBERLOG_TOPIC: broken } })
      expect(failing.body).toMatchObject({ version: 1, state: { value: 1 } })
      expect(warn.mock.calls.some(([message]) => String(message).includes("not recorded"))).toBe(true)
    } finally {
      warn.mockRestore()
    }
  })

  it("writes the same counters to Analytics Engine when USAGE is bound", async () => {
    const tenant = freshTenant()
    const points: Array<AnalyticsEngineDataPoint> = []
    const USAGE = { writeDataPoint: (point: AnalyticsEngineDataPoint) => void points.push(point) }
    await call(tenant, "/v1/counter/x/commands", {
      method: "POST",
      body: JSON.stringify({ type: "Increment", by: 1 }),
      headers: { "content-type": "application/json" },
      settings: { USAGE },
    })
    expect(points).toEqual(
      expect.arrayContaining([
        { indexes: [tenant], blobs: [today(), "requests", "command"], doubles: [1] },
        { indexes: [tenant], blobs: [today(), "commands", ""], doubles: [1] },
        { indexes: [tenant], blobs: [today(), "events", ""], doubles: [1] },
      ]),
    )
  })

  it("eraseUsage erases the tenant's usage and no other's", async () => {
    const [gone, kept] = [freshTenant(), freshTenant()]
    await command(gone, "x", { type: "Increment", by: 1 })
    await command(kept, "x", { type: "Increment", by: 1 })
    await eraseUsage(env, gone)
    expect((await usage(gone)).days).toEqual([])
    expect((await todayOf(kept)).commands).toBe(1)
  })

  it("shows usage in the inspector", async () => {
    const page = await call(freshTenant(), "/inspect")
    expect(page.body).toContain('id="usage"')
    const script = await call(freshTenant(), "/inspect/app.js")
    expect(script.body).toContain("async function showUsage()")
  })
})
