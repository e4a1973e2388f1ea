// Runs the official MCP conformance suite against the Worker served by wrangler (auth off,
// as in local development), with conformance/expected-failures.yml as the baseline.
// Usage: npm run conformance [-- --scenario NAME]
import { spawn } from "node:child_process"
import { unstable_dev } from "wrangler"

const worker = await unstable_dev("src/app.ts", {
  config: "wrangler.toml",
  ip: "127.0.0.1",
  persist: false,
  logLevel: "none",
  vars: { AUTH_MODE: "off" },
  experimental: { disableExperimentalWarning: true },
})
let status = 1
try {
  const url = `http://127.0.0.1:${worker.port}/mcp`
  // Asynchronously: wrangler's dev server runs in this process and must keep answering.
  const run = spawn(
    "conformance",
    [
      "server",
      "--url",
      url,
      "--expected-failures",
      "conformance/expected-failures.yml",
      "-o",
      ".conformance-results",
      ...process.argv.slice(2),
    ],
    { stdio: "inherit" },
  )
  status = await new Promise((resolve) => run.on("exit", (code) => resolve(code ?? 1)))
} finally {
  await worker.stop()
}
process.exit(status)
