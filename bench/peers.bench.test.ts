/**
 * Commands/s for the same counter every way of bench/peers.ts, measured inside workerd
 * over DO RPC with no HTTP hop: batches of 100 sequential calls, rotating through the
 * peers so drift hits all alike. Latency percentiles, fan-out, recovery, memory and
 * history length are measured from Node by bench/peers.mjs.
 */
import { env } from "cloudflare:test"
import { it } from "vitest"
import { PEER_BINDINGS, peerName, type Peer } from "./peers.js"

const ROUNDS = 5
const COMMANDS = 2000
const BATCH = 100

const report = (name: string, values: Record<string, unknown>) =>
  console.log(`BENCH ${JSON.stringify({ name, ...values })}`)
const peers = Object.keys(PEER_BINDINGS) as Array<keyof typeof PEER_BINDINGS>
const stub = (impl: keyof typeof PEER_BINDINGS, name: string) =>
  (env as unknown as Record<string, DurableObjectNamespace>)[PEER_BINDINGS[impl]]!.getByName(
    peerName(impl, name),
  ) as unknown as Peer

it("commands/s: emberlog, a bare DO, an Agents SDK agent, a PartyServer server and a @cloudflare/actors actor", async () => {
  for (const impl of peers) for (let i = 0; i < 1000; i++) await stub(impl, "warmup").increment()
  for (let round = 0; round < ROUNDS; round++) {
    const elapsed = Object.fromEntries(peers.map((impl) => [impl, 0]))
    for (const impl of peers) await stub(impl, `throughput-${round}`).increment()
    for (let batch = 0; batch < COMMANDS / BATCH; batch++) {
      for (const impl of peers) {
        const peer = stub(impl, `throughput-${round}`)
        const start = performance.now()
        for (let i = 0; i < BATCH; i++) await peer.increment()
        elapsed[impl] = elapsed[impl]! + performance.now() - start
      }
    }
    for (const impl of peers)
      report("peer-throughput", {
        round,
        impl,
        opsPerSec: (COMMANDS / elapsed[impl]!) * 1000,
        ratioToBare: elapsed[impl]! / elapsed.bare!,
      })
  }
})
