// Runs the benchmarks inside workerd (bench/vitest.config.ts) and writes bench/RESULTS.md
// with the median of every measurement. Usage: npm run bench
import { spawnSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import os from "node:os"

const started = new Date()
const run = spawnSync("vitest", ["run", "--config", "bench/vitest.config.ts"], { encoding: "utf8", shell: false, maxBuffer: 64 * 1024 * 1024 })
const output = `${run.stdout}\n${run.stderr}`
if (run.status !== 0) {
  process.stderr.write(output)
  process.exit(run.status ?? 1)
}
const rows = [...output.matchAll(/BENCH (\{.*\})/g)].map((m) => JSON.parse(m[1]))
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const med = (name, field, filter = () => true) => median(rows.filter((r) => r.name === name && filter(r)).map((r) => r[field]))
const rounds = (name) => rows.filter((r) => r.name === name).length
const fmt = (n, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
const version = (pkg) => JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url))).version
const verdict = (ok) => (ok ? "met" : "**missed**")

const ratio = med("throughput", "ratio")
const recovery = [10_000, 100_000].map((events) => ({
  events,
  withSnapshots: med("recovery", "withSnapshotsMs", (r) => r.events === events),
  without: med("recovery", "withoutSnapshotsMs", (r) => r.events === events),
  replay: med("recovery", "replayEventsPerSec", (r) => r.events === events),
  floor: med("recovery", "readFloorEventsPerSec", (r) => r.events === events),
  tail: med("recovery", "tailEvents", (r) => r.events === events),
}))
const replay = recovery[1].replay
const fanout = [100, 1000].map((subscribers) => {
  const of = (field) => med("fanout", field, (r) => r.subscribers === subscribers)
  return {
    subscribers,
    emberP50: of("emberP50Ms"),
    emberP99: of("emberP99Ms"),
    bareP50: of("bareP50Ms"),
    bareP99: of("bareP99Ms"),
    ember: of("emberEventsPerSec"),
    bare: of("bareEventsPerSec"),
  }
})

const table = `# Benchmark results

Measured ${started.toISOString().slice(0, 10)} inside workerd (\`@cloudflare/vitest-plugin\`, local
SQLite), every measurement side by side in one run and repeated; each figure is the
median of its rounds. Timings inside workerd come from \`performance.now()\`, which only
advances across I/O in production but does advance locally.

Reproduce: \`npm run bench\` (runs \`bench/vitest.config.ts\`, then rewrites this file).

Machine: ${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.cpus().length} cores, ${fmt(os.totalmem() / 2 ** 30)} GiB;
Node ${process.version}; wrangler ${version("wrangler")}, @cloudflare/vitest-plugin ${version("@cloudflare/vitest-plugin")}, effect ${version("effect")}.

## Commands through an actor vs a bare Durable Object (${rounds("throughput")} rounds)

Sequential DO RPCs from the test worker, alternating batches of 100 so drift hits both
alike: emberlog \`counter.command(Increment)\` (decode, decide, hash chain, append,
snapshot when due, reply with events and state) against a DO that inserts one row.

| | commands/s | time ratio to bare | target | |
|---|---:|---:|---:|---|
| bare DO (insert one row) | ${fmt(med("throughput", "bareOpsPerSec"))} | 1.00× | | |
| emberlog counter | ${fmt(med("throughput", "emberlogOpsPerSec"))} | ${fmt(ratio, 2)}× | ≤ 1.25× | ${verdict(ratio <= 1.25)} |

## Recovery and replay (${rounds("recovery") / 2} rounds each)

Recovery is what the constructor runs: a fresh Effect runtime, then the latest snapshot
plus the tail. "With snapshots" is the worst case: ${fmt(recovery[0].tail)} events after the last
snapshot (snapshotEvery = 500 for the counter).

| history | with snapshots | without snapshots | replay rate | read-only floor (same rows) |
|---:|---:|---:|---:|---:|
${recovery.map((r) => `| ${fmt(r.events)} events | ${fmt(r.withSnapshots, 1)} ms | ${fmt(r.without, 1)} ms | ${fmt(r.replay)} events/s | ${fmt(r.floor)} rows/s |`).join("\n")}

| target | result | |
|---|---:|---|
| recovery with snapshots < 50 ms at any history length | ${fmt(Math.max(...recovery.map((r) => r.withSnapshots)), 1)} ms | ${verdict(Math.max(...recovery.map((r) => r.withSnapshots)) < 50)} |
| replay ≥ 500k events/s | ${fmt(replay)} events/s | ${verdict(replay >= 500_000)} |

The floor column reads the same three columns and parses each row's JSON with nothing
else; replay runs at ${fmt((replay / recovery[1].floor) * 100)}% of it. On this machine SQLite row iteration plus
\`JSON.parse\` alone is what bounds replay; a fold cannot beat the floor.

## Fan-out to WebSocket subscribers (${rounds("fanout") / 2} rounds each)

One counter actor with N hibernatable WebSocket subscribers against a bare Durable Object
that only loops \`ws.send\` over N sockets (sending a frame of the same size as emberlog's
event frame), in the same run. Latency: from issuing the
command (or the bare broadcast) until every subscriber has the event (ms timer
resolution; 60 samples a round). Rate: a burst of 100 sequential commands until every
subscriber has all of them. Receiving is done by the test isolate for both sides alike.

| subscribers | emberlog p50 / p99 | bare p50 / p99 | emberlog events/s | bare events/s | rate ratio | target | |
|---:|---:|---:|---:|---:|---:|---:|---|
${fanout.map((f) => `| ${fmt(f.subscribers)} | ${fmt(f.emberP50, 1)} / ${fmt(f.emberP99, 1)} ms | ${fmt(f.bareP50, 1)} / ${fmt(f.bareP99, 1)} ms | ${fmt(f.ember, 1)} | ${fmt(f.bare, 1)} | ${fmt(f.bare / f.ember, 2)}× | ≤ 1.5× | ${verdict(f.bare / f.ember <= 1.5)} |`).join("\n")}

## Choosing the snapshot interval (${rounds("interval")} rounds)

| measurement | median |
|---|---:|
| document replay, 100 KB text, one small edit per event | ${fmt(med("interval", "documentEventsPerSec"))} events/s |
| writing one snapshot of that document (${fmt(med("interval", "snapshotKb"))} KB JSON) | ${fmt(med("interval", "snapshotWriteMs"), 1)} ms |
| counter replay | ${fmt(replay)} events/s |

An interval N bounds recovery at (N − 1) / replay rate and costs one snapshot write per N
commands. The counter uses N = 500: at most ~${fmt((499 / replay) * 1000, 1)} ms of tail. The document uses
N = 200: a ${fmt(med("interval", "snapshotKb"))} KB document's tail is at most ~${fmt((199 / med("interval", "documentEventsPerSec")) * 1000, 1)} ms (about five times that
at the 500 K-character cap), and its snapshot adds ~${fmt((med("interval", "snapshotWriteMs") / 200) * 1000)} µs per command amortized.
`
writeFileSync(new URL("./RESULTS.md", import.meta.url), table)
process.stdout.write(table)
