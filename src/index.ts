// `emberlog`: the entity contract and the actor runtime. Loads in plain Node (no Cloudflare
// import): Worker-only code is in `emberlog/worker` (src/worker.ts).
export * from "./domain/index.js"
export { ActorCore } from "./actors/actor-core.js"
export type {
  ActorFailure,
  ActorReply,
  CommandOutcome,
  CommandRequest,
  Source,
  StateQuery,
  TopicEntry,
  VerifyReport,
  WireEvent,
} from "./core/wire.js"
export {
  DEV_TENANT,
  NAME_CHARS,
  NAME_PATTERN,
  actorName,
  parseActorName,
  scopedName,
  parseScopedName,
} from "./core/names.js"
