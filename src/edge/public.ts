// The edge's public surface (part of `emberlog/worker`): the app factory, kind modules, and what
// kind routes and tools build with (addressing, auth scopes, input checks, errors as the edge answers them).
export { createApp, type AppOptions, type ProjectionOption } from "./app.js"
export {
  defineKind,
  kindRegistry,
  RESERVED_KINDS,
  type HealthPart,
  type KindModule,
  type KindRegistry,
  type SignIn,
  type SignInContext,
} from "./kind.js"
export type { AuthProvider } from "./auth-provider.js"
export { githubOAuth, type GithubOAuthOptions } from "./oauth/github.js"
export { mcpSessionClass, type McpSession } from "./mcp/session-object.js"
export { actorIn, actorOf, kindMethods, mcpSessionOf, projectionOf, topicOf } from "./objects.js"
export { requireScope } from "./auth.js"
export { guarded } from "./guard.js"
export { limitBody, limitBodyTo, MAX_BODY_BYTES, type App, type AppEnv, type Env, type RequestAuth } from "./env.js"
export { HttpError, badRequest, failed, unwrap } from "./errors.js"
export * as Params from "./params.js"
export { limitKey } from "./rate-limit.js"
export {
  ActorIdSchema,
  Count,
  IdempotencyKeySchema,
  failure,
  fromReply,
  success,
  type KindTools,
  type ToolDefinition,
  type ToolRegistrar,
  type ToolResult,
} from "./mcp/tools.js"
// What a kind's routes need of the host and the core to hand a request on to its actor.
export { clientHeaders, setAuthority } from "../actors/subscribers.js"
export { canonicalJson } from "../core/hash-chain.js"
export { emberlog, type Emberlog, type EmberlogOptions } from "./factory.js"
// A kind's /health part probes its own bindings the way the edge probes the archive.
export { probeR2Bucket, type Dependency, type DependencyStatus } from "./health.js"
