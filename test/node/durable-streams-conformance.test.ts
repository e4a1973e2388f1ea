// The official Durable Streams server conformance suite (@durable-streams/server-conformance-tests,
// pinned in package.json) against the Worker under `wrangler dev`: the shared worker, whose
// long-polls time out after 2 s (test/node/global-setup.ts), so the suite's waits stay short.
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { sharedWorkerBase } from "./dev-worker.js"

runConformanceTests({ baseUrl: sharedWorkerBase(), longPollTimeoutMs: 2_000 })
