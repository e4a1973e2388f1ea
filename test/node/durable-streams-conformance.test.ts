// The official Durable Streams server conformance suite (@durable-streams/server-conformance-tests,
// pinned in package.json) against the Worker under `wrangler dev`: the shared worker, whose
// long-polls time out after 1 s (test/node/global-setup.ts), so the suite's waits stay short;
// `longPollTimeoutMs` only sets the suite's own test timeouts (it adds 1 s), kept at 2 s for a
// loaded machine. Its tests run concurrently (ten at a time: maxConcurrency in vitest.config.ts): each
// works on streams of its own, and most of their time is waiting on the server, so the file
// takes half as long. Every test passes: conformance/ holds no expected failures.
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { runConformanceTests } from "@durable-streams/server-conformance-tests"
import { describe, expect, it } from "vitest"
import { streamIdOf } from "../../src/kinds/stream/paths.js"
import { runCli } from "../cli-runner.js"
import { sharedWorkerBase } from "./dev-worker.js"

const base = sharedWorkerBase()

describe.concurrent("the Durable Streams conformance suite", () =>
  runConformanceTests({ baseUrl: base, longPollTimeoutMs: 2_000 }),
)

describe("a stream's emberlog log, through the CLI", () => {
  it("verify, export and an offline replay of durable-stream/<id>", async () => {
    const path = `cli/${Date.now()}`
    const url = `${base}/v1/stream/${path}`
    expect((await fetch(url, { method: "PUT", headers: { "Content-Type": "application/json" } })).status).toBe(201)
    await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: '[{"n":1},{"n":2}]' })
    const target = `durable-stream/${streamIdOf(path)}`
    const verified = await runCli(["verify", target, "--url", base])
    expect(verified).toMatchObject({ code: 0, stdout: expect.stringMatching(/^ok: 2 events, head [0-9a-f]{64}\n$/) })
    const exported = await runCli(["export", target, "--url", base])
    expect(exported.code).toBe(0)
    const file = join(mkdtempSync(join(tmpdir(), "emberlog-stream-")), "stream.ndjson")
    writeFileSync(file, exported.stdout)
    const replayed = await runCli(["replay", file, "--entity", "durable-stream", "--json"])
    expect(replayed.code).toBe(0)
    expect(JSON.parse(replayed.stdout).state).toMatchObject({
      status: "open",
      tail: 2,
      contentType: "application/json",
    })
  })
})
