// MCP authority: the session ACL as the MCP server applies it, subscriptions/listen's scope and limits.
import { createExecutionContext, env } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import { BASE, freshId } from "./helpers.js"

const SECRET = "mcp-auth-test-secret-" + crypto.randomUUID()
const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
}
const ACCEPT = { "content-type": "application/json", accept: "application/json, text/event-stream" }
const settings = { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET } as never
const fetchWorker = (request: Request) => worker.fetch(request, settings, createExecutionContext())
const token = (sub: string, scope: string) =>
  new SignJWT({ sub, scope, tenant: "acme" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(SECRET))

/** The JSON-RPC message of a body that is JSON or an SSE stream whose data line carries it. */
const messageOf = (text: string) => {
  const dataLine = text.split("\n").find((line) => line.startsWith("data: {"))
  return dataLine !== undefined ? JSON.parse(dataLine.slice(6)) : text ? JSON.parse(text) : undefined
}

const modernHeaders = (as: string, method: string, name?: string) => ({
  ...ACCEPT,
  Authorization: `Bearer ${as}`,
  "mcp-protocol-version": "2026-07-28",
  "mcp-method": method,
  ...(name === undefined ? {} : { "mcp-name": name }),
})

const callTool = async (as: string, name: string, args: Record<string, unknown>) => {
  const params = { name, arguments: args, _meta: MODERN_META }
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params })
  const headers = modernHeaders(as, "tools/call", name)
  const response = await fetchWorker(new Request(`${BASE}/mcp`, { method: "POST", body, headers }))
  return messageOf(await response.text()).result
}

const post = (path: string, as: string, body: unknown) => {
  const headers = { Authorization: `Bearer ${as}` }
  return fetchWorker(new Request(`${BASE}${path}`, { method: "POST", body: JSON.stringify(body), headers }))
}
const sessionCommand = (id: string, as: string, body: unknown) => post(`/v1/session/${id}/commands`, as, body)

const listenRequest = (as: string, id: number, uris: Array<unknown>) => {
  const params = { notifications: { resourceSubscriptions: uris }, _meta: MODERN_META }
  const body = JSON.stringify({ jsonrpc: "2.0", id, method: "subscriptions/listen", params })
  const headers = modernHeaders(as, "subscriptions/listen")
  return fetchWorker(new Request(`${BASE}/mcp`, { method: "POST", body, headers }))
}

describe("the session ACL in MCP", () => {
  it("binds a user by the session its id names: nobody opens it first, and the admin's grants apply", async () => {
    const sub = freshId("victim")
    const victim = await token(sub, "read write")
    const mallory = await token("mallory", "read write")
    const admin = await token("root", "read write admin")
    // Opening the victim's session first (as her own, user omitted) takes nothing over.
    const taken = await sessionCommand(sub, mallory, { type: "Open", ttlSeconds: 600 })
    expect([taken.status, ((await taken.json()) as any).error.code]).toEqual([403, "not_session_owner"])
    expect((await callTool(victim, "counter_increment", { id: freshId(), command: { by: 1 } })).isError).toBeFalsy()
    expect((await sessionCommand(sub, victim, { type: "Open", ttlSeconds: 600 })).status).toBe(200)
    expect((await sessionCommand(sub, admin, { type: "Grant", tool: "read_state" })).status).toBe(200)
    expect((await callTool(victim, "read_state", { kind: "counter", id: freshId() })).isError).toBeFalsy()
    const increment = await callTool(victim, "counter_increment", { id: freshId(), command: { by: 1 } })
    const refusal = [true, expect.stringContaining("tool_not_granted")]
    expect([increment.isError, JSON.stringify(increment.content)]).toEqual(refusal)
    // Another writer's Close is refused too, so the ACL stays in force.
    expect((await sessionCommand(sub, mallory, { type: "Close" })).status).toBe(403)
    expect((await callTool(victim, "counter_increment", { id: freshId(), command: { by: 1 } })).isError).toBe(true)
  })

  it("refuses another writer's Close of a user's session, and a user's own Grant, through the tools too", async () => {
    const sub = freshId("alice")
    const alice = await token(sub, "read write")
    const mallory = await token("mallory", "read write")
    const admin = await token("root", "read write admin")
    expect((await sessionCommand(sub, alice, { type: "Open", ttlSeconds: 600 })).status).toBe(200)
    // Even with the tool granted, granting itself needs admin.
    for (const tool of ["read_state", "session_grant"]) {
      expect((await sessionCommand(sub, admin, { type: "Grant", tool })).status).toBe(200)
    }
    const closed = await callTool(mallory, "session_close", { id: sub })
    expect([closed.isError, JSON.stringify(closed.content)]).toEqual([
      true,
      expect.stringContaining("not_session_owner"),
    ])
    const granted = await callTool(alice, "session_grant", { id: sub, command: { tool: "counter_increment" } })
    expect([granted.isError, JSON.stringify(granted.content)]).toEqual([
      true,
      expect.stringContaining("insufficient_scope"),
    ])
    // The admin's own scopes go with its tool call.
    expect((await callTool(admin, "session_grant", { id: sub, command: { tool: "read_events" } })).isError).toBeFalsy()
    const read = await callTool(alice, "read_state", { kind: "session", id: sub })
    expect(read.isError).toBeFalsy()
    const grants = ["read_state", "session_grant", "read_events"]
    expect(read.structuredContent.state).toMatchObject({ status: "open", user: sub, grants })
    const increment = await callTool(alice, "counter_increment", { id: freshId(), command: { by: 1 } })
    expect([increment.isError, JSON.stringify(increment.content)]).toEqual([
      true,
      expect.stringContaining("tool_not_granted"),
    ])
  })
})

describe("subscriptions/listen", () => {
  type RpcError = { id: unknown; error: { code: number; message: string } }
  const errorOf = async (response: Response) => ({ status: response.status, ...((await response.json()) as RpcError) })

  it("needs the read scope", async () => {
    const refused = await errorOf(
      await listenRequest(await token("writer", "write"), 9, [`emberlog://counter/${freshId()}`]),
    )
    const error = { code: -32000, message: expect.stringContaining("read scope") }
    expect(refused).toMatchObject({ status: 403, id: 9, error })
  })

  it("takes at most 100 resources per listen, each a valid resource URI", async () => {
    const reader = await token("reader", "read")
    const many = Array.from({ length: 101 }, (_, i) => `emberlog://counter/c-${i}`)
    const tooMany = await errorOf(await listenRequest(reader, 9, many))
    expect(tooMany).toMatchObject({ id: 9, error: { code: -32602, message: expect.stringContaining("100") } })
    const tooLong = `emberlog://counter/${"x".repeat(129)}`
    const invalid = ["emberlog://counter/bad id", "emberlog://nokind/x", tooLong, "https://example.com/", 7]
    for (const bad of invalid) {
      const refused = await errorOf(await listenRequest(reader, 9, [`emberlog://counter/${freshId()}`, bad]))
      expect([bad, refused.error.code, refused.error.message]).toEqual([
        bad,
        -32602,
        expect.stringContaining("resource"),
      ])
    }
    // Exactly the cap is a stream.
    const ok = await listenRequest(reader, 9, many.slice(0, 100))
    expect([ok.status, ok.headers.get("content-type")]).toEqual([200, expect.stringContaining("text/event-stream")])
    await ok.body?.cancel()
  })
})

describe("resources/subscribe (2025-11-25 sessions)", () => {
  const legacy = async (as: string, body: unknown, sessionId?: string) => {
    const headers: Record<string, string> = { ...ACCEPT, Authorization: `Bearer ${as}` }
    if (sessionId !== undefined)
      Object.assign(headers, { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" })
    const response = await fetchWorker(
      new Request(`${BASE}/mcp`, { method: "POST", body: JSON.stringify(body), headers }),
    )
    return { headers: response.headers, json: messageOf(await response.text()) }
  }
  const clientInfo = { name: "raw", version: "1" }
  const params = { protocolVersion: "2025-11-25", capabilities: {}, clientInfo }
  const initialize = { jsonrpc: "2.0", id: 1, method: "initialize", params }

  it("needs the read scope", async () => {
    const writer = await token("writer", "write")
    const sessionId = (await legacy(writer, initialize)).headers.get("mcp-session-id")!
    const subscribe = {
      jsonrpc: "2.0",
      id: 2,
      method: "resources/subscribe",
      params: { uri: `emberlog://counter/${freshId()}` },
    }
    const refused = await legacy(writer, subscribe, sessionId)
    const error = { code: -32000, message: expect.stringContaining("read scope"), data: { scope: "read" } }
    expect(refused.json.error).toMatchObject(error)
  })

  it("follows at most 100 resources per session and only valid resource URIs: more is -32602", async () => {
    const reader = await token("reader", "read")
    const sessionId = (await legacy(reader, initialize)).headers.get("mcp-session-id")!
    const subscribe = (id: number, uri: string) =>
      legacy(reader, { jsonrpc: "2.0", id, method: "resources/subscribe", params: { uri } }, sessionId)
    const prefix = freshId("c")
    for (let i = 0; i < 100; i++) {
      expect([i, (await subscribe(i + 2, `emberlog://counter/${prefix}-${i}`)).json.error]).toEqual([i, undefined])
    }
    const tooMany = (await subscribe(200, `emberlog://counter/${prefix}-100`)).json
    const error = { code: -32602, message: expect.stringContaining("100"), data: { max: 100 } }
    expect(tooMany).toMatchObject({ id: 200, error })
    // Subscribing again to one already followed is not one more.
    expect((await subscribe(201, `emberlog://counter/${prefix}-0`)).json.error).toBeUndefined()
    expect((await subscribe(202, "emberlog://nokind/x")).json.error.code).toBe(-32602)
  })
})

describe("following resources", () => {
  it("a listen tells the client when a followed actor appends", async () => {
    const id = freshId()
    const as = await token("follower", "read write")
    const uri = `emberlog://counter/${id}`
    const response = await listenRequest(as, 3, [uri])
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ""
    const until = async (needle: string) => {
      const deadline = Date.now() + 10_000
      while (!text.includes(needle) && Date.now() < deadline) text += (await reader.read()).value ?? ""
    }
    await until("notifications/subscriptions/acknowledged")
    await new Promise((resolve) => setTimeout(resolve, 200)) // the follower connects after the acknowledgement
    await post(`/v1/counter/${id}/commands`, as, { type: "Increment", by: 1 })
    await until("notifications/resources/updated")
    await reader.cancel()
    expect(text).toContain("notifications/resources/updated")
    expect(text).toContain(uri)
  })
})
