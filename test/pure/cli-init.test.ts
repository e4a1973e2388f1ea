// `emberlog init <dir>`: what it writes and what it refuses. The starter installing, typechecking,
// testing and serving is test/node/package.test.ts (from the packed package).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { EXIT } from "../../src/cli/main.js"
import { runCli } from "../cli-runner.js"
import { starterFiles, workerName } from "../../src/cli/templates.js"
import pkg from "../../package.json"

const scratch = mkdtempSync(join(tmpdir(), "emberlog-init-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

const cli = (...args: Array<string>) => runCli(args)

describe("emberlog init", () => {
  it("writes the starter into a new directory, named after it", async () => {
    const target = join(scratch, "My Todo App")
    const { code, stdout } = await cli("init", target)
    expect(code).toBe(EXIT.ok)
    expect(stdout).toContain("npm install && npm run dev")
    const files = starterFiles("my-todo-app")
    for (const [path, text] of Object.entries(files)) expect(readFileSync(join(target, path), "utf8")).toBe(text)
    const manifest = JSON.parse(files["package.json"]!)
    expect(manifest.name).toBe("my-todo-app")
    expect(manifest.dependencies).toEqual({
      emberlog: `^${pkg.version}`,
      effect: pkg.dependencies.effect,
      wrangler: pkg.devDependencies.wrangler,
    })
    // wrangler and node --test with type stripping need Node ≥ 22: the starter pins Node as this repository does.
    expect(manifest.devDependencies.node).toBe(pkg.devDependencies.node)
    expect(files["wrangler.toml"]).toMatch(/^name = "my-todo-app"\nmain = "src\/worker.ts"\n/)
    expect(files["wrangler.toml"]).toContain('compatibility_flags = ["nodejs_compat"]')
  })

  it("writes into an existing empty directory", async () => {
    const target = join(scratch, "empty")
    mkdirSync(target)
    expect((await cli("init", target)).code).toBe(EXIT.ok)
    expect(existsSync(join(target, "src/worker.ts"))).toBe(true)
  })

  it("refuses a non-empty directory, a file and a missing argument, and writes nothing", async () => {
    const target = join(scratch, "taken")
    mkdirSync(target)
    writeFileSync(join(target, "notes.txt"), "mine")
    const taken = await cli("init", target)
    expect(taken.code).toBe(EXIT.usage)
    expect(taken.stderr).toContain(`${target} is not empty`)
    expect(readdirSync(target)).toEqual(["notes.txt"])

    const file = join(target, "notes.txt")
    const notADirectory = await cli("init", file)
    expect(notADirectory.code).toBe(EXIT.usage)
    expect(notADirectory.stderr).toContain("is not a directory")
    expect(readFileSync(file, "utf8")).toBe("mine")

    const missing = await cli("init")
    expect(missing.code).toBe(EXIT.usage)
    expect(missing.stderr).toContain("init needs a directory")
  })

  it("documents itself in --help and in the command list", async () => {
    const help = await cli("init", "--help")
    expect(help.code).toBe(EXIT.ok)
    expect(help.stdout).toContain("Usage: emberlog init <dir>")
    expect(help.stdout).toContain("must be empty")
    expect((await cli("--help")).stdout).toMatch(/init <dir> +write a starter project/)
  })

  it("names the Worker as wrangler accepts", () => {
    expect(workerName("Todo_App.v2")).toBe("todo-app-v2")
    expect(workerName("---")).toBe("emberlog-app")
  })
})
