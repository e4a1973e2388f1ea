/**
 * The factory: an app from its kinds. `emberlog({ kinds })` gives the three Durable Object
 * classes a Worker exports (one for every kind's actors, one for topics and the projections
 * they feed, one for MCP sessions), its fetch handler, and the Hono app behind it, to which
 * an app may add routes of its own: in `routes` (mounted before the generic /v1 routes) or on
 * `app` afterwards (answering wherever no served kind's route matches).
 *
 * Authentication, tenancy and rate limits run only under /v1 and /mcp, and the paths the
 * served kinds guard (/api, /ws, /broadcast): a route of your own elsewhere (`/hello`) is public
 * unless it is guarded, e.g. `app.use("/hello", ...guarded)` then `requireScope("read")` on it.
 */
import { actorHostClass, type ActorClass } from "../actors/durable-actor.js"
import { topicClass, type TopicClass, type TopicProjection } from "../actors/topic.js"
import type { TenantEraser } from "../actors/deletion.js"
import { eraseUsage } from "./usage.js"
import { createApp, type AppOptions } from "./app.js"
import type { App, Env } from "./env.js"
import { kindRegistry } from "./kind.js"
import { mcpSessionClass, type McpSession } from "./mcp/session-object.js"
import type { ReplicaOptions } from "../core/replica.js"

export interface EmberlogOptions extends AppOptions {
  /** Projections of topics, each living in the object of the topic that feeds it (`/v1/projections/{name}`). */
  readonly projections?: ReadonlyArray<TopicProjection<any>>
  /**
   * Steps of a tenant's deletion beside erasing its objects: whatever the app keeps of a tenant
   * elsewhere (usage rows). The authorization server's grants (`auth`) are erased first, always.
   */
  readonly erasers?: ReadonlyArray<TenantEraser>
  /**
   * Follows actors' logs into a Cloudflare Queue (README, "Replicas"): `{ binding, kinds? }`, the queue
   * producer binding and the kinds replicated (every kind when absent); consume with `emberlog/replica`.
   */
  readonly replica?: ReplicaOptions
}

export interface Emberlog {
  /** Export these from the Worker's main module under these names (wrangler.toml binds them). */
  readonly objects: {
    readonly EmberlogActor: ActorClass
    readonly EmberlogTopic: TopicClass
    readonly EmberlogMcpSession: typeof McpSession
  }
  /** The Worker's default export (an ExportedHandler). */
  readonly handler: { readonly fetch: (request: Request, env: Env, ctx: ExecutionContext) => Promise<Response> }
  readonly app: App
}

/**
 * The deletion's pluggable steps: the authorization server's grants first (no new tokens), the
 * usage counted (after the objects: the deletion's own requests are counted until then), the app's.
 */
const tenantErasers = (options: EmberlogOptions): ReadonlyArray<TenantEraser> => {
  const auth = options.auth
  const grants: ReadonlyArray<TenantEraser> =
    auth === undefined
      ? []
      : [{ name: "oauth-grants", when: "before", erase: (env, tenant) => auth.eraseTenant(env, tenant) }]
  const usage: ReadonlyArray<TenantEraser> =
    options.usage === true ? [{ name: "usage", when: "after", erase: eraseUsage }] : []
  return [...grants, ...usage, ...(options.erasers ?? [])]
}

export const emberlog = (options: EmberlogOptions): Emberlog => {
  const registry = kindRegistry(options.kinds)
  const app = createApp(options, registry)
  return {
    objects: {
      EmberlogActor: actorHostClass(
        registry.modules.map(({ entity, capabilities, retention }) => ({
          entity,
          capabilities: capabilities ?? [],
          ...(retention === undefined ? {} : { retention }),
        })),
        options.replica === undefined ? {} : { replica: options.replica },
      ),
      EmberlogTopic: topicClass(options.projections ?? [], { erasers: tenantErasers(options) }),
      EmberlogMcpSession: mcpSessionClass(registry),
    },
    handler: { fetch: async (request, env, ctx) => app.fetch(request, env, ctx) },
    app,
  }
}
