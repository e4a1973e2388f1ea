// The host's public surface (part of `emberlog/worker`): what kind authors build capabilities with.
export type { Capability, Host, Projection } from "./capability.js"
export { defineCapability } from "./capability.js"
export {
  actorClass,
  actorRuntime,
  type ActorApi,
  type ActorClass,
  type ActorEnv,
  type ActorObject,
  type ActorOptions,
} from "./durable-actor.js"
