/**
 * Every entity kind served, with the Durable Object class that hosts it. Adding a kind
 * is one line here, one entity file in src/domain, and its binding in wrangler.toml.
 */
import { Counter } from "../domain/counter.js"
import { Document } from "../domain/document.js"
import { Room, postFrame } from "../domain/room.js"
import { Job } from "../domain/job.js"
import { Memory } from "../domain/memory.js"
import { Session } from "../domain/session.js"
import { executorFor, type ExecutorSettings } from "../infra/executors.js"
import type { Entity } from "../domain/entity.js"
import { actorClass, type ActorApi } from "./durable-actor.js"
import { jobEngine } from "./job-engine.js"
import { scopedName } from "./names.js"

export { TopicLog } from "./topic.js"
export { MemoryActor } from "./memory-actor.js"
export { CounterTotals } from "./counter-totals.js"

export const CounterActor = actorClass(Counter)
export const DocumentActor = actorClass(Document)
export const SessionActor = actorClass(Session)
export const JobActor = actorClass(Job, { react: jobEngine((env) => executorFor(env as ExecutorSettings)) })
export const RoomActor = actorClass(Room, {
  room: {
    join: (name) => ({ type: "Join", name }),
    leave: (name) => ({ type: "Leave", name }),
    post: (sender, { type, payload }) => ({ type: "Post", messageType: type, payload, sender }),
    frame: postFrame,
  },
})

export const kinds = {
  counter: { entity: Counter, binding: "COUNTER" },
  document: { entity: Document, binding: "DOCUMENT" },
  room: { entity: Room, binding: "ROOM" },
  session: { entity: Session, binding: "SESSION" },
  job: { entity: Job, binding: "JOB" },
  memory: { entity: Memory, binding: "MEMORY" },
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
  return namespace.getByName(scopedName(tenant, id)) as unknown as ActorApi
}
