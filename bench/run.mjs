// Runs the benchmarks inside workerd (bench/vitest.config.ts), then the peer benchmark
// from Node (bench/peers.mjs), and writes bench/RESULTS.md with the median of every
// measurement. Usage: npm run bench   (PEERS=0 skips the peer run)
//
// BENCH_ONLY=inobject,profile,hot,hot-http (any of them) runs only those sections of the
// busy-actor benchmark (bench/inobject.bench.test.ts; hot-http: bench/peers.mjs with
// PEER_ONLY=hot) and prints their tables without rewriting RESULTS.md; BENCH_ROUNDS=N
// (and PEER_ROUNDS=N for hot-http) sets their rounds. For development on a busy machine:
//   BENCH_ONLY=inobject,hot BENCH_ROUNDS=1 npm run bench
// BENCH_ROWS=file saves such a run's measurements; BENCH_ONLY=… BENCH_FROM=file prints its tables
// again from them without measuring (BENCH_FROM alone renders, and writes, the whole file from
// a complete run's BENCH lines).
import { spawnSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import os from "node:os"

const started = new Date()
const spawn = (command, args, env = {}) =>
  spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } })
const mustSucceed = (result) => {
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout}\n${result.stderr}`)
    process.exit(result.status ?? 1)
  }
  return result
}

/** The busy-actor sections, by the name BENCH_ONLY takes: the workerd tests' names, or the HTTP run. */
const ONLY_SECTIONS = {
  inobject: "in-object: 10,000",
  profile: "in-object: stage profile",
  hot: "hot actor",
  "hot-http": undefined,
}
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",").map((name) => name.trim()) : undefined
for (const name of only ?? [])
  if (!(name in ONLY_SECTIONS)) {
    process.stderr.write(`BENCH_ONLY: unknown section ${name} (known: ${Object.keys(ONLY_SECTIONS).join(", ")})\n`)
    process.exit(2)
  }

let output = ""
let peerRun
if (process.env.BENCH_FROM) {
  // Renders the busy-actor sections again from rows an earlier BENCH_ONLY run saved (BENCH_ROWS).
  output = readFileSync(process.env.BENCH_FROM, "utf8")
  if (output.includes('"name":"peer-latency"')) peerRun = { stdout: "" }
} else if (only !== undefined) {
  const tests = only.map((name) => ONLY_SECTIONS[name]).filter((test) => test !== undefined)
  if (tests.length > 0) {
    const args = ["run", "--config", "bench/peers.vitest.config.ts", "bench/inobject.bench.test.ts"]
    output += mustSucceed(spawn("vitest", [...args, "-t", `^(${tests.join("|")})`])).stdout
  }
  if (only.includes("hot-http"))
    output += mustSucceed(spawn(process.execPath, ["bench/peers.mjs"], { PEER_ONLY: "hot" })).stdout
} else {
  const run = mustSucceed(spawn("vitest", ["run", "--config", "bench/vitest.config.ts"]))
  output = `${run.stdout}\n${run.stderr}`
  if (process.env.PEERS !== "0") {
    output += `\n${mustSucceed(spawn("vitest", ["run", "--config", "bench/peers.vitest.config.ts"])).stdout}`
    peerRun = mustSucceed(spawn(process.execPath, ["bench/peers.mjs"]))
    output += `\n${peerRun.stdout}`
  }
}
const rows = [...output.matchAll(/BENCH (\{.*\})/g)].map((m) => JSON.parse(m[1]))
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
const med = (name, field, filter = () => true) =>
  median(rows.filter((r) => r.name === name && filter(r)).map((r) => r[field]))
const rounds = (name) => rows.filter((r) => r.name === name).length
const fmt = (n, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
const version = (pkg) =>
  JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url))).version
const verdict = (ok) => (ok ? "met" : "**missed**")

// Issue 13, section 1: what binds one busy actor (bench/inobject.bench.test.ts, bench/peers.mjs's hotHttp).
const present = (name, impl) => rows.some((r) => r.name === name && r.impl === impl)
const roundsOf = (name) => new Set(rows.filter((r) => r.name === name).map((r) => r.round)).size
const IN_OBJECT_NAMES = {
  bare: "bare DO: one INSERT (the floor)",
  emberlog: "emberlog counter, no Idempotency-Key",
  "emberlog-keyed": "emberlog counter, a fresh Idempotency-Key each",
  "emberlog-no-topics": "emberlog counter, a kind with no topics (no outbox row)",
  agent: `Agents SDK \`setState\` (agents ${version("agents")})`,
  party: `PartyServer: one row UPDATE + broadcast (partyserver ${version("partyserver")})`,
  actors: `@cloudflare/actors: a \`@Persist\` property (${version("@cloudflare/actors")})`,
  "emberlog-document": "emberlog document: one small edit on a 10 KB text",
}
const HOT_NAMES = {
  bare: "bare DO (one INSERT per call)",
  emberlog: "emberlog counter",
  "emberlog-no-topics": "emberlog counter, no topics",
  agent: "Agents SDK agent (`setState`)",
  party: "PartyServer server",
  actors: "@cloudflare/actors actor",
}
const inObjectUs = (impl) => med("inobject", "usPerCommand", (r) => r.impl === impl)
const inObjectRows = Object.entries(IN_OBJECT_NAMES)
  .filter(([impl]) => present("inobject", impl))
  .map(
    ([impl, label]) =>
      `| ${label} | ${fmt(inObjectUs(impl), 1)} µs | ${fmt(
        med("inobject", "ratioToBare", (r) => r.impl === impl),
        1,
      )}× |`,
  )
const stageRows = rows
  .filter((r) => r.name === "profile" && r.round === 0)
  .map((r) => r.stage)
  .map((stage) => {
    const us = med("profile", "usPerCommand", (r) => r.stage === stage)
    const label = rows.find((r) => r.name === "profile" && r.stage === stage).label
    return `| ${label} | ${fmt(us, 2)} µs |`
  })
const hotRows = (name) =>
  Object.entries(HOT_NAMES)
    .filter(([impl]) => present(name, impl))
    .map(([impl, label]) => {
      const of = (field) => med(name, field, (r) => r.impl === impl)
      const toBare = median(
        [...new Set(rows.filter((r) => r.name === name).map((r) => r.round))].map((round) => {
          const at = (i) => rows.find((r) => r.name === name && r.round === round && r.impl === i).opsPerSec
          return at(impl) / at("bare")
        }),
      )
      return {
        impl,
        line: `| ${label} | ${fmt(of("opsPerSec"))} | ${fmt(toBare, 2)}× | ${fmt(of("p50Ms"), 1)} / ${fmt(of("p99Ms"), 1)} ms |`,
        toBare,
      }
    })
const hotRpc = hotRows("hot-rpc")
const hotHttp = hotRows("hot-http")
const targetRows = []
for (const [impl, what] of [
  ["emberlog", "no key"],
  ["emberlog-keyed", "with an Idempotency-Key"],
])
  if (present("inobject", impl)) {
    const us = inObjectUs(impl)
    targetRows.push(`| in-object ≤ 30 µs per counter command (${what}) | ${fmt(us, 1)} µs | ${verdict(us <= 30)} |`)
  }
for (const [rowsOf, over] of [
  [hotRpc, "64 in flight over DO RPC"],
  [hotHttp, "16 HTTP clients over `wrangler dev`"],
]) {
  const ember = rowsOf.find((r) => r.impl === "emberlog")
  if (ember !== undefined)
    targetRows.push(
      `| hot-actor throughput ≥ 0.6× the bare DO's (${over}) | ${fmt(ember.toBare, 2)}× | ${verdict(ember.toBare >= 0.6)} |`,
    )
}
const stageUs = (stage) => med("profile", "usPerCommand", (r) => r.stage === stage)
const bounds = []
if (present("inobject", "emberlog") && inObjectUs("emberlog") > 30 && rows.some((r) => r.name === "profile")) {
  const work = ["effect", "decode", "decide", "meta", "hash", "state", "fits", "insert", "outbox", "snapshot"]
  const largest = work
    .map((stage) => ({ stage, us: stageUs(stage) }))
    .sort((a, b) => b.us - a.us)
    .slice(0, 3)
    .map(
      ({ stage, us }) =>
        `${rows.find((r) => r.name === "profile" && r.stage === stage).label.split(" (")[0]} ${fmt(us, 1)} µs`,
    )
  const floorUs = stageUs("insert") + stageUs("outbox") + stageUs("hash") + stageUs("transaction")
  bounds.push(
    `What bounds the in-object figure (the profile above, this run): \`ActorCore.command\` takes ${fmt(stageUs("core"), 1)} µs where the same work in plain code (one transaction, the same functions and SQL) takes ${fmt(stageUs("straight"), 1)} µs, so about ${fmt(stageUs("core") - stageUs("straight"), 1)} µs is orchestration (the Effect program, its generators and nested programs, the reply). Timed alone, the stages sum to ${fmt(
      work.reduce((sum, stage) => sum + stageUs(stage), 0),
      1,
    )} µs (largest: ${largest.join("; ")}): a lower bound, as a stage looping alone runs hotter than in sequence. The host adds ${fmt(stageUs("commit") - stageUs("core"), 1)} µs (alarm, subscribers) and an Idempotency-Key ${fmt(stageUs("idempotency"), 1)} µs more. What the guarantees cost at the least here (the event and outbox INSERTs, one hash link, one transaction, timed alone) is about ${fmt(floorUs, 1)} µs with no key (${fmt(floorUs - stageUs("outbox"), 1)} µs without the outbox row, the per-topic cursor of issue 13 §2) and ${fmt(floorUs + stageUs("idempotency"), 1)} µs with a key's row: ${floorUs + stageUs("idempotency") <= 30 ? "both within" : floorUs <= 30 ? "the keyed target is out of reach without a cheaper key row; the unkeyed one is within" : "neither within"} 30 µs at this machine's speed.`,
  )
}
if (hotRpc.length > 0 && present("inobject", "bare")) {
  const bareHot = rows.filter((r) => r.name === "hot-rpc" && r.impl === "bare").map((r) => r.opsPerSec)
  bounds.push(
    `What bounds the hot actor here: the dispatch of each call, for every peer alike. The bare DO takes ${fmt(median(bareHot))} commands/s with 64 in flight, ${fmt(1e6 / median(bareHot))} µs a command, against ${fmt(inObjectUs("bare"), 1)} µs of work in the object; emberlog's ${fmt(inObjectUs("emberlog"), 0)} µs in the object is ${fmt((inObjectUs("emberlog") / (1e6 / median(bareHot))) * 100)}% of that, which is why the ratios sit near 1×. Where a call costs less to deliver than here, the in-object figure is the bound: at most ${fmt(1e6 / inObjectUs("emberlog"))} commands/s for one emberlog counter against ${fmt(1e6 / inObjectUs("bare"))} for the bare INSERT.`,
  )
}
const busyActor = `
## What binds a busy actor: in-object cost and a hot actor (issue 13)

Reproduce these sections alone: \`BENCH_ONLY=inobject,profile,hot,hot-http npm run bench\` (prints
the tables, leaves this file alone; \`BENCH_ROUNDS=N\` / \`PEER_ROUNDS=N\` set the rounds). The full
\`npm run bench\` measures them in the peer runs (bench/inobject.bench.test.ts, bench/peers.mjs).
${
  inObjectRows.length === 0
    ? ""
    : `
### In-object cost (${roundsOf("inobject")} rounds)

10,000 commands inside ONE Durable Object call, no RPC per command: each peer's \`inObject(n)\`
(bench/peers.ts) loops over its own \`increment\`, which for emberlog is the host's command path
(\`commit\`: decode, decide, hash chain, event + outbox rows, snapshot every 500th, idempotency row
when keyed, subscribers and alarm follow-ups), timed in the object (\`performance.now()\`, which
advances locally), plus one macrotask turn so queued work (a promise-based write) counts. Each
round measures every row on a fresh object after 100 untimed commands; the ratio is the median of
each round's own ratio to the bare INSERT.

| 10,000 commands in one call | per command | ratio to bare INSERT |
|---|---:|---:|
${inObjectRows.join("\n")}
`
}${
  stageRows.length === 0
    ? ""
    : `
### Where one emberlog counter command goes (${roundsOf("profile")} rounds)

Each stage of the command path timed alone, 10,000 times in one object, with the functions
\`src/\` uses (bench/inobject.bench.test.ts; nothing in \`src/\` is instrumented), on a fresh
counter each round. An "of which" row is part of the row above it; the last two rows set the
whole against its parts (the same work in plain code, and what the parts timed alone leave over).

| stage | per command |
|---|---:|
${stageRows.join("\n")}
`
}${
  hotRpc.length === 0 && hotHttp.length === 0
    ? ""
    : `
### A hot actor: one object, many commands in flight

${
  hotRpc.length === 0
    ? ""
    : `Over DO RPC from the test worker (${roundsOf("hot-rpc")} rounds): 64 callers at once, each sending 32
\`increment\`s in turn (2,048 commands per peer per round, peers rotating), per-call latency
from send to reply (the timer moves in whole milliseconds inside workerd). The ratio is the
median of each round's own ratio to the bare DO, so it need not equal the ratio of the medians.

| 64 in flight over RPC | commands/s | throughput ratio to bare | p50 / p99 |
|---|---:|---:|---:|
${hotRpc.map((r) => r.line).join("\n")}
`
}${
        hotHttp.length === 0
          ? ""
          : `
Over HTTP through \`wrangler dev\` (bench/peers.mjs, ${roundsOf("hot-http")} rounds): 16 Node clients at once, each
sending 50 commands in turn to one object (800 per peer per round), microsecond timer; the
ratio is again the median of the rounds' own ratios.

| 16 HTTP clients | commands/s | throughput ratio to bare | p50 / p99 |
|---|---:|---:|---:|
${hotHttp.map((r) => r.line).join("\n")}
`
      }`
}${
  targetRows.length === 0
    ? ""
    : `
| issue-13 target | result | |
|---|---:|---|
${targetRows.join("\n")}
${bounds.map((text) => `\n${text}\n`).join("")}`
}`
if (only !== undefined && process.env.BENCH_ROWS)
  writeFileSync(process.env.BENCH_ROWS, rows.map((row) => `BENCH ${JSON.stringify(row)}`).join("\n"))
if (only !== undefined) {
  process.stdout.write(
    `\n<!-- BENCH_ONLY=${only.join(",")} BENCH_ROUNDS=${process.env.BENCH_ROUNDS ?? ""} PEER_ROUNDS=${process.env.PEER_ROUNDS ?? ""}, ${started.toISOString()}, ${os.cpus().length} cores -->\n`,
  )
  process.stdout.write(busyActor)
  process.exit(0)
}

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

const PEER_NAMES = {
  bare: "bare DO (one INSERT per call)",
  emberlog: "emberlog counter",
  agent: `Agents SDK agent (\`setState\`, agents ${version("agents")})`,
  party: `PartyServer server (one row + broadcast, partyserver ${version("partyserver")})`,
  actors: `@cloudflare/actors actor (a \`@Persist\` property + broadcast, @cloudflare/actors ${version("@cloudflare/actors")})`,
}
const peerOf = (name, impl, field, extra = () => true) => med(name, field, (r) => r.impl === impl && extra(r))
const peerRows = Object.keys(PEER_NAMES).map((impl) => {
  const throughput = peerOf("peer-throughput", impl, "opsPerSec")
  const ratioToBare = peerOf("peer-throughput", impl, "ratioToBare")
  const p50 = peerOf("peer-latency", impl, "p50Ms")
  const p99 = peerOf("peer-latency", impl, "p99Ms")
  const fan50 = peerOf("peer-fanout", impl, "p50Ms")
  const fan99 = peerOf("peer-fanout", impl, "p99Ms")
  const cold = (events) => peerOf("peer-recovery", impl, "coldMs", (r) => r.events === events)
  const warm = (events) => peerOf("peer-recovery", impl, "warmMs", (r) => r.events === events)
  const memory = peerOf("peer-memory", impl, "kbPerActor")
  const toBare = (value, name, field) => `${fmt(value / peerOf(name, "bare", field), 2)}×`
  return `| ${PEER_NAMES[impl]} | ${fmt(throughput)} | ${fmt(ratioToBare, 2)}× | ${fmt(p50, 2)} / ${fmt(p99, 2)} ms (${toBare(p50, "peer-latency", "p50Ms")}) | ${fmt(fan50, 1)} / ${fmt(fan99, 1)} ms (${toBare(fan50, "peer-fanout", "p50Ms")}) | ${fmt(cold(10_000), 1)} / ${fmt(warm(10_000), 1)} ms | ${fmt(cold(100_000), 1)} / ${fmt(warm(100_000), 1)} ms | ${fmt(memory)} KB (${toBare(memory, "peer-memory", "kbPerActor")}) |`
})
const noTopics = `| emberlog counter, a kind with no topics (no outbox row, no deliveries) | ${fmt(peerOf("peer-throughput", "emberlog-no-topics", "opsPerSec"))} | ${fmt(peerOf("peer-throughput", "emberlog-no-topics", "ratioToBare"), 2)}× | — | — | — | — | — |`
peerRows.splice(2, 0, noTopics)
const hop = med("peer-latency", "p50Ms", (r) => r.impl === "noop")
const historySizes = [...new Set(rows.filter((r) => r.name === "peer-history").map((r) => r.events))].sort(
  (a, b) => a - b,
)
const historyOf = (impl, events, field) => med("peer-history", field, (r) => r.impl === impl && r.events === events)
const historyRows = historySizes.map(
  (events) =>
    `| ${fmt(events)} | ${fmt(historyOf("emberlog", events, "p50Ms"), 2)} / ${fmt(historyOf("emberlog", events, "p99Ms"), 2)} ms | ${fmt(historyOf("bare", events, "p50Ms"), 2)} / ${fmt(historyOf("bare", events, "p99Ms"), 2)} ms |`,
)
const emberHistoryP50 = historySizes.map((events) => historyOf("emberlog", events, "p50Ms"))
const historyFlat = emberHistoryP50.length > 0 && Math.max(...emberHistoryP50) / Math.min(...emberHistoryP50) <= 1.25

const table = `# Benchmark results

Measured ${started.toISOString().slice(0, 10)} inside workerd (\`@cloudflare/vitest-plugin\`, local
SQLite), every measurement side by side in one run and repeated; each figure is the
median of its rounds. Timings inside workerd come from \`performance.now()\`, which only
advances across I/O in production but does advance locally.

Reproduce: \`npm run bench\` (runs \`bench/vitest.config.ts\` inside workerd, then \`bench/peers.mjs\` from Node, then rewrites this file).

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
resolution; 60 samples a round). Rate: bursts of 100 sequential commands until every
subscriber has all of them, five a round alternating with the baseline's, the median kept. Receiving is done by the test isolate for both sides alike.

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
${
  peerRun === undefined
    ? ""
    : `
## Against peers: the same counter five ways

One run, side by side in the same local runtime (bench/peers.ts): emberlog's counter actor,
a bare Durable Object, a Cloudflare Agents SDK agent, a PartyServer server and a
\`@cloudflare/actors\` actor (Cloudflare's actor library), each taking
\`increment\` over DO RPC and broadcasting the change to hibernatable WebSocket subscribers.

- **commands/s** and the ratio: inside workerd over DO RPC, batches of 100 sequential
  calls rotating through the peers (${roundsOf("peer-throughput")} rounds; bench/peers.bench.test.ts).
  It repeats the first section's emberlog-vs-bare measurement in a separate run with six
  objects instead of two; the two ratios differ by this machine's run-to-run spread
  (1.2–1.35× across runs here).
- **p50 / p99 latency**: from a Node client over HTTP (bench/peers.mjs, microsecond timer,
  ${roundsOf("peer-latency")} rounds of 400 sequential calls). Every row includes the local HTTP hop through
  \`wrangler dev\`'s proxy: ${fmt(hop, 2)} ms at p50 for a route that touches no object.
- **fan-out**: 1,000 WebSocket subscribers (Node clients); time from sending a command until
  every subscriber has seen its effect, ${roundsOf("peer-fanout")} rounds of 20.
- **recovery**: the first command after the object is evicted (\`ctx.abort()\`) against the
  next, warm one, after 10k and 100k commands of history.
- **memory per idle actor**: growth of workerd's resident memory for 1,000 objects that
  each took one command, a fresh runtime per peer (${roundsOf("peer-memory")} rounds).

| | commands/s | time ratio to bare | p50 / p99 latency (p50 ratio to bare) | fan-out 1,000: p50 / p99 (p50 ratio) | after eviction, 10k: cold / warm | 100k: cold / warm | memory per idle actor (ratio) |
|---|---:|---:|---:|---:|---:|---:|---:|
${peerRows.join("\n")}

Where emberlog is behind, and what it buys:

- **Commands** cost more than a bare insert or a state overwrite. Topics are a small part
  of it (compare the two emberlog rows: the outbox row and the deliveries to topic objects,
  which here share the runtime's two cores); the rest is the command path itself, ${fmt(inObjectUs("emberlog"), 0)} µs
  inside the object against ${fmt(inObjectUs("bare"), 1)} µs for one INSERT (in this run: see "What binds a busy
  actor" below, with the profile of where it goes). Each command is decoded
  against the entity's schema, decided, hash-chained (SHA-256 over canonical JSON),
  appended with its metadata, queued for topics in the same transaction and answered
  with its events and state; every 500th also writes a snapshot. The bare DO, the agent
  and the PartyServer server keep only the latest value: no history to audit or replay,
  no idempotency (a retried request applies twice), no tamper evidence. Over HTTP the
  difference is a small part of the request: without the ${fmt(hop, 2)} ms hop, emberlog's p50 is
  ${fmt((peerOf("peer-latency", "emberlog", "p50Ms") - hop) / (peerOf("peer-latency", "bare", "p50Ms") - hop), 2)}× the bare DO's.
- **Fan-out** sends each subscriber the event (seq, type, data, meta, hash) rather than a
  bare value, and a subscriber that reconnects resumes after its last seq with no gap
  and no repeat; the peers' subscribers get the current state and miss what happened
  while they were away.
- **Recovery** rebuilds state from the latest snapshot plus at most 499 events, so it
  does not grow with history; the peers load one row. Their history is gone, which is
  what makes their recovery free.
- **Memory per idle actor** includes each object's own SQLite database; emberlog's holds
  the log, snapshots, outbox and idempotency tables.

## Command latency does not grow with history

One emberlog counter and one bare DO, seeded in place to 1k, 10k, 100k and 1M events of
history (through the real command path for emberlog), then 300 sequential commands over
HTTP at each size (p50 / p99, including the ${fmt(hop, 2)} ms HTTP hop).

| history | emberlog p50 / p99 | bare DO p50 / p99 |
|---:|---:|---:|
${historyRows.join("\n")}

| target | result | |
|---|---:|---|
| emberlog p50 flat from the smallest to the largest history (within 1.25×) | ${fmt(Math.max(...emberHistoryP50) / Math.min(...emberHistoryP50), 2)}× | ${verdict(historyFlat)} |
`
}`
writeFileSync(new URL("./RESULTS.md", import.meta.url), table + busyActor)
process.stdout.write(table)
