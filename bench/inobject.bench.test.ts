/**
 * What binds one busy actor (issue 13, section 1), side by side in one run:
 *
 * - in-object: 10,000 commands inside ONE Durable Object call (each peer's `inObject(n)`,
 *   bench/peers.ts: n of its own `increment`s, no RPC per command), µs per command.
 * - hot actor: one object, 64 commands in flight at once from the test worker (64 callers,
 *   each awaiting its own RPCs in turn), commands/s and per-call p50/p99.
 *
 * Rounds rotate through the peers so drift hits all alike; bench/run.mjs takes the medians.
 * BENCH_ROUNDS (a binding set by bench/peers.vitest.config.ts) overrides the rounds.
 */
import { env } from "cloudflare:test"
import { it } from "vitest"
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
