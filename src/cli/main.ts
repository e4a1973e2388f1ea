/**
 * `emberlog`: the command line for scripts and auditors. It talks to a server through the
 * typed client, except `replay`, which folds an exported log offline with the same domain
 * code the server runs, so an auditor can check a server's answer without trusting it.
 * Exit codes: 0 success, 1 the log does not verify (or cannot be replayed, or an
 * unexpected error), 2 usage (including a file that cannot be read), 3 the server refused
 * or could not be reached.
 */
import { createReadStream, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs"
import { basename, dirname, extname, join, resolve } from "node:path"
import { createInterface } from "node:readline"
import { pathToFileURL } from "node:url"
import { parseArgs, type ParseArgsConfig } from "node:util"
import { ChainWalk } from "../core/hash-chain.js"
import { NAME_CHARS } from "../core/names.js"
import { EmberlogError, SubscriptionRefused, createClient, type WireEvent } from "../client/index.js"
import type { Entity } from "../domain/entity.js"
import { entities } from "../kinds/entities.js"
import { starterFiles, workerName } from "./templates.js"

export const EXIT = { ok: 0, failed: 1, usage: 2, request: 3 } as const

class UsageError extends Error {}
class Failed extends Error {}

const DEFAULT_URL = "http://127.0.0.1:8787"
const TAIL_BACKLOG = 10
/** As many events a request as the server allows (pages also end at 4 MiB): fewer round trips. */
const EXPORT_PAGE = 10_000
/** What a server before 10,000-event pages allows; it refuses more with 400 invalid_query. */
const OLDER_SERVER_PAGE = 1000
const PROGRESS_EVERY_MS = 250
const PROGRESS_LINES = 1000

const CONNECTION = `
  --url URL       server (default $EMBERLOG_URL or ${DEFAULT_URL})
  --token JWT     bearer token (default $EMBERLOG_TOKEN)`

const HELP: Record<string, string> = {
  main: `emberlog: read, follow, export and audit emberlog actors; start a project of your own

Usage: emberlog <command> [options]

Commands:
  tail <kind>/<id>      follow an actor's events as they are appended
  state <kind>/<id>     print an actor's state, now or at a past seq or time
  verify <kind>/<id>    check an actor's hash chain on the server
  export <kind>/<id>    write an actor's log as NDJSON (rows as stored) to stdout
  replay <file>         fold an exported log offline and print the state
  init <dir>            write a starter project: your own Worker serving a todo entity

Run emberlog <command> --help for a command's options.
tail, state, verify and export work for any kind the server hosts, yours included. replay
knows the built-in kinds (${Object.keys(entities).join(", ")}); --module loads your own.
Exit codes: 0 ok, 1 log does not verify / cannot be replayed, 2 usage, 3 request failed.`,
  tail: `Usage: emberlog tail <kind>/<id> [--after N] [--json]

Prints the last ${TAIL_BACKLOG} events, then every new one as it is appended, until
interrupted. Reconnects on its own and resumes after the last event printed, so nothing
is missed or repeated.
  --after N       start after seq N instead (0: the whole log)
  --json          one JSON event per line (NDJSON)${CONNECTION}`,
  state: `Usage: emberlog state <kind>/<id> [--at N | --as-of TIME] [--json]

Prints {kind, id, version, state}.
  --at N          the state after seq N
  --as-of TIME    the state at an ISO-8601 time
  --json          compact JSON on one line${CONNECTION}`,
  verify: `Usage: emberlog verify <kind>/<id> [--json]

Asks the server to walk the actor's hash chain (needs the admin scope when auth is on).
Exits 1 when the chain is broken.
  --json          print the server's report as JSON${CONNECTION}`,
  export: `Usage: emberlog export <kind>/<id> [--after N] > log.ndjson

Writes every event as stored (the exact rows the hash chain covers) as NDJSON, paging
through the log (pages are bounded in bytes too, so a log of any size exports). Shows a
progress bar on a terminal.
  --after N       start after seq N (default 0)${CONNECTION}`,
  replay: `Usage: emberlog replay <file|-> --entity <kind> [--module <path>] [--json]

Reads an exported log (NDJSON, '-' for stdin), checks its hash chain and seqs, folds it
with the entity's own evolve and prints {kind, version, chain, state}. Exits 1 if the
chain does not verify or an event cannot be read.
  --entity KIND   the entity kind: a built-in one (${Object.keys(entities).join(", ")}),
                  or one the --module exports (optional when it exports only one)
  --module PATH   a module exporting your Entity: compiled .js/.mjs, or .ts when Node
                  strips types (Node >= 22.18; its imports must then name .ts files), e.g.
                  emberlog replay todo.ndjson --entity todo --module ./src/todo.ts
  --json          compact JSON on one line`,
  init: `Usage: emberlog init <dir>

Writes a starter project into <dir> (created if missing; it must be empty): package.json
(emberlog, effect, wrangler), wrangler.toml, src/worker.ts serving src/todo.ts (a todo
entity) with emberlog({ kinds: [Todo] }), test/todo.test.ts (emberlog's harness on it),
tsconfig.json, .gitignore and a README. Then:
  cd <dir> && npm install && npm run dev    serves http://127.0.0.1:8787 (state in .wrangler/state)
  npm test                                  typechecks and runs the harness`,
}

/** Writes the starter; an existing directory must be empty, so nothing of the user's is overwritten. */
const init = (directory: string | undefined, io: Io): number => {
  if (directory === undefined) throw new UsageError("init needs a directory, e.g. emberlog init my-app")
  const target = resolve(directory)
  let entries: Array<string> | undefined
  try {
    if (!statSync(target).isDirectory()) throw new UsageError(`${directory} exists and is not a directory`)
    entries = readdirSync(target)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
  }
  if (entries !== undefined && entries.length > 0)
    throw new UsageError(
      `${directory} is not empty: init writes only into a new or empty directory, so nothing of yours is overwritten`,
    )
  const files = starterFiles(workerName(basename(target)))
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(target, path)), { recursive: true })
    writeFileSync(join(target, path), text, { flag: "wx" })
  }
  io.out.write(
    `Wrote ${Object.keys(files).length} files to ${directory}. Next:\n  cd ${directory}\n  npm install && npm run dev\n  npm test\n`,
  )
  return EXIT.ok
}

const connectionOptions = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"]

interface Io {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean }
  readonly err: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  readonly env: NodeJS.ProcessEnv
  readonly signal?: AbortSignal
}

const target = (value: string | undefined, command: string): { kind: string; id: string } => {
  const match = value?.match(new RegExp(`^([a-z][a-z0-9_-]*)/(${NAME_CHARS})$`))
  if (!match)
    throw new UsageError(
      `${command} needs <kind>/<id>, e.g. counter/visits${value === undefined ? "" : ` (got ${JSON.stringify(value)})`}`,
    )
  return { kind: match[1]!, id: match[2]! }
}

const nonNegative = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw new UsageError(`--${name} must be a non-negative integer`)
  return Number(value)
}

const print = (io: Io, value: unknown, compact: boolean | undefined) =>
  io.out.write(`${JSON.stringify(value, null, compact ? undefined : 2)}\n`)

const eventLine = (event: WireEvent) =>
  `#${event.seq}  ${new Date(event.meta.at).toISOString()}  ${event.type}  by ${event.meta.principal}  ${JSON.stringify(event.data)}`

/** Writes a line, waiting when the reader is slower than we are (a pipe into a file or less). */
const writeLine = (io: Io, line: string) =>
  new Promise<void>((resolve) => (io.out.write(`${line}\n`) ? resolve() : io.out.once("drain", resolve)))

const progressBar = (io: Io, done: number, total: number) => {
  const width = Math.max(10, Math.min(40, (io.err.columns ?? 80) - 40))
  const filled = total === 0 ? width : Math.round((done / total) * width)
  io.err.write(`\rexporting [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total} events`)
}

interface ChainReport {
  readonly ok: boolean
  readonly events: number
  readonly head?: string
  readonly firstBadSeq?: number
  readonly reason?: string
}

const builtIn = (kind: string): Entity => {
  const entity: Entity | undefined = Object.hasOwn(entities, kind) ? entities[kind as keyof typeof entities] : undefined
  if (entity === undefined)
    throw new UsageError(
      `Unknown entity ${JSON.stringify(kind)}; built in: ${Object.keys(entities).join(", ")}. For a kind of your own, add --module <path> (the module exporting its Entity)`,
    )
  return entity
}

// The module has its own copy of emberlog (and Entity.make), so an Entity is recognised by shape, not identity.
const isEntity = (value: unknown): value is Entity => {
  const candidate = value as Partial<Record<keyof Entity, unknown>> | null
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.kind === "string" &&
    "initial" in candidate &&
    typeof candidate.evolve === "function" &&
    typeof candidate.decodeEvent === "function" &&
    typeof candidate.encodeState === "function"
  )
}

/** The Entity a user's module exports: the one of `kind`, or its only one when no kind is named. */
const entityFromModule = async (path: string, kind: string | undefined): Promise<Entity> => {
  // Checked first, so that a missing-module error below is always one of the module's own imports.
  if (!existsSync(resolve(path))) throw new UsageError(`No such module: ${path}`)
  let exported: Record<string, unknown>
  try {
    exported = await import(pathToFileURL(resolve(path)).href)
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const code = (error as { code?: string }).code
    const missing = code === "ERR_MODULE_NOT_FOUND" ? message.match(/Cannot find module '(.+)\.js'/)?.[1] : undefined
    const hint =
      code === "ERR_UNKNOWN_FILE_EXTENSION" && /^\.[mc]?ts$/.test(extname(path))
        ? `: this Node (${process.version}) does not strip types; compile the module to .js or use Node >= 22.18`
        : missing !== undefined && existsSync(`${missing}.ts`)
          ? " (Node's type stripping does not map an import of ./x.js to x.ts: import .ts files by their .ts name)"
          : ""
    throw new UsageError(`cannot load the module ${path}: ${message}${hint}`)
  }
  const found = [...new Set(Object.values(exported).filter(isEntity))]
  if (found.length === 0)
    throw new UsageError(`${path} exports no Entity (a value made with Entity.make from emberlog)`)
  const kinds = found.map((entity) => entity.kind).join(", ")
  if (kind === undefined) {
    if (found.length > 1) throw new UsageError(`${path} exports several entities (${kinds}): pick one with --entity`)
    return found[0]!
  }
  const entity = found.find((candidate) => candidate.kind === kind)
  if (entity === undefined)
    throw new UsageError(`${path} exports no entity of kind ${JSON.stringify(kind)}; it exports: ${kinds}`)
  return entity
}

/** Folds exported rows with the entity's domain code, checking seqs and the hash chain as it goes. */
export const replayLog = (
  entity: Entity,
  rows: Iterable<WireEvent>,
): { kind: string; version: number; chain: ChainReport; state: unknown } => {
  const kind = entity.kind
  let state = entity.initial
  const walk = new ChainWalk()
  let broken: ChainReport | undefined
  for (const row of rows) {
    const events = walk.events
    const found = walk.check(row)
    if (found !== undefined && found.firstBadSeq !== row.seq)
      throw new Failed(`${found.reason} (found ${row.seq}): not a whole log`)
    if (found !== undefined && broken === undefined) {
      broken = {
        ok: false,
        events,
        firstBadSeq: found.firstBadSeq,
        reason: `${found.reason} (was the log exported with emberlog export?)`,
      }
    }
    try {
      state = entity.evolve(state, entity.decodeEvent(row))
    } catch (error) {
      throw new Failed(
        `event ${row.seq} (${row.type}) cannot be read as a ${kind} event: ${error instanceof Error ? error.message : String(error)}`,
      )
    }
  }
  return {
    kind,
    version: walk.events,
    chain: broken ?? { ok: true, events: walk.events, head: walk.head },
    state: entity.encodeState(state),
  }
}

async function* ndjson(path: string, stdin: NodeJS.ReadableStream): AsyncGenerator<WireEvent> {
  const input = path === "-" ? stdin : createReadStream(path)
  const lines = createInterface({ input, crlfDelay: Infinity })
  let n = 0
  try {
    for await (const line of lines) {
      n++
      if (line.trim() === "") continue
      let row: unknown
      try {
        row = JSON.parse(line)
      } catch {
        throw new Failed(`${path}:${n}: not JSON`)
      }
      const { seq, type, schemaVersion, data, meta, hash } = (row ?? {}) as Record<string, unknown>
      if (
        !Number.isSafeInteger(seq) ||
        typeof type !== "string" ||
        !Number.isSafeInteger(schemaVersion) ||
        typeof hash !== "string" ||
        typeof meta !== "object" ||
        typeof data !== "object"
      ) {
        throw new Failed(`${path}:${n}: not an event (expected {seq, type, schemaVersion, data, meta, hash})`)
      }
      yield row as WireEvent
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new UsageError(`No such file: ${path}`)
    throw error
  }
}

const commands: Record<
  string,
  (
    positionals: Array<string>,
    values: Record<string, string | boolean | undefined>,
    io: Io,
    stdin: NodeJS.ReadableStream,
  ) => Promise<number>
> = {
  async tail([name], values, io) {
    const { kind, id } = target(name, "tail")
    const actor = clientFor(values, io).actor(kind, id)
    // Asking for the head first turns an unknown kind or a bad --after into a clear error:
    // a WebSocket handshake that fails does not say why.
    const head = (await actor.state()).version
    const after = nonNegative("after", values.after as string | undefined) ?? Math.max(0, head - TAIL_BACKLOG)
    if (after > head) throw new UsageError(`--after ${after} is beyond the head of the log (${head})`)
    for await (const event of actor.subscribeAsync({ after, signal: io.signal })) {
      await writeLine(io, values.json ? JSON.stringify(event) : eventLine(event))
    }
    return EXIT.ok
  },

  async state([name], values, io) {
    const { kind, id } = target(name, "state")
    if (values.at !== undefined && values["as-of"] !== undefined) throw new UsageError("Use --at or --as-of, not both")
    const asOf = values["as-of"] as string | undefined
    if (asOf !== undefined && Number.isNaN(Date.parse(asOf)))
      throw new UsageError("--as-of must be an ISO-8601 time, e.g. 2026-11-22T10:00:00Z")
    print(
      io,
      await clientFor(values, io)
        .actor(kind, id)
        .state({ at: nonNegative("at", values.at as string | undefined), asOf }),
      values.json as boolean,
    )
    return EXIT.ok
  },

  async verify([name], values, io) {
    const { kind, id } = target(name, "verify")
    const report = await clientFor(values, io).actor(kind, id).verify()
    if (values.json) print(io, report, true)
    else
      io.out.write(
        report.ok
          ? `ok: ${report.events} events, head ${report.head}\n`
          : `BROKEN at seq ${report.firstBadSeq}: ${(report as { reason?: string }).reason}\n`,
      )
    return report.ok ? EXIT.ok : EXIT.failed
  },

  async export([name], values, io) {
    const { kind, id } = target(name, "export")
    const actor = clientFor(values, io).actor(kind, id)
    const after = nonNegative("after", values.after as string | undefined) ?? 0
    const total = (await actor.state()).version
    const showProgress = io.err.isTTY === true
    let done = after
    // Drawn first after a thousand lines or PROGRESS_EVERY_MS, whichever comes first.
    let drawn = Date.now()
    // The server ends a page early when its events are large (bytes as well as count), and
    // the export follows `next`: two pages (at most 4 MiB each) are held at a time, whatever the
    // log's size, because the next page is fetched while this one is written (issue 13: the
    // server's time and the writing overlap), and written a thousand lines at a time.
    let limit = EXPORT_PAGE
    const fetchPage = (from: number) => {
      const page = actor.eventsPage({ after: from, limit, stored: true }).catch((error: unknown) => {
        // An older server (a rollback, or one not yet deployed) pages at most 1,000: export from it too.
        if (limit === OLDER_SERVER_PAGE || !(error instanceof EmberlogError) || error.code !== "invalid_query")
          throw error
        limit = OLDER_SERVER_PAGE
        return actor.eventsPage({ after: from, limit, stored: true })
      })
      // Awaited below; until then a failure must not count as unhandled.
      page.catch(() => undefined)
      return page
    }
    for (let pending = fetchPage(after); ;) {
      const page = await pending
      if (page.next !== null) pending = fetchPage(page.next)
      // A thousand lines a write, so a large page still moves the progress bar.
      for (let from = 0; from < page.events.length; from += PROGRESS_LINES) {
        const lines = page.events.slice(from, from + PROGRESS_LINES)
        await writeLine(io, lines.map((event) => JSON.stringify(event)).join("\n"))
        done = lines[lines.length - 1]!.seq
        // Every PROGRESS_LINES events from wherever the export started (a write is that many), or on time.
        const due = lines.length === PROGRESS_LINES || done >= total || Date.now() - drawn > PROGRESS_EVERY_MS
        if (showProgress && due) {
          progressBar(io, done, Math.max(total, done))
          drawn = Date.now()
        }
      }
      if (page.next === null) break
    }
    if (showProgress) {
      progressBar(io, done, Math.max(total, done))
      io.err.write("\n")
    }
    return EXIT.ok
  },

  async replay([path], values, io, stdin) {
    if (path === undefined) throw new UsageError("replay needs a file (or - for stdin)")
    const kind = values.entity as string | undefined
    const module = values.module as string | undefined
    if (kind === undefined && module === undefined)
      throw new UsageError("replay needs --entity <kind> (and --module <path> for a kind of your own)")
    // The entity first: a wrong kind or module is reported before a large file is read.
    const entity = module === undefined ? builtIn(kind!) : await entityFromModule(module, kind)
    const rows: Array<WireEvent> = []
    for await (const row of ndjson(path, stdin)) rows.push(row)
    const result = replayLog(entity, rows)
    print(io, result, values.json as boolean)
    if (!result.chain.ok)
      io.err.write(`emberlog: the hash chain is broken at seq ${result.chain.firstBadSeq}: ${result.chain.reason}\n`)
    return result.chain.ok ? EXIT.ok : EXIT.failed
  },

  async init([directory, ...extra], _values, io) {
    if (extra.length > 0) throw new UsageError(`init takes one directory (got ${extra.length + 1})`)
    return init(directory, io)
  },
}

const OPTIONS: Record<string, ParseArgsConfig["options"]> = {
  tail: { ...connectionOptions, after: { type: "string" } },
  state: { ...connectionOptions, at: { type: "string" }, "as-of": { type: "string" } },
  verify: connectionOptions,
  export: { ...connectionOptions, after: { type: "string" } },
  replay: {
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
    entity: { type: "string" },
    module: { type: "string" },
  },
  init: { help: { type: "boolean", short: "h" } },
}

const clientFor = (values: Record<string, string | boolean | undefined>, io: Io) =>
  createClient({
    baseUrl: (values.url as string | undefined) ?? io.env.EMBERLOG_URL ?? DEFAULT_URL,
    token: (values.token as string | undefined) ?? (io.env.EMBERLOG_TOKEN || undefined),
    // A CLI should say the server is unreachable rather than retry for a long time.
    commandAttempts: 1,
  })

/** Runs one invocation and returns its exit code; never throws. */
export const run = async (
  argv: ReadonlyArray<string>,
  io: Io,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<number> => {
  const [name, ...rest] = argv
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out.write(`${HELP.main}\n`)
    return name === undefined ? EXIT.usage : EXIT.ok
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (command === undefined) {
    io.err.write(`emberlog: unknown command ${JSON.stringify(name)}\n\n${HELP.main}\n`)
    return EXIT.usage
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...rest],
      options: OPTIONS[name],
      allowPositionals: true,
      strict: true,
    }) as {
      values: Record<string, string | boolean | undefined>
      positionals: Array<string>
    }
    if (values.help) {
      io.out.write(`${HELP[name]}\n`)
      return EXIT.ok
    }
    return await command(positionals, values, io, stdin)
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err.write(`emberlog ${name}: ${(error as Error).message}\n\n${HELP[name]}\n`)
      return EXIT.usage
    }
    if (error instanceof Failed) {
      io.err.write(`emberlog ${name}: ${error.message}\n`)
      return EXIT.failed
    }
    if (error instanceof SubscriptionRefused) {
      io.err.write(`emberlog ${name}: HTTP ${error.status}: ${error.message}\n`)
      return EXIT.request
    }
    if (error instanceof EmberlogError) {
      const where = error.status === 0 ? "could not reach the server" : `HTTP ${error.status} ${error.code}`
      io.err.write(`emberlog ${name}: ${where}: ${error.message}\n`)
      return EXIT.request
    }
    // fetch rejects with a TypeError when the server cannot be reached at all.
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    if (error instanceof TypeError && cause !== undefined) {
      io.err.write(`emberlog ${name}: could not reach the server (${cause.code ?? cause.message})\n`)
      return EXIT.request
    }
    // A file that cannot be read (a directory, no permission) is the caller's to fix.
    const { code, syscall } = error as NodeJS.ErrnoException
    if (typeof code === "string" && typeof syscall === "string") {
      io.err.write(
        `emberlog ${name}: cannot ${syscall} ${(error as NodeJS.ErrnoException).path ?? "the file"} (${code})\n`,
      )
      return EXIT.usage
    }
    io.err.write(
      `emberlog ${name}: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    )
    return EXIT.failed
  }
}
