// `emberlog`: the entity contract and the actor runtime. Loads in plain Node (no Cloudflare
// import): Worker-only code is in `emberlog/worker` (src/worker.ts).
export * from "./domain/index.js"
export { ActorCore } from "./actors/actor-core.js"
export type { ActorFailure, ActorReply, CommandOutcome, CommandRequest, StateQuery, VerifyReport } from "./core/wire.js"
