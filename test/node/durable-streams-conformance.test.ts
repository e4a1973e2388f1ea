// The official Durable Streams server conformance suite (@durable-streams/server-conformance-tests,
// pinned in package.json) against the Worker under `wrangler dev`: the shared worker, whose
// long-polls time out after 2 s (test/node/global-setup.ts), so the suite's waits stay short.
// Its tests use streams of their own (unique paths), so they run a few at a time: most of their
// time is spent waiting on TTLs, long-polls and round trips.
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { describe } from "vitest"
import { sharedWorkerBase } from "./dev-worker.js"

describe.concurrent("Durable Streams conformance", () => {
  runConformanceTests({ baseUrl: sharedWorkerBase(), longPollTimeoutMs: 2_000 })
})
