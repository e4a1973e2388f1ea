// emberlog as users get it: `npm pack` of this repository installed into a new project that has
// an entity of its own, typechecked with tsc and checked by the harness in plain Node.
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { builtinModules } from "node:module"
import { promisify } from "node:util"
import { build } from "esbuild"
import { afterAll, beforeAll, expect, it } from "vitest"

const exec = promisify(execFile)
/** Runs a command; a failure's message carries its output (tsc reports on stdout). */
const run = (file: string, args: Array<string>, options: { cwd?: string } = {}) =>
  exec(file, args, { ...options, maxBuffer: 16 * 1024 * 1024 }).catch((error) => {
    throw new Error(`${file} ${args.join(" ")} failed:\n${error.stdout ?? ""}${error.stderr ?? ""}`)
  })
const root = process.cwd()
const scratch = mkdtempSync(join(tmpdir(), "emberlog-package-"))
const project = join(scratch, "todo-app")
const ours = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
const range = (name: string): string => ours.dependencies[name] ?? ours.devDependencies[name]
let tarball: string
let packed: Array<string>

const files: Record<string, string> = {
  "src/todo.ts": `
import { Effect, Schema } from "effect"
import { Entity, PositiveSafeInt, reject, tagged } from "emberlog"

const Add = tagged("Add", { id: PositiveSafeInt, title: Schema.NonEmptyString })
const Complete = tagged("Complete", { id: PositiveSafeInt })
const Added = tagged("Added", { id: PositiveSafeInt, title: Schema.String })
const Completed = tagged("Completed", { id: PositiveSafeInt })
const Item = Schema.Struct({ id: PositiveSafeInt, title: Schema.String, done: Schema.Boolean })

export const Todo = Entity.make({
  kind: "todo",
  state: Schema.Struct({ items: Schema.Array(Item) }),
  initial: { items: [] },
  commands: Schema.Union([Add, Complete]),
  events: Schema.Union([Added, Completed]),
  decide: (state, command) => {
    const item = state.items.find((candidate) => candidate.id === command.id)
    if (command.type === "Add") {
      if (item) return reject("todo_exists", "That todo exists")
      return Effect.succeed([{ type: "Added", id: command.id, title: command.title } as const])
    }
    if (item === undefined) return reject("unknown_todo", "No such todo")
    return Effect.succeed(item.done ? [] : [{ type: "Completed", id: command.id } as const])
  },
  evolve: (state, event) =>
    event.type === "Added"
      ? { items: [...state.items, { id: event.id, title: event.title, done: false }] }
      : { items: state.items.map((item) => (item.id === event.id ? { ...item, done: true } : item)) },
})

// The declarations are real types, not any: a wrong event is a compile error.
// @ts-expect-error "Removed" is not a todo event
Todo.evolve(Todo.initial, { type: "Removed", id: 1 })
`,
  "check.ts": `
import assert from "node:assert/strict"
import { Effect, Schema } from "effect"
import fc from "fast-check"
import { Entity, tagged } from "emberlog"
import { checkEntity } from "emberlog/testing"
import { Todo } from "./src/todo.ts"

const id = fc.integer({ min: 0, max: 4 })
const commands = fc.oneof(
  fc.record({ type: fc.constant("Add"), id, title: fc.string({ maxLength: 4 }) }),
  fc.record({ type: fc.constant("Complete"), id }),
)
checkEntity(Todo, { commands, numRuns: 30 })

// The harness is not a formality: an entity whose decide is not deterministic fails it.
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
assert.throws(
  () => checkEntity(Dice, { commands: fc.constant({ type: "Roll" }), numRuns: 5 }),
  (error: Error) => /decide is not deterministic/.test(String((error.cause as Error | undefined)?.message)),
)
console.log("harness ok")
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
const entries = ["emberlog/worker", "emberlog/client", "emberlog/testing/workerd"]
const unresolved = entries.filter((entry) => {
  const file = fileURLToPath(import.meta.resolve(entry))
  return !existsSync(file) || !existsSync(file.replace(/\\.js$/, ".d.ts"))
})
const cloudflare = specifiers.filter((specifier) => specifier.startsWith("cloudflare:"))
console.log(JSON.stringify({ core: Object.keys(core), testing: Object.keys(testing), cloudflare, unresolved }))
`,
  // Typechecked only (nothing serves it here): the client's declarations against the entity's own types.
  "src/client.ts": `
import { createClient } from "emberlog/client"
import type { StateOf } from "emberlog"
import type { Todo } from "./todo.ts"

const todos = createClient({ baseUrl: "http://127.0.0.1:8787" }).actor<StateOf<typeof Todo>>("todo", "groceries")
export const titles = async (): Promise<Array<string>> => (await todos.state()).state.items.map((item) => item.title)
`,
  "worker.ts": `
import { createApp } from "emberlog/worker"
export { actorHostClass } from "emberlog/worker"
export default createApp()
`,
  "tsconfig.json": JSON.stringify({
    compilerOptions: {
      target: "es2023",
      // effect's declarations name Web Crypto types; skipLibCheck is off so ours are checked too.
      lib: ["es2023", "dom"],
      module: "nodenext",
      moduleResolution: "nodenext",
      types: ["node"],
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
      skipLibCheck: false,
    },
    include: ["src", "check.ts"],
  }),
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
  mkdirSync(join(project, "src"), { recursive: true })
  for (const [path, text] of Object.entries(files)) writeFileSync(join(project, path), text)
  const dependencies = { emberlog: `file:${tarball}`, effect: range("effect") }
  // What a user adds to test and typecheck an entity (README: "Prove your entity with the harness").
  const devTools = ["fast-check", "typescript", "@types/node"]
  const devDependencies = Object.fromEntries(devTools.map((name) => [name, range(name)]))
  const manifest = { name: "todo-app", private: true, type: "module", dependencies, devDependencies }
  writeFileSync(join(project, "package.json"), JSON.stringify(manifest))
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: project })
}, 120_000)

afterAll(() => rmSync(scratch, { recursive: true, force: true }))

it("the tarball ships compiled JavaScript with declarations, and no tests, benchmarks or local state", () => {
  const expected = ["index.js", "index.d.ts", "worker.d.ts", "testing/index.d.ts", "client/index.d.ts", "emberlog.mjs"]
  for (const file of [...expected.map((name) => `dist/${name}`), "README.md"]) expect(packed).toContain(file)
  expect(packed.filter((file) => /^(test|bench|\.wrangler|node_modules|conformance)\//.test(file))).toEqual([])
  const manifest = JSON.parse(readFileSync(join(project, "node_modules/emberlog/package.json"), "utf8"))
  expect(manifest.private).toBeUndefined()
  expect(manifest.version).toBe("0.2.0")
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

it("a user's own entity typechecks against the published declarations and passes checkEntity", async () => {
  await run(join(project, "node_modules/.bin/tsc"), ["--noEmit", "-p", "."], { cwd: project })
  const { stdout } = await run(process.execPath, ["check.ts"], { cwd: project })
  expect(stdout).toContain("harness ok")
})

it("`emberlog/worker` bundles for workerd from the package's own dependencies", async () => {
  // As wrangler bundles a Worker: workerd's conditions, the runtime's modules left external.
  const result = await build({
    absWorkingDir: project,
    entryPoints: ["worker.ts"],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*", "node:*", ...builtinModules],
    logLevel: "silent",
  })
  expect(result.errors).toEqual([])
  expect(result.outputFiles[0]!.text).toContain("cloudflare:workers")
})
