/**
 * Authentication, tenancy and scopes at the edge.
 *
 * Secure by default: with neither `JWT_SECRET` nor `JWT_JWKS_URL`/`JWT_JWKS` set, every
 * protected route answers 401 and says how to configure it; local development turns
 * auth off explicitly with `AUTH_MODE=off` (.dev.vars). A verified token's `sub` is the
 * principal, its `tenant` claim the namespace its requests address (without one, the
 * sub's own `user:{sub}`, or the sub itself with TENANT_FROM_SUB=true: infra/tokens.ts),
 * and its `scope` (space-separated) what it may do: `read`, `write`, `admin` (within its
 * tenant), `operator` (reads across tenants).
 *
 * ```ts
 * app.use("/v1/*", authenticate)
 * app.post("/v1/:kind/:id/commands", requireScope("write"), handler)
 * ```
 */
import { Effect } from "effect"
import type { Context, MiddlewareHandler } from "hono"
import { DEV_TENANT } from "../core/names.js"
import { ALL_SCOPES, TokenRejected, makeJwtVerifier, personalTenant } from "../infra/tokens.js"
import type { Principal, Scope, TokenVerifierShape } from "../infra/tokens.js"
import type { AppEnv, Env } from "./env.js"
import { HttpError } from "./errors.js"

const verifiers = new Map<string, TokenVerifierShape>()

/** One verifier per configuration (a remote JWKS is cached inside it). */
const verifierFor = (env: Env): TokenVerifierShape | undefined => {
  const config = {
    secret: env.JWT_SECRET,
    jwksUrl: env.JWT_JWKS_URL,
    jwks: env.JWT_JWKS,
    issuer: env.JWT_ISSUER,
    audience: env.JWT_AUDIENCE,
    tenantFromSub: env.TENANT_FROM_SUB === "true",
  }
  if (config.secret === undefined && config.jwksUrl === undefined && config.jwks === undefined) return undefined
  const key = JSON.stringify(config)
  let verifier = verifiers.get(key)
  if (verifier === undefined) verifiers.set(key, (verifier = makeJwtVerifier(config)))
  return verifier
}

const DEV_PRINCIPAL: Principal = { sub: "anonymous", tenant: DEV_TENANT, scopes: ALL_SCOPES }

export const resourceMetadataUrl = (request: Request) =>
  `${new URL(request.url).origin}/.well-known/oauth-protected-resource`

/**
 * A protected-resource metadata document (RFC 9728). It is public and the same for everyone, so
 * any origin may read it: browser MCP clients (the MCP Inspector) preflight their discovery.
 */
export const protectedResourceMetadata = (
  c: Context<AppEnv>,
  document: {
    readonly resource: string
    readonly scopes_supported: ReadonlyArray<string>
    readonly resource_name?: string
  },
) => {
  c.header("Access-Control-Allow-Origin", "*")
  if (c.req.method === "OPTIONS") {
    c.header("Access-Control-Allow-Methods", "GET, OPTIONS")
    c.header("Access-Control-Allow-Headers", "*")
    return c.body(null, 204)
  }
  // The app's own authorization server (when configured), then the issuer of the JWTs it accepts.
  const authorization_servers = [
    ...(c.get("auth")?.authorizationServers(c.req.raw, c.env) ?? []),
    ...(c.env.JWT_ISSUER ? [c.env.JWT_ISSUER] : []),
  ]
  return c.json({ ...document, authorization_servers, bearer_methods_supported: ["header"] })
}

/**
 * A 401 with the RFC 6750 challenge, pointing at the protected-resource metadata (RFC 9728):
 * on /mcp, with an authorization server of the app's own, the document naming `{origin}/mcp`
 * (MCP clients ask for a token for that resource); and the scopes a client should ask for.
 */
export const unauthorized = (
  request: Request,
  code: string,
  message: string,
  error: "invalid_token" | undefined,
  ownServer: boolean,
) => {
  const mcp = ownServer && new URL(request.url).pathname === "/mcp"
  const metadata = resourceMetadataUrl(request) + (mcp ? "/mcp" : "")
  const params = [`realm="emberlog"`, `resource_metadata="${metadata}"`, `scope="read write"`]
  if (error !== undefined) params.push(`error="${error}"`, `error_description="${message.replaceAll('"', "'")}"`)
  return new HttpError(401, code, message, undefined, { "WWW-Authenticate": `Bearer ${params.join(", ")}` })
}

/** The subdomain user under BASE_DOMAIN, if the request came in on one. */
export const subdomainUser = (env: Env, request: Request): string | undefined => {
  if (!env.BASE_DOMAIN) return undefined
  const host = new URL(request.url).hostname
  const suffix = `.${env.BASE_DOMAIN}`
  return host.endsWith(suffix) && host.length > suffix.length ? host.slice(0, -suffix.length) : undefined
}

/** The WebSocket subprotocol that carries a token from browsers, which cannot set Authorization on a WebSocket. */
export const BEARER_SUBPROTOCOL = "bearer"

/** Subprotocols a WebSocket request offers (`Sec-WebSocket-Protocol`), in order. */
export const offeredSubprotocols = (request: Request): Array<string> =>
  (request.headers.get("Sec-WebSocket-Protocol") ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p.length > 0)

/**
 * A subprotocol token in base64url (`b64u.<base64url(token)>`): OAuth tokens contain `:`,
 * which Sec-WebSocket-Protocol does not allow, so browsers send them encoded.
 */
const B64U_PREFIX = "b64u."

const decodeSubprotocolToken = (offered: string): string | undefined => {
  if (!offered.startsWith(B64U_PREFIX)) return offered
  const encoded = offered.slice(B64U_PREFIX.length)
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) return undefined
  try {
    const binary = atob(encoded.replaceAll("-", "+").replaceAll("_", "/"))
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      Uint8Array.from(binary, (char) => char.charCodeAt(0)),
    )
  } catch {
    return undefined
  }
}

/**
 * `Authorization: Bearer <token>`, or on a WebSocket upgrade the subprotocols `bearer, <jwt>`
 * or `bearer, b64u.<base64url(token)>`.
 */
const bearerToken = (request: Request): string | undefined => {
  const header = request.headers.get("Authorization")
  if (header !== null) return header.match(/^Bearer\s+(\S+)\s*$/i)?.[1]
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return undefined
  const offered = offeredSubprotocols(request)
  const at = offered.indexOf(BEARER_SUBPROTOCOL)
  const token = at === -1 ? undefined : offered[at + 1]
  return token === undefined ? undefined : decodeSubprotocolToken(token)
}

/**
 * The principal of a request. An app's own authorization server (`c.get("auth")`, when it is
 * configured) is asked first: it recognises its tokens and refuses them itself (401/403); any
 * other token is a JWT for the configured verifier. Not configured means neither exists.
 */
export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  let principal: Principal
  if (c.env.AUTH_MODE === "off") {
    principal = DEV_PRINCIPAL
  } else {
    const request = c.req.raw
    const provider = c.get("auth")
    const ownServer = provider !== undefined
    // A provider that names no authorization server for this request is not configured (no client id, no KV).
    const issuing =
      provider !== undefined && provider.authorizationServers(request, c.env).length > 0 ? provider : undefined
    const verifier = verifierFor(c.env)
    if (verifier === undefined && issuing === undefined) {
      throw unauthorized(
        request,
        "auth_not_configured",
        "Authentication is not configured: set JWT_SECRET (HS256) or JWT_JWKS_URL (RS256/ES256), or GITHUB_CLIENT_ID with OAUTH_KV for sign-in with GitHub, or AUTH_MODE=off for local development",
        undefined,
        ownServer,
      )
    }
    const token = bearerToken(request)
    if (token === undefined)
      throw unauthorized(
        request,
        "unauthenticated",
        issuing === undefined
          ? "Send a bearer token: Authorization: Bearer <jwt> (browser WebSockets: subprotocols bearer, <jwt>)"
          : "Sign in (OAuth: see resource_metadata in WWW-Authenticate) and send the token: Authorization: Bearer <token> (browser WebSockets: subprotocols bearer, b64u.<base64url(token)>)",
        undefined,
        ownServer,
      )
    const issued = issuing === undefined ? undefined : await issuing.verify(request, c.env, token)
    if (issued !== undefined) principal = issued
    else if (verifier === undefined)
      throw unauthorized(
        request,
        "invalid_token",
        "This token was not issued by this server",
        "invalid_token",
        ownServer,
      )
    else {
      const verified = await Effect.runPromise(Effect.result(verifier.verify(token)))
      if (verified._tag === "Failure") {
        const rejected: TokenRejected = verified.failure
        throw unauthorized(
          request,
          rejected.reason === "expired" ? "token_expired" : "invalid_token",
          rejected.message,
          "invalid_token",
          ownServer,
        )
      }
      principal = verified.success
    }
  }
  // {name}.BASE_DOMAIN only admits tokens of tenant `name` or of the user `name` (in their own namespace);
  // it never moves a token into another namespace. With auth off it names the namespace.
  const user = subdomainUser(c.env, c.req.raw)
  if (user !== undefined && c.env.AUTH_MODE === "off") principal = { ...principal, tenant: user }
  else if (user !== undefined && user !== principal.tenant && principal.tenant !== personalTenant(user)) {
    const message = `This token is for tenant ${JSON.stringify(principal.tenant)}, not ${JSON.stringify(user)}`
    throw new HttpError(403, "wrong_tenant", message)
  }
  c.set("principal", principal)
  await next()
  // A browser that offered its token as a subprotocol needs one of them selected, or it drops the socket.
  const accepted = c.res.webSocket
  if (c.res.status === 101 && accepted && offeredSubprotocols(c.req.raw).includes(BEARER_SUBPROTOCOL)) {
    c.res = new Response(null, {
      status: 101,
      webSocket: accepted,
      headers: { "Sec-WebSocket-Protocol": BEARER_SUBPROTOCOL },
    })
  }
}

/** 403 naming the missing scope, unless the principal has it. */
export const requireScope =
  (scope: Scope): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    if (!c.get("principal").scopes.has(scope)) {
      throw new HttpError(
        403,
        "insufficient_scope",
        `This needs the ${scope} scope`,
        { scope },
        {
          "WWW-Authenticate": `Bearer realm="emberlog", error="insufficient_scope", scope="${scope}"`,
        },
      )
    }
    await next()
  }
