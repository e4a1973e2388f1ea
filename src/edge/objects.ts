/**
 * Addressing an actor from a request: the `kind/id` a route names, in the caller's tenant
 * unless an operator route names another. Route modules import it from here, not from
 * app.ts, which imports them.
 */
import type { Context } from "hono"
import type { ActorApi } from "../actors/durable-actor.js"
import { actorStub, kinds } from "../actors/kinds.js"
import type { AppEnv } from "./env.js"
import { HttpError } from "./errors.js"
import * as Params from "./params.js"

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
