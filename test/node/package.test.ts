// emberlog as users get it: `npm pack` of this repository, a project written by `emberlog init`
// from the packed package (an entity nobody here wrote: its `todo`), the tarball installed into it,
// then `tsc`, the project's own harness test, and the project served by `wrangler dev` (HTTP, SSE,
// MCP, the inspector), stopped and served again from the same local state.
// One pack, one install, one wrangler dev and its restart: the whole file stays well inside a minute or two.
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { execFile, spawn, type ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort } from "./dev-worker.js"

const exec = promisify(execFile)
/** Runs a command; a failure's message carries its output (tsc reports on stdout). */
const run = (file: string, args: Array<string>, options: { cwd?: string } = {}) =>
  exec(file, args, { ...options, maxBuffer: 16 * 1024 * 1024 }).catch((error) => {
    throw new Error(`${file} ${args.join(" ")} failed:\n${error.stdout ?? ""}${error.stderr ?? ""}`)
  })
const root = process.cwd()
const scratch = mkdtempSync(join(tmpdir(), "emberlog-package-"))
const project = join(scratch, "todo-app")
let tarball: string
let packed: Array<string>
/** The starter exactly as `emberlog init` wrote it, before the tarball replaced the registry range. */
let starter: Record<string, string>

/** What the served project hosts: its own kind, and a built-in kind it does not list. */
const served = {
  kind: "todo",
  id: "groceries",
  command: { type: "Add", id: 1, title: "milk" },
  refused: { command: { type: "Add", id: 1, title: "milk again" }, status: 422, code: "todo_exists" },
  invalid: { type: "Add", id: 2, title: "" },
  event: "Added",
  stateAfterCommand: { items: [{ id: 1, title: "milk", done: false }] },
  tool: { name: "todo_add", command: { id: 2, title: "eggs" } },
  tools: ["todo_add", "todo_complete", "todo_remove", "read_state", "read_events", "verify_log", "whoami"],
  notServed: "counter",
}

const filesUnder = (directory: string): Record<string, string> => {
  const files: Record<string, string> = {}
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name)
      if (entry.isDirectory()) walk(path)
      else files[relative(directory, path)] = readFileSync(path, "utf8")
    }
  }
  walk(directory)
  return files
}

// Files the test adds to the starter, as a user would: checks of the published declarations and harness.
const extras: Record<string, string> = {
  // The declarations are real types, not any: a wrong event is a compile error.
  "src/types.ts": `
import { Todo } from "./todo.js"
// @ts-expect-error "Archived" is not a todo event
Todo.evolve(Todo.initial, { type: "Archived", id: 1 })
`,
  // Typechecked only: the client's declarations against the entity's own types.
  "src/client.ts": `
import { createClient } from "emberlog/client"
import type { StateOf } from "emberlog"
import type { Todo } from "./todo.js"

const todos = createClient({ baseUrl: "http://127.0.0.1:8787" }).actor<StateOf<typeof Todo>>("todo", "groceries")
export const titles = async (): Promise<Array<string>> => (await todos.state()).state.items.map((item) => item.title)
`,
  // The harness is not a formality: an entity whose decide is not deterministic fails it.
  "test/harness-catches.test.ts": `
import assert from "node:assert/strict"
import { test } from "node:test"
import { Effect, Schema } from "effect"
import fc from "fast-check"
import { Entity, tagged } from "emberlog"
import { checkEntity } from "emberlog/testing"

const Roll = tagged("Roll", {})
const Rolled = tagged("Rolled", { value: Schema.Number })
const Dice = Entity.make({
  kind: "dice",
  state: Schema.Struct({ last: Schema.Number }),
  initial: { last: 0 },
  commands: Schema.Union([Roll]),
  events: Schema.Union([Rolled]),
  decide: () => Effect.sync(() => [{ type: "Rolled", value: Math.random() } as const]),
  evolve: (_, event) => ({ last: event.value }),
})

test("checkEntity fails an entity whose decide is not deterministic", () =>
  assert.throws(
    () => checkEntity(Dice, { commands: fc.constant({ type: "Roll" }), numRuns: 5 }),
    (error: Error) => /decide is not deterministic/.test(String((error.cause as Error | undefined)?.message)),
  ))
`,
  // Records every module specifier Node resolves while the plain-Node entry points load.
  "probe.mjs": `
import { existsSync } from "node:fs"
import { registerHooks } from "node:module"
import { fileURLToPath } from "node:url"
const specifiers = []
registerHooks({ resolve: (specifier, context, next) => (specifiers.push(specifier), next(specifier, context)) })
const core = await import("emberlog")
const testing = await import("emberlog/testing")
const entries = ["emberlog/worker", "emberlog/client", "emberlog/testing/workerd", "emberlog/replica"]
const unresolved = entries.filter((entry) => {
  const file = fileURLToPath(import.meta.resolve(entry))
  return !existsSync(file) || !existsSync(file.replace(/\\.js$/, ".d.ts"))
})
const cloudflare = specifiers.filter((specifier) => specifier.startsWith("cloudflare:"))
console.log(JSON.stringify({ core: Object.keys(core), testing: Object.keys(testing), cloudflare, unresolved }))
`,
}

/** The project's own `npm run dev` (wrangler dev, state on disk in .wrangler/state), on a free port. */
const serve = async (): Promise<{ base: string; stop: () => Promise<void> }> => {
  const port = await freePort()
  const child: ChildProcess = spawn("npm", ["run", "dev", "--", "--port", String(port), "--ip", "127.0.0.1"], {
    cwd: project,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once("exit", resolve))
    process.kill(-child.pid!, "SIGTERM")
    await exited
  }
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    const status = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) }).then(
      (response) => response.status,
      () => undefined,
    )
    if (status === 200) return { base, stop }
    // A Worker that does not build leaves wrangler waiting for an edit: no use waiting with it.
    if (child.exitCode !== null || /Build failed/.test(output) || Date.now() > deadline) {
      await stop()
      throw new Error(`wrangler dev did not serve /health (status ${status}):\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

beforeAll(async () => {
  // `npm pack` runs `prepare` (the build), so the tarball is never a stale dist/.
  await run("npm", ["pack", "--pack-destination", scratch, "--silent"], { cwd: root })
  tarball = join(
    scratch,
    readdirSync(scratch).find((name) => name.endsWith(".tgz"))!,
  )
  const listing = (await run("tar", ["-tzf", tarball])).stdout
  packed = listing
    .split("\n")
    .filter(Boolean)
    .map((entry) => entry.replace(/^package\//, ""))
  // The project is written by the bin the tarball ships (what `npx emberlog init` runs: it is self-contained).
  const unpacked = join(scratch, "unpacked")
  mkdirSync(unpacked)
  await run("tar", ["-xzf", tarball, "-C", unpacked])
  await run(process.execPath, [join(unpacked, "package/dist/emberlog.mjs"), "init", project])
  starter = filesUnder(project)
  for (const [path, text] of Object.entries(extras)) writeFileSync(join(project, path), text)
  // emberlog is not on the registry yet: as the README says, `npm install <tarball>` in the project
  // installs everything, the tarball in place of the starter's range.
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", tarball], {
    cwd: project,
  })
}, 180_000)

afterAll(() => rmSync(scratch, { recursive: true, force: true }))

it("the tarball ships compiled JavaScript with declarations, and no tests, benchmarks or local state", () => {
  const expected = ["index.js", "index.d.ts", "worker.d.ts", "testing/index.d.ts", "client/index.d.ts", "emberlog.mjs"]
  for (const file of [...expected.map((name) => `dist/${name}`), "README.md"]) expect(packed).toContain(file)
  expect(packed.filter((file) => /^(test|bench|\.wrangler|node_modules|conformance)\//.test(file))).toEqual([])
  const manifest = JSON.parse(readFileSync(join(project, "node_modules/emberlog/package.json"), "utf8"))
  expect(manifest.private).toBeUndefined()
  expect(manifest.version).toBe("0.2.0")
  // src/ ships for the declaration maps ("go to definition" lands in the commented source): every
  // source a map names is in the tarball, and src/cli (bundled into dist/emberlog.mjs) is not.
  const maps = packed.filter((file) => file.endsWith(".d.ts.map"))
  expect(maps.length).toBeGreaterThan(0)
  for (const map of maps) {
    const { sources } = JSON.parse(readFileSync(join(project, "node_modules/emberlog", map), "utf8"))
    for (const source of sources) expect(packed, map).toContain(join(dirname(map), source))
  }
  expect(packed.filter((file) => file.startsWith("src/cli/"))).toEqual([])
})

it("`emberlog init` writes the starter: emberlog, effect and wrangler; the issue's worker and bindings", async () => {
  expect(Object.keys(starter).sort()).toEqual(
    [
      ".gitignore",
      "README.md",
      "package.json",
      "src/todo.ts",
      "src/worker.ts",
      "test/todo.test.ts",
      "tsconfig.json",
      "wrangler.toml",
    ].sort(),
  )
  const manifest = JSON.parse(starter["package.json"]!)
  expect(Object.keys(manifest.dependencies).sort()).toEqual(["effect", "emberlog", "wrangler"])
  expect(manifest.dependencies.emberlog).toBe("^0.2.0")
  expect(starter["src/worker.ts"]).toBe(`import { emberlog } from "emberlog/worker"
import { Todo } from "./todo.js"
const app = emberlog({ kinds: [Todo] })
export const { EmberlogActor, EmberlogTopic, EmberlogMcpSession } = app.objects
export default app.handler
`)
  expect(starter["wrangler.toml"]).toContain(`name = "todo-app"\nmain = "src/worker.ts"`)
  expect(starter["wrangler.toml"]).toContain(
    `new_sqlite_classes = ["EmberlogActor", "EmberlogTopic", "EmberlogMcpSession"]`,
  )
  expect(starter["src/todo.ts"]).toContain(`import { Entity, PositiveSafeInt, reject, tagged } from "emberlog"`)
  expect(starter["README.md"]).toContain("npm install && npm run dev")
  // `npx emberlog init` from the installed package writes the same starter; into a non-empty directory, nothing.
  const again = join(scratch, "again", "todo-app")
  await run("npx", ["--no-install", "emberlog", "init", again], { cwd: project })
  expect(filesUnder(again)).toEqual(starter)
  const refused = await exec("npx", ["--no-install", "emberlog", "init", again], { cwd: project }).catch((e) => e)
  expect(refused.code).toBe(2)
  expect(refused.stderr).toContain("is not empty")
  expect(filesUnder(again)).toEqual(starter)
})

it("`emberlog` and `emberlog/testing` load in plain Node without any Cloudflare module", async () => {
  const { stdout } = await run(process.execPath, ["probe.mjs"], { cwd: project })
  const probe = JSON.parse(stdout)
  expect(probe.cloudflare).toEqual([])
  expect(probe.unresolved).toEqual([])
  const contract = ["Entity", "tagged", "reject", "DomainError", "SafeInt", "PositiveSafeInt", "NonNegativeSafeInt"]
  for (const name of contract) expect(probe.core).toContain(name)
  expect(probe.testing).toContain("checkEntity")
})

it("the project's `npm test`: tsc over its Worker, entity and client, then the harness on its Todo", async () => {
  const { stdout } = await run("npm", ["test"], { cwd: project })
  expect(stdout).toContain("✔ the todo entity is sound")
  expect(stdout).toContain("✔ checkEntity fails an entity whose decide is not deterministic")
  expect(stdout).toMatch(/ℹ fail 0/)
}, 120_000)

it("the project's wrangler.toml and Worker deploy as they are (wrangler deploy --dry-run)", async () => {
  const { stdout } = await run("npx", ["--no-install", "wrangler", "deploy", "--dry-run", "--outdir", "dist-dry"], {
    cwd: project,
  })
  for (const binding of ["EMBERLOG_ACTOR", "EMBERLOG_TOPIC", "EMBERLOG_MCP_SESSION"]) expect(stdout).toContain(binding)
}, 60_000)

describe("the project served by `wrangler dev`", () => {
  let server: { base: string; stop: () => Promise<void> } | undefined
  const base = () => server!.base
  const actor = `/v1/${served.kind}/${served.id}`
  const post = (path: string, body: unknown) =>
    fetch(`${base()}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    })
  const json = async (path: string) => {
    const response = await fetch(`${base()}${path}`)
    return { status: response.status, body: (await response.json()) as any }
  }

  beforeAll(async () => {
    server = await serve()
  }, 90_000)
  afterAll(async () => server?.stop())

  it("takes a command, refuses bad input without appending, and reads state, events and verify", async () => {
    const accepted = await post(`${actor}/commands`, served.command)
    expect(accepted.status).toBe(200)
    expect(await accepted.json()).toMatchObject({ version: 1, state: served.stateAfterCommand })
    const refused = await post(`${actor}/commands`, served.refused.command)
    expect(refused.status).toBe(served.refused.status)
    expect(((await refused.json()) as any).error.code).toBe(served.refused.code)
    const invalid = await post(`${actor}/commands`, served.invalid)
    expect(invalid.status).toBe(400)
    expect(((await invalid.json()) as any).error.code).toBe("invalid_command")

    expect(await json(actor)).toEqual({
      status: 200,
      body: { kind: served.kind, id: served.id, version: 1, state: served.stateAfterCommand },
    })
    const events = await json(`${actor}/events`)
    expect(events.body.events.map((event: any) => [event.seq, event.type])).toEqual([[1, served.event]])
    expect((await json(`${actor}/verify`)).body).toMatchObject({ ok: true, events: 1 })
  })

  it("publishes the kind's events to its topic", async () => {
    // Topics trail their actors by a batching delay: the entry arrives within moments.
    await expect
      .poll(async () => (await json(`/v1/topics/${served.kind}/events`)).body.entries?.length, { timeout: 10_000 })
      .toBe(1)
    const { body } = await json(`/v1/topics/${served.kind}/events`)
    expect(body.entries[0]).toMatchObject({
      topicSeq: 1,
      source: { kind: served.kind, id: served.id },
      event: { seq: 1, type: served.event },
    })
  })

  it("answers the state at a past version", async () => {
    expect((await json(`${actor}?at=0`)).body).toMatchObject({ version: 0 })
  })

  it("sends the log over a WebSocket", async () => {
    const socket = new WebSocket(`${base().replace("http", "ws")}${actor}/ws?after=0`)
    const frame = await new Promise<any>((resolve, reject) => {
      socket.addEventListener("message", (message) => resolve(JSON.parse(String(message.data))), { once: true })
      socket.addEventListener("error", () => reject(new Error("the WebSocket failed")), { once: true })
    }).finally(() => socket.close())
    expect(frame).toMatchObject({ type: "event", event: { seq: 1, type: served.event } })
  })

  it("streams the log over SSE", async () => {
    const abort = new AbortController()
    const response = await fetch(`${base()}${actor}/events/stream?after=0`, { signal: abort.signal })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("text/event-stream")
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ""
    while (!text.includes(`event: ${served.event}`)) {
      const { value, done } = await reader.read()
      if (done) break
      text += value
    }
    abort.abort()
    expect(text).toContain("id: 1\n")
    expect(text).toContain(`event: ${served.event}`)
  })

  it("offers MCP tools generated from the entity's schemas to the official SDK client", async () => {
    const client = new Client({ name: "emberlog-package-test", version: "1.0.0" })
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base()}/mcp`)))
    try {
      const tools = (await client.listTools()).tools.map((tool) => tool.name)
      expect(tools).toEqual(expect.arrayContaining(served.tools))
      expect(tools.filter((name) => name.startsWith(`${served.notServed}_`))).toEqual([])
      const added = await client.callTool({
        name: served.tool.name,
        arguments: { id: served.id, command: served.tool.command },
      })
      expect(added.isError).toBeFalsy()
      expect(added.structuredContent).toMatchObject({ version: 2 })
      const read = await client.callTool({ name: "read_state", arguments: { kind: served.kind, id: served.id } })
      expect(read.isError).toBeFalsy()
      expect(read.structuredContent).toMatchObject({ kind: served.kind, id: served.id, version: 2 })
    } finally {
      await client.close()
    }
  })

  it("lists the kind in the inspector; a kind it does not list is 404 unknown_kind", async () => {
    const page = await fetch(`${base()}/inspect`)
    expect(page.status).toBe(200)
    const html = await page.text()
    expect(html).toContain(`<option>${served.kind}</option>`)
    expect(html).not.toContain(`<option>${served.notServed}</option>`)
    const unknown = await json(`/v1/${served.notServed}/visits`)
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe("unknown_kind")
  })

  it("keeps the state on disk across a restart", async () => {
    await server!.stop()
    server = await serve()
    expect((await json(actor)).body).toMatchObject({ version: 2 })
    expect((await json(`${actor}/verify`)).body).toMatchObject({ ok: true, events: 2 })
  }, 90_000)
})
