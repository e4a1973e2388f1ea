// This repository's wrangler.toml is valid for a fresh deploy: one v1 migration creating the three
// classes the Worker exports, every binding resolvable. `wrangler deploy --dry-run` bundles the
// Worker and checks the configuration without an account.
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, expect, it } from "vitest"

const outdir = mkdtempSync(join(tmpdir(), "emberlog-dry-run-"))
afterAll(() => rmSync(outdir, { recursive: true, force: true }))

it("wrangler deploy --dry-run passes with the three Durable Object classes", async () => {
  const { stdout } = await promisify(execFile)(
    "npx",
    ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", outdir],
    {
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      maxBuffer: 16 * 1024 * 1024,
    },
  )
  for (const [binding, className] of [
    ["EMBERLOG_ACTOR", "EmberlogActor"],
    ["EMBERLOG_TOPIC", "EmberlogTopic"],
    ["EMBERLOG_MCP_SESSION", "EmberlogMcpSession"],
  ])
    expect(stdout).toContain(`env.${binding} (${className})`)
})
