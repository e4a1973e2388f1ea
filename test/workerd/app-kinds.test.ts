// An app built from a registry serves its kinds and nothing else: /v1, MCP, the inspector and
// /health come from the listed kinds; kind modules add routes; the app adds its own.
import { createExecutionContext, env } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { Counter } from "../../src/kinds/counter/entity.js"
import { createApp } from "../../src/edge/app.js"
import { defineKind, kindRegistry } from "../../src/edge/kind.js"
import { Job } from "../../src/kinds/job/entity.js"
import { job } from "../../src/kinds/job/index.js"
import { emberlog } from "../../src/edge/factory.js"
import { guarded } from "../../src/edge/guard.js"
import { BASE, freshId } from "./helpers.js"

const counterWithRoute = defineKind({
  entity: Counter,
  routes: (app) => app.get("/v1/counter/:id/doubled", (c) => c.json({ doubled: c.req.param("id").repeat(2) })),
})
const app = createApp({
  kinds: [counterWithRoute],
  routes: (app) => app.get("/v1/hello/:id", (c) => c.json({ hello: c.req.param("id") })),
})

const call = async (path: string, init: RequestInit = {}) => {
  const response = await app.fetch(new Request(`${BASE}${path}`, init), env, createExecutionContext())
  const text = await response.text()
  const dataLine = text.split("\n").find((line) => line.startsWith("data: {"))
  return {
    status: response.status,
    text,
    body: (dataLine !== undefined
      ? JSON.parse(dataLine.slice(6))
      : text.startsWith("{")
        ? JSON.parse(text)
        : text) as any,
  }
}

const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
}
const mcp = (method: string, params: Record<string, unknown> = {}) =>
  call("/mcp", {
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: { ...params, _meta: MODERN_META } }),
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": method,
      ...(typeof params.name === "string" ? { "mcp-name": params.name } : {}),
    },
  })

describe("an app serving only the kinds it lists", () => {
  it("serves a listed kind on /v1", async () => {
    const id = freshId()
    const sent = await call(`/v1/counter/${id}/commands`, {
      method: "POST",
      body: JSON.stringify({ type: "Increment", by: 2 }),
      headers: { "content-type": "application/json" },
    })
    expect(sent).toMatchObject({ status: 200, body: { version: 1, state: { value: 2 } } })
    expect(await call(`/v1/counter/${id}`)).toMatchObject({ status: 200, body: { version: 1 } })
  })

  it("answers 404 unknown_kind, naming the served kinds, for a built-in it does not list", async () => {
    const id = freshId()
    const unlisted = [
      ["document", `/v1/document/${id}`],
      ["document", `/v1/document/${id}/events`],
      ["memory", `/v1/memory/${id}/search?q=x`],
    ]
    for (const [kind, path] of unlisted) {
      expect(await call(path!), path).toMatchObject({
        status: 404,
        body: { error: { code: "unknown_kind", message: `Unknown kind "${kind}"; known kinds: counter` } },
      })
    }
    // A served kind's unknown path is still no route.
    expect((await call(`/v1/counter/${id}/nowhere`)).body.error.code).toBe("not_found")
    const command = await call(`/v1/job/${id}/commands`, {
      method: "POST",
      body: JSON.stringify({ type: "Cancel" }),
      headers: { "content-type": "application/json" },
    })
    expect(command).toMatchObject({ status: 404, body: { error: { code: "unknown_kind" } } })
    // The unlisted kinds' own routes are not there either.
    expect((await call(`/api/jobs/${id}`)).body.error.code).toBe("not_found")
    expect((await call(`/broadcast`, { method: "POST", body: "{}" })).body.error.code).toBe("not_found")
  })

  it("mounts the kind's routes and the app's own", async () => {
    expect((await call("/v1/counter/ab/doubled")).body).toEqual({ doubled: "abab" })
    expect((await call("/v1/hello/world")).body).toEqual({ hello: "world" })
  })

  it("serves only the projections it lists", async () => {
    expect(await call("/v1/projections/counter-totals")).toMatchObject({
      status: 404,
      body: { error: { code: "unknown_projection" } },
    })
    const withTotals = createApp({ kinds: [Counter], projections: [{ name: "counter-totals", topic: "counter" }] })
    const response = await withTotals.fetch(
      new Request(`${BASE}/v1/projections/counter-totals`),
      env,
      createExecutionContext(),
    )
    expect(response.status).toBe(200)
    expect(((await response.json()) as any).total).toEqual(expect.any(Number))
  })

  it("reports /health without the executor, the memory bucket or AI when neither kind is served", async () => {
    const { status, body } = await call("/health")
    expect(status).toBe(200)
    expect(body).toEqual({
      status: "ok",
      service: "emberlog",
      environment: "development",
      version: expect.any(String),
      // MEMORY_BUCKET and AI are bound, but they are the memory kind's, which this app does not serve.
      // The archive is probed once wrangler.toml binds its bucket (the archive's branch), absent until then.
      dependencies: !("EMBERLOG_ARCHIVE" in env)
        ? {}
        : { archive: { status: "ok", binding: "EMBERLOG_ARCHIVE", latencyMs: expect.any(Number) } },
      outbox: expect.objectContaining({ status: "ok" }),
      timestamp: expect.any(String),
    })
  })

  it("offers MCP tools for its kinds only", async () => {
    const { body } = await mcp("tools/list")
    const names = body.result.tools.map((tool: { name: string }) => tool.name)
    expect(names).toEqual([
      "counter_increment",
      "counter_decrement",
      "counter_reset",
      "read_state",
      "read_events",
      "verify_log",
      "whoami",
    ])
    const read = await mcp("tools/call", { name: "read_state", arguments: { kind: "document", id: "x" } })
    expect(read.body.result.isError).toBe(true)
  })

  it("refuses an oversized MCP body without pointing at a memory kind it does not serve", async () => {
    const oversized = await mcp("tools/call", {
      name: "counter_increment",
      arguments: { id: "x", command: { by: 1, pad: "x".repeat(300 * 1024) } },
    })
    expect(oversized.status).toBe(413)
    expect(oversized.body.error).toMatchObject({
      code: -32600,
      message: "Request bodies are limited to 262144 bytes here",
    })
  })

  it("lists its kinds and their topics in the inspector", async () => {
    const { text } = await call("/inspect")
    expect(text).toContain("<option>counter</option>")
    expect(text).not.toContain("<option>document</option>")
    expect(text).not.toContain("<option>jobs</option>")
  })
})

describe("the job kind's topics", () => {
  it("list every topic its entity publishes to, over every event type", () => {
    const listed = kindRegistry([job]).topics
    expect(listed).toEqual(["job", "jobs"])
    for (const type of Job.eventTypes) {
      for (const topic of Job.topics({ type } as never)) expect(listed, `${type} → ${topic}`).toContain(topic)
    }
  })
})

describe("routes added to the factory's app afterwards", () => {
  const built = emberlog({ kinds: [Counter] })
  built.app.get("/v1/stats/:id", (c) => c.json({ stats: c.req.param("id"), sub: c.get("principal").sub }))
  built.app.get("/v1/reports/:id/summary", (c) => c.json({ report: c.req.param("id") }))
  built.app.get("/hello", (c) => c.json({ hello: "world" }))
  built.app.use("/guarded", ...guarded)
  built.app.get("/guarded", (c) => c.json({ sub: c.get("principal").sub }))
  const fetchBuilt = (path: string, settings: Record<string, unknown> = {}) =>
    built.app.fetch(new Request(`${BASE}${path}`), { ...env, ...settings } as never, createExecutionContext())
  const withAuth = { AUTH_MODE: undefined, JWT_SECRET: "a-secret-for-this-test-" + crypto.randomUUID() }

  it("answer under /v1, behind its authentication, and outside /v1 without it unless guarded", async () => {
    expect(await (await fetchBuilt("/v1/stats/x")).json()).toEqual({ stats: "x", sub: "anonymous" })
    expect(await (await fetchBuilt("/v1/reports/x/summary")).json()).toEqual({ report: "x" })
    const refused = await fetchBuilt("/v1/stats/x", withAuth)
    expect(refused.status).toBe(401)
    expect(((await refused.json()) as any).error.code).toBe("unauthenticated")
    // Outside /v1 (and /api, /ws, /broadcast, /mcp) nothing is applied unless the route asks for it.
    expect((await fetchBuilt("/hello", withAuth)).status).toBe(200)
    expect((await fetchBuilt("/guarded", withAuth)).status).toBe(401)
  })

  it("leave the served kinds' routes and the not-found answers as they were", async () => {
    expect((await fetchBuilt(`/v1/counter/${freshId()}`)).status).toBe(200)
    const twoSegments = await fetchBuilt("/v1/foo")
    expect(twoSegments.status).toBe(404)
    expect(((await twoSegments.json()) as any).error.code).toBe("not_found")
    const unserved = await fetchBuilt("/v1/document/x/events")
    expect(((await unserved.json()) as any).error).toEqual({
      code: "unknown_kind",
      message: 'Unknown kind "document"; known kinds: counter',
    })
    expect(((await (await fetchBuilt("/v1/topics/counter")).json()) as any).error.code).toBe("not_found")
    const unknownUnderAuth = await fetchBuilt("/v1/document/x", withAuth)
    expect(unknownUnderAuth.status).toBe(401)
  })
})

describe("bindings an app does not declare", () => {
  it("answer 503 binding_missing naming the binding, and the rest of the app still serves", async () => {
    const { EMBERLOG_ACTOR: _actor, EMBERLOG_TOPIC: _topic, ...rest } = env
    const fetchWithout = (path: string) =>
      app.fetch(new Request(`${BASE}${path}`), rest as never, createExecutionContext())
    const state = await fetchWithout(`/v1/counter/${freshId()}`)
    expect(state.status).toBe(503)
    const body = (await state.json()) as any
    expect(body.error.code).toBe("binding_missing")
    expect(body.error.message).toContain("EMBERLOG_ACTOR")
    const topic = (await (await fetchWithout("/v1/topics/counter/events")).json()) as any
    expect(topic.error).toMatchObject({ code: "binding_missing" })
    expect(topic.error.message).toContain("EMBERLOG_TOPIC")
    expect((await fetchWithout("/health")).status).toBe(200)
  })
})
