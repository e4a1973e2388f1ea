/**
 * DNS-rebinding and cross-site protection, one check for every route that acts or reads
 * data. A DNS-rebinding attack reaches a local server under the attacker's hostname, and
 * a page on another site can POST to it or open a WebSocket (neither is stopped by CORS),
 * so with auth off (local development) only localhost names are served unless
 * MCP_ALLOWED_HOSTS says otherwise, and a present Origin must be a served host or a
 * CORS origin. Deployed, Cloudflare routes by hostname, so the Host is the Worker's own;
 * `/mcp` checks Origin there too, as the MCP transport requires.
 */
import { localhostAllowedHostnames, validateHostHeader, validateOriginHeader } from "@modelcontextprotocol/server"
import type { Env } from "./env.js"
import { commaList } from "./params.js"

/** Hostnames this server answers to, or undefined for any (deployed with auth on). */
const allowedHosts = (env: Env, request: Request): Array<string> | undefined => {
  const configured = env.MCP_ALLOWED_HOSTS ? commaList(env.MCP_ALLOWED_HOSTS) : undefined
  const hosts = configured ?? (env.AUTH_MODE === "off" ? localhostAllowedHostnames() : undefined)
  // {name}.BASE_DOMAIN names a namespace, so every such host is this server's own.
  const hostname = new URL(request.url).hostname
  const base = env.BASE_DOMAIN
  const underBase = base !== undefined && base !== "" && (hostname === base || hostname.endsWith(`.${base}`))
  return hosts !== undefined && underBase ? [...hosts, hostname] : hosts
}

/** Hostnames allowed in Origin: the served hosts (or this request's, deployed) and the CORS origins. */
const allowedOriginHosts = (env: Env, request: Request) => [
  ...(allowedHosts(env, request) ?? [new URL(request.url).hostname]),
  ...commaList(env.CORS_ORIGINS).map((origin) => new URL(origin).hostname),
]

export interface ForeignRequest {
  readonly code: "invalid_host" | "invalid_origin"
  readonly message: string
}

/** Why this request must be refused for its Host or Origin, if it must. */
export const foreignRequest = (env: Env, request: Request): ForeignRequest | undefined => {
  const hosts = allowedHosts(env, request)
  // The Worker sees the Host in the request URL (a Host header may not be present).
  const host = validateHostHeader(new URL(request.url).host, hosts ?? [])
  if (hosts !== undefined && !host.ok) return { code: "invalid_host", message: host.message }
  const origin = validateOriginHeader(request.headers.get("Origin"), allowedOriginHosts(env, request))
  return origin.ok ? undefined : { code: "invalid_origin", message: origin.message }
}
