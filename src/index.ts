export * from "./domain/index.js"
export { ActorCore, type ActorFailure, type ActorReply, type CommandOutcome, type CommandRequest, type StateQuery, type VerifyReport } from "./actors/actor-core.js"
export { actorClass, actorRuntime, type ActorApi, type ActorOptions } from "./actors/durable-actor.js"
export { createApp } from "./edge/app.js"
