/**
 * One Durable Object per MCP session of the 2025-11-25 protocol era (Mcp-Session-Id,
 * GET SSE stream, DELETE to end, resources/subscribe). The SDK's session transport is
 * in-memory state, so it lives where the session lives: here, reachable from any Worker
 * instance by the session id. It is the edge protocol's session holder, not an entity,
 * so it sits with the edge. An idle session is ended and its storage deleted by an alarm:
 * per-session objects that are never cleaned up are a known failure of MCP hosts.
 *
 * A session whose object was evicted is gone: its next request gets 404 and the client
 * initializes a new one, as the protocol prescribes.
 */
import {
  ProtocolError,
  WebStandardStreamableHTTPServerTransport,
  type AuthInfo,
  type McpServer,
} from "@modelcontextprotocol/server"
import { DurableObject } from "cloudflare:workers"
import type { CommandRequest } from "../../core/wire.js"
import type { ActorApi } from "../../actors/durable-actor.js"
import type { Principal } from "../../infra/tokens.js"
import type { Env } from "../env.js"
import type { KindRegistry } from "../kind.js"
import { actorIn } from "../objects.js"
import { directoryName, type DirectoryMethods } from "../../actors/directory.js"
import { parseScopedName } from "../../core/names.js"
import { stubOf } from "../../actors/stubs.js"
import { SessionEventLog } from "./event-log.js"
import { MAX_FOLLOWED_RESOURCES, followResource, type Follower } from "./follow.js"
import { buildMcpServer, parseResourceUri, type ActorDirectory } from "./server.js"
import { sessionDirectory } from "../usage.js"

/** Set by the edge only (it overwrites anything a client sent). */
export const NEW_SESSION_HEADER = "X-Emberlog-Mcp-New-Session"
export const PRINCIPAL_JSON_HEADER = "X-Emberlog-Principal-Json"
/** A session with no request for this long is ended (MCP_SESSION_IDLE_MS overrides it). */
export const SESSION_IDLE_MS = 30 * 60 * 1000

export const encodePrincipal = (principal: Principal) => JSON.stringify({ ...principal, scopes: [...principal.scopes] })
const decodePrincipal = (json: string): Principal => {
  const { sub, tenant, scopes, expiresAt } = JSON.parse(json) as {
    sub: string
    tenant: string
    scopes: Array<string>
    expiresAt?: number
  }
  return { sub, tenant, scopes: new Set(scopes), ...(typeof expiresAt === "number" ? { expiresAt } : {}) }
}

/** The caller's principal and scopes go with every command a tool sends (a session's rules decide by them). */
const asCaller = (actor: ActorApi, principal: Principal): ActorApi =>
  new Proxy(actor, {
    get: (target, key) => {
      if (key === "command") {
        return (request: CommandRequest) =>
          target.command({ ...request, principal: principal.sub, scopes: [...principal.scopes] })
      }
      // A stub's own methods (fetch) must run on the stub itself; RPC stubs have no usable `bind`.
      const value: unknown = Reflect.get(target, key)
      return typeof value === "function" ? (...args: Array<unknown>) => Reflect.apply(value, target, args) : value
    },
  })

/** The actors tools may address: the served kinds' in the principal's tenant, commands carrying the caller. */
export const directoryFor = (bindings: Env, principal: Principal, kinds: ReadonlyArray<string>): ActorDirectory => ({
  principal,
  kinds,
  actor: (kind, id) => {
    const actor = kinds.includes(kind) ? actorIn(bindings, principal.tenant, kind, id) : undefined
    if (actor === undefined) throw new Error(`Unknown kind ${kind}`)
    return asCaller(actor, principal)
  },
})

export const authInfoFor = (principal: Principal, extra: Record<string, unknown> = {}): AuthInfo => ({
  token: "",
  clientId: principal.sub,
  scopes: [...principal.scopes],
  extra: { principal, ...extra },
})

const samePrincipal = (a: Principal | undefined, b: Principal) =>
  a !== undefined &&
  a.sub === b.sub &&
  a.tenant === b.tenant &&
  [...a.scopes].sort().join(" ") === [...b.scopes].sort().join(" ")

/**
 * A JSON-RPC error answered before any MCP server sees the request: to the message's `id`
 * when it has one (in-band errors are 200, as the SDK answers them), else to `null`.
 */
export const jsonRpcError = (
  status: number,
  code: number,
  message: string,
  reply: { readonly id?: unknown; readonly data?: unknown } = {},
) => {
  const error = reply.data === undefined ? { code, message } : { code, message, data: reply.data }
  return Response.json({ jsonrpc: "2.0", id: reply.id ?? null, error }, { status })
}

/** A session object; an app's own class (mcpSessionClass) says which kinds its tools serve. */
export class McpSession extends DurableObject<Env> {
  /** The kinds served. */
  served(): KindRegistry {
    throw new Error("emberlog: an McpSession class comes from mcpSessionClass(kinds)")
  }

  private transport: WebStandardStreamableHTTPServerTransport | undefined
  private mcp: McpServer | undefined
  private owner: Principal | undefined
  private lastSeen = 0
  /** Counts the session's erasures: a request that awaited across one answers "not found". */
  private erasures = 0
  /** Ends the GET stream when the token that opened it expires (the client reopens it with a fresh one). */
  private streamExpiry: ReturnType<typeof setTimeout> | undefined
  /** Subscribed resources, each followed through its actor's event stream (a promise while it connects). */
  private readonly watches = new Map<string, Promise<Follower>>()

  override async fetch(request: Request): Promise<Response> {
    const principal = decodePrincipal(request.headers.get(PRINCIPAL_JSON_HEADER) ?? "{}")
    // An erasure (the tenant's deletion) may run while this request awaits: after every await it is checked.
    const epoch = this.erasures
    const erased = () => jsonRpcError(404, -32001, "Session not found: it was erased; initialize a new session")
    if (this.transport === undefined) {
      const sessionId = request.headers.get(NEW_SESSION_HEADER)
      // Nothing is stored for an unknown session, so nothing needs cleaning up later.
      if (sessionId === null) return jsonRpcError(404, -32001, "Session not found: initialize a new session")
      // Listed before it starts, so the tenant's deletion finds it (one call per new session).
      await this.directory(principal.tenant)?.registerInDirectory([{ type: "mcp-session", kind: "", id: sessionId }])
      if (epoch !== this.erasures) return erased()
      // Another request started the session meanwhile.
      if (this.transport !== undefined) return this.fetch(request)
      this.owner = principal
      this.transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => sessionId,
        onsessionclosed: () => this.end(),
        eventStore: new SessionEventLog(),
      })
      this.mcp = buildMcpServer(
        sessionDirectory(request, this.env, this.ctx, directoryFor(this.env, principal, this.served().names)),
        {
          subscribe: (uri) => this.watch(uri),
          unsubscribe: async (uri) => this.unwatch(uri),
        },
        this.served(),
      )
      await this.mcp.connect(this.transport)
      if (epoch !== this.erasures) return erased()
    } else if (!samePrincipal(this.owner, principal)) {
      // Scopes are fixed for a session's life: a token with other scopes starts a new session.
      return jsonRpcError(
        403,
        -32600,
        "This session belongs to another principal or other scopes; initialize a new session",
      )
    }
    this.lastSeen = Date.now()
    await this.ctx.storage.setAlarm(this.lastSeen + this.idleMs())
    const transport = this.transport
    if (epoch !== this.erasures || transport === undefined) return erased()
    const response = await transport.handleRequest(request, { authInfo: authInfoFor(principal) })
    if (request.method === "GET" && response.ok && response.body !== null) this.endStreamAt(principal.expiresAt)
    return response
  }

  /** The standalone GET stream lives as long as the token it was opened with (a new GET replaces the timer). */
  private endStreamAt(expiresAt: number | undefined): void {
    if (this.streamExpiry !== undefined) clearTimeout(this.streamExpiry)
    this.streamExpiry = undefined
    if (expiresAt === undefined) return
    const transport = this.transport
    this.streamExpiry = setTimeout(() => transport?.closeStandaloneSSEStream(), Math.max(0, expiresAt - Date.now()))
  }

  private idleMs(): number {
    const configured = Number(this.env.MCP_SESSION_IDLE_MS)
    return Number.isFinite(configured) && configured > 0 ? configured : SESSION_IDLE_MS
  }

  /** Ends a session idle for its idle window and deletes everything it stored. */
  override async alarm(): Promise<void> {
    if (this.transport !== undefined && Date.now() - this.lastSeen < this.idleMs()) {
      await this.ctx.storage.setAlarm(this.lastSeen + this.idleMs())
      return
    }
    const tenant = this.owner?.tenant
    this.end()
    await this.ctx.storage.deleteAll()
    // Gone: the tenant's directory needs it no more (if this fails, a deletion erases an empty session).
    const id = parseScopedName(this.ctx.id.name ?? "").name
    if (tenant !== undefined) {
      await this.directory(tenant)
        ?.removeFromDirectory([{ type: "mcp-session", kind: "", id }])
        .catch(() => undefined)
    }
  }

  /** Ends the session and erases what it stored (its tenant is being deleted); the client must initialize anew. */
  async eraseAll(): Promise<Readonly<Record<string, number>>> {
    let open = false
    // Serialized with requests: none starts while the session is erased, and one in flight sees `erasures` moved.
    await this.ctx.blockConcurrencyWhile(async () => {
      this.erasures++
      open = this.transport !== undefined
      this.end()
      this.owner = undefined
      await this.ctx.storage.deleteAlarm()
      await this.ctx.storage.deleteAll()
    })
    return open ? { openSessions: 1 } : {}
  }

  private directory(tenant: string) {
    const namespace = (this.env as Partial<Env>).EMBERLOG_TOPIC
    return namespace === undefined ? undefined : stubOf<DirectoryMethods>(namespace, directoryName(tenant))
  }

  /** Tells the client each time a subscribed resource's actor appends. */
  private async watch(uri: string): Promise<void> {
    if (this.owner === undefined || this.watches.has(uri)) return
    // ProtocolErrors reach the client with their own code; any other throw would be -32603 (internal).
    if (!this.owner.scopes.has("read")) {
      throw new ProtocolError(-32000, "Subscribing to resources needs the read scope", { scope: "read" })
    }
    if (this.watches.size >= MAX_FOLLOWED_RESOURCES) {
      const message = `Invalid params: a session follows at most ${MAX_FOLLOWED_RESOURCES} resources`
      throw new ProtocolError(-32602, message, { max: MAX_FOLLOWED_RESOURCES })
    }
    if (parseResourceUri(uri, this.served().names) === undefined) {
      throw new ProtocolError(-32602, `Invalid params: not a resource URI of this server: ${JSON.stringify(uri)}`)
    }
    // Registered before connecting, so a concurrent subscribe, unsubscribe or end sees it.
    const following = followResource(directoryFor(this.env, this.owner, this.served().names), uri, () => {
      void this.mcp?.server.sendResourceUpdated({ uri }).catch(() => undefined)
    })
    this.watches.set(uri, following)
    try {
      await following
    } catch (error) {
      if (this.watches.get(uri) === following) this.watches.delete(uri)
      throw error
    }
  }

  private unwatch(uri: string): void {
    const following = this.watches.get(uri)
    this.watches.delete(uri)
    void following?.then((follower) => follower.close()).catch(() => undefined)
  }

  private end(): void {
    this.endStreamAt(undefined)
    for (const uri of [...this.watches.keys()]) this.unwatch(uri)
    const transport = this.transport
    this.transport = undefined
    this.mcp = undefined
    void transport?.close().catch(() => undefined)
  }
}

/** The session object class of an app serving the registry's kinds (its tools are theirs). */
export const mcpSessionClass = (served: KindRegistry): typeof McpSession =>
  class extends McpSession {
    override served(): KindRegistry {
      return served
    }
  }
