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
import type { Effect } from "effect"
import { it } from "vitest"
import { exceedsDepth } from "../src/actors/limits.js"
import type { EventMeta, EventStoreShape } from "../src/core/event-store.js"
import { canonicalJson, linkEvent, sha256 } from "../src/core/hash-chain.js"
import { directBody } from "../src/core/sync-effect.js"
import { Counter } from "../src/kinds/counter/entity.js"
import { IN_OBJECT_BINDINGS, PEER_BINDINGS, markDelivered, peerName, type Peer } from "./peers.js"

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
      // The core's own members, as its command path calls them (private in TypeScript, there at run time).
      const core = instance.core as any
      const store: EventStoreShape = core.store
      /** What the command path's `runHere` does with a store operation: call its body where it stands. */
      const here = <A>(effect: Effect.Effect<A, unknown, unknown>): A => {
        const body = directBody(effect)
        if (body === undefined) throw new Error("the store operation has no direct body")
        return body()
      }
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
      markDelivered(core, state.storage.sql)
      // From here on the object's log is written behind its core's back: the object is thrown away after.
      stage(
        "transaction",
        "SQLite `transactionSync` around nothing (the store's `transaction`)",
        timeLoop(n, () => store.transaction(() => 1)),
      )
      stage(
        "decode",
        "depth check + decode against the command schema",
        timeLoop(n, () => exceedsDepth(INCREMENT) || Counter.decodeCommand(INCREMENT)),
      )
      const decoded = Counter.decodeCommand(INCREMENT)
      if (!decoded.ok) throw new Error("decode failed")
      const request = { command: INCREMENT }
      stage(
        "decide",
        "decide, read as the Exit it answers (no fiber), with its Caller",
        timeLoop(n, () => core.decideCommand(request, decoded.command)),
      )
      const counterState = core.currentState as { value: number }
      stage(
        "meta",
        "meta: clock, a random command id, canonical meta JSON",
        timeLoop(n, () => {
          const now = core.clock.currentTimeMillisUnsafe()
          const commandId = here(core.ids.next)
          canonicalJson({ at: now, causationId: null, commandId, correlationId: commandId, principal: "anonymous" })
        }),
      )
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
      const stateJson = JSON.stringify(Counter.encodeState(counterState))
      stage(
        "fits",
        "size checks before writing (row, state, reply bounds)",
        timeLoop(n, () => core.checkFits([linked], metaJson, stateJson)),
      )
      const base = core.currentVersion + 1_000_000
      stage(
        "insert",
        "event INSERT (`store.append`: the row, its primary key and its time index)",
        timeLoop(n, (i) => here(store.append([{ ...linked, seq: base + i }]))),
      )
      const followed = new Map([["counter", 0]])
      stage(
        "route",
        "route: the event's topics, each already followed (the log is the outbox: no write)",
        timeLoop(n, () => {
          for (const topic of Counter.topics(event)) if (!followed.has(topic)) throw new Error("not followed")
        }),
      )
      const snapshotEvery = Counter.snapshotEvery
      stage(
        "snapshot",
        `snapshot, amortized over ${snapshotEvery} commands (canonical JSON, SHA-256, INSERT, prune of old keys)`,
        timeLoop(n, (i) => {
          const snapshotJson = canonicalJson(Counter.encodeState(counterState))
          here(
            store.saveSnapshot({
              seq: base + i,
              stateVersion: Counter.stateVersion,
              stateJson: snapshotJson,
              headHash: hash,
              stateHash: sha256(snapshotJson),
            }),
          )
          here(store.pruneCommands(meta.at - 24 * 60 * 60 * 1000, 2 * snapshotEvery))
        }) / snapshotEvery,
      )
      stage(
        "idempotency",
        "with an Idempotency-Key only: request hash + the key's one INSERT (no read first)",
        timeLoop(n, (i) => {
          const requestHash = sha256(canonicalJson(INCREMENT))
          here(store.saveCommand(`profile-${i}`, { requestHash, version: base + i, firstSeq: base + i, at: meta.at }))
        }),
      )
      return us
    })
    if (round < 0) continue
    const covered = ["transaction", "decode", "decide", "meta", "hash", "state", "fits", "insert", "route", "snapshot"]
    const core = stages.find((s) => s.stage === "core")!.us
    const sum = stages.filter((s) => covered.includes(s.stage)).reduce((total, s) => total + s.us, 0)
    for (const { stage, label, us } of [
      ...stages,
      {
        stage: "rest",
        label: "`ActorCore.command` less the stages timed alone (transaction to snapshot): the rest, an upper bound",
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
