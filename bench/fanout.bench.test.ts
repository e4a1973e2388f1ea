/**
 * Fan-out: one actor to 100 and 1,000 WebSocket subscribers, against a bare Durable
 * Object that only loops `ws.send` over its sockets, in the same run. Latency runs from
 * issuing the command (for the baseline, the broadcast call) to the moment every
 * subscriber has received the event: delivery happens before the command's answer
 * returns, so measuring from the acknowledgement would read zero. Receiving is done by
 * this test's isolate for both sides alike.
 */
import { SELF, env } from "cloudflare:test"
import { it } from "vitest"
import type { ActorApi } from "../src/actors/durable-actor.js"
import { DEV_TENANT, actorName } from "../src/core/names.js"

const ROUNDS = 3
const LATENCY_SAMPLES = 60
const BURST = 100
const BURSTS = 5

const report = (values: Record<string, unknown>) =>
  console.log(`BENCH ${JSON.stringify({ name: "fanout", ...values })}`)
const percentile = (values: Array<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/** Opens `count` sockets to `url` and counts, per socket, the frames matching `isEvent`. */
const openSockets = async (count: number, url: string, isEvent: (data: string) => boolean) => {
  const received = new Array<number>(count).fill(0)
  let waiting: { target: number; resolve: () => void } | undefined
  let complete = 0
  const sockets: Array<WebSocket> = []
  for (let i = 0; i < count; i++) {
    const response = await SELF.fetch(url, { headers: { Upgrade: "websocket" } })
    const socket = response.webSocket!
    socket.accept()
    socket.addEventListener("message", (event) => {
      if (!isEvent(event.data as string)) return
      received[i]!++
      if (waiting !== undefined && received[i] === waiting.target && ++complete === count) waiting.resolve()
    })
    sockets.push(socket)
  }
  /** Resolves when every socket has received `target` events in total. */
  const allReached = (target: number) =>
    new Promise<void>((resolve) => {
      complete = received.filter((n) => n >= target).length
      if (complete === count) return resolve()
      waiting = { target, resolve }
    })
  return { allReached, close: () => sockets.forEach((s) => s.close(1000)) }
}

const unwrapEvents = (reply: Awaited<ReturnType<ActorApi["readEvents"]>>) => {
  if (!reply.ok) throw new Error(reply.error.message)
  return reply.value
}

const benchEnv = env as unknown as Record<"EMBERLOG_ACTOR" | "BARE_FANOUT", DurableObjectNamespace>

for (const subscribers of [100, 1000]) {
  it(`fan-out to ${subscribers} subscribers: emberlog actor vs bare ws.send loop`, async () => {
    for (let round = 0; round < ROUNDS; round++) await fanoutRound(subscribers, round)
  })
}

async function fanoutRound(subscribers: number, round: number) {
  {
    const id = `fanout-${subscribers}-${round}`
    // The object the Worker's route addresses for this id (auth off: the dev tenant).
    const actor = benchEnv.EMBERLOG_ACTOR.getByName(actorName(DEV_TENANT, "counter", id)) as unknown as ActorApi
    const bare = benchEnv.BARE_FANOUT.getByName(id) as unknown as { broadcast(message: string): Promise<number> }
    await actor.command({ command: { type: "Increment", by: 1 } })
    const ember = await openSockets(subscribers, `http://bench/v1/counter/${id}/ws?after=1`, (d) =>
      d.startsWith('{"type":"event"'),
    )
    const baseline = await openSockets(subscribers, `http://bench/fanout/${id}`, () => true)
    // The baseline sends a frame of the same size as emberlog's (a real event frame), so the
    // comparison measures emberlog's work, not a difference in message size.
    const { events } = unwrapEvents(await actor.readEvents(0, 1))
    const payload = JSON.stringify({ type: "event", event: events[0] })

    const emberLatency: Array<number> = []
    const bareLatency: Array<number> = []
    for (let i = 1; i <= LATENCY_SAMPLES; i++) {
      let start = performance.now()
      await actor.command({ command: { type: "Increment", by: 1 } })
      await ember.allReached(i)
      emberLatency.push(performance.now() - start)
      start = performance.now()
      await bare.broadcast(payload)
      await baseline.allReached(i)
      bareLatency.push(performance.now() - start)
    }

    const burst = async (send: () => Promise<unknown>, reached: (n: number) => Promise<void>, already: number) => {
      const start = performance.now()
      for (let i = 0; i < BURST; i++) await send()
      await reached(already + BURST)
      return (BURST / (performance.now() - start)) * 1000
    }
    // Bursts alternate between the two sides and each side's median is kept: one burst lasts well
    // under a second, so a single pair mostly measured which side a pause of the isolate fell on.
    const emberRates: Array<number> = []
    const bareRates: Array<number> = []
    for (let i = 0; i < BURSTS; i++) {
      const reached = LATENCY_SAMPLES + i * BURST
      emberRates.push(
        await burst(() => actor.command({ command: { type: "Increment", by: 1 } }), ember.allReached, reached),
      )
      bareRates.push(await burst(() => bare.broadcast(payload), baseline.allReached, reached))
    }
    const emberRate = percentile(emberRates, 50)
    const bareRate = percentile(bareRates, 50)
    ember.close()
    baseline.close()
    report({
      round,
      subscribers,
      emberP50Ms: percentile(emberLatency, 50),
      emberP99Ms: percentile(emberLatency, 99),
      bareP50Ms: percentile(bareLatency, 50),
      bareP99Ms: percentile(bareLatency, 99),
      emberEventsPerSec: emberRate,
      bareEventsPerSec: bareRate,
    })
  }
}
