/**
 * `/mcp`: the Streamable HTTP transport in both protocol eras clients speak today.
 * 2026-07-28 requests (stateless) go to the SDK's `createMcpHandler`; 2025-11-25 traffic
 * (initialize, Mcp-Session-Id, GET stream, DELETE) goes to the session's Durable Object.
 * Authentication, tenancy, rate limits and the Host/Origin check (origin.ts) are the same middleware as `/v1`.
 */
import { createMcpHandler, isLegacyRequest } from "@modelcontextprotocol/server"
import type { Principal } from "../../infra/tokens.js"
import { clientHeaders } from "../../actors/subscribers.js"
import { MAX_BODY_BYTES, limitBodyTo, type App, type Env } from "../env.js"
import type { KindRegistry } from "../kind.js"
import { mcpSessionOf } from "../objects.js"
import { MAX_FOLLOWED_RESOURCES, followResource } from "./follow.js"
import { RESOURCE_PREFIX, buildMcpServer, parseResourceUri } from "./server.js"
import {
  NEW_SESSION_HEADER,
  PRINCIPAL_JSON_HEADER,
  authInfoFor,
  directoryFor,
  encodePrincipal,
  jsonRpcError,
  type McpSession,
} from "./session-object.js"
import { textExceedsDepth, tooDeep } from "../../actors/limits.js"
import { USAGE_HEADER, countingDirectory, type UsageRecorder } from "../usage.js"

const SESSION_ID = /^[A-Za-z0-9-]{1,128}$/

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const modernHandler = (served: KindRegistry) =>
  createMcpHandler(
    (ctx) => {
      const { principal, env, usage } = ctx.authInfo!.extra as { principal: Principal; env: Env; usage?: UsageRecorder }
      return buildMcpServer(
        countingDirectory(directoryFor(env, principal, served.names), usage),
        { subscribe: async () => undefined, unsubscribe: async () => undefined },
        served,
      )
    },
    { legacy: "reject" },
  )

/** Why a listen may not start (scope, count, URIs), before any follower is opened. */
const refuseListen = (message: unknown, principal: Principal, kinds: ReadonlyArray<string>): Response | undefined => {
  const { id, params } = message as { id?: unknown; params?: { notifications?: { resourceSubscriptions?: unknown } } }
  if (!principal.scopes.has("read")) {
    return jsonRpcError(403, -32000, "subscriptions/listen needs the read scope", { id, data: { scope: "read" } })
  }
  const uris = params?.notifications?.resourceSubscriptions
  if (uris === undefined) return undefined
  if (!Array.isArray(uris)) {
    return jsonRpcError(200, -32602, "Invalid params: resourceSubscriptions must be an array of resource URIs", { id })
  }
  if (uris.length > MAX_FOLLOWED_RESOURCES) {
    const message = `Invalid params: at most ${MAX_FOLLOWED_RESOURCES} resources per listen (got ${uris.length})`
    return jsonRpcError(200, -32602, message, { id, data: { max: MAX_FOLLOWED_RESOURCES } })
  }
  const invalid = uris.filter((uri) => typeof uri !== "string" || parseResourceUri(uri, kinds) === undefined)
  if (invalid.length > 0) {
    const expected = `${RESOURCE_PREFIX}{kind}/{id} or …/events, ids of 1–128 characters of A-Z a-z 0-9 . _ : -`
    const message = `Invalid params: not a resource URI of this server (expected ${expected})`
    return jsonRpcError(200, -32602, message, { id, data: { invalid: invalid.slice(0, 10) } })
  }
  return undefined
}

/**
 * `subscriptions/listen` (2026-07-28): a long-lived stream of change notifications. It
 * gets a handler of its own, so its notification bus carries only this caller's
 * resources, and follows each subscribed resource's actor until the client hangs up.
 */
const listen = async (
  served: KindRegistry,
  request: Request,
  message: unknown,
  env: Env,
  principal: Principal,
): Promise<Response> => {
  const refused = refuseListen(message, principal, served.names)
  if (refused !== undefined) return refused
  const handler = modernHandler(served)
  const response = await handler.fetch(request, { authInfo: authInfoFor(principal, { env }) })
  const uris = ((message as { params?: { notifications?: { resourceSubscriptions?: unknown } } })?.params?.notifications
    ?.resourceSubscriptions ?? []) as Array<string>
  if (!response.ok || response.body === null || !Array.isArray(uris)) return response
  const directory = directoryFor(env, principal, served.names)
  const followers = await Promise.all(
    uris.map((uri) => followResource(directory, uri, () => handler.notify.resourceUpdated(uri)).catch(() => undefined)),
  )
  let expiry: ReturnType<typeof setTimeout> | undefined
  const stop = () => {
    clearTimeout(expiry)
    for (const follower of followers) follower?.close()
    void handler.close()
  }
  const reader = response.body.getReader()
  const body = new ReadableStream<Uint8Array>({
    // The stream carries the token's authority, so it ends when the token expires.
    start() {
      if (principal.expiresAt === undefined) return
      // Cancelling the source ends the stream at its next read.
      const cancel = () => void reader.cancel("token expired").catch(() => undefined)
      expiry = setTimeout(cancel, Math.max(0, principal.expiresAt - Date.now()))
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) {
          stop()
          controller.close()
        } else controller.enqueue(value)
      } catch (error) {
        stop()
        controller.error(error)
      }
    },
    cancel(reason) {
      stop()
      return reader.cancel(reason)
    },
  })
  return new Response(body, { status: response.status, headers: response.headers })
}

/**
 * MCP bodies are JSON-RPC messages of at most MAX_BODY_BYTES; the refusal points at the served
 * kinds that take larger commands over /v1 (the memory kind's content), and at nothing else.
 */
const limitMcpBody = (served: KindRegistry) => {
  const larger = served.modules
    .filter(({ commandBodyBytes }) => (commandBodyBytes ?? MAX_BODY_BYTES) > MAX_BODY_BYTES)
    .map(({ entity }) => `POST /v1/${entity.kind}/{id}/commands`)
  const hint = larger.length === 0 ? "" : `; send larger commands with ${larger.join(" or ")}`
  return limitBodyTo(MAX_BODY_BYTES, (message) => jsonRpcError(413, -32600, `${message}${hint}`))
}

export const mcpRoutes = (app: App, served: KindRegistry) => {
  /** Built once per app: per request, the factory builds a server for that caller. */
  const modern = modernHandler(served)
  app.all("/mcp", limitMcpBody(served), async (c) => {
    const request = c.req.raw
    const principal = c.get("principal")
    const text = request.method === "POST" ? await request.clone().text() : undefined
    // Tool arguments go on to actors over RPC: the same depth limit, checked the same way (on the text,
    // before anything parses it), as every other body.
    if (text !== undefined && textExceedsDepth(text)) {
      return jsonRpcError(400, -32600, `${tooDeep.message} (${tooDeep.code})`)
    }
    const message = text === undefined ? undefined : parseJson(text)
    // Neither revision accepts JSON-RPC batches.
    if (Array.isArray(message))
      return jsonRpcError(400, -32600, "Batches are not accepted: send one JSON-RPC message per request")
    if (!(await isLegacyRequest(request))) {
      if ((message as { method?: unknown } | undefined)?.method === "subscriptions/listen")
        return listen(served, request, message, c.env, principal)
      return modern.fetch(request, { authInfo: authInfoFor(principal, { env: c.env, usage: c.get("usage") }) })
    }

    if (request.method === "POST" && message === undefined)
      return jsonRpcError(400, -32700, "Parse error: the body is not JSON")
    const existing = request.headers.get("Mcp-Session-Id")
    // Only initialize opens a session.
    if (existing === null && (message as { method?: unknown } | undefined)?.method !== "initialize") {
      return jsonRpcError(400, -32600, "Mcp-Session-Id header required: send initialize first")
    }
    if (existing !== null && !SESSION_ID.test(existing)) return jsonRpcError(404, -32001, "Session not found")
    const sessionId = existing ?? crypto.randomUUID()
    const headers = clientHeaders(request)
    if (existing === null) headers.set(NEW_SESSION_HEADER, sessionId)
    headers.set(PRINCIPAL_JSON_HEADER, encodePrincipal(principal))
    if (c.get("usage") !== undefined) headers.set(USAGE_HEADER, "on")
    const session = mcpSessionOf<McpSession>(c.env, principal.tenant, sessionId)
    return session.fetch(new Request(request, { headers }))
  })
}
