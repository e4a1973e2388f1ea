// `npm run dev -- <wrangler flags>`: the user's flags replace the script's defaults (wrangler
// refuses a flag given twice). The server is started on a free port, asked for /health, and
// stopped with its whole process group.
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { freePort } from "./dev-worker.js"

const persistTo = mkdtempSync(join(tmpdir(), "emberlog-dev-"))
const running: Array<ChildProcess> = []

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once("exit", resolve))
  process.kill(-child.pid!, "SIGTERM")
  await exited
}

afterAll(async () => {
  for (const child of running) await stop(child)
  rmSync(persistTo, { recursive: true, force: true })
})

const health = async (port: number) => {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) })
    return response.status
  } catch {
    return undefined
  }
}

describe("npm run dev", () => {
  it("serves on the port the user gives, keeping the other defaults", async () => {
    const port = await freePort()
    const child = spawn("npm", ["run", "dev", "--", "--port", String(port), `--persist-to=${persistTo}`], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    })
    running.push(child)
    let output = ""
    child.stdout!.on("data", (chunk) => (output += chunk))
    child.stderr!.on("data", (chunk) => (output += chunk))
    const deadline = Date.now() + 50_000
    let status: number | undefined
    while (status === undefined && child.exitCode === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      status = await health(port)
    }
    expect(status, output).toBe(200)
    expect(output).toContain(`http://127.0.0.1:${port}`)
    await stop(child)
    expect(await health(port)).toBeUndefined()
  }, 60_000)

  it("leaves no file of the README tour for git to pick up", () => {
    // The tour's `npx emberlog export counter/visits > visits.ndjson` runs in the repository root.
    expect(spawnSync("git", ["check-ignore", "-q", "visits.ndjson"]).status).toBe(0)
  })
})
