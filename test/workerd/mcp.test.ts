// MCP at the JSON-RPC level: every error code, origins, auth and the session ACL.
import { SELF, createExecutionContext, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import { MAX_JSON_DEPTH } from "../../src/actors/limits.js"
import { BASE, freshId, json, mcpSessionObject } from "./helpers.js"

const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
}
/** The error an error result carries in its text, as HTTP answers carry it. */
const errorOf = (result: any) => JSON.parse(result.content[0].text).error
const ACCEPT = { "content-type": "application/json", accept: "application/json, text/event-stream" }

const rpc = async (
  body: unknown,
  headers: Record<string, string> = {},
  fetcher: (r: Request) => Promise<Response> = (r) => SELF.fetch(r),
) => {
  const response = await fetcher(
    new Request(`${BASE}/mcp`, {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
      headers: { ...ACCEPT, ...headers },
    }),
  )
  const text = await response.text()
  // A JSON body, or an SSE body whose data line carries the JSON-RPC message.
  const dataLine = text.split("\n").find((line) => line.startsWith("data: {"))
  const json = dataLine !== undefined ? JSON.parse(dataLine.slice(6)) : text ? JSON.parse(text) : undefined
  return { status: response.status, headers: response.headers, json }
}

/** A modern (2026-07-28) request: the envelope in _meta and the required headers. */
const modern = (
  method: string,
  params: Record<string, unknown> = {},
  id: number | null = 1,
  headers: Record<string, string> = {},
) =>
  rpc(
    { jsonrpc: "2.0", id, method, params: { ...params, _meta: MODERN_META } },
    {
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": method,
      ...(typeof params.name === "string" ? { "mcp-name": params.name } : {}),
      ...headers,
    },
  )

describe("MCP JSON-RPC", () => {
  it("answers each error with its code", async () => {
    expect((await rpc("{nope")).json.error.code).toBe(-32700)
    expect(await rpc([{ jsonrpc: "2.0", id: 1, method: "ping" }])).toMatchObject({
      status: 400,
      json: { error: { code: -32600 } },
    })
    expect((await modern("tools/list", {}, null)).json.error.code).toBe(-32600)
    expect((await modern("no/such/method")).json.error.code).toBe(-32601)
    expect((await modern("tools/call", { name: "no_such_tool", arguments: {} })).json.error.code).toBe(-32602)
    expect((await modern("tools/call", { arguments: {} })).json.error.code).toBe(-32602)
    expect((await modern("tools/list", {}, 1, { "mcp-method": "tools/call" })).json.error.code).toBe(-32020)
    const unsupported = await rpc(
      {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/list",
        params: { _meta: { ...MODERN_META, "io.modelcontextprotocol/protocolVersion": "1999-01-01" } },
      },
      { "mcp-protocol-version": "1999-01-01", "mcp-method": "tools/list" },
    )
    expect(unsupported.json.error.code).toBe(-32022)
    const notification = await rpc(
      { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1, _meta: MODERN_META } },
      { "mcp-protocol-version": "2026-07-28", "mcp-method": "notifications/cancelled" },
    )
    expect([notification.status, notification.json]).toEqual([202, undefined])
    const oversized = await modern("tools/call", {
      name: "store_memory",
      arguments: { namespace: "big", content: "x".repeat(300 * 1024) },
    })
    expect(oversized).toMatchObject({ status: 413, json: { error: { code: -32600 } } })
    expect(oversized.json.error.message).toBe(
      "Request bodies are limited to 262144 bytes here; send larger commands with POST /v1/memory/{id}/commands",
    )
  })

  it("checks a body's depth on its text before parsing, as /v1 does: too deep is -32600, JSON or not", async () => {
    const open = "[".repeat(MAX_JSON_DEPTH + 1)
    // Cut off (not JSON: parsing first would call it a parse error) and complete.
    const cutOff = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":${open}`
    const bodies = [cutOff, `${open}${"]".repeat(MAX_JSON_DEPTH + 1)}`]
    for (const body of bodies) {
      const v1 = await SELF.fetch(`${BASE}/v1/counter/${freshId()}/commands`, { method: "POST", body })
      expect(await json(v1)).toMatchObject({ status: 400, body: { error: { code: "too_deep" } } })
      const modernHeaders = { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call" }
      for (const headers of [{}, modernHeaders] as Array<Record<string, string>>) {
        const refused = await rpc(body, headers)
        const error = { code: -32600, message: expect.stringContaining("too_deep") }
        expect(refused).toMatchObject({ status: 400, json: { error } })
      }
    }
  })

  it("opens 2025-era sessions only with initialize, and 404s an unknown session", async () => {
    expect(await rpc({ jsonrpc: "2.0", id: 1, method: "tools/list" })).toMatchObject({
      status: 400,
      json: { error: { code: -32600 } },
    })
    const init = await rpc({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    })
    expect(init.json.result.protocolVersion).toBe("2025-11-25")
    expect(init.headers.get("mcp-session-id")).toMatch(/^[0-9a-f-]{36}$/)
    const unknown = await rpc(
      { jsonrpc: "2.0", id: 2, method: "tools/list" },
      { "mcp-session-id": crypto.randomUUID(), "mcp-protocol-version": "2025-11-25" },
    )
    expect(unknown.status).toBe(404)
  })

  it("tool results: structured content, domain rejections and invalid arguments as isError", async () => {
    const id = freshId()
    const ok = await modern("tools/call", { name: "counter_increment", arguments: { id, command: { by: 2 } } })
    expect(ok.json.result).toMatchObject({ structuredContent: { version: 1, state: { value: 2 } } })
    expect(ok.json.result.isError).toBeFalsy()
    const invalid = await modern("tools/call", { name: "counter_increment", arguments: { id, command: { by: -1 } } })
    expect(invalid.json.result.isError).toBe(true)
    const tooFar = { id, command: { by: Number.MAX_SAFE_INTEGER } }
    const rejected = await modern("tools/call", { name: "counter_increment", arguments: tooFar })
    expect(rejected.json.result).toMatchObject({ isError: true })
    expect(errorOf(rejected.json.result).code).toBe("out_of_range")
  })

  it("read_events pages at most 1,000 events (the HTTP route's 10,000 would flood a model's context)", async () => {
    const id = freshId()
    await modern("tools/call", { name: "counter_increment", arguments: { id, command: { by: 1 } } })
    const page = await modern("tools/call", { name: "read_events", arguments: { kind: "counter", id, limit: 1000 } })
    expect(page.json.result.isError).toBeFalsy()
    const over = await modern("tools/call", { name: "read_events", arguments: { kind: "counter", id, limit: 1001 } })
    expect(over.json.result.isError).toBe(true)
  })

  it("refuses a present, disallowed Origin with 403", async () => {
    expect((await modern("tools/list", {}, 1, { origin: "https://evil.example" })).status).toBe(403)
    expect((await modern("tools/list", {}, 1, { origin: BASE })).status).toBe(200)
  })
})

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
}
const LEGACY = (sessionId: string) => ({ "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" })

describe("MCP 2025-11-25 sessions", () => {
  it("ends an idle session with its alarm and deletes what it stored", async () => {
    const sessionId = (await rpc(INITIALIZE)).headers.get("mcp-session-id")!
    expect((await rpc({ jsonrpc: "2.0", id: 2, method: "ping" }, LEGACY(sessionId))).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 500)) // MCP_SESSION_IDLE_MS is 400 in tests
    const stub = mcpSessionObject(sessionId)
    await runDurableObjectAlarm(stub)
    expect((await rpc({ jsonrpc: "2.0", id: 3, method: "ping" }, LEGACY(sessionId))).status).toBe(404)
    const left = await runInDurableObject(stub, async (_instance: unknown, state: DurableObjectState) => ({
      alarm: await state.storage.getAlarm(),
      keys: (await state.storage.list()).size,
    }))
    expect(left).toEqual({ alarm: null, keys: 0 })
  })

  it("replays a stream's messages after Last-Event-ID", async () => {
    const sessionId = (await rpc(INITIALIZE)).headers.get("mcp-session-id")!
    const response = await SELF.fetch(`${BASE}/mcp`, {
      method: "POST",
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "ping" }),
      headers: { ...ACCEPT, ...LEGACY(sessionId) },
    })
    const eventId = (await response.text())
      .split("\n")
      .find((line) => line.startsWith("id: "))!
      .slice(4)
    const streamId = eventId.slice(0, eventId.lastIndexOf(":"))
    const resumed = await SELF.fetch(`${BASE}/mcp`, {
      headers: { accept: "text/event-stream", "last-event-id": `${streamId}:0`, ...LEGACY(sessionId) },
    })
    const reader = resumed.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ""
    while (!text.includes('"id":7')) text += (await reader.read()).value ?? ""
    await reader.cancel()
    expect(text).toContain(`id: ${eventId}`)
  })
})

describe("MCP authorization", () => {
  const SECRET = "mcp-test-secret-" + crypto.randomUUID()
  const withAuth = async (r: Request) =>
    worker.fetch(r, { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET } as never, createExecutionContext())
  const token = (sub: string, scope: string) =>
    new SignJWT({ sub, scope })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(SECRET))

  it("401 with a challenge without a token; tokens only in the Authorization header", async () => {
    const missing = await rpc({ jsonrpc: "2.0", id: 1, method: "ping" }, {}, withAuth)
    expect(missing.status).toBe(401)
    expect(missing.headers.get("WWW-Authenticate")).toContain("resource_metadata=")
    const inQuery = await withAuth(
      new Request(`${BASE}/mcp?access_token=${await token("a", "read")}`, {
        method: "POST",
        body: "{}",
        headers: ACCEPT,
      }),
    )
    expect(inQuery.status).toBe(401)
  })

  it("keeps a tenant's MCP session out of another tenant's reach", async () => {
    const alice = { Authorization: `Bearer ${await token("alice", "read write")}` }
    const sessionId = (await rpc(INITIALIZE, alice, withAuth)).headers.get("mcp-session-id")!
    expect(
      (await rpc({ jsonrpc: "2.0", id: 2, method: "ping" }, { ...alice, ...LEGACY(sessionId) }, withAuth)).status,
    ).toBe(200)
    const mallory = { Authorization: `Bearer ${await token("mallory", "read write")}` }
    expect(
      (await rpc({ jsonrpc: "2.0", id: 2, method: "ping" }, { ...mallory, ...LEGACY(sessionId) }, withAuth)).status,
    ).toBe(404)
  })

  it("checks scopes and the session's grants; a refused call appends nothing", async () => {
    const reader = { Authorization: `Bearer ${await token("reader", "read")}` }
    const id = freshId()
    const call = (name: string, args: Record<string, unknown>, headers: Record<string, string>) =>
      rpc(
        { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args, _meta: MODERN_META } },
        { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": name, ...headers },
        withAuth,
      )
    const unscoped = await call("counter_increment", { id, command: { by: 1 } }, reader)
    expect(errorOf(unscoped.json.result).code).toBe("insufficient_scope")

    const alice = { Authorization: `Bearer ${await token("alice", "read write")}` }
    expect((await call("counter_increment", { id, command: { by: 1 } }, alice)).json.result.isError).toBeFalsy()
    // Once alice's session exists, only its grants may be called.
    const session = {
      Authorization: `Bearer ${await token("alice", "read write")}`,
      "content-type": "application/json",
    }
    const open = (body: unknown) =>
      withAuth(
        new Request(`${BASE}/v1/session/alice/commands`, {
          method: "POST",
          body: JSON.stringify(body),
          headers: session,
        }),
      )
    await open({ type: "Open", user: "alice", ttlSeconds: 600 })
    // Grants are the admin's to give (here alice's own token with the admin scope).
    const admin = { ...session, Authorization: `Bearer ${await token("alice", "write admin")}` }
    const grant = JSON.stringify({ type: "Grant", tool: "read_state" })
    await withAuth(new Request(`${BASE}/v1/session/alice/commands`, { method: "POST", body: grant, headers: admin }))
    const denied = await call("counter_increment", { id, command: { by: 1 } }, alice)
    expect(denied.json.result).toMatchObject({ isError: true })
    expect(errorOf(denied.json.result).code).toBe("tool_not_granted")
    expect((await call("read_state", { kind: "counter", id }, alice)).json.result.structuredContent).toMatchObject({
      version: 1,
      state: { value: 1 },
    })
    await open({ type: "Close" })
    const closed = await call("read_state", { kind: "counter", id }, alice)
    expect(errorOf(closed.json.result).code).toBe("tool_not_granted")
  })
})
