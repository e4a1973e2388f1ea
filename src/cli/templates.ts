/**
 * The starter project `emberlog init` writes (README, "Use emberlog in your own Worker"). Strings,
 * so the bundled CLI carries them: the packed package needs no template files beside it. Versions
 * are this package's own, so a starter always pins what emberlog was built and tested with.
 */
import pkg from "../../package.json"

const range = (name: string): string => {
  const found =
    (pkg.dependencies as Record<string, string>)[name] ?? (pkg.devDependencies as Record<string, string>)[name]
  if (found === undefined) throw new Error(`emberlog's package.json has no version of ${name}`)
  return found
}

/** A Worker name wrangler accepts (lowercase letters, digits, dashes), from the directory's name. */
export const workerName = (directory: string): string => {
  const name = directory
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
  return name === "" ? "emberlog-app" : name
}

const packageJson = (name: string) =>
  `${JSON.stringify(
    {
      name,
      version: "0.1.0",
      private: true,
      type: "module",
      scripts: {
        dev: "wrangler dev",
        test: "tsc && node --test test/*.test.ts",
        deploy: "wrangler deploy",
      },
      dependencies: { emberlog: `^${pkg.version}`, effect: range("effect"), wrangler: range("wrangler") },
      devDependencies: {
        "@cloudflare/workers-types": range("@cloudflare/workers-types"),
        "@types/node": range("@types/node"),
        "fast-check": range("fast-check"),
        // wrangler and the test runner need Node ≥ 22: npm scripts run on this one whatever the machine has.
        node: range("node"),
        typescript: range("typescript"),
      },
      // The install scripts this stack needs (the Node binary, workerd, esbuild), approved ahead of npm enforcing it.
      allowScripts: { node: true, workerd: true, esbuild: true },
    },
    null,
    2,
  )}\n`

const wranglerToml = (name: string) => `name = "${name}"
main = "src/worker.ts"
compatibility_date = "2026-11-01"
compatibility_flags = ["nodejs_compat"]

[[durable_objects.bindings]]
name = "EMBERLOG_ACTOR"
class_name = "EmberlogActor"
[[durable_objects.bindings]]
name = "EMBERLOG_TOPIC"
class_name = "EmberlogTopic"
[[durable_objects.bindings]]
name = "EMBERLOG_MCP_SESSION"
class_name = "EmberlogMcpSession"
[[migrations]]
tag = "v1"
new_sqlite_classes = ["EmberlogActor", "EmberlogTopic", "EmberlogMcpSession"]
[vars]
AUTH_MODE = "off"   # local only, as today
`

const worker = `import { emberlog } from "emberlog/worker"
import { Todo } from "./todo.js"
const app = emberlog({ kinds: [Todo] })
export const { EmberlogActor, EmberlogTopic, EmberlogMcpSession } = app.objects
export default app.handler
`

const todo = `// The entity, node-safe (no Cloudflare import), so the harness runs it in plain Node.
import { Effect, Schema } from "effect"
import { Entity, PositiveSafeInt, reject, tagged } from "emberlog"

const MAX_TODOS = 100
const Title = Schema.NonEmptyString.pipe(Schema.check(Schema.isMaxLength(200)))

const Add = tagged("Add", { id: PositiveSafeInt, title: Title })
const Complete = tagged("Complete", { id: PositiveSafeInt })
const Remove = tagged("Remove", { id: PositiveSafeInt })

const Added = tagged("Added", { id: PositiveSafeInt, title: Schema.String })
const Completed = tagged("Completed", { id: PositiveSafeInt })
const Removed = tagged("Removed", { id: PositiveSafeInt })

const Item = Schema.Struct({ id: PositiveSafeInt, title: Schema.String, done: Schema.Boolean })

export const Todo = Entity.make({
  kind: "todo",
  state: Schema.Struct({ items: Schema.Array(Item) }),
  initial: { items: [] },
  commands: Schema.Union([Add, Complete, Remove]),
  events: Schema.Union([Added, Completed, Removed]),
  decide: (state, command) => {
    const item = state.items.find((candidate) => candidate.id === command.id)
    switch (command.type) {
      case "Add":
        if (item !== undefined) return reject("todo_exists", \`Todo \${command.id} exists already\`)
        if (state.items.length >= MAX_TODOS) return reject("too_many_todos", \`A list holds \${MAX_TODOS} todos\`)
        return Effect.succeed([{ type: "Added", id: command.id, title: command.title } as const])
      case "Complete":
        if (item === undefined) return reject("unknown_todo", \`No todo \${command.id}\`)
        // Completing twice is not an error, and records nothing new.
        return Effect.succeed(item.done ? [] : [{ type: "Completed", id: command.id } as const])
      case "Remove":
        if (item === undefined) return reject("unknown_todo", \`No todo \${command.id}\`)
        return Effect.succeed([{ type: "Removed", id: command.id } as const])
    }
  },
  evolve: (state, event) => {
    switch (event.type) {
      case "Added":
        return { items: [...state.items, { id: event.id, title: event.title, done: false }] }
      case "Completed":
        return { items: state.items.map((item) => (item.id === event.id ? { ...item, done: true } : item)) }
      case "Removed":
        return { items: state.items.filter((item) => item.id !== event.id) }
    }
  },
})
`

const test = `// emberlog's harness on the Todo: replay determinism, events that survive storage, snapshots,
// and the hosted log under retries, stale If-Match and restarts. Runs in plain Node.
import { test } from "node:test"
import fc from "fast-check"
import { checkEntity } from "emberlog/testing"
import { Todo } from "../src/todo.ts"

// Few ids, so commands often meet the same todo; empty titles and unknown ids are refused.
const id = fc.integer({ min: 1, max: 5 })
const commands = fc.oneof(
  fc.record({ type: fc.constant("Add"), id, title: fc.string({ maxLength: 8 }) }),
  fc.record({ type: fc.constant("Complete"), id }),
  fc.record({ type: fc.constant("Remove"), id }),
)

test("the todo entity is sound", () => checkEntity(Todo, { commands }))
`

const tsconfig = `${JSON.stringify(
  {
    compilerOptions: {
      target: "es2023",
      lib: ["es2023"],
      module: "nodenext",
      moduleResolution: "nodenext",
      types: ["@cloudflare/workers-types", "node"],
      strict: true,
      noEmit: true,
      // The test imports src/todo.ts as Node runs it (type stripping); wrangler bundles the rest.
      allowImportingTsExtensions: true,
      skipLibCheck: true,
    },
    include: ["src", "test"],
  },
  null,
  2,
)}\n`

const gitignore = `node_modules/
.wrangler/
.dev.vars
`

const readme = (name: string) => `# ${name}

A Worker serving one event-sourced entity, \`todo\` (src/todo.ts), with emberlog.

## Two commands

\`\`\`sh
npm install && npm run dev   # serves http://127.0.0.1:8787, state kept on disk in .wrangler/state
npm test                     # typechecks, then runs emberlog's harness on the Todo entity
\`\`\`

emberlog is not on the npm registry yet: install its tarball first (\`npm pack\` in emberlog's
repository makes it), e.g. \`npm install /tmp/emberlog-0.2.0.tgz\`, which installs everything else too.

Then, with the server running:

\`\`\`sh
curl -X POST http://127.0.0.1:8787/v1/todo/groceries/commands -H 'content-type: application/json' \\
  -d '{"type":"Add","id":1,"title":"milk"}'       # {"version":1,"events":[…],"state":{"items":[…]}}
curl http://127.0.0.1:8787/v1/todo/groceries          # the state; ?at=1 for the past
curl http://127.0.0.1:8787/v1/todo/groceries/events   # the hash-chained log
curl http://127.0.0.1:8787/v1/todo/groceries/verify   # checks the chain
\`\`\`

Audit a list offline, with the same domain code and without trusting the server:

\`\`\`sh
npx emberlog export todo/groceries > groceries.ndjson
npx emberlog replay groceries.ndjson --entity todo --module ./src/todo.ts   # checks the chain, prints the state
\`\`\`

(Node strips src/todo.ts's types as it loads it; a module of yours that imports another file names it \`./x.ts\`.)

http://127.0.0.1:8787/inspect shows any todo list, its history and its live events; MCP clients
connect to http://127.0.0.1:8787/mcp (tools \`todo_add\`, \`todo_complete\`, \`todo_remove\`, \`read_state\`, …).

Add a kind: write its entity beside src/todo.ts and list it in \`emberlog({ kinds: [...] })\` in
src/worker.ts; wrangler.toml does not change. \`AUTH_MODE = "off"\` in wrangler.toml is for local
development only: remove it and configure JWT verification before deploying (\`npm run deploy\`).
`

/** Every file of the starter, by path relative to the project directory. */
export const starterFiles = (name: string): Record<string, string> => ({
  "package.json": packageJson(name),
  "wrangler.toml": wranglerToml(name),
  "tsconfig.json": tsconfig,
  ".gitignore": gitignore,
  "README.md": readme(name),
  "src/worker.ts": worker,
  "src/todo.ts": todo,
  "test/todo.test.ts": test,
})
