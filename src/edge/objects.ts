/**
 * Addressing objects from the edge, and only here: an actor `kind/id` of a tenant (the
 * caller's unless an operator route names another), a kind's extra RPC methods, topics,
 * projections and MCP sessions. Route modules (the kinds' too) import these, never stubs.
 * Every actor of every kind is an object of EMBERLOG_ACTOR, named `tenant/kind/id`.
 */
import type { Context } from "hono"
import type { ActorApi } from "../actors/durable-actor.js"
import { stubOf } from "../actors/stubs.js"
import type { EmberlogTopicObject, TopicApi } from "../actors/topic.js"
import { actorName, scopedName } from "../core/names.js"
import type { AppEnv, Env } from "./env.js"
import { HttpError, failed, unwrap } from "./errors.js"
import * as Params from "./params.js"

/** A binding the app needs that wrangler.toml does not declare: a 503 that says which, not a TypeError. */
const namespace = (env: Env, binding: "EMBERLOG_ACTOR" | "EMBERLOG_TOPIC" | "EMBERLOG_MCP_SESSION") => {
  const bound = (env as Partial<Env>)[binding]
  if (bound === undefined)
    throw failed({
      _tag: "Unavailable",
      code: "binding_missing",
      message: `No Durable Object binding ${binding}: declare it in wrangler.toml (README, "Use emberlog in your own Worker")`,
    })
  return bound
}

/** The actor `kind/id` of a tenant through the Worker's (or an object's) bindings; the caller checks the kind. */
export const actorIn = (env: Env, tenant: string, kind: string, id: string): ActorApi =>
  stubOf<ActorApi>(namespace(env, "EMBERLOG_ACTOR"), actorName(tenant, kind, id))

export const unknownKind = (kind: string, served: ReadonlyArray<string>) =>
  new HttpError(404, "unknown_kind", `Unknown kind ${JSON.stringify(kind)}; known kinds: ${served.join(", ")}`)

/** The actor `kind/id` of a tenant (by default the caller's); 404 `unknown_kind` for a kind the app does not serve. */
export const actorOf = (c: Context<AppEnv>, kind: string, id: string, tenant = c.get("principal").tenant): ActorApi => {
  // The id is checked first, as it always was: a bad id is 400 whatever the kind.
  const checked = Params.actorId(id)
  const served = c.get("kinds")
  if (!served.includes(kind)) throw unknownKind(kind, served)
  return actorIn(c.env, tenant, kind, checked)
}

/** Typed calls of a kind's extra RPC methods (a capability's `methods`), through the actor's `invoke`. */
export const kindMethods = <M extends object>(
  actor: ActorApi,
): {
  readonly [K in keyof M]: M[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never
} =>
  new Proxy({} as never, {
    get: (_target, method) => {
      // Not a thenable: `await kindMethods(actor)` (or an async function returning it) must not invoke "then".
      if (typeof method !== "string" || method === "then") return undefined
      return async (...args: Array<unknown>) => unwrap(await actor.invoke(method, args))
    },
  })

/** A topic of a tenant; `name` is checked against the name alphabet (400 `invalid_topic`). */
export const topicOf = (env: Env, tenant: string, name: string): TopicApi =>
  stubOf<EmberlogTopicObject>(namespace(env, "EMBERLOG_TOPIC"), scopedName(tenant, Params.logName("topic", name)))

/** A projection of a tenant: it lives in the object of the topic that feeds it. */
export const projectionOf = <V = unknown>(
  env: Env,
  tenant: string,
  projection: { readonly name: string; readonly topic: string },
): { read(): Promise<V> } => ({
  read: async () => unwrap(await topicOf(env, tenant, projection.topic).readProjection(projection.name)) as V,
})

/** The MCP session `id` of a tenant (`T`: the session class, which imports this module). */
export const mcpSessionOf = <T>(env: Env, tenant: string, id: string) =>
  stubOf<T>(namespace(env, "EMBERLOG_MCP_SESSION"), scopedName(tenant, id))
