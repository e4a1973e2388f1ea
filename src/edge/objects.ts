/**
 * Addressing objects from a request: the `kind/id` a route names (in the caller's tenant
 * unless an operator route names another), a kind's extra methods, topics, projections and
 * MCP sessions. Route modules import it from here, not from app.ts, which imports them.
 * Every actor of every kind is an object of EMBERLOG_ACTOR, named `tenant/kind/id`.
 */
import type { Context } from "hono"
import type { ActorApi } from "../actors/durable-actor.js"
import { stubOf } from "../actors/stubs.js"
import { projectionTopic, type EmberlogTopicObject, type TopicApi } from "../actors/topic.js"
import { actorName, scopedName } from "../core/names.js"
import { kinds } from "../kinds/entities.js"
import type { AppEnv, Env } from "./env.js"
import { HttpError, unwrap } from "./errors.js"
import * as Params from "./params.js"

/** The actor `kind/id` of a tenant, or undefined for a kind this Worker does not serve. */
export const actorStub = (env: Env, tenant: string, kind: string, id: string): ActorApi | undefined =>
  Object.hasOwn(kinds, kind) ? stubOf<ActorApi>(env.EMBERLOG_ACTOR, actorName(tenant, kind, id)) : undefined

/** The actor `kind/id` of a tenant (by default the caller's). */
export const actorOf = (c: Context<AppEnv>, kind: string, id: string, tenant = c.get("principal").tenant): ActorApi => {
  const actor = actorStub(c.env, tenant, kind, Params.actorId(id))
  if (actor === undefined)
    throw new HttpError(
      404,
      "unknown_kind",
      `Unknown kind ${JSON.stringify(kind)}; known kinds: ${Object.keys(kinds).join(", ")}`,
    )
  return actor
}

/** Typed calls of a kind's extra RPC methods (a capability's `methods`), through the actor's `invoke`. */
export const kindMethods = <M extends object>(
  actor: ActorApi,
): {
  readonly [K in keyof M]: M[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never
} =>
  new Proxy({} as never, {
    get: (_target, method) => {
      if (typeof method !== "string") return undefined
      return async (...args: Array<unknown>) => {
        return unwrap(await actor.invoke(method, args))
      }
    },
  })

/** The topic `name` of a tenant. */
export const topicOf = (env: Env, tenant: string, name: string): TopicApi =>
  stubOf<EmberlogTopicObject>(env.EMBERLOG_TOPIC, scopedName(tenant, name))

/** The projection `name` of a tenant: it lives in the object of the topic that feeds it. */
export const projectionOf = <V = unknown>(env: Env, tenant: string, name: string): { read(): Promise<V> } => {
  const topic = projectionTopic(name)
  if (topic === undefined) throw new HttpError(404, "unknown_projection", `Unknown projection ${JSON.stringify(name)}`)
  return {
    read: async () => {
      return unwrap(await topicOf(env, tenant, topic).readProjection(name)) as V
    },
  }
}

/** The MCP session `id` of a tenant (`T`: the session class, which imports this module). */
export const mcpSessionOf = <T>(env: Env, tenant: string, id: string) =>
  stubOf<T>(env.EMBERLOG_MCP_SESSION, scopedName(tenant, id))
