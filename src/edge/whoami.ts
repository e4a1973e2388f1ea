/**
 * What the server sees of the caller (`GET /v1/whoami` and the MCP tool `whoami`): principal,
 * tenant, scopes, the tools the served kinds grant it (null: no kind limits it, its scopes alone
 * decide) and when its token expires, so a user debugging access reads the server's own view.
 */
import { Schema } from "effect"
import type { Principal } from "../infra/tokens.js"
import { requireScope } from "./auth.js"
import type { App } from "./env.js"
import { toolGrantsOf, type KindRegistry } from "./kind.js"
import { actorIn } from "./objects.js"

export const Whoami = Schema.Struct({
  principal: Schema.String,
  tenant: Schema.String,
  scopes: Schema.Array(Schema.String),
  /** The tools granted, in the order the MCP server lists them; null when no kind limits the caller's tools. */
  tools: Schema.NullOr(Schema.Array(Schema.String)),
  /** When the token expires (ISO 8601); null for a token without expiry (or auth off). */
  expiresAt: Schema.NullOr(Schema.String),
})
export type Whoami = typeof Whoami.Type

export const whoamiOf = (
  principal: Principal,
  granted: ReadonlySet<string> | undefined,
  served: KindRegistry,
): Whoami => ({
  principal: principal.sub,
  tenant: principal.tenant,
  scopes: [...principal.scopes],
  tools: granted === undefined ? null : served.tools.filter((tool) => granted.has(tool)),
  expiresAt: principal.expiresAt === undefined ? null : new Date(principal.expiresAt).toISOString(),
})

export const whoamiRoutes = (app: App, served: KindRegistry): void => {
  app.get("/v1/whoami", requireScope("read"), async (c) => {
    const principal = c.get("principal")
    const granted = await toolGrantsOf(served, principal, (kind, id) => actorIn(c.env, principal.tenant, kind, id))
    return c.json(whoamiOf(principal, granted, served))
  })
}
