// The official MCP Inspector's CLI against the Worker served by wrangler: it checks a result's
// structuredContent against the tool's output schema, so an error result must carry none.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { sharedWorkerBase } from "./dev-worker.js"

const base = sharedWorkerBase()
const home = mkdtempSync(join(tmpdir(), "emberlog-inspector-"))

afterAll(async () => {
  rmSync(home, { recursive: true, force: true })
})

/** `mcp-inspector --cli <url>/mcp ...args`: its exit code and the JSON it prints. */
const inspector = (...args: Array<string>) =>
  new Promise<{ code: number | null; result: any; output: string }>((resolve, reject) => {
    const cli = join("node_modules", ".bin", "mcp-inspector")
    // The catalog it keeps goes to a temporary file, not the user's home.
    const env = { ...process.env, MCP_CATALOG_PATH: join(home, "mcp.json"), HOME: home }
    const child = spawn(process.execPath, [cli, "--cli", `${base}/mcp`, ...args], { env })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    child.on("error", reject)
    child.on("close", (code) => {
      const json = /^\{[\s\S]*?^\}/m.exec(output)
      resolve({ code, result: json === null ? undefined : JSON.parse(json[0]), output })
    })
  })

const call = (tool: string, ...args: Array<string>) =>
  inspector("--method", "tools/call", "--tool-name", tool, "--tool-arg", ...args)

describe("MCP Inspector CLI", () => {
  it("shows a success with its structured content", async () => {
    const id = `inspector-${Date.now()}`
    const ok = await call("counter_increment", `id=${id}`, 'command={"by":2}')
    expect(ok.code, ok.output).toBe(0)
    expect(ok.result).toMatchObject({ structuredContent: { version: 1, state: { value: 2 } } })
  })

  it("shows a domain rejection as the tool's error, not as a schema error", async () => {
    const id = `inspector-${Date.now()}`
    await call("counter_increment", `id=${id}`, `command={"by":${Number.MAX_SAFE_INTEGER}}`)
    const rejected = await call("counter_increment", `id=${id}`, 'command={"by":1}')
    expect(rejected.output).not.toMatch(/required property|output schema/)
    expect(rejected.result, rejected.output).toMatchObject({ isError: true })
    expect(rejected.result.structuredContent).toBeUndefined()
    expect(JSON.parse(rejected.result.content[0].text).error).toMatchObject({ code: "out_of_range" })
    // Exit status 5: the Inspector's "the tool returned isError", as opposed to 1 for a failed call.
    expect(rejected.code).toBe(5)
  })

  it("shows an argument the schema refuses the same way", async () => {
    const invalid = await call("counter_increment", "id=x", 'command={"by":-1}')
    expect(invalid.output).not.toMatch(/required property|output schema/)
    expect(invalid.result, invalid.output).toMatchObject({ isError: true })
    expect(invalid.code).toBe(5)
  })
})
