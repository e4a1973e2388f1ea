/**
 * The Worker of bench/scale.mjs (bench/scale.wrangler.toml): the production app and its
 * routes, with its actor class extended by two benchmark methods reached under /bench/…:
 * `seed(n)`, n counter commands through the real command path inside one call (to build a
 * long log fast), `rows(n)`, the SQLite rows a command reads and writes (for the cost model),
 * and `floor()`, the read-only floor of a catch-up: every event row read
 * in pages of 1,000 and its JSON columns parsed, nothing else.
 */
import type { ActorCore } from "../src/actors/actor-core.js"
import { markDelivered } from "./peers.js"
import { DEV_TENANT, actorName } from "../src/core/names.js"
import app, { EmberlogActor as AppActor } from "../src/app.js"

export { EmberlogMcpSession, EmberlogTopic } from "../src/app.js"

const INCREMENT = { type: "Increment", by: 1 } as const
const PAGE = 1000

export class EmberlogActor extends AppActor {
  /**
   * n increments through `ActorCore.command` (decode, decide, hash chain, event row, snapshot
   * every 500th) in one call, then marked delivered (bench/peers.ts `markDelivered`), so a million
   * topic deliveries do not run into the measurements.
   */
  seed(n: number): number {
    const core: ActorCore = (this as unknown as { core: ActorCore }).core
    for (let i = 0; i < n; i++) if (!core.command({ command: INCREMENT }).ok) throw new Error("seed failed")
    markDelivered(core, this.ctx.storage.sql)
    return core.currentVersion
  }

  /**
   * The rows billing counts, per command: n counter commands through the host's command path
   * (`commit`, as the HTTP route's RPC runs it), then n of the bare DO's INSERT and n of the
   * Agents SDK's state write (`INSERT OR REPLACE INTO cf_agents_state`, its statement in
   * agents 0.32), each summed from SQLite's own counters on every cursor (`rowsRead`,
   * `rowsWritten`, what Cloudflare bills), with the database's growth in bytes.
   */
  rows(n: number): Record<string, { rowsRead: number; rowsWritten: number; bytes: number }> {
    const sql = this.ctx.storage.sql
    const exec = sql.exec
    const measure = (run: () => void) => {
      const cursors: Array<{ rowsRead: number; rowsWritten: number }> = []
      const size = sql.databaseSize
      sql.exec = ((query: string, ...bindings: Array<SqlStorageValue>) => {
        const cursor = exec.call(sql, query, ...bindings)
        cursors.push(cursor)
        return cursor
      }) as typeof sql.exec
      try {
        run()
      } finally {
        sql.exec = exec
      }
      const sum = (field: "rowsRead" | "rowsWritten") => cursors.reduce((total, c) => total + c[field], 0) / n
      return { rowsRead: sum("rowsRead"), rowsWritten: sum("rowsWritten"), bytes: (sql.databaseSize - size) / n }
    }
    const commit = (this as unknown as { commit: (request: unknown) => { ok: boolean } }).commit.bind(this)
    const emberlog = measure(() => {
      for (let i = 0; i < n; i++) if (!commit({ command: INCREMENT }).ok) throw new Error("rows: a command failed")
    })
    exec.call(sql, "CREATE TABLE IF NOT EXISTS bench_log (seq INTEGER PRIMARY KEY, data TEXT NOT NULL)")
    exec.call(sql, "CREATE TABLE IF NOT EXISTS bench_state (id TEXT PRIMARY KEY NOT NULL, state TEXT)")
    const bare = measure(() => {
      for (let i = 0; i < n; i++) sql.exec("INSERT INTO bench_log (data) VALUES (?)", JSON.stringify(INCREMENT))
    })
    const agent = measure(() => {
      for (let i = 0; i < n; i++)
        sql.exec("INSERT OR REPLACE INTO bench_state (id, state) VALUES (?, ?)", "STATE", JSON.stringify({ value: i }))
    })
    return { emberlog, bare, agent }
  }

  /** Reads every event row as a page reader would (all columns, pages of 1,000), parsing data and meta. */
  floor(): {
    rows: number
    ms: number
    readEventsMs: number
    readEventsJsonMs: number
    readEventsTextMs: number
    databaseBytes: number
  } {
    const sql = this.ctx.storage.sql
    const start = performance.now()
    let after = 0
    let rows = 0
    for (;;) {
      let last = after
      for (const row of sql.exec(
        "SELECT seq, type, schema_version, data, meta, at, hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        after,
        PAGE,
      )) {
        JSON.parse(row.data as string)
        JSON.parse(row.meta as string)
        last = row.seq as number
        rows++
      }
      if (last === after) break
      after = last
    }
    const ms = performance.now() - start
    // The same rows through the actor's own page reader (upcast, wire events; what the HTTP route
    // and the export call over RPC), then with each page's JSON as the Worker answers it.
    const core: ActorCore = (this as unknown as { core: ActorCore }).core
    const pages = (stringify: boolean) => {
      const started = performance.now()
      for (let cursor = 0; ;) {
        const reply = core.readEvents(cursor, PAGE)
        if (!reply.ok) throw new Error(reply.error.message)
        if (reply.value.events.length === 0) break
        if (stringify) JSON.stringify(reply.value)
        cursor = reply.value.events.at(-1)!.seq
      }
      return performance.now() - started
    }
    // The page as the HTTP route has it now: each event's JSON spliced from its row, joined into the body's text.
    const texts = () => {
      const started = performance.now()
      for (let cursor = 0; ;) {
        const reply = core.readEventsPageJson(cursor, PAGE)
        if (!reply.ok) throw new Error(reply.error.message)
        const next = JSON.parse(reply.value.slice(reply.value.lastIndexOf(',"next":') + 8, -1)) as number | null
        if (next === null) break
        cursor = next
      }
      return performance.now() - started
    }
    return {
      rows,
      ms,
      readEventsMs: pages(false),
      readEventsJsonMs: pages(true),
      readEventsTextMs: texts(),
      databaseBytes: sql.databaseSize,
    }
  }
}

interface BenchActor {
  seed(n: number): Promise<number>
  floor(): Promise<ReturnType<EmberlogActor["floor"]>>
  rows(n: number): Promise<Record<string, { rowsRead: number; rowsWritten: number; bytes: number }>>
}

/** /bench/{seed|floor|rows}/{counter id}[?n=]: the driver's entry to the two methods; the rest is the app. */
export default {
  async fetch(request: Request, env: Record<string, DurableObjectNamespace>, ctx: ExecutionContext) {
    const url = new URL(request.url)
    const [, first, action, id] = url.pathname.split("/")
    if (first !== "bench") return app.fetch(request, env as never, ctx)
    const actor = env.EMBERLOG_ACTOR!.getByName(actorName(DEV_TENANT, "counter", id!)) as unknown as BenchActor
    if (action === "seed") return Response.json({ head: await actor.seed(Number(url.searchParams.get("n") ?? "0")) })
    if (action === "floor") return Response.json(await actor.floor())
    if (action === "rows") return Response.json(await actor.rows(Number(url.searchParams.get("n") ?? "1000")))
    return new Response("unknown bench action", { status: 404 })
  },
}
