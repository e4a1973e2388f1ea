// This repository's Worker (wrangler.toml's main, what `npm run dev` serves): the seven built-in
// kinds, the counters' totals and sign-in with GitHub, built as any app is.
import { counter, counterTotals, document, durableStream, job, memory, room, session } from "./kinds/index.js"
import { emberlog, githubOAuth } from "./worker.js"

const app = emberlog({
  kinds: [counter, document, room, session, job, memory, durableStream],
  projections: [counterTotals],
  // Sign in with GitHub once GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET and OAUTH_KV are set (README).
  auth: githubOAuth(),
  usage: true,
  // Every actor's log into the EMBERLOG_REPLICA queue, where wrangler.toml binds it (README, "Replicas").
  replica: { binding: "EMBERLOG_REPLICA" },
})

export const { EmberlogActor, EmberlogTopic, EmberlogMcpSession } = app.objects
export default app.handler
