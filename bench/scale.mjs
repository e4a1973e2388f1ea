// Issue 13's catch-up and scale sections, driven from Node over the production app's HTTP and
// WebSocket routes, served by wrangler's local runtime (bench/scale-worker.ts, which adds a seed
// and a read-only floor to the app's actor class under /bench/…). Prints `BENCH {...}` lines
// that bench/run.mjs renders into RESULTS.md (BENCH_ONLY=catchup,scale,topic-fanin).
//
//   catchup      one counter seeded to BENCH_CATCHUP_EVENTS events (default 1,000,000) through
//                the command path inside the object (seed, 50,000 a call), then each round:
//                the floor (every row read in pages of 1,000 inside the object, JSON columns
//                parsed), GET /v1/counter/{id}/events in pages of 1,000, a WebSocket
//                subscription from after=0 (acking as it reads, resuming when the server
//                closes at its unconfirmed-bytes cap), and `npx emberlog export` to /dev/null.
//   cost         the SQLite rows read and written and the bytes stored per command (SQLite's
//                own cursor counters) for emberlog's command path, the bare DO's INSERT and
//                the Agents SDK's state write, in one object: the cost model's rows.
//   scale        BENCH_SCALE_ACTORS distinct counters (default 10,000), one command each over
//                HTTP in turn; per-command latency of the first 1,000 against the last 1,000,
//                and workerd's resident memory growth per actor once they are idle.
//   topic-fanin  BENCH_TOPIC_SOURCES counters (default 1,000), BENCH_TOPIC_COMMANDS each
//                (default 10), sent by 16 clients at once; a WebSocket subscriber on the
//                "counter" topic: entries/s into the topic, per-source order, delivery lag
//                (command sent → entry received) p50/p99.
// Usage: SCALE_ONLY=catchup BENCH_CATCHUP_EVENTS=20000 BENCH_ROUNDS=1 node bench/scale.mjs
import { execFileSync, spawn } from "node:child_process"
import { chmodSync } from "node:fs"
import { unstable_dev } from "wrangler"
import { workerdRssKb } from "./workerd-memory.mjs"
import WebSocket from "ws"

const ONLY = (process.env.SCALE_ONLY ?? "cost,catchup,scale,topic-fanin").split(",").map((s) => s.trim())
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3)
const CATCHUP_EVENTS = Number(process.env.BENCH_CATCHUP_EVENTS || 1_000_000)
const SCALE_ACTORS = Number(process.env.BENCH_SCALE_ACTORS || 10_000)
const TOPIC_SOURCES = Number(process.env.BENCH_TOPIC_SOURCES || 1_000)
const TOPIC_COMMANDS = Number(process.env.BENCH_TOPIC_COMMANDS || 10)
const TOPIC_CLIENTS = 16
const SEED_CHUNK = 50_000
const PAGE = 1000
/** The most a page may hold since issue 13 (the CLI's export asks for it). */
const LARGE_PAGE = 10_000
const ACK_EVERY = 500
const CLOSE_RESUME = 4100

const report = (name, values) => console.log(`BENCH ${JSON.stringify({ name, ...values })}`)
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}
const median = (values) => percentile(values, 50)

const worker = await unstable_dev("bench/scale-worker.ts", {
  config: "bench/scale.wrangler.toml",
  ip: "127.0.0.1",
  persist: false,
  logLevel: "none",
  vars: { AUTH_MODE: "off" },
  experimental: { disableExperimentalWarning: true },
})
const base = `http://${worker.address}:${worker.port}`

const request = async (path, init) => {
  const response = await fetch(`${base}${path}`, init)
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json()
}
const command = (id) => request(`/v1/counter/${id}/commands`, { method: "POST", body: '{"type":"Increment","by":1}' })
const timed = async (run) => {
  const started = performance.now()
  const result = await run()
  return { ms: performance.now() - started, result }
}

/** Every event of `id` through GET …/events pages of `limit`; returns how many. */
const readPages = async (id, limit = PAGE) => {
  let after = 0
  let count = 0
  for (;;) {
    const page = await request(`/v1/counter/${id}/events?after=${after}&limit=${limit}`)
    if (page.events.length === 0) return count
    count += page.events.length
    after = page.events.at(-1).seq
  }
}

/**
 * Every event of `id` up to `head` through a WebSocket subscription from after=0 with `batch=1`
 * (the backlog in frames of many events, as the typed client asks for it), acking every batch
 * frame and every ACK_EVERY events; a close at the server's cap of unconfirmed bytes
 * (CLOSE_RESUME) reconnects after the last seq seen, as a client must. Returns the events and
 * the connections it took.
 */
const readSocket = (path, head, positionsOf) =>
  new Promise((resolve, reject) => {
    let last = 0
    let count = 0
    let connections = 0
    const connect = () => {
      connections++
      const socket = new WebSocket(`${base.replace("http", "ws")}${path}?after=${last}&batch=1`)
      socket.on("message", (data) => {
        const { batch, seqs } = positionsOf(JSON.parse(data.toString()))
        let due = batch
        for (const seq of seqs) {
          if (seq !== last + 1) return reject(new Error(`socket: ${seq} after ${last}`))
          last = seq
          count++
          if (count % ACK_EVERY === 0) due = true
        }
        if (last === head) {
          socket.close(1000)
          return resolve({ count, connections })
        }
        if (due) socket.send(JSON.stringify({ type: "ack", seq: last }))
      })
      socket.on("close", (code) => {
        if (last === head) return
        // CLOSE_RESUME at the server's cap; locally the proxy can turn it into 1006. Either way a
        // client resumes after the last seq it saw (the server sends nothing twice).
        if (code === CLOSE_RESUME || (code === 1006 && connections < 1000)) return connect()
        reject(new Error(`socket closed with ${code} at ${last} of ${head}`))
      })
      socket.on("error", reject)
    }
    connect()
  })

/** `npx emberlog export counter/{id}` to /dev/null (the CLI as a user runs it); resolves when it exits 0. */
const exportCli = (id) =>
  new Promise((resolve, reject) => {
    const child = spawn("npx", ["emberlog", "export", `counter/${id}`, "--url", base], {
      stdio: ["ignore", "ignore", "pipe"],
    })
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`export exited ${code}: ${stderr}`))))
  })

const catchup = async () => {
  const id = "catchup"
  const seedStarted = performance.now()
  for (let done = 0; done < CATCHUP_EVENTS; done += SEED_CHUNK)
    await request(`/bench/seed/${id}?n=${Math.min(SEED_CHUNK, CATCHUP_EVENTS - done)}`)
  const seedMs = performance.now() - seedStarted
  report("catchup-seed", { events: CATCHUP_EVENTS, eventsPerSec: (CATCHUP_EVENTS / seedMs) * 1000 })
  const { version: head } = await request(`/v1/counter/${id}`)
  // `npx emberlog` runs dist/emberlog.mjs: bundled from today's src/cli first, so the export measured is this tree's.
  execFileSync("npm", ["run", "-s", "build:cli"], { stdio: "inherit" })
  // esbuild writes the bundle without the bin's execute bit (npm sets it only when installing).
  chmodSync("dist/emberlog.mjs", 0o755)
  // One untimed export first: npx resolves the package once, and the pages are warm for all.
  await exportCli(id)
  for (let round = 0; round < ROUNDS; round++) {
    const floor = await request(`/bench/floor/${id}`)
    const pages = await timed(() => readPages(id))
    const largePages = await timed(() => readPages(id, LARGE_PAGE))
    const socket = await timed(() =>
      readSocket(`/v1/counter/${id}/ws`, head, (frame) =>
        frame.type === "events"
          ? { batch: true, seqs: frame.events.map((event) => event.seq) }
          : { batch: false, seqs: frame.type === "event" ? [frame.event.seq] : [] },
      ),
    )
    const cli = await timed(() => exportCli(id))
    if (floor.rows !== head || pages.result !== head || largePages.result !== head || socket.result.count !== head)
      throw new Error(
        `catch-up read ${floor.rows}/${pages.result}/${largePages.result}/${socket.result.count} of ${head}`,
      )
    const floorRate = (floor.rows / floor.ms) * 1000
    const rate = (ms) => (head / ms) * 1000
    report("catchup", {
      round,
      events: head,
      floorEventsPerSec: floorRate,
      pagesEventsPerSec: rate(pages.ms),
      socketEventsPerSec: rate(socket.ms),
      socketConnections: socket.result.connections,
      exportEventsPerSec: rate(cli.ms),
      pagesToFloor: rate(pages.ms) / floorRate,
      largePagesEventsPerSec: rate(largePages.ms),
      largePagesToFloor: rate(largePages.ms) / floorRate,
      socketToFloor: rate(socket.ms) / floorRate,
      exportToFloor: rate(cli.ms) / floorRate,
      bytesPerEvent: floor.databaseBytes / head,
      readEventsPerSec: rate(floor.readEventsMs),
      readEventsJsonPerSec: rate(floor.readEventsJsonMs),
      readEventsTextPerSec: rate(floor.readEventsTextMs),
    })
  }
}

const scale = async () => {
  const before = workerdRssKb()
  const samples = []
  const started = performance.now()
  for (let i = 0; i < SCALE_ACTORS; i++) samples.push((await timed(() => command(`scale-${i}`))).ms)
  const totalMs = performance.now() - started
  // Let topic deliveries and the directory's rows settle before reading memory.
  await new Promise((resolve) => setTimeout(resolve, 5000))
  const after = workerdRssKb()
  const window = Math.min(1000, Math.floor(SCALE_ACTORS / 2))
  const first = samples.slice(0, window)
  const last = samples.slice(-window)
  report("scale", {
    actors: SCALE_ACTORS,
    window,
    commandsPerSec: (SCALE_ACTORS / totalMs) * 1000,
    firstP50Ms: median(first),
    firstP99Ms: percentile(first, 99),
    firstMeanMs: first.reduce((a, b) => a + b, 0) / first.length,
    lastP50Ms: median(last),
    lastP99Ms: percentile(last, 99),
    lastMeanMs: last.reduce((a, b) => a + b, 0) / last.length,
    rssBeforeKb: before,
    rssAfterKb: after,
    kbPerActor: (after - before) / SCALE_ACTORS,
  })
}

const topicFanIn = async (round) => {
  const { entries: existing } = await request(`/v1/topics/counter/events?after=0&limit=1`).catch(() => ({
    entries: [],
  }))
  void existing
  // The topic's head now: the subscriber starts there and sees only this round's entries.
  let head = 0
  for (;;) {
    const page = await request(`/v1/topics/counter/events?after=${head}&limit=1000`)
    if (page.entries.length === 0) break
    head = page.entries.at(-1).topicSeq
  }
  const total = TOPIC_SOURCES * TOPIC_COMMANDS
  const sentAt = new Map()
  const lags = []
  const lastBySource = new Map()
  let outOfOrder = 0
  let received = 0
  let firstSent
  let lastReceived
  const socket = new WebSocket(`${base.replace("http", "ws")}/v1/topics/counter/ws?after=${head}`)
  await new Promise((resolve, reject) => (socket.on("open", resolve), socket.on("error", reject)))
  const done = new Promise((resolve) =>
    socket.on("message", (data) => {
      const frame = JSON.parse(data.toString())
      if (frame.type !== "entry") return
      const { source, event, topicSeq } = frame.entry
      if (!source.id.startsWith(`fanin-${round}-`)) return
      const now = performance.now()
      const key = `${source.id}/${event.seq}`
      lags.push(now - sentAt.get(key))
      if ((lastBySource.get(source.id) ?? 0) !== event.seq - 1) outOfOrder++
      lastBySource.set(source.id, event.seq)
      lastReceived = now
      received++
      if (received % ACK_EVERY === 0) socket.send(JSON.stringify({ type: "ack", seq: topicSeq }))
      if (received === total) resolve()
    }),
  )
  firstSent = performance.now()
  let next = 0
  const commandsAcked = await timed(() =>
    Promise.all(
      Array.from({ length: TOPIC_CLIENTS }, async () => {
        for (let i; (i = next++) < total;) {
          // Sources in turn, so the topic sees them interleaved: command k of every source, then k+1.
          const id = `fanin-${round}-${i % TOPIC_SOURCES}`
          const seq = Math.floor(i / TOPIC_SOURCES) + 1
          sentAt.set(`${id}/${seq}`, performance.now())
          const reply = await command(id)
          if (reply.version !== seq) sentAt.set(`${id}/${reply.version}`, sentAt.get(`${id}/${seq}`))
        }
      }),
    ),
  )
  await done
  socket.close(1000)
  report("topic-fanin", {
    round,
    sources: TOPIC_SOURCES,
    entries: received,
    commandsPerSec: (total / commandsAcked.ms) * 1000,
    entriesPerSec: (received / (lastReceived - firstSent)) * 1000,
    outOfOrder,
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
  })
}

const cost = async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const rows = await request(`/bench/rows/cost-${round}?n=1000`)
    for (const [impl, values] of Object.entries(rows)) report("cost-rows", { round, impl, ...values })
  }
}

try {
  if (ONLY.includes("cost")) await cost()
  if (ONLY.includes("catchup")) await catchup()
  if (ONLY.includes("topic-fanin")) for (let round = 0; round < ROUNDS; round++) await topicFanIn(round)
  if (ONLY.includes("scale")) await scale()
} finally {
  await worker.stop()
}
