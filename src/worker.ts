// `emberlog/worker`: Durable Object hosting and the Hono app (imports `cloudflare:workers`).
// Until the `emberlog({ kinds })` factory lands here (issue 11), this is today's app and class factory.
export {
  actorClass,
  actorRuntime,
  type ActorApi,
  type ActorClass,
  type ActorEnv,
  type ActorObject,
  type ActorOptions,
} from "./actors/durable-actor.js"
export { createApp } from "./edge/app.js"
