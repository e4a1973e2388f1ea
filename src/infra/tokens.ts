/**
 * Bearer token verification (JWT, via `jose`), a `TokenVerifierShape` chosen by
 * configuration (edge/auth.ts keeps one per configuration): HS256 with a shared
 * secret, or RS256/ES256 against a JWKS (a URL, or the key set inline).
 */
import { Effect } from "effect"
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose"

export interface Principal {
  /** Recorded as `meta.principal` on every event the principal causes. */
  readonly sub: string
  /** Whose actors this principal addresses: the `tenant` claim, else the sub's own namespace (see tenantOf). */
  readonly tenant: string
  readonly scopes: ReadonlySet<string>
  /** When the token expires (ms epoch, from `exp`): long-lived sockets and streams end then. */
  readonly expiresAt?: number
}

/** `admin` acts within the token's tenant; `operator` reads across tenants (the admin routes). */
export type Scope = "read" | "write" | "admin" | "operator"
export const SCOPES: ReadonlyArray<Scope> = ["read", "write", "admin", "operator"]
export const ALL_SCOPES: ReadonlySet<string> = new Set<Scope>(SCOPES)

export class TokenRejected extends Error {
  constructor(
    readonly reason: "invalid_token" | "expired",
    message: string,
  ) {
    super(message)
  }
}

export interface TokenVerifierShape {
  readonly verify: (token: string) => Effect.Effect<Principal, TokenRejected>
}

export interface JwtConfig {
  readonly secret?: string
  readonly jwksUrl?: string
  /** A JWKS document as JSON (keys pinned in configuration instead of fetched). */
  readonly jwks?: string
  readonly issuer?: string
  readonly audience?: string
  /** A token without a tenant claim addresses the tenant named by its sub (off by default: see tenantOf). */
  readonly tenantFromSub?: boolean
}

/** The namespace of a sub that has no tenant claim: never a tenant's name, so no username reaches a tenant. */
export const personalTenant = (sub: string) => `user:${sub}`

/**
 * Tenants come from the `tenant` claim, which only the issuer sets. A sub is often chosen
 * by its user (a sign-up name), so without a claim the token gets the sub's own namespace
 * (`user:{sub}`), unless the deployment has said every sub is a tenant (`tenantFromSub`).
 */
export const tenantOf = (sub: string, claim: unknown, tenantFromSub = false): string =>
  typeof claim === "string" && claim.length > 0 ? claim : tenantFromSub ? sub : personalTenant(sub)

const principalOf = (payload: JWTPayload, tenantFromSub: boolean | undefined): Principal => {
  if (typeof payload.sub !== "string" || payload.sub.length === 0)
    throw new TokenRejected("invalid_token", "The token has no sub claim")
  const tenant = tenantOf(payload.sub, payload.tenant, tenantFromSub)
  const scope = typeof payload.scope === "string" ? payload.scope : ""
  const scopes = new Set(scope.split(" ").filter((s) => s.length > 0))
  const expiry = typeof payload.exp === "number" ? { expiresAt: payload.exp * 1000 } : {}
  return { sub: payload.sub, tenant, scopes, ...expiry }
}

export const makeJwtVerifier = (config: JwtConfig): TokenVerifierShape => {
  const key =
    config.secret !== undefined
      ? { algorithms: ["HS256"], key: new TextEncoder().encode(config.secret) }
      : config.jwks !== undefined
        ? { algorithms: ["RS256", "ES256"], key: createLocalJWKSet(JSON.parse(config.jwks)) }
        : { algorithms: ["RS256", "ES256"], key: createRemoteJWKSet(new URL(config.jwksUrl!)) }
  return {
    verify: (token) =>
      Effect.tryPromise({
        try: async () => {
          const { payload } = await jwtVerify(token, key.key as Parameters<typeof jwtVerify>[1], {
            algorithms: key.algorithms,
            ...(config.issuer ? { issuer: config.issuer } : {}),
            ...(config.audience ? { audience: config.audience } : {}),
            requiredClaims: ["exp"],
          })
          return principalOf(payload, config.tenantFromSub)
        },
        catch: (error) =>
          error instanceof TokenRejected
            ? error
            : error instanceof errors.JWTExpired
              ? new TokenRejected("expired", "The token has expired")
              : new TokenRejected(
                  "invalid_token",
                  error instanceof Error ? error.message : "The token could not be verified",
                ),
      }),
  }
}
