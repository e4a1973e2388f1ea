// This repository's wrangler.toml is valid for a fresh deploy, at the top level and in each
// environment (staging, production): one v1 migration creating the three classes the Worker
// exports, every binding resolvable, each environment with its own. `wrangler deploy --dry-run`
// bundles the Worker and checks the configuration without an account.
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterAll, describe, expect, it } from "vitest"
import { experimental_readRawConfig } from "wrangler"

const outdir = mkdtempSync(join(tmpdir(), "emberlog-dry-run-"))
afterAll(() => rmSync(outdir, { recursive: true, force: true }))

const dryRun = async (env?: string) => {
  const args = ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", join(outdir, env ?? "default")]
  const { stdout } = await promisify(execFile)("npx", env === undefined ? args : [...args, "--env", env], {
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    maxBuffer: 16 * 1024 * 1024,
  })
  return stdout
}

const DURABLE_OBJECTS = [
  ["EMBERLOG_ACTOR", "EmberlogActor"],
  ["EMBERLOG_TOPIC", "EmberlogTopic"],
  ["EMBERLOG_MCP_SESSION", "EmberlogMcpSession"],
] as const

describe.concurrent("wrangler deploy --dry-run", () => {
  it("passes at the top level with the three Durable Object classes", async () => {
    const stdout = await dryRun()
    for (const [binding, className] of DURABLE_OBJECTS) expect(stdout).toContain(`env.${binding} (${className})`)
    expect(stdout).toContain("env.METRICS (emberlog_metrics)")
    expect(stdout).toContain("env.EMBERLOG_REPLICA (emberlog-replica)")
  })

  for (const env of ["staging", "production"])
    it(`passes for --env ${env}, with that environment's own bindings`, async () => {
      const stdout = await dryRun(env)
      for (const [binding, className] of DURABLE_OBJECTS) expect(stdout).toContain(`env.${binding} (${className})`)
      expect(stdout).toContain(`env.ENVIRONMENT ("${env}")`)
      expect(stdout).toContain(`env.MEMORY_BUCKET (emberlog-memory-${env})`)
      expect(stdout).toContain(`env.METRICS (emberlog_metrics_${env})`)
      expect(stdout).toMatch(/env\.LIMITER \(\d+ requests\/\d+s\)/)
      expect(stdout).toContain("env.OAUTH_KV")
      // Off by default in deployed environments: a queue nobody consumes bills and expires its messages.
      expect(stdout).not.toContain("EMBERLOG_REPLICA")
    })
})

describe("wrangler.toml's Workers Logs", () => {
  it("keeps no invocation logs (they record the URL and headers) at the top level and in each environment", () => {
    const { rawConfig } = experimental_readRawConfig({ config: "wrangler.toml" })
    const configs = [rawConfig, rawConfig.env!.staging!, rawConfig.env!.production!]
    for (const config of configs)
      expect(config.observability).toEqual({ enabled: true, logs: { invocation_logs: false } })
  })
})
