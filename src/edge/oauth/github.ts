/**
 * "Sign in with GitHub": emberlog as an OAuth 2.1 authorization server for MCP clients and
 * browsers, with GitHub as the identity provider, on @cloudflare/workers-oauth-provider's role
 * API (`OAuthAuthorizationServer`). The library owns the protocol (metadata, /oauth/token with
 * refresh rotation and revocation, /oauth/register, codes, PKCE checks, the consent and upstream
 * transactions and their `__Host-` cookies, tokens hashed in OAUTH_KV); this module owns what is
 * emberlog's: the consent page, the GitHub round trip, who the user is (the login is the
 * principal, the login lowercased the tenant), the kinds' `signedIn` hook, and which tokens
 * reach which resource.
 *
 * One authorization server per origin: each `{login}.{BASE_DOMAIN}` is its own issuer and its
 * own resources (`{origin}` for everything, `{origin}/mcp` for MCP alone), as MCP clients
 * require the resource on the server's origin. `authenticate` (auth.ts) asks `verify` first and
 * verifies JWTs when the token is not one of these.
 *
 * ```ts
 * emberlog({ kinds, auth: githubOAuth() })
 * ```
 */
import {
  AuthorizationError,
  CimdFetchError,
  GrantType,
  OAuthAuthorizationServer,
  OAuthError,
  authorizationErrorRedirect,
  type AuthRequest,
  type OAuthHelpers,
} from "@cloudflare/workers-oauth-provider"
import type { Context, Handler, MiddlewareHandler } from "hono"
import type { Principal } from "../../infra/tokens.js"
import { protectedResourceMetadata, subdomainUser, unauthorized } from "../auth.js"
import type { AuthProvider } from "../auth-provider.js"
import { limitBody, type AppEnv, type Env } from "../env.js"
import { HttpError, errorBody } from "../errors.js"
import type { KindRegistry, SignIn } from "../kind.js"
import { actorIn } from "../objects.js"
import { RETRY_AFTER_SECONDS, rateLimitMessage, withinLimit } from "../rate-limit.js"
import { consentPage, errorPage } from "./pages.js"
import { UpstreamRefused, githubAuthorizeUrl, githubUser, pkcePair } from "./upstream.js"

export interface GithubOAuthOptions {
  /** Access token lifetime in seconds: 3600 unless set, at least 60 (the library's minimum, KV's expiry window). */
  readonly accessTokenTTL?: number
  /** Refresh token (grant) lifetime in seconds: 30 days unless set. */
  readonly refreshTokenTTL?: number
}

/** What OAuth issues: `admin` acts within the user's own tenant only; `operator` is never issued here. */
export const OAUTH_SCOPES: ReadonlyArray<string> = ["read", "write", "admin"]
/** A client that asks for no scope gets these. */
export const DEFAULT_OAUTH_SCOPES: ReadonlyArray<string> = ["read", "write"]

/** What a grant carries (encrypted in OAUTH_KV), and every token minted from it. */
interface GrantProps {
  readonly login: string
  readonly tenant: string
  readonly githubId: number
  readonly clientId: string
  readonly clientName?: string
}

export const CALLBACK_PATH = "/oauth/github/callback"
/** Authorization servers kept per isolate, one per origin: an evicted one is rebuilt at its origin's next request (they hold no state). */
const MAX_SERVERS = 64
const MCP_PATH = "/mcp"

const configured = (env: Env) =>
  Boolean(env.GITHUB_CLIENT_ID) && Boolean(env.GITHUB_CLIENT_SECRET) && env.OAUTH_KV !== undefined

const NOT_CONFIGURED =
  'Sign-in with GitHub is not configured here: set GITHUB_CLIENT_ID, the secret GITHUB_CLIENT_SECRET and bind the KV namespace OAUTH_KV (README, "Sign in with GitHub (OAuth 2.1)")'

/** The scopes a request may be granted: those it asks for that OAuth issues, or the default when it asks none. */
const grantable = (requested: ReadonlyArray<string>): Array<string> =>
  requested.length === 0 ? [...DEFAULT_OAUTH_SCOPES] : OAUTH_SCOPES.filter((scope) => requested.includes(scope))

const redirect = (location: string, headers = new Headers()) => {
  headers.set("Location", location)
  headers.set("Cache-Control", "no-store")
  return new Response(null, { status: 302, headers })
}

/** An error that must not go back to the client (its redirect URI is not validated): shown here. */
const localError = async (c: Context<AppEnv>, status: 400, code: string, message: string) => {
  const headers = { "Cache-Control": "no-store" }
  if (!(c.req.header("Accept") ?? "").includes("text/html")) return c.json(errorBody(code, message), status, headers)
  return c.html(await errorPage(code, message), status, headers)
}

/** The library's refusals: to the client when it validated the redirect URI, else on this page; anything else is a 500. */
const authorizationFailure = (c: Context<AppEnv>, error: unknown) => {
  if (error instanceof AuthorizationError) {
    if (error.redirectTo !== undefined) return redirect(error.redirectTo)
    return localError(c, 400, error.code, error.description)
  }
  if (error instanceof CimdFetchError)
    return localError(c, 400, "invalid_client", `The client's metadata document could not be used: ${error.detail}`)
  throw error
}

/** Sign-in endpoints are public: a budget per client IP keeps registration and token guessing slow. */
const limitByClientIp: MiddlewareHandler<AppEnv> = async (c, next) => {
  const ip = c.req.header("CF-Connecting-IP") ?? "unknown"
  if (!(await withinLimit(c.env.LIMITER, `oauth-ip:${ip}`)))
    throw new HttpError(429, "rate_limited", rateLimitMessage, undefined, {
      "Retry-After": String(RETRY_AFTER_SECONDS),
    })
  await next()
}

/**
 * A resource identifier as the library compares them (scheme and host case-folded, an empty path
 * as "/"): audiences are checked here, after the one KV read `unwrapToken` makes.
 */
const canonicalResource = (resource: string): string | undefined => {
  try {
    const url = new URL(resource)
    return url.search === "" && url.hash === "" ? url.origin + url.pathname.replace(/^\/$/, "") : undefined
  } catch {
    return undefined
  }
}

/**
 * A kind's refusal of a sign-in (an HttpError below 500: a GitHub id mismatch, a closed session)
 * ends it; any other failure (an object or bucket not answering) is temporary and ends nothing.
 */
const refusedByKind = (error: unknown) => error instanceof HttpError && error.status < 500

export const githubOAuth = (options: GithubOAuthOptions = {}): AuthProvider => {
  /** The app's kinds, known once the app mounts the routes: every sign-in and refresh goes to their `signedIn`. */
  let served: KindRegistry | undefined

  /** Tells the kinds; the scopes the token gets: those asked, within every cap a kind answers. */
  const notifyKinds = async (env: Env, signIn: SignIn): Promise<Array<string>> => {
    let scopes = [...signIn.scopes]
    const kinds = served
    if (kinds === undefined) return scopes
    for (const module of kinds.modules) {
      if (module.signedIn === undefined) continue
      const kind = module.entity.kind
      const limits = await module.signedIn((id) => actorIn(env, signIn.tenant, kind, id), signIn, {
        env,
        tools: kinds.tools,
      })
      const cap = limits?.scopes
      if (cap !== undefined) scopes = scopes.filter((scope) => cap.includes(scope))
    }
    if (scopes.length === 0)
      throw new HttpError(403, "no_scopes_left", `None of the scopes asked (${signIn.scopes.join(", ")}) is allowed`)
    return scopes
  }

  const servers = new Map<string, OAuthAuthorizationServer<Env>>()
  const serverFor = (origin: string) => {
    let server = servers.get(origin)
    if (server === undefined) {
      server = new OAuthAuthorizationServer<Env>({
        issuer: origin,
        resources: [origin, origin + MCP_PATH],
        // A client that names no resource gets a token for the whole origin (the inspector's case).
        defaultResource: origin,
        tokenEndpoint: "/oauth/token",
        clientRegistrationEndpoint: "/oauth/register",
        scopesSupported: [...OAUTH_SCOPES],
        accessTokenTTL: options.accessTokenTTL ?? 3600,
        ...(options.refreshTokenTTL === undefined ? {} : { refreshTokenTTL: options.refreshTokenTTL }),
        clientIdMetadataDocumentEnabled: true,
        // A refresh is a sign-in too: the kinds record it and may refuse it (a throw ends the grant).
        tokenExchangeCallback: async ({ grantType, props, env, clientId, requestedScope }) => {
          if (grantType !== GrantType.REFRESH_TOKEN) return
          const grant = props as GrantProps
          try {
            const accessTokenScope = await notifyKinds(env, {
              event: "refreshed",
              login: grant.login,
              tenant: grant.tenant,
              githubId: grant.githubId,
              clientId,
              ...(grant.clientName === undefined ? {} : { clientName: grant.clientName }),
              scopes: requestedScope,
              at: Date.now(),
            })
            return { accessTokenScope }
          } catch (error) {
            // invalid_grant revokes the grant (the user must sign in again): only for a refusal.
            if (refusedByKind(error))
              throw new OAuthError("invalid_grant", { description: `The refresh was refused: ${messageOf(error)}` })
            throw new OAuthError("temporarily_unavailable", {
              description: `The refresh could not be recorded, try again: ${messageOf(error)}`,
              statusCode: 503,
            })
          }
        },
      })
      // Hosts under a wildcard route are the client's to choose: keep the most recent few servers.
      if (servers.size >= MAX_SERVERS) servers.delete(servers.keys().next().value!)
      servers.set(origin, server)
    }
    return server
  }
  const helpersFor = (c: Context<AppEnv>): OAuthHelpers => serverFor(new URL(c.req.url).origin).getOAuthApi(c.env)

  /** Routes that answer 503 (404 for the metadata) until GitHub sign-in is configured. */
  const whenConfigured =
    (handler: Handler<AppEnv>, status: 404 | 503 = 503): Handler<AppEnv> =>
    (c, next) =>
      configured(c.env) ? handler(c, next) : c.json(errorBody("oauth_not_configured", NOT_CONFIGURED), status)

  const protocolEndpoint = whenConfigured((c) =>
    serverFor(new URL(c.req.url).origin).fetch(c.req.raw, c.env, c.executionCtx as ExecutionContext),
  )

  const showConsent: Handler<AppEnv> = async (c) => {
    const oauth = helpersFor(c)
    try {
      const request = await oauth.parseAuthRequest(c.req.raw)
      // The library requires PKCE of public clients only; emberlog requires it of every client.
      if (request.codeChallenge === undefined || request.codeChallengeMethod !== "S256")
        return redirect(
          authorizationErrorRedirect(
            request,
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
          ),
        )
      const scopes = grantable(request.scope)
      if (scopes.length === 0)
        return redirect(
          authorizationErrorRedirect(request, "invalid_scope", `The scopes issued here are ${OAUTH_SCOPES.join(", ")}`),
        )
      const details = await oauth.describeConsent(request)
      const consent = await oauth.beginConsent(request)
      consent.headers.set("Content-Type", "text/html; charset=utf-8")
      const page = await consentPage({
        clientName: details.clientName,
        ...(details.clientDomain === undefined ? {} : { clientDomain: details.clientDomain }),
        redirectUri: details.redirectUri,
        redirectHost: details.redirectHost,
        redirectIsLoopback: details.redirectIsLoopback,
        scopes,
        host: new URL(c.req.url).host,
        handle: consent.handle,
      })
      return new Response(page.toString(), { headers: consent.headers })
    } catch (error) {
      return authorizationFailure(c, error)
    }
  }

  const decideConsent: Handler<AppEnv> = async (c) => {
    const oauth = helpersFor(c)
    let form: FormData
    try {
      form = await c.req.raw.formData()
    } catch {
      return localError(c, 400, "invalid_request", "Post the consent form (application/x-www-form-urlencoded)")
    }
    const handle = form.get("consent_handle")
    const decision = form.get("decision")
    if (typeof handle !== "string" || (decision !== "approve" && decision !== "deny"))
      return localError(c, 400, "invalid_request", "The consent form needs consent_handle and decision=approve|deny")
    try {
      if (decision === "deny") {
        const denied = await oauth.denyConsent(c.req.raw, handle, { description: "The user denied the request" })
        return new Response(null, { status: 302, headers: denied.headers })
      }
      const approved = await oauth.approveConsent(c.req.raw, handle)
      const { verifier, challenge } = await pkcePair()
      const { state, headers } = await oauth.beginUpstream(approved.request, {
        data: { verifier },
        headers: approved.headers,
      })
      const redirectUri = new URL(CALLBACK_PATH, c.req.url).toString()
      return redirect(githubAuthorizeUrl(c.env, { redirectUri, state, challenge }), headers)
    } catch (error) {
      return authorizationFailure(c, error)
    }
  }

  const githubCallback: Handler<AppEnv> = async (c) => {
    const oauth = helpersFor(c)
    let resumed: { request: AuthRequest; data: { verifier: string }; headers: Headers }
    try {
      // A forged, replayed or foreign `state` stops here: it names no transaction of this browser.
      resumed = await oauth.finishUpstream<{ verifier: string }>(c.req.raw)
    } catch (error) {
      return authorizationFailure(c, error)
    }
    const { request, data, headers } = resumed
    const refuse = (code: "access_denied" | "temporarily_unavailable", message: string) =>
      redirect(authorizationErrorRedirect(request, code, message), headers)
    const url = new URL(c.req.url)
    const upstreamError = url.searchParams.get("error")
    if (upstreamError !== null)
      return refuse(
        "access_denied",
        `GitHub did not sign you in (${upstreamError}${url.searchParams.has("error_description") ? `: ${url.searchParams.get("error_description")}` : ""})`,
      )
    const code = url.searchParams.get("code")
    if (code === null || code.length === 0) return refuse("access_denied", "GitHub sent no code")
    let user
    try {
      user = await githubUser(c.env, {
        code,
        verifier: data.verifier,
        redirectUri: new URL(CALLBACK_PATH, c.req.url).toString(),
      })
    } catch (error) {
      if (error instanceof UpstreamRefused) return refuse(error.code, error.message)
      throw error
    }
    const tenant = user.login.toLowerCase()
    // {x}.{BASE_DOMAIN} is x's instance: nobody else signs in there.
    const owner = subdomainUser(c.env, c.req.raw)
    if (owner !== undefined && owner !== tenant)
      return refuse("access_denied", `${url.host} belongs to ${owner}; you signed in to GitHub as ${user.login}`)
    const scopes = grantable(request.scope)
    let clientName: string | undefined
    try {
      clientName = (await oauth.lookupClient(request.clientId))?.clientName
    } catch (error) {
      if (error instanceof CimdFetchError) return refuse("temporarily_unavailable", "The client's metadata went away")
      throw error
    }
    const props: GrantProps = {
      login: user.login,
      tenant,
      githubId: user.id,
      clientId: request.clientId,
      ...(clientName === undefined ? {} : { clientName }),
    }
    let granted: Array<string>
    try {
      granted = await notifyKinds(c.env, { event: "signed-in", ...props, scopes, at: Date.now() })
    } catch (error) {
      if (refusedByKind(error)) return refuse("access_denied", `The sign-in was refused: ${messageOf(error)}`)
      return refuse("temporarily_unavailable", `The sign-in could not be recorded, try again: ${messageOf(error)}`)
    }
    try {
      const { redirectTo } = await oauth.completeAuthorization({
        request,
        userId: tenant,
        metadata: { login: user.login, githubId: user.id, ...(clientName === undefined ? {} : { clientName }) },
        scope: granted,
        props,
      })
      return redirect(redirectTo, headers)
    } catch (error) {
      // The stored request no longer validates (the client changed meanwhile): never redirect on it.
      return authorizationFailure(c, error)
    }
  }

  const mcpResourceMetadata: Handler<AppEnv> = (c) => {
    const origin = new URL(c.req.url).origin
    return protectedResourceMetadata(c, {
      resource: origin + MCP_PATH,
      scopes_supported: OAUTH_SCOPES,
      resource_name: "emberlog MCP",
    })
  }

  return {
    routes: (app, kinds) => {
      served = kinds
      app.use("/authorize", limitByClientIp)
      app.use("/oauth/*", limitByClientIp)
      // OPTIONS too: browser clients send MCP-Protocol-Version, so their discovery is preflighted.
      app.on(["GET", "OPTIONS"], "/.well-known/oauth-authorization-server", whenConfigured(protocolEndpoint, 404))
      app.on(["GET", "OPTIONS"], "/.well-known/oauth-protected-resource/mcp", mcpResourceMetadata)
      app.get("/authorize", whenConfigured(showConsent))
      app.post("/authorize", limitBody, whenConfigured(decideConsent))
      app.get(CALLBACK_PATH, whenConfigured(githubCallback))
      app.all("/oauth/token", protocolEndpoint)
      app.all("/oauth/register", protocolEndpoint)
    },

    verify: async (request, env, token) => {
      // The library's tokens are `userId:grantId:secret`; a JWT never contains a colon.
      if (!token.includes(":") || !configured(env)) return undefined
      const url = new URL(request.url)
      // One KV read: unwrapToken checks the record and its expiry, the audience is checked below.
      const summary = await serverFor(url.origin).getOAuthApi(env).unwrapToken<GrantProps>(token)
      if (summary === null) {
        // KV drops a token's record when it expires, so an expired token lands here too.
        const message = "The access token is unknown, revoked or expired: refresh it, or sign in again"
        throw unauthorized(request, "invalid_token", message, "invalid_token", true)
      }
      const mcp = url.pathname === MCP_PATH
      const audiences = [summary.audience ?? []].flat()
      // A token for the whole origin serves /mcp too; one for /mcp serves nothing else.
      const accepted = mcp ? [url.origin + MCP_PATH, url.origin] : [url.origin]
      const props = summary.grant.props
      if (!audiences.some((audience) => accepted.includes(canonicalResource(audience) ?? ""))) {
        const owner = subdomainUser(env, request)
        throw new HttpError(
          403,
          owner !== undefined && owner !== props.tenant ? "wrong_tenant" : "wrong_resource",
          `This token was issued for ${audiences.join(", ")}, not ${accepted[0]}: sign in at ${url.origin}`,
        )
      }
      const principal: Principal = {
        sub: props.login,
        tenant: props.tenant,
        scopes: new Set(summary.scope.filter((granted) => OAUTH_SCOPES.includes(granted))),
        expiresAt: summary.expiresAt * 1000,
      }
      return principal
    },

    authorizationServers: (request, env) => (configured(env) ? [new URL(request.url).origin] : []),

    eraseTenant: async (env, tenant) => {
      if (env.OAUTH_KV === undefined) return 0
      // Grants are stored per user, whichever origin issued them: any server's helpers reach them all.
      const oauth = serverFor(ERASER_ORIGIN).getOAuthApi(env)
      let erased = 0
      let cursor: string | undefined
      do {
        const page = await oauth.listUserGrants(tenant, cursor === undefined ? {} : { cursor })
        for (const grant of page.items) {
          await oauth.revokeGrant(grant.id, tenant)
          erased++
        }
        cursor = page.cursor
      } while (cursor !== undefined)
      return erased
    },
  }
}

/** The issuer of the server that erases grants: never served, only used to reach OAUTH_KV. */
const ERASER_ORIGIN = "https://tenant-erasure.emberlog.invalid"

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))
