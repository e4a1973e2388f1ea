/**
 * What binds one busy actor (issue 13, section 1), side by side in one run:
 *
 * - in-object: 10,000 commands inside ONE Durable Object call (each peer's `inObject(n)`,
 *   bench/peers.ts: n of its own `increment`s, no RPC per command), µs per command.
 * - stage profile: each stage of one emberlog counter command timed alone, 10,000 times in one
 *   object, with the same functions src/ calls (nothing in src/ is instrumented).
 * - hot actor: one object, 64 commands in flight at once from the test worker (64 callers,
 *   each awaiting its own RPCs in turn), commands/s and per-call p50/p99.
 *
 * Rounds rotate through the peers so drift hits all alike; bench/run.mjs takes the medians.
 * BENCH_ROUNDS (a binding set by bench/peers.vitest.config.ts) overrides the rounds.
 */
import { env, runInDurableObject as runInObject } from "cloudflare:test"
import { Clock, Context, Effect, Exit } from "effect"
import { it } from "vitest"
import type { ActorCore } from "../src/actors/actor-core.js"
import { actorRuntime } from "../src/actors/durable-actor.js"
import { MAX_ROW_BYTES, exceedsDepth, overBytes, serializedBound } from "../src/actors/limits.js"
import { EventStore, type EventMeta } from "../src/core/event-store.js"
import { canonicalJson, linkEvent, sha256 } from "../src/core/hash-chain.js"
import { Caller } from "../src/domain/caller.js"
import { utf8Length } from "../src/domain/json-size.js"
import { Ids } from "../src/infra/ids.js"
import { Counter } from "../src/kinds/counter/entity.js"
import { IN_OBJECT_BINDINGS, PEER_BINDINGS, peerName, type Peer } from "./peers.js"

const bindings = env as unknown as Record<string, DurableObjectNamespace> & { BENCH_ROUNDS?: string }
const ROUNDS = Number(bindings.BENCH_ROUNDS || 5)
const IN_OBJECT_COMMANDS = 10_000
const HOT_IN_FLIGHT = 64
const HOT_PER_CALLER = 32

const report = (name: string, values: Record<string, unknown>) =>
  console.log(`BENCH ${JSON.stringify({ name, ...values })}`)
const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
const stub = (impl: keyof typeof IN_OBJECT_BINDINGS, name: string) =>
  bindings[IN_OBJECT_BINDINGS[impl]]!.getByName(peerName(impl, name)) as unknown as Peer
/** Rotates the order each round, so no peer always runs first (or last) in a round. */
const rotated = <T>(items: ReadonlyArray<T>, round: number) => items.map((_, i) => items[(i + round) % items.length]!)

/** Each in-object row: the object it runs in and the call that loops there. */
const IN_OBJECT = {
  bare: { impl: "bare", keyed: false },
  emberlog: { impl: "emberlog", keyed: false },
  "emberlog-keyed": { impl: "emberlog", keyed: true },
  "emberlog-no-topics": { impl: "emberlog-no-topics", keyed: false },
  agent: { impl: "agent", keyed: false },
  party: { impl: "party", keyed: false },
  actors: { impl: "actors", keyed: false },
  "emberlog-document": { impl: "emberlog-document", keyed: false },
} as const satisfies Record<string, { impl: keyof typeof IN_OBJECT_BINDINGS; keyed: boolean }>

it("in-object: 10,000 commands inside one Durable Object call", async () => {
  const rows = Object.entries(IN_OBJECT)
  // JIT-warm every path on a throwaway object first.
  for (const [row, { impl, keyed }] of rows) await stub(impl, `inobject-warmup-${row}`).inObject(2000, keyed)
  for (let round = 0; round < ROUNDS; round++) {
    const us: Record<string, number> = {}
    for (const [row, { impl, keyed }] of rotated(rows, round)) {
      const peer = stub(impl, `inobject-${row}-${round}`)
      await peer.inObject(100, keyed) // the object is up and its tables exist: start-up is not counted
      us[row] = ((await peer.inObject(IN_OBJECT_COMMANDS, keyed)) / IN_OBJECT_COMMANDS) * 1000
    }
    for (const [row] of rows)
      report("inobject", {
        round,
        impl: row,
        commands: IN_OBJECT_COMMANDS,
        usPerCommand: us[row],
        ratioToBare: us[row]! / us.bare!,
      })
  }
})

// The plugin's generic signature is too deep for tsc here; these calls only need the untyped shape.
const runInDurableObject = runInObject as unknown as <R>(
  stub: DurableObjectStub,
  run: (instance: any, state: DurableObjectState) => R,
) => Promise<R>

const PROFILE_COMMANDS = 10_000
const INCREMENT = { type: "Increment", by: 1 } as const
const timeLoop = (n: number, step: (i: number) => unknown) => {
  const start = performance.now()
  for (let i = 0; i < n; i++) step(i)
  return ((performance.now() - start) / n) * 1000
}

it("in-object: stage profile of one emberlog counter command", async () => {
  for (let round = -1; round < ROUNDS; round++) {
    // Round -1 warms every path (JIT) and is not reported.
    const stages = await runInDurableObject(stub("emberlog", `profile-${round}`) as never, (instance, state) => {
      const core: ActorCore = instance.core
      const n = PROFILE_COMMANDS
      for (let i = 0; i < 100; i++) instance.commit({ command: INCREMENT }) // tables exist, paths warm
      const us: Array<{ stage: string; label: string; us: number }> = []
      const stage = (name: string, label: string, value: number) => us.push({ stage: name, label, us: value })
      stage(
        "commit",
        "whole command through the host (`commit`): the in-object figure",
        timeLoop(n, () => instance.commit({ command: INCREMENT })),
      )
      stage(
        "core",
        "of which `ActorCore.command` (no host follow-ups: alarm, subscribers)",
        timeLoop(n, () => core.command({ command: INCREMENT })),
      )
      state.storage.sql.exec("DELETE FROM outbox")
      // From here on the object's log is written behind its core's back: the object is thrown away after.
      const runtime = actorRuntime(state.storage)
      const run = <A>(program: Effect.Effect<A, unknown, EventStore | Ids>) => {
        const exit = runtime.runSyncExit(program)
        if (!Exit.isSuccess(exit)) throw new Error(String(exit.cause))
        return exit.value
      }
      // inTransaction (src/actors/actor-core.ts) around a program that does nothing.
      const empty = Effect.contextWith((services: Context.Context<EventStore | Ids>) =>
        Effect.succeed(
          Context.get(services, EventStore).transaction(() => Effect.runSyncExitWith(services)(Effect.succeed(1))),
        ),
      )
      stage(
        "effect",
        "Effect program start + its SQLite transaction, doing nothing",
        timeLoop(n, () => run(empty)),
      )
      stage(
        "transaction",
        "of which SQLite `transactionSync` alone",
        timeLoop(n, () => state.storage.transactionSync(() => 1)),
      )
      const decoded = Counter.decodeCommand(INCREMENT)
      if (!decoded.ok) throw new Error("decode failed")
      stage(
        "decode",
        "depth check + decode against the command schema",
        timeLoop(n, () => exceedsDepth(INCREMENT) || Counter.decodeCommand(INCREMENT)),
      )
      const caller = { principal: "anonymous", scopes: new Set<string>(), internal: false, actorId: "" }
      const counterState = core.currentState as { value: number }
      const decideUs = run(
        Effect.gen(function* () {
          const start = performance.now()
          for (let i = 0; i < n; i++)
            yield* Counter.decide(counterState, decoded.command).pipe(
              Effect.provideService(Caller, caller),
              Effect.catchIf(
                (error): error is never => false,
                () => Effect.succeed([]),
              ),
            )
          return ((performance.now() - start) / n) * 1000
        }),
      )
      stage("decide", "decide (yielded inside a running program, with its Caller and error mapping)", decideUs)
      const metaUs = run(
        Effect.gen(function* () {
          const start = performance.now()
          for (let i = 0; i < n; i++) {
            const now = yield* Clock.currentTimeMillis
            const commandId = yield* (yield* Ids).next
            const meta = { at: now, causationId: null, commandId, correlationId: commandId, principal: "anonymous" }
            canonicalJson(meta)
          }
          return ((performance.now() - start) / n) * 1000
        }),
      )
      stage("meta", "meta: clock, a random command id, canonical meta JSON", metaUs)
      const meta: EventMeta = {
        at: Date.now(),
        causationId: null,
        commandId: crypto.randomUUID(),
        correlationId: "c",
        principal: "anonymous",
      }
      const metaJson = canonicalJson(meta)
      const event = { type: "Incremented", by: 1, reason: null } as const
      let hash = "0".repeat(64)
      stage(
        "hash",
        "evolve + encode the event + hash chain link (canonical JSON, SHA-256)",
        timeLoop(n, (i) => {
          Counter.evolve(counterState, event)
          hash = linkEvent(hash, { seq: i + 1, ...Counter.encodeEvent(event), meta }, metaJson).hash
        }),
      )
      stage(
        "state",
        "encode the state + its JSON (the reply's state; the snapshot's when due)",
        timeLoop(n, () => JSON.stringify(Counter.encodeState(counterState))),
      )
      const linked = linkEvent(hash, { seq: 1, ...Counter.encodeEvent(event), meta }, metaJson)
      stage(
        "fits",
        "size checks before writing (row, state, reply bounds)",
        timeLoop(n, () => {
          const limit = MAX_ROW_BYTES - 1024 - utf8Length(metaJson)
          overBytes(linked.dataJson, limit)
          serializedBound(linked.dataJson) + serializedBound(metaJson) + serializedBound("{}")
        }),
      )
      const base = core.currentVersion + 1_000_000
      const store = (body: (s: Context.Service.Shape<typeof EventStore>, i: number) => Effect.Effect<void, unknown>) =>
        run(
          Effect.gen(function* () {
            const s = yield* EventStore
            const start = performance.now()
            for (let i = 0; i < n; i++) yield* body(s, i)
            return ((performance.now() - start) / n) * 1000
          }),
        )
      stage(
        "insert",
        "event INSERT (`store.append`: the row, its primary key and its time index)",
        store((s, i) => s.append([{ ...linked, seq: base + i }])),
      )
      stage(
        "outbox",
        "outbox INSERT (`store.enqueue`, the counter's one topic)",
        store((s, i) => s.enqueue(Counter.topics(event).map((topic) => ({ seq: base + i, topic })))),
      )
      const snapshotEvery = Counter.snapshotEvery
      stage(
        "snapshot",
        `snapshot, amortized over ${snapshotEvery} commands (canonical JSON, SHA-256, INSERT, prune of old keys)`,
        store((s, i) => {
          const stateJson = canonicalJson(Counter.encodeState(counterState))
          const snapshot = {
            seq: base + i,
            stateVersion: Counter.stateVersion,
            stateJson,
            headHash: hash,
            stateHash: sha256(stateJson),
          }
          return Effect.gen(function* () {
            yield* s.saveSnapshot(snapshot)
            yield* s.pruneCommands(meta.at - 24 * 60 * 60 * 1000)
          })
        }) / snapshotEvery,
      )
      stage(
        "idempotency",
        "with an Idempotency-Key only: request hash + lookup + INSERT of the key's row",
        store((s, i) =>
          Effect.gen(function* () {
            const key = `profile-${i}`
            const requestHash = sha256(canonicalJson(INCREMENT))
            yield* s.findCommand(key)
            yield* s.saveCommand(key, { requestHash, version: base + i, firstSeq: base + i, at: meta.at })
          }),
        ),
      )
      // The same work as one command, in plain code: what the orchestration around the stages costs.
      const sql = state.storage.sql
      let straightHash = hash
      stage(
        "straight",
        "the same stages in plain code, one `transactionSync` each (decide by `Effect.runSync`, SQL as the store issues it)",
        timeLoop(n, (i) =>
          state.storage.transactionSync(() => {
            if (exceedsDepth(INCREMENT)) throw new Error("too deep")
            const command = Counter.decodeCommand(INCREMENT)
            if (!command.ok) throw new Error("decode failed")
            const emitted = Effect.runSync(
              Counter.decide(counterState, command.command).pipe(Effect.provideService(Caller, caller)),
            )
            const commandId = crypto.randomUUID()
            const meta = {
              at: Date.now(),
              causationId: null,
              commandId,
              correlationId: commandId,
              principal: "anonymous",
            }
            const metaJson = canonicalJson(meta)
            let next = counterState
            for (const event of emitted) {
              next = Counter.evolve(next, event)
              const row = linkEvent(straightHash, { seq: base + n + i, ...Counter.encodeEvent(event), meta }, metaJson)
              straightHash = row.hash
              if (overBytes(row.dataJson, MAX_ROW_BYTES - 1024 - utf8Length(metaJson))) throw new Error("too large")
              sql.exec(
                "INSERT INTO events (seq, type, schema_version, data, meta, at, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row.seq,
                row.type,
                row.schemaVersion,
                row.dataJson,
                row.metaJson,
                meta.at,
                row.hash,
              )
              for (const topic of Counter.topics(event))
                sql.exec("INSERT OR IGNORE INTO outbox (topic, seq) VALUES (?, ?)", topic, row.seq)
            }
            return JSON.stringify(Counter.encodeState(next))
          }),
        ),
      )
      state.storage.sql.exec("DELETE FROM outbox")
      return us
    })
    if (round < 0) continue
    const covered = ["effect", "decode", "decide", "meta", "hash", "state", "fits", "insert", "outbox", "snapshot"]
    const core = stages.find((s) => s.stage === "core")!.us
    const sum = stages.filter((s) => covered.includes(s.stage)).reduce((total, s) => total + s.us, 0)
    for (const { stage, label, us } of [
      ...stages,
      {
        stage: "rest",
        label:
          "`ActorCore.command` less the stages timed alone (Effect start to snapshot): orchestration, an upper bound",
        us: core - sum,
      },
    ])
      report("profile", { round, stage, label, usPerCommand: us })
  }
})

it("hot actor: one object, 64 commands in flight at once over DO RPC", async () => {
  const peers = Object.keys(PEER_BINDINGS) as Array<keyof typeof PEER_BINDINGS>
  const total = HOT_IN_FLIGHT * HOT_PER_CALLER
  for (const impl of peers) {
    const warm = stub(impl, "hot-warmup")
    await Promise.all(Array.from({ length: HOT_IN_FLIGHT }, () => warm.increment()))
  }
  for (let round = 0; round < ROUNDS; round++) {
    const results: Record<string, { opsPerSec: number; p50Ms: number; p99Ms: number }> = {}
    for (const impl of rotated(peers, round)) {
      const peer = stub(impl, `hot-${round}`)
      for (let i = 0; i < 100; i++) await peer.increment() // warm the object, untimed
      const samples: Array<number> = []
      const start = performance.now()
      await Promise.all(
        Array.from({ length: HOT_IN_FLIGHT }, async () => {
          for (let i = 0; i < HOT_PER_CALLER; i++) {
            const sent = performance.now()
            await peer.increment()
            samples.push(performance.now() - sent)
          }
        }),
      )
      const ms = performance.now() - start
      results[impl] = { opsPerSec: (total / ms) * 1000, p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99) }
    }
    for (const impl of peers)
      report("hot-rpc", {
        round,
        impl,
        inFlight: HOT_IN_FLIGHT,
        commands: total,
        ...results[impl],
        throughputToBare: results[impl]!.opsPerSec / results.bare!.opsPerSec,
      })
  }
})
