import type { Hono } from "hono"
import { bodyLimit } from "hono/body-limit"
import { errorBody } from "./errors.js"
import type { ActorReply, CommandOutcome } from "../core/wire.js"
import type { Principal } from "../infra/tokens.js"
import type { ToolResult } from "./mcp/tools.js"

/** The bindings and settings every app has (wrangler.toml, vars and secrets; see README); kinds add their own. */
export type Env = {
  /** Every actor of every kind (EmberlogActor), every topic and its projections (EmberlogTopic), MCP sessions. */
  readonly [K in "EMBERLOG_ACTOR" | "EMBERLOG_TOPIC" | "EMBERLOG_MCP_SESSION"]: DurableObjectNamespace
} & {
  /** Reported by /health ("development" when unset). */
  readonly ENVIRONMENT?: string
  /** "off" disables authentication (local development only). */
  readonly AUTH_MODE?: string
  readonly JWT_SECRET?: string
  readonly JWT_JWKS_URL?: string
  readonly JWT_JWKS?: string
  readonly JWT_ISSUER?: string
  readonly JWT_AUDIENCE?: string
  /** "true": a token without a tenant claim addresses the tenant named by its sub (else its own `user:{sub}`). */
  readonly TENANT_FROM_SUB?: string
  /** With it set, {name}.{BASE_DOMAIN} admits only tokens of tenant or user `name`. */
  readonly BASE_DOMAIN?: string
  /** Comma-separated hostnames /mcp answers to (DNS-rebinding protection); localhost names when AUTH_MODE=off. */
  readonly MCP_ALLOWED_HOSTS?: string
  /** How long an idle MCP session (2025-11-25 era) lives, in ms; 30 minutes by default. */
  readonly MCP_SESSION_IDLE_MS?: string
  /** Comma-separated origins allowed by CORS; none by default. */
  readonly CORS_ORIGINS?: string
  readonly LIMITER?: RateLimit
  /** Sign in with GitHub (githubOAuth): the GitHub OAuth app's client id and (a secret) client secret. */
  readonly GITHUB_CLIENT_ID?: string
  readonly GITHUB_CLIENT_SECRET?: string
  /** GitHub's web endpoints (https://github.com unless set) and API (https://api.github.com): stand-ins in tests. */
  readonly GITHUB_OAUTH_URL?: string
  readonly GITHUB_API_URL?: string
  /** The OAuth server's clients, grants and (hashed) tokens: @cloudflare/workers-oauth-provider's fixed binding name. */
  readonly OAUTH_KV?: KVNamespace
}
/**
 * What a request sees of the app's own authorization server (an AuthProvider, auth-provider.ts,
 * which adds its routes): declared here so that the request's variables need nothing of routes
 * or kinds (auth-provider.ts → env.ts, never back).
 */
export interface RequestAuth {
  /** The principal of a token it issued; undefined for a token not of its making (auth-provider.ts). */
  readonly verify: (request: Request, env: Env, token: string) => Promise<Principal | undefined>
  /** The authorization servers the protected-resource metadata names; none when it is not configured. */
  readonly authorizationServers: (request: Request, env: Env) => ReadonlyArray<string>
  /** Revokes every grant and token of a tenant (tenant deletion); how many grants went. */
  readonly eraseTenant: (env: Env, tenant: string) => Promise<number>
}

/** What a request's handlers report beside what the middleware sees itself. */
export interface UsageRecorder {
  /** A command was answered: counted with its events when it appended (a replay appended nothing). */
  readonly commandAnswered: (reply: ActorReply<CommandOutcome>) => void
  /** An MCP tool was called: counted by name, and its failure by code. */
  readonly toolCalled: (tool: string, result: ToolResult) => void
}

/**
 * Set for every request, before any route: `kinds`, the names of the kinds the app serves;
 * `auth`, the app's own authorization server, if it runs one; `usage`, when the app counts usage.
 */
export type AppEnv = {
  Bindings: Env
  Variables: {
    principal: Principal
    kinds: ReadonlyArray<string>
    auth: RequestAuth | undefined
    usage: UsageRecorder | undefined
    /** The answer's error code, once worked out (errors.ts `answerCodeOf`). */
    answerCode: { readonly code: string | Promise<string> | undefined }
  }
}
export type App = Hono<AppEnv>

export const MAX_BODY_BYTES = 256 * 1024

/** Refuses bodies over `maxSize` bytes with 413 before anything reads them (`refuse` shapes the answer). */
export const limitBodyTo = (
  maxSize: number,
  refuse = (message: string) => Response.json(errorBody("too_large", message), { status: 413 }),
) => bodyLimit({ maxSize, onError: () => refuse(`Request bodies are limited to ${maxSize} bytes here`) })

export const limitBody = limitBodyTo(MAX_BODY_BYTES)
