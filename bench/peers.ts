/**
 * The same counter five ways, for the side-by-side peer benchmark (bench/peers.mjs): each
 * takes `increment(by)` over DO RPC, broadcasts the change to its WebSocket subscribers
 * (hibernatable everywhere), and offers `seed(n)` (n increments inside the object, to build
 * history fast), `abort()` (to measure recovery after eviction) and `inObject(n)` (n of its
 * own `increment`s inside one call, timed in the object: bench/inobject.bench.test.ts).
 */
import { DurableObject } from "cloudflare:workers"
import { Actor, Persist } from "@cloudflare/actors"
import { Agent } from "agents"
import { Server } from "partyserver"
import type { ActorCore } from "../src/actors/actor-core.js"
import { actorHostClass } from "../src/actors/durable-actor.js"
import { AFTER_HEADER, SUBSCRIBE_HEADER } from "../src/actors/subscribers.js"
import { Counter } from "../src/kinds/counter/entity.js"
import { Document } from "../src/kinds/document/entity.js"
import { DEV_TENANT, actorName } from "../src/core/names.js"
import type { Entity } from "../src/domain/entity.js"

/**
 * Marks everything the actor has appended delivered (its topic cursors at the head, no queued
 * row left), untimed: a million topic deliveries would occupy the single local runtime (which
 * every peer shares) for minutes and skew the others' timings.
 */
export const markDelivered = (core: ActorCore, sql: SqlStorage) => {
  sql.exec("DELETE FROM outbox")
  for (const { topic } of sql.exec("SELECT topic FROM topic_cursors").toArray())
    core.advanceTopic(topic as string, core.currentVersion)
}

const INCREMENT = { type: "Increment", by: 1 } as const

/**
 * Times `n` runs of `step` inside the object, then one macrotask turn so that work a peer
 * left queued (a promise-based write, a broadcast) is inside the figure too. The same for
 * every peer: the turn costs well under a millisecond against tens of milliseconds of loop.
 */
const timeInObject = async (n: number, step: (i: number) => unknown): Promise<number> => {
  const start = performance.now()
  for (let i = 0; i < n; i++) step(i)
  await new Promise((resolve) => setTimeout(resolve, 0))
  return performance.now() - start
}

/** emberlog hosting `entity`: the production actor (log, hash chain, snapshots, outbox, idempotency). */
const emberlogPeer = (entity: Entity) =>
  class extends actorHostClass([{ entity }]) {
    increment(): { value: number; version: number } {
      const reply = this.commit({ command: INCREMENT })
      if (!reply.ok) throw new Error(reply.error.message)
      return { value: (reply.value.state as { value: number }).value, version: reply.value.version }
    }

    /** Appends n events through the real command path, then marks them delivered (`markDelivered`). */
    seed(n: number): number {
      const core: ActorCore = this.core
      for (let i = 0; i < n; i++) if (!core.command({ command: INCREMENT }).ok) throw new Error("seed failed")
      markDelivered(core, this.ctx.storage.sql)
      return core.currentVersion
    }

    abort(): void {
      this.ctx.abort("benchmark: evict")
    }

    /**
     * n increments through the host's command path (`commit`, which RPC's `increment` calls),
     * with a fresh Idempotency-Key each when `keyed`. They are then marked delivered (untimed), as
     * in `seed`, so no topic deliveries run into the next measurement.
     */
    async inObject(n: number, keyed = false): Promise<number> {
      const prefix = `bench-${this.core.currentVersion}-`
      const ms = await timeInObject(n, (i) => {
        const reply = this.commit({ command: INCREMENT, idempotencyKey: keyed ? prefix + i : undefined })
        if (!reply.ok || reply.value.replayed) throw new Error("inObject: a command failed or was replayed")
      })
      markDelivered(this.core, this.ctx.storage.sql)
      return ms
    }

    override async fetch(request: Request): Promise<Response> {
      const headers = new Headers(request.headers)
      headers.set(SUBSCRIBE_HEADER, "websocket")
      headers.set(AFTER_HEADER, String(this.core.currentVersion))
      return super.fetch(new Request(request.url, { headers }))
    }
  }

/** emberlog's counter. */
export class EmberlogPeer extends emberlogPeer(Counter) {}

/**
 * The same actor for a counter kind that publishes to no topic: no routing per command and no
 * deliveries to topic objects, which locally share the runtime (and its two cores)
 * with everything else. The difference to EmberlogPeer is what topics cost in this run.
 */
export class EmberlogNoTopicsPeer extends emberlogPeer({ ...Counter, topics: () => [] }) {}

/**
 * emberlog's document kind: `inObject(n)` is n small edits on a 10 KB text (a 5-character
 * insert, then its delete, so the text stays 10 KB), each through the host's command path.
 */
export class EmberlogDocumentPeer extends actorHostClass([{ entity: Document }]) {
  async inObject(n: number): Promise<number> {
    const core: ActorCore = this.core
    if (core.currentVersion === 0) {
      const created = this.commit({ command: { type: "Create", title: "bench", content: "lorem ipsum ".repeat(853) } })
      if (!created.ok) throw new Error(created.error.message)
    }
    const ms = await timeInObject(n, (i) => {
      const at = (Math.floor(i / 2) * 37) % 10_000
      const op = i % 2 === 0 ? { op: "insert", at, text: "edit " } : { op: "delete", at, length: 5 }
      const reply = this.commit({ command: { type: "Edit", baseVersion: core.currentVersion, ops: [op] } })
      if (!reply.ok) throw new Error(reply.error.message)
    })
    markDelivered(core, this.ctx.storage.sql)
    return ms
  }
}

/** The floor: one INSERT per call, and the new row's seq sent to every socket. */
export class BarePeer extends DurableObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never)
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, data TEXT NOT NULL)")
  }

  increment(): { seq: number } {
    const seq = this.ctx.storage.sql
      .exec("INSERT INTO log (data) VALUES (?) RETURNING seq", JSON.stringify(INCREMENT))
      .one().seq as number
    const frame = JSON.stringify({ seq })
    for (const socket of this.ctx.getWebSockets()) socket.send(frame)
    return { seq }
  }

  inObject(n: number): Promise<number> {
    return timeInObject(n, () => this.increment())
  }

  seed(n: number): number {
    for (let i = 0; i < n; i++)
      this.ctx.storage.sql.exec("INSERT INTO log (data) VALUES (?)", JSON.stringify(INCREMENT))
    return this.ctx.storage.sql.exec("SELECT max(seq) AS seq FROM log").one().seq as number
  }

  abort(): void {
    this.ctx.abort("benchmark: evict")
  }

  override async fetch(): Promise<Response> {
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server)
    return new Response(null, { status: 101, webSocket: client })
  }
}

/** Cloudflare Agents SDK: state in `setState`, which persists it and broadcasts it to every connection. */
export class AgentPeer extends Agent<Cloudflare.Env, { value: number }> {
  override initialState = { value: 0 }

  increment(): { value: number } {
    this.setState({ value: this.state.value + 1 })
    return this.state
  }

  inObject(n: number): Promise<number> {
    return timeInObject(n, () => this.increment())
  }

  seed(n: number): number {
    for (let i = 0; i < n; i++) this.setState({ value: this.state.value + 1 })
    return this.state.value
  }

  abort(): void {
    this.ctx.abort("benchmark: evict")
  }
}

/** PartyServer: the value in one SQLite row, broadcast to every connection on change. */
export class PartyPeer extends Server {
  static override options = { hibernate: true }
  private ready = false

  private table() {
    if (!this.ready) {
      this.ctx.storage.sql.exec(
        "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)",
      )
      this.ctx.storage.sql.exec("INSERT OR IGNORE INTO counter (id, value) VALUES (1, 0)")
      this.ready = true
    }
    return this.ctx.storage.sql
  }

  increment(): { value: number } {
    const value = this.table().exec("UPDATE counter SET value = value + 1 WHERE id = 1 RETURNING value").one()
      .value as number
    this.broadcast(JSON.stringify({ value }))
    return { value }
  }

  inObject(n: number): Promise<number> {
    return timeInObject(n, () => this.increment())
  }

  seed(n: number): number {
    const sql = this.table()
    for (let i = 0; i < n; i++) sql.exec("UPDATE counter SET value = value + 1 WHERE id = 1")
    return sql.exec("SELECT value FROM counter").one().value as number
  }

  abort(): void {
    this.ctx.abort("benchmark: evict")
  }
}

/**
 * `@Persist value = 0`, applied by hand: the bench runs inside workerd through Vite, whose
 * transform leaves decorator syntax as it is (and V8 has none). This is what the decorator
 * syntax does for a field: call `Persist` with the field's context, then run the initializers
 * it added on each instance once the field holds its initial value.
 */
const persistValue: Array<(this: unknown) => void> = []
Persist(undefined, {
  kind: "field",
  name: "value",
  static: false,
  private: false,
  metadata: {},
  access: { has: (o: object) => "value" in o, get: (o: any) => o.value, set: (o: any, v: unknown) => (o.value = v) },
  addInitializer: (initialize: (this: unknown) => void) => void persistValue.push(initialize),
} as unknown as ClassFieldDecoratorContext<ActorsPeer, number>)

/**
 * Cloudflare's actor library (`@cloudflare/actors`): the value in a `@Persist` property,
 * which the library writes to its `_actor_persist` table on every assignment, and sent
 * to every socket of its `sockets` helper.
 */
export class ActorsPeer extends Actor<Cloudflare.Env> {
  declare value: number

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    this.value = 0
    for (const initialize of persistValue) initialize.call(this)
  }

  increment(): { value: number } {
    this.value = this.value + 1
    this.sockets.message(JSON.stringify({ value: this.value }))
    return { value: this.value }
  }

  /** n increments, then a check that the library really wrote the last value to its table. */
  async inObject(n: number): Promise<number> {
    const ms = await timeInObject(n, () => this.increment())
    const [row] = this.sql<{ value: string }>`SELECT value FROM _actor_persist WHERE property = 'value'`
    if (row === undefined || JSON.parse(row.value) !== this.value) throw new Error("@Persist did not persist")
    return ms
  }

  async seed(n: number): Promise<number> {
    for (let i = 0; i < n; i++) this.value = this.value + 1
    await new Promise((resolve) => setTimeout(resolve, 0))
    return this.value
  }

  abort(): void {
    this.ctx.abort("benchmark: evict")
  }

  /** Sockets are opt-in in the library. */
  protected override shouldUpgradeSocket(): boolean {
    return true
  }

  /** The library upgrades requests to its `/ws` path. */
  override async fetch(request: Request): Promise<Response> {
    return super.fetch(new Request(new URL("/ws", request.url), request))
  }
}

export interface Peer {
  increment(): Promise<{ value?: number; seq?: number; version?: number }>
  seed(n: number): Promise<number>
  abort(): Promise<void>
  inObject(n: number, keyed?: boolean): Promise<number>
  fetch(request: Request): Promise<Response>
}

/** A peer's object name: emberlog's are actors (tenant/kind/id, as the one actor class reads them). */
export const peerName = (impl: string, name: string) =>
  impl === "emberlog-document"
    ? actorName(DEV_TENANT, "document", name)
    : impl.startsWith("emberlog")
      ? actorName(DEV_TENANT, "counter", name)
      : name

export const PEER_BINDINGS = {
  emberlog: "EMBERLOG_PEER",
  bare: "BARE_PEER",
  agent: "AGENT_PEER",
  party: "PARTY_PEER",
  actors: "ACTORS_PEER",
  "emberlog-no-topics": "EMBERLOG_NO_TOPICS_PEER",
} as const

/** Peers measured only inside the object (bench/inobject.bench.test.ts), not in the peer rows. */
export const IN_OBJECT_BINDINGS = { ...PEER_BINDINGS, "emberlog-document": "EMBERLOG_DOCUMENT_PEER" } as const

/** /peer/{impl}/{name}/{increment|seed|abort|ws}: the benchmark driver's entry to each peer; /peer/noop is the HTTP hop alone. */
export const handlePeer = async (request: Request, env: Record<string, DurableObjectNamespace>): Promise<Response> => {
  const [, , impl, name, action] = new URL(request.url).pathname.split("/")
  if (impl === "noop") return Response.json({})
  const binding = PEER_BINDINGS[impl as keyof typeof PEER_BINDINGS]
  if (binding === undefined || !name) return new Response("unknown peer", { status: 404 })
  const peer = env[binding]!.getByName(peerName(impl!, name)) as unknown as Peer
  switch (action) {
    case "increment":
      return Response.json(await peer.increment())
    case "seed":
      return Response.json({ head: await peer.seed(Number(new URL(request.url).searchParams.get("n") ?? "0")) })
    case "abort":
      await peer.abort().catch(() => undefined)
      return Response.json({ aborted: true })
    case "ws":
      return peer.fetch(request)
    default:
      return new Response("unknown action", { status: 404 })
  }
}
