// `emberlog`: the entity contract and the actor runtime. Loads in plain Node (no Cloudflare
// import): Worker-only code is in `emberlog/worker` (src/worker.ts).
export * from "./domain/index.js"
export {
  ActorCore,
  type ActorFailure,
  type ActorReply,
  type CommandOutcome,
  type CommandRequest,
  type StateQuery,
  type VerifyReport,
} from "./actors/actor-core.js"
