/**
 * An authorization server an app runs itself (`emberlog({ auth })`, e.g. `githubOAuth()`):
 * it serves its own routes (metadata, /authorize, /oauth/*) and recognises the tokens it
 * issued. `authenticate` stays in charge: it asks the provider first, then verifies JWTs.
 * Requests see it as `c.get("auth")`: its RequestAuth part (env.ts).
 */
import type { App, RequestAuth } from "./env.js"
import type { KindRegistry } from "./kind.js"

export interface AuthProvider extends RequestAuth {
  /** Mounted before any guard (outside /v1 and /mcp): these routes are public by nature. */
  readonly routes: (app: App, served: KindRegistry) => void
  /**
   * The principal of a token this provider issued, for a request to `request`'s resource;
   * undefined when the token is not of its making (JWT verification runs next). A token of
   * its own that fails throws the HttpError to answer (401 invalid_token, 403 wrong_tenant).
   */
  readonly verify: RequestAuth["verify"]
}
