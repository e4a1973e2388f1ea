/**
 * Every entity kind served, with the Durable Object class that hosts it. Adding a kind
 * is one line here, one entity file in src/domain, and its binding in wrangler.toml.
 */
import { entities } from "../domain/entities.js"
import { postFrame } from "../domain/room.js"
import { executorFor, type ExecutorSettings } from "../kinds/job/executors.js"
import type { Entity } from "../domain/entity.js"
import { actorClass, type ActorApi, type ActorObject } from "./durable-actor.js"
import { jobEngine } from "./job-engine.js"
import { scopedName } from "../core/names.js"
import { stubOf } from "./stubs.js"

export { TopicLog } from "./topic.js"
export { MemoryActor } from "./memory-actor.js"
export { CounterTotals } from "./counter-totals.js"

export const CounterActor = actorClass(entities.counter)
export const DocumentActor = actorClass(entities.document)
export const SessionActor = actorClass(entities.session)
export const JobActor = actorClass(entities.job, { react: jobEngine((env) => executorFor(env as ExecutorSettings)) })
export const RoomActor = actorClass(entities.room, {
  room: {
    join: (name) => ({ type: "Join", name }),
    leave: (name) => ({ type: "Leave", name }),
    post: (sender, { type, payload }) => ({ type: "Post", messageType: type, payload, sender }),
    frame: postFrame,
  },
})

export const kinds = {
  counter: { entity: entities.counter, binding: "COUNTER" },
  document: { entity: entities.document, binding: "DOCUMENT" },
  room: { entity: entities.room, binding: "ROOM" },
  session: { entity: entities.session, binding: "SESSION" },
  job: { entity: entities.job, binding: "JOB" },
  memory: { entity: entities.memory, binding: "MEMORY" },
} as const satisfies Record<string, { entity: Entity; binding: string }>

export type Kind = keyof typeof kinds

/** The actor `kind/id` of a tenant, through whichever bindings the caller has; undefined for an unknown kind. */
export const actorStub = (
  bindings: { readonly [binding: string]: unknown },
  tenant: string,
  kind: string,
  id: string,
): ActorApi | undefined => {
  if (!Object.hasOwn(kinds, kind)) return undefined
  const namespace = bindings[kinds[kind as Kind].binding] as DurableObjectNamespace
  return stubOf<ActorObject>(namespace, scopedName(tenant, id))
}
