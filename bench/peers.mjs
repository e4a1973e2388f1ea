// emberlog against its peers, side by side in one run: the same counter as an emberlog
// actor, a bare Durable Object (one INSERT per call), a Cloudflare Agents SDK agent
// (setState), a PartyServer server (one row, broadcast) and a @cloudflare/actors actor
// (a @Persist property), all in the bench Worker
// (bench/peers.ts) served by wrangler's local runtime. A Node client drives them over
// HTTP and WebSockets and times with performance.now() (microseconds), so every peer pays
// the same HTTP hop. Prints `BENCH {...}` lines that bench/run.mjs turns into RESULTS.md.
// Usage: node bench/peers.mjs   (npm run bench runs it after the workerd benchmarks;
// PEER_ONLY=hot PEER_ROUNDS=1 node bench/peers.mjs runs only the hot actor over HTTP)
import { unstable_dev } from "wrangler"
import { workerdRssKb } from "./workerd-memory.mjs"

const PEERS = ["bare", "emberlog", "agent", "party", "actors"]
const ROUNDS = Number(process.env.PEER_ROUNDS ?? 5)
const LATENCY_CALLS = 400
const FANOUT_SUBSCRIBERS = 1000
const FANOUT_SAMPLES = 20
const IDLE_ACTORS = 1000
const HISTORY_SIZES = (process.env.PEER_HISTORY ?? "1000,10000,100000,1000000").split(",").map(Number)
const SEED_CHUNK = 50_000
const HOT_CLIENTS = 16
const HOT_PER_CLIENT = 50
// PEER_ONLY=hot runs only the hot-actor-over-HTTP measurement (bench/run.mjs's BENCH_ONLY=hot-http).
const ONLY = process.env.PEER_ONLY

const report = (name, values) => console.log(`BENCH ${JSON.stringify({ name, ...values })}`)
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

const start = async () => {
  const worker = await unstable_dev("bench/peers-worker.ts", {
    config: "bench/peers.wrangler.toml",
    ip: "127.0.0.1",
    persist: false,
    logLevel: "none",
    experimental: { disableExperimentalWarning: true },
  })
  return { worker, base: `http://${worker.address}:${worker.port}` }
}

const call = async (base, path) => {
  const response = await fetch(`${base}${path}`, { method: "POST" })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json()
}

const timed = async (run) => {
  const started = performance.now()
  const result = await run()
  return { ms: performance.now() - started, result }
}

/** Seeds `n` increments inside the object, in chunks (each an RPC that loops in the object). */
const seed = async (base, impl, name, n) => {
  for (let done = 0; done < n; done += SEED_CHUNK)
    await call(base, `/peer/${impl}/${name}/seed?n=${Math.min(SEED_CHUNK, n - done)}`)
}

/** Sequential commands, interleaved in batches of 50 across peers so drift hits all alike. */
const latency = async (base, round) => {
  // "noop" is the HTTP hop into the Worker without any object: what every other row also pays.
  const paths = {
    noop: "/peer/noop",
    ...Object.fromEntries(PEERS.map((impl) => [impl, `/peer/${impl}/latency-${round}/increment`])),
  }
  const samples = Object.fromEntries(Object.keys(paths).map((impl) => [impl, []]))
  for (const path of Object.values(paths)) for (let i = 0; i < 50; i++) await call(base, path) // warm
  for (let batch = 0; batch < LATENCY_CALLS / 50; batch++) {
    for (const [impl, path] of Object.entries(paths)) {
      for (let i = 0; i < 50; i++) samples[impl].push((await timed(() => call(base, path))).ms)
    }
  }
  for (const impl of Object.keys(paths)) {
    const total = samples[impl].reduce((a, b) => a + b, 0)
    report("peer-latency", {
      round,
      impl,
      opsPerSec: (samples[impl].length / total) * 1000,
      p50Ms: percentile(samples[impl], 50),
      p99Ms: percentile(samples[impl], 99),
    })
  }
}

/**
 * A hot actor over HTTP: one object per peer, HOT_CLIENTS clients each sending its commands
 * in turn (so HOT_CLIENTS in flight at once), peers rotating each round.
 */
const hotHttp = async (base, round) => {
  const peers = ["emberlog-no-topics", ...PEERS].map((_, i, all) => all[(i + round) % all.length])
  for (const impl of peers) {
    const path = `/peer/${impl}/hot-http-${round}/increment`
    for (let i = 0; i < 50; i++) await call(base, path) // warm
    const samples = []
    const { ms } = await timed(() =>
      Promise.all(
        Array.from({ length: HOT_CLIENTS }, async () => {
          for (let i = 0; i < HOT_PER_CLIENT; i++) samples.push((await timed(() => call(base, path))).ms)
        }),
      ),
    )
    report("hot-http", {
      round,
      impl,
      clients: HOT_CLIENTS,
      commands: samples.length,
      opsPerSec: (samples.length / ms) * 1000,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
    })
  }
}

/** What a subscriber's frame says the counter has reached (each peer has its own frame shape). */
const positionOf = (impl, data) => {
  const frame = JSON.parse(data)
  if (impl === "emberlog") return frame.type === "event" ? frame.event.seq : undefined
  if (impl === "agent") return frame.type === "cf_agent_state" ? frame.state?.value : undefined
  return impl === "bare" ? frame.seq : frame.value
}

const fanout = async (base, round) => {
  for (const impl of PEERS) {
    const name = `fanout-${round}`
    const reached = new Array(FANOUT_SUBSCRIBERS).fill(0)
    const waiters = new Set()
    const sockets = await Promise.all(
      reached.map(
        (_, i) =>
          new Promise((resolve, reject) => {
            const socket = new WebSocket(`${base.replace("http", "ws")}/peer/${impl}/${name}/ws`)
            socket.addEventListener("open", () => resolve(socket), { once: true })
            socket.addEventListener("error", () => reject(new Error(`${impl}: socket ${i} failed`)), { once: true })
            socket.addEventListener("message", (event) => {
              const position = positionOf(impl, event.data)
              if (typeof position === "number" && position > reached[i]) {
                reached[i] = position
                for (const wake of waiters) wake()
              }
            })
          }),
      ),
    )
    const everyone = (position) =>
      new Promise((resolve) => {
        const check = () => {
          if (reached.every((p) => p >= position)) {
            waiters.delete(check)
            resolve()
          }
        }
        waiters.add(check)
        check()
      })
    const samples = []
    for (let i = 0; i < FANOUT_SAMPLES + 2; i++) {
      const { ms } = await timed(async () => {
        const reply = await call(base, `/peer/${impl}/${name}/increment`)
        await everyone(reply.version ?? reply.seq ?? reply.value)
      })
      if (i >= 2) samples.push(ms) // the first two warm the path
    }
    for (const socket of sockets) socket.close()
    report("peer-fanout", {
      round,
      impl,
      subscribers: FANOUT_SUBSCRIBERS,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
    })
  }
}

/** First call after the object is evicted (ctx.abort), against a warm call, at 10k and 100k events of history. */
const recovery = async (base) => {
  for (const events of [10_000, 100_000]) {
    for (const impl of PEERS) await seed(base, impl, `recovery-${events}`, events)
    for (let round = 0; round < ROUNDS; round++) {
      for (const impl of PEERS) {
        const name = `recovery-${events}`
        await call(base, `/peer/${impl}/${name}/abort`)
        const cold = await timed(() => call(base, `/peer/${impl}/${name}/increment`))
        const warm = await timed(() => call(base, `/peer/${impl}/${name}/increment`))
        report("peer-recovery", { round, impl, events, coldMs: cold.ms, warmMs: warm.ms })
      }
    }
  }
}

/** Memory per idle actor: workerd's RSS growth for IDLE_ACTORS objects that took one command each, a fresh runtime per peer. */
const idleMemory = async (round) => {
  for (const impl of PEERS) {
    const { worker, base } = await start()
    try {
      for (let i = 0; i < 20; i++) await call(base, `/peer/${impl}/warm-${i}/increment`)
      await new Promise((resolve) => setTimeout(resolve, 500))
      const before = workerdRssKb()
      for (let i = 0; i < IDLE_ACTORS; i += 20)
        await Promise.all(Array.from({ length: 20 }, (_, j) => call(base, `/peer/${impl}/idle-${i + j}/increment`)))
      await new Promise((resolve) => setTimeout(resolve, 1000))
      report("peer-memory", { round, impl, actors: IDLE_ACTORS, kbPerActor: (workerdRssKb() - before) / IDLE_ACTORS })
    } finally {
      await worker.stop()
    }
  }
}

/** Command latency as one actor's history grows: it must not grow with it. */
const history = async (base) => {
  let seeded = 0
  for (const size of HISTORY_SIZES) {
    // (The 300 measured commands per size join the history too: under 0.3% of the next size.)
    for (const impl of ["bare", "emberlog"]) await seed(base, impl, "history", size - seeded)
    seeded = size
    for (const impl of ["bare", "emberlog"]) {
      const samples = []
      for (let i = 0; i < 300; i++) samples.push((await timed(() => call(base, `/peer/${impl}/history/increment`))).ms)
      report("peer-history", { impl, events: size, p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99) })
    }
  }
}

const { worker, base } = await start()
try {
  for (let round = 0; round < ROUNDS; round++) await hotHttp(base, round)
  if (ONLY !== "hot") {
    for (let round = 0; round < ROUNDS; round++) await latency(base, round)
    for (let round = 0; round < 3; round++) await fanout(base, round)
    await recovery(base)
    await history(base)
  }
} finally {
  await worker.stop()
}
if (ONLY !== "hot") for (let round = 0; round < 3; round++) await idleMemory(round)
