// The emberlog CLI as users run it: the bundled executable in a child process against the
// Worker served by wrangler (rebuilt from source first, so the test never runs a stale bundle).
import { execFile, spawn } from "node:child_process"
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { build } from "esbuild"
import { beforeAll, expect, it } from "vitest"
import { runCli } from "../cli-runner.js"
import { starterFiles } from "../../src/cli/templates.js"
import { GENESIS_HASH, chainHash } from "../../src/core/hash-chain.js"
import { sharedWorkerBase } from "./dev-worker.js"

const base = sharedWorkerBase()
const dir = mkdtempSync(join(tmpdir(), "emberlog-cli-"))
const bin = join(dir, "emberlog.mjs")

/** Runs the CLI; resolves with its exit code and output (never rejects on a non-zero exit). */
const cli = (...args: Array<string>) => cliIn(process.cwd(), ...args)
const cliIn = (cwd: string, ...args: Array<string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd, env: { ...process.env, EMBERLOG_URL: base } },
      (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    ),
  )

const send = (id: string, command: unknown) =>
  fetch(`${base}/v1/counter/${id}/commands`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(command),
  })

beforeAll(async () => {
  await build({
    entryPoints: ["src/cli/bin.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    outfile: bin,
    logLevel: "warning",
  })
}, 60_000)

it("state, verify, export and an offline replay that agrees with the server", async () => {
  const id = `cli-${Date.now()}`
  for (const by of [5, 6, 7]) await send(id, { type: "Increment", by })
  const now = await cli("state", `counter/${id}`, "--json")
  expect(now.code).toBe(0)
  expect(JSON.parse(now.stdout)).toMatchObject({ kind: "counter", id, version: 3, state: { value: 18 } })
  expect(JSON.parse((await cli("state", `counter/${id}`, "--at", "1")).stdout).state).toEqual({ value: 5 })
  expect(JSON.parse((await cli("state", `counter/${id}`, "--as-of", "2000-01-01T00:00:00Z")).stdout)).toMatchObject({
    version: 0,
  })

  const verified = await cli("verify", `counter/${id}`)
  expect(verified).toMatchObject({ code: 0, stdout: expect.stringMatching(/^ok: 3 events, head [0-9a-f]{64}\n$/) })

  const exported = await cli("export", `counter/${id}`)
  expect(exported.code).toBe(0)
  const lines = exported.stdout.trim().split("\n")
  expect(lines.map((line) => JSON.parse(line).seq)).toEqual([1, 2, 3])
  const file = join(dir, `${id}.ndjson`)
  writeFileSync(file, exported.stdout)
  const replayed = await cli("replay", file, "--entity", "counter", "--json")
  expect(replayed.code).toBe(0)
  expect(JSON.parse(replayed.stdout)).toEqual({
    kind: "counter",
    version: 3,
    chain: { ok: true, events: 3, head: verified.stdout.split("head ")[1]!.trim() },
    state: { value: 18 },
  })

  // A tampered export: replay still folds it, but says where the chain breaks and exits 1.
  writeFileSync(file, readFileSync(file, "utf8").replace('"by":6', '"by":600'))
  const tampered = await cli("replay", file, "--entity", "counter", "--json")
  expect(tampered.code).toBe(1)
  expect(JSON.parse(tampered.stdout).chain).toMatchObject({ ok: false, firstBadSeq: 2 })
  expect(tampered.stderr).toContain("broken at seq 2")
}, 60_000)

it("tail prints the recent backlog, then follows live, and stops cleanly on Ctrl-C", async () => {
  const id = `cli-tail-${Date.now()}`
  for (let i = 0; i < 12; i++) await send(id, { type: "Increment", by: 1 })
  const child = spawn(process.execPath, [bin, "tail", `counter/${id}`, "--json", "--url", base])
  const lines: Array<any> = []
  let buffered = ""
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString()
    const parts = buffered.split("\n")
    buffered = parts.pop()!
    for (const part of parts) lines.push(JSON.parse(part))
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  await expect.poll(() => lines.length, { timeout: 10_000 }).toBe(10) // the last ten
  expect(lines[0].seq).toBe(3)
  await send(id, { type: "Decrement", by: 2 })
  await expect.poll(() => lines.length, { timeout: 10_000 }).toBe(11)
  expect(lines[10]).toMatchObject({ seq: 13, type: "Decremented" })
  child.kill("SIGINT")
  expect(await exited).toBe(0)
}, 60_000)

it("stops quietly when its reader does (export | head)", async () => {
  const id = `cli-pipe-${Date.now()}`
  for (let i = 0; i < 30; i++) await send(id, { type: "Increment", by: 1 })
  const child = spawn(process.execPath, [bin, "export", `counter/${id}`, "--url", base])
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  let stderr = ""
  child.stderr.on("data", (chunk) => (stderr += chunk))
  child.stdout.once("data", () => child.stdout.destroy()) // like head: read a little, then close the pipe
  expect(await exited).toBe(0)
  expect(stderr).not.toContain("Error")
}, 60_000)

it("exports a log longer than a page with a progress bar on a terminal", async () => {
  const id = `cli-long-${Date.now()}`
  for (let batch = 0; batch < 21; batch++)
    await Promise.all(Array.from({ length: 50 }, () => send(id, { type: "Increment", by: 1 })))
  const { code, stdout, stderr } = await runCli(["export", `counter/${id}`, "--url", base], {
    stderr: { isTTY: true, columns: 100 },
  })
  expect(code).toBe(0)
  expect(
    stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line).seq),
  ).toEqual(Array.from({ length: 1050 }, (_, i) => i + 1))
  expect(stderr).toContain("1000/1050 events")
  expect(stderr).toContain(`[${"#".repeat(40)}] 1050/1050 events`)
  // From an `after` that is no multiple of a thousand, the bar still moves every thousand lines.
  const later = await runCli(["export", `counter/${id}`, "--after", "7", "--url", base], {
    stderr: { isTTY: true, columns: 100 },
  })
  expect(later.code).toBe(0)
  expect(later.stderr).toContain("1007/1050 events")
}, 60_000)

it("exports from an older server that pages at most 1,000 events (it refuses more with 400)", async () => {
  const id = `cli-older-${Date.now()}`
  for (let batch = 0; batch < 3; batch++)
    await Promise.all(Array.from({ length: 50 }, () => send(id, { type: "Increment", by: 1 })))
  // The shared Worker behind a proxy that answers as a server before 10,000-event pages did.
  const limits: Array<string> = []
  const older = createServer(async (request, response) => {
    const url = new URL(request.url!, base)
    const limit = url.searchParams.get("limit")
    if (url.pathname.endsWith("/events") && limit !== null) limits.push(limit)
    if (url.pathname.endsWith("/events") && Number(limit) > 1000) {
      response.writeHead(400, { "content-type": "application/json" })
      return response.end(
        JSON.stringify({ error: { code: "invalid_query", message: "limit must be an integer from 1 to 1000" } }),
      )
    }
    const upstream = await fetch(url, { method: request.method })
    response.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "text/plain" })
    response.end(await upstream.text())
  })
  await new Promise<void>((resolve) => older.listen(0, "127.0.0.1", resolve))
  try {
    const { port } = older.address() as AddressInfo
    const { code, stdout } = await runCli(["export", `counter/${id}`, "--url", `http://127.0.0.1:${port}`])
    expect(code).toBe(0)
    expect(
      stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line).seq),
    ).toEqual(Array.from({ length: 150 }, (_, i) => i + 1))
    expect(limits).toEqual(["10000", "1000"])
  } finally {
    older.close()
  }
}, 60_000)

it("answers bad usage with 2, server refusals and unreachable servers with 3, and has --help everywhere", async () => {
  expect((await cli()).code).toBe(2)
  expect(await cli("frobnicate")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining('unknown command "frobnicate"'),
  })
  const inherited = await cli("constructor")
  expect(inherited).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown command "constructor"') })
  expect(await cli("state", "counter")).toMatchObject({ code: 2, stderr: expect.stringContaining("needs <kind>/<id>") })
  expect(await cli("state", "counter/x", "--at", "1", "--as-of", "2026-01-01T00:00:00Z")).toMatchObject({ code: 2 })
  expect(await cli("state", "counter/x", "--at", "-1")).toMatchObject({ code: 2 })
  expect(await cli("state", "counter/x", "--bogus")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining("--bogus"),
  })
  expect(await cli("replay", "log.ndjson")).toMatchObject({ code: 2, stderr: expect.stringContaining("--entity") })
  expect(await cli("replay", join(dir, "missing.ndjson"), "--entity", "counter")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining("No such file"),
  })
  expect(await cli("replay", "-", "--entity", "widget")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining("Unknown entity"),
  })
  expect(await cli("replay", dir, "--entity", "counter")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining("EISDIR"),
  })
  expect(await cli("state", "widget/x")).toMatchObject({ code: 3, stderr: expect.stringContaining("404 unknown_kind") })
  expect(await cli("state", "counter/x", "--url", "http://127.0.0.1:9")).toMatchObject({
    code: 3,
    stderr: expect.stringContaining("could not reach the server"),
  })
  expect(await cli("tail", "counter/x", "--after", "99")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining("beyond the head"),
  })
  expect(await cli("tail", "widget/x")).toMatchObject({ code: 3, stderr: expect.stringContaining("404 unknown_kind") })
  for (const command of ["tail", "state", "verify", "export", "replay"]) {
    expect(await cli(command, "--help")).toMatchObject({
      code: 0,
      stdout: expect.stringContaining(`Usage: emberlog ${command}`),
    })
  }
  expect(await cli("--help")).toMatchObject({ code: 0, stdout: expect.stringContaining("Exit codes") })
}, 60_000)

it("exports a log larger than a reply can carry (140 events of 250 KB, 35 MB) that replays and verifies", async () => {
  const id = `cli-big-${Date.now()}`
  const reason = "r".repeat(250_000)
  for (let batch = 0; batch < 14; batch++) {
    const increments = Array.from({ length: 10 }, (_, i) => ({
      type: "Increment",
      by: 1,
      reason: `${batch * 10 + i}${reason}`,
    }))
    const sent = await Promise.all(increments.map((command) => send(id, command)))
    expect(sent.map((response) => response.status)).toEqual(Array(10).fill(200))
  }
  const file = join(dir, `${id}.ndjson`)
  const fd = openSync(file, "w")
  const args = [bin, "export", `counter/${id}`, "--url", base]
  const child = spawn(process.execPath, args, { stdio: ["ignore", fd, "pipe"] })
  let stderr = ""
  child.stderr!.on("data", (chunk) => (stderr += chunk))
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
  closeSync(fd)
  expect({ code, stderr }).toEqual({ code: 0, stderr: "" })
  const lines = readFileSync(file, "utf8").trim().split("\n")
  expect(lines.map((line) => JSON.parse(line).seq)).toEqual(Array.from({ length: 140 }, (_, i) => i + 1))
  const replayed = await cli("replay", file, "--entity", "counter", "--json")
  expect(replayed.code).toBe(0)
  expect(JSON.parse(replayed.stdout)).toMatchObject({
    version: 140,
    chain: { ok: true, events: 140 },
    state: { value: 140 },
  })
}, 120_000)

it("replays a log of the starter's own todo kind from its src/todo.ts as Node runs it (type stripping), or compiled", async () => {
  // The project `emberlog init` writes, with emberlog installed as npm would: its entry point
  // compiled, effect beside it (one copy, shared with the project's own import of it).
  const project = join(dir, "todo-app")
  const files = starterFiles("todo-app")
  mkdirSync(join(project, "src"), { recursive: true })
  for (const path of ["package.json", "src/todo.ts"]) writeFileSync(join(project, path), files[path]!)
  const emberlog = join(project, "node_modules/emberlog")
  mkdirSync(emberlog, { recursive: true })
  writeFileSync(
    join(emberlog, "package.json"),
    JSON.stringify({ name: "emberlog", type: "module", exports: "./index.js" }),
  )
  const external = ["effect", "effect/*"]
  const options = { platform: "node", format: "esm", logLevel: "warning" } as const
  await build({
    ...options,
    entryPoints: ["src/index.ts"],
    bundle: true,
    external,
    outfile: join(emberlog, "index.js"),
  })
  symlinkSync(resolve("node_modules/effect"), join(project, "node_modules/effect"), "dir")
  await build({ ...options, entryPoints: [join(project, "src/todo.ts")], outfile: join(project, "dist/todo.js") })

  let prev = GENESIS_HASH
  const rows = [
    { type: "Added", schemaVersion: 1, data: { id: 1, title: "milk" } },
    { type: "Added", schemaVersion: 1, data: { id: 2, title: "eggs" } },
    { type: "Completed", schemaVersion: 1, data: { id: 1 } },
  ].map((body, i) => {
    const event = {
      seq: i + 1,
      ...body,
      meta: {
        at: 1_795_000_000_000 + i,
        causationId: null,
        commandId: `c${i}`,
        correlationId: `c${i}`,
        principal: "me",
      },
    }
    prev = chainHash(prev, event)
    return JSON.stringify({ ...event, hash: prev })
  })
  writeFileSync(join(project, "groceries.ndjson"), `${rows.join("\n")}\n`)
  const expected = {
    kind: "todo",
    version: 3,
    chain: { ok: true, events: 3, head: prev },
    state: {
      items: [
        { id: 1, title: "milk", done: true },
        { id: 2, title: "eggs", done: false },
      ],
    },
  }
  // Exactly the line the starter's README gives.
  const line = "replay groceries.ndjson --entity todo --module ./src/todo.ts"
  expect(files["README.md"]).toContain(`npx emberlog ${line}`)
  const fromSource = await cliIn(project, ...line.split(" "))
  expect({ ...fromSource, stdout: JSON.parse(fromSource.stdout) }).toEqual({ code: 0, stdout: expected, stderr: "" })
  const compiled = await cliIn(project, "replay", "groceries.ndjson", "--module", "dist/todo.js", "--json")
  expect({ ...compiled, stdout: JSON.parse(compiled.stdout) }).toEqual({ code: 0, stdout: expected, stderr: "" })
  // Without --module the CLI knows only its built-in kinds, and says how to name yours.
  expect(await cliIn(project, "replay", "groceries.ndjson", "--entity", "todo")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining("add --module <path>"),
  })
  // Type stripping does not map an import of ./x.js to x.ts: the error says so.
  writeFileSync(join(project, "src/reexport.ts"), 'export { Todo } from "./todo.js"\n')
  expect(await cliIn(project, "replay", "groceries.ndjson", "--module", "src/reexport.ts")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining("import .ts files by their .ts name"),
  })
}, 60_000)
