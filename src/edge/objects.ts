/**
 * Addressing objects from the edge, and only here: an actor `kind/id` of a tenant (the
 * caller's unless an operator route names another), a kind's extra RPC methods, topics,
 * projections and MCP sessions. Route modules (the kinds' too) import these, never stubs.
 */
import type { Context } from "hono"
import type { CounterTotals } from "../actors/counter-totals.js"
import type { ActorApi } from "../actors/durable-actor.js"
import { actorStub } from "../actors/kinds.js"
import { stubOf, type ObjectStub, type RpcMethods } from "../actors/stubs.js"
import type { TopicLog } from "../actors/topic.js"
import { scopedName } from "../core/names.js"
import type { AppEnv, Env } from "./env.js"
import { HttpError } from "./errors.js"
import * as Params from "./params.js"

type Bindings = { readonly [binding: string]: unknown }

/** The actor `kind/id` of a tenant through the Worker's (or an object's) bindings; undefined when none hosts `kind`. */
export const actorIn = (bindings: Bindings, tenant: string, kind: string, id: string): ActorApi | undefined =>
  actorStub(bindings, tenant, kind, id)

export const unknownKind = (kind: string, served: ReadonlyArray<string>) =>
  new HttpError(404, "unknown_kind", `Unknown kind ${JSON.stringify(kind)}; known kinds: ${served.join(", ")}`)

/** The actor `kind/id` of a tenant (by default the caller's); 404 `unknown_kind` for a kind the app does not serve. */
export const actorOf = (c: Context<AppEnv>, kind: string, id: string, tenant = c.get("principal").tenant): ActorApi => {
  // The id is checked first, as it always was: a bad id is 400 whatever the kind.
  const checked = Params.actorId(id)
  const served = c.get("kinds")
  if (!served.includes(kind)) throw unknownKind(kind, served)
  const actor = actorIn(c.env, tenant, kind, checked)
  if (actor === undefined) throw unknownKind(kind, served)
  return actor
}

/**
 * The extra RPC methods a kind's capabilities give its actors (memory's `search`, `item`),
 * typed by the kind's own interface `M`: every answer a promise.
 */
export const kindMethods = <M>(actor: ActorApi): RpcMethods<M> => actor as unknown as RpcMethods<M>

/** A topic of a tenant; `name` is checked against the name alphabet (400 `invalid_topic`). */
export const topicOf = (env: Env, tenant: string, name: string): ObjectStub<TopicLog> =>
  stubOf<TopicLog>(env.TOPIC, scopedName(tenant, Params.logName("topic", name)))

/** Projection names and the namespaces hosting them (one object per tenant). */
const PROJECTIONS: Readonly<Record<string, "COUNTER_TOTALS">> = { "counter-totals": "COUNTER_TOTALS" }

/** A projection of a tenant's topics, by name. */
export const projectionOf = (env: Env, tenant: string, name: string): { read(): Promise<unknown> } => {
  if (!Object.hasOwn(PROJECTIONS, name)) throw new HttpError(404, "unknown_projection", `No projection ${name}`)
  return stubOf<Pick<CounterTotals, "read">>(env[PROJECTIONS[name]!], tenant)
}

/** The object of an MCP session (2025-11-25 era) of a tenant. */
export const mcpSessionOf = (env: Env, tenant: string, id: string): ObjectStub<object> =>
  stubOf<object>(env.MCP_SESSION, scopedName(tenant, id))
