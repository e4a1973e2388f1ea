/**
 * The app's metrics in this isolate (README, "Observability"): requests, errors by code, latency
 * per route class (a histogram of fixed buckets, so p50/p95/p99 cost no sorting and no memory per
 * request), commands appended and their events, subscriptions opened (and SSE streams still open:
 * the edge proxies those; a WebSocket is held by its object, so only its opening is seen here),
 * the outbox lag the actors of this isolate report (actors/outbox-lag.ts), and the last minutes in
 * slots for the inspector's chart. Read at `GET /v1/admin/metrics` (operator scope: the counts
 * are every tenant's). One app is one isolate's counters: in production each isolate counts what
 * it served, and the fleet's view is the METRICS Analytics Engine dataset (request-log.ts).
 */
import type { ActorReply, CommandOutcome } from "../core/wire.js"
import { outboxLag } from "../actors/outbox-lag.js"
import { requireScope } from "./auth.js"
import type { App } from "./env.js"
import type { RouteClass } from "./usage.js"

/** Upper bounds of the latency buckets, in ms; one more bucket holds everything slower. */
export const LATENCY_BUCKETS_MS: ReadonlyArray<number> = [
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000,
]
/** The chart's slots: this long each, this many kept (ten minutes). */
export const RECENT_SLOT_MS = 10_000
export const RECENT_SLOTS = 60
/**
 * Error codes counted apart at most: a kind's own answers may carry any code, and the counters
 * stay small; codes first seen after these are counted under OTHER_ERRORS.
 */
export const MAX_ERROR_CODES = 100
export const OTHER_ERRORS = "other"

class LatencyHistogram {
  private readonly buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
  count = 0
  max = 0

  observe(ms: number): void {
    let at = LATENCY_BUCKETS_MS.findIndex((bound) => ms <= bound)
    if (at === -1) at = LATENCY_BUCKETS_MS.length
    this.buckets[at]!++
    this.count++
    this.max = Math.max(this.max, ms)
  }

  /**
   * The upper bound of the bucket holding the q-quantile, never above the slowest request seen
   * (the open last bucket answers that): an estimate within one bucket, monotone in q.
   */
  quantile(q: number): number | null {
    if (this.count === 0) return null
    // Nearest rank. q * count is exact where it should be an integer (0.95 * 100 === 95: checked
    // for every count up to a million, test/pure/metrics.test.ts pins 100), so no rounding here.
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let at = 0; at < this.buckets.length; at++) {
      seen += this.buckets[at]!
      if (seen >= rank) return Math.min(LATENCY_BUCKETS_MS[at] ?? this.max, this.max)
    }
    return this.max
  }

  summary() {
    return { count: this.count, p50: this.quantile(0.5), p95: this.quantile(0.95), p99: this.quantile(0.99) }
  }
}

interface Slot {
  readonly start: number
  requests: number
  errors: number
  readonly latency: LatencyHistogram
}

/** One answered request, as the request log sees it. */
interface AnsweredRequest {
  readonly routeClass: RouteClass
  readonly status: number
  readonly durationMs: number
  /** The error code of an answer of 400 or more. */
  readonly code: string | undefined
}

type SubscriptionTransport = "websocket" | "sse"

const roundMs = (ms: number | null) => (ms === null ? null : Math.round(ms * 100) / 100)

export class RequestMetrics {
  /** Set at the first request: an app is built at module load, where a Worker's clock reads 0. */
  private sinceAt: number | undefined
  private get since(): number {
    return (this.sinceAt ??= Date.now())
  }
  private requests = 0
  private readonly errors = new Map<string, number>()
  private readonly latency = new Map<RouteClass, LatencyHistogram>()
  private commands = 0
  private events = 0
  private readonly opened = { websocket: 0, sse: 0 }
  private openSse = 0
  private readonly recent: Array<Slot> = []

  answered({ routeClass, durationMs, code }: AnsweredRequest, now = Date.now()): void {
    this.sinceAt ??= now - durationMs
    this.requests++
    if (code !== undefined) {
      const counted = this.errors.has(code) || this.errors.size < MAX_ERROR_CODES ? code : OTHER_ERRORS
      this.errors.set(counted, (this.errors.get(counted) ?? 0) + 1)
    }
    let histogram = this.latency.get(routeClass)
    if (histogram === undefined) this.latency.set(routeClass, (histogram = new LatencyHistogram()))
    histogram.observe(durationMs)
    const slot = this.slotAt(now)
    slot.requests++
    if (code !== undefined) slot.errors++
    slot.latency.observe(durationMs)
  }

  /** A command answered at the edge: counted with its events when it appended (a replay appended nothing). */
  commandAnswered(reply: ActorReply<CommandOutcome>): void {
    if (!reply.ok || reply.value.replayed || reply.value.events.length === 0) return
    this.commands++
    this.events += reply.value.events.length
  }

  subscriptionOpened(transport: SubscriptionTransport): void {
    this.opened[transport]++
    if (transport === "sse") this.openSse++
  }

  sseClosed(): void {
    this.openSse--
  }

  private slotAt(now: number): Slot {
    const start = now - (now % RECENT_SLOT_MS)
    const last = this.recent[this.recent.length - 1]
    if (last !== undefined && last.start === start) return last
    const slot: Slot = { start, requests: 0, errors: 0, latency: new LatencyHistogram() }
    this.recent.push(slot)
    while (this.recent.length > 0 && this.recent[0]!.start <= start - RECENT_SLOTS * RECENT_SLOT_MS) this.recent.shift()
    return slot
  }

  /** The last RECENT_SLOTS slots up to now (since the first request), oldest first, slots without requests included. */
  private recentSlots(now: number) {
    const current = now - (now % RECENT_SLOT_MS)
    const byStart = new Map(this.recent.map((slot) => [slot.start, slot]))
    const first = Math.max(current - (RECENT_SLOTS - 1) * RECENT_SLOT_MS, this.since - (this.since % RECENT_SLOT_MS))
    const slots = []
    for (let start = first; start <= current; start += RECENT_SLOT_MS) {
      const slot = byStart.get(start)
      slots.push({
        at: new Date(start).toISOString(),
        // The current slot has lasted until now, not a whole slot: a rate divides by this.
        durationMs: start === current ? Math.max(1, now - start) : RECENT_SLOT_MS,
        requests: slot?.requests ?? 0,
        errors: slot?.errors ?? 0,
        p95: roundMs(slot?.latency.quantile(0.95) ?? null),
      })
    }
    return slots
  }

  snapshot(now = Date.now()) {
    const latency: Record<string, { count: number; p50: number | null; p95: number | null; p99: number | null }> = {}
    for (const [routeClass, histogram] of [...this.latency].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const { count, p50, p95, p99 } = histogram.summary()
      latency[routeClass] = { count, p50: roundMs(p50), p95: roundMs(p95), p99: roundMs(p99) }
    }
    return {
      scope: "isolate" as const,
      since: new Date(this.since).toISOString(),
      at: new Date(now).toISOString(),
      requests: this.requests,
      errors: Object.fromEntries([...this.errors].sort(([a], [b]) => (a < b ? -1 : 1))),
      latency,
      latencyBucketsMs: LATENCY_BUCKETS_MS,
      commands: { appended: this.commands, events: this.events },
      subscriptions: { opened: { ...this.opened }, open: { sse: this.openSse } },
      outboxLag: outboxLag(),
      recent: { slotMs: RECENT_SLOT_MS, capacity: RECENT_SLOTS, slots: this.recentSlots(now) },
    }
  }
}

export type MetricsSnapshot = ReturnType<RequestMetrics["snapshot"]>

/** `GET /v1/admin/metrics`: this isolate's counters, to operators (the counts span every tenant). */
export const metricsRoutes = (app: App, metrics: RequestMetrics) => {
  app.get("/v1/admin/metrics", requireScope("operator"), (c) => c.json(metrics.snapshot()))
}
