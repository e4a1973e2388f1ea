// The isolate's metrics (src/edge/metrics.ts): percentiles from fixed buckets are upper bounds of
// the exact ones, within one bucket, monotone and never above the slowest request; the chart's
// slots cover the last minutes only, with empty slots in between.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  LATENCY_BUCKETS_MS,
  MAX_ERROR_CODES,
  OTHER_ERRORS,
  RECENT_SLOTS,
  RECENT_SLOT_MS,
  RequestMetrics,
} from "../../src/edge/metrics.js"

const bucketBound = (ms: number) => LATENCY_BUCKETS_MS.find((bound) => ms <= bound) ?? Infinity
const exact = (sorted: ReadonlyArray<number>, q: number) => sorted[Math.ceil(q * sorted.length) - 1]!

describe("request metrics", () => {
  it("estimates p50/p95/p99 from buckets: at least the exact value, at most its bucket's bound and the max", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 60_000, noNaN: true }), { minLength: 1, maxLength: 300 }), (ms) => {
        const metrics = new RequestMetrics()
        for (const durationMs of ms) metrics.answered({ routeClass: "read", status: 200, durationMs, code: undefined })
        const { count, p50, p95, p99 } = metrics.snapshot().latency.read!
        expect(count).toBe(ms.length)
        const sorted = [...ms].sort((a, b) => a - b)
        const max = sorted[sorted.length - 1]!
        for (const [q, estimate] of [
          [0.5, p50],
          [0.95, p95],
          [0.99, p99],
        ] as const) {
          const value = exact(sorted, q)
          // Rounded to 0.01 ms in the answer.
          expect(estimate!).toBeGreaterThanOrEqual(Math.round(value * 100) / 100 - 0.005)
          expect(estimate!).toBeLessThanOrEqual(Math.min(bucketBound(value), Math.round(max * 100) / 100 + 0.005))
        }
        expect(p50!).toBeLessThanOrEqual(p95!)
        expect(p95!).toBeLessThanOrEqual(p99!)
      }),
    )
  })

  it("takes the 95th of 100 requests as p95, not the 96th (0.95 * 100 === 95 in floating point)", () => {
    expect(0.95 * 100).toBe(95)
    const metrics = new RequestMetrics()
    for (let i = 0; i < 100; i++)
      metrics.answered({ routeClass: "read", status: 200, durationMs: i < 95 ? 1 : 1_000, code: undefined })
    expect(metrics.snapshot().latency.read).toMatchObject({ p50: 1, p95: 1, p99: 1_000 })
  })

  it("counts at most MAX_ERROR_CODES codes apart, the later ones under other", () => {
    const metrics = new RequestMetrics()
    for (let i = 0; i < MAX_ERROR_CODES + 5; i++)
      metrics.answered({ routeClass: "read", status: 400, durationMs: 1, code: `code_${i}` })
    metrics.answered({ routeClass: "read", status: 400, durationMs: 1, code: "code_0" })
    const { errors } = metrics.snapshot()
    expect(Object.keys(errors)).toHaveLength(MAX_ERROR_CODES + 1)
    expect(errors[OTHER_ERRORS]).toBe(5)
    expect(errors.code_0).toBe(2)
  })

  it("counts errors by code, commands that appended, and subscriptions", () => {
    const metrics = new RequestMetrics()
    metrics.answered({ routeClass: "command", status: 409, durationMs: 3, code: "version_conflict" })
    metrics.answered({ routeClass: "command", status: 409, durationMs: 3, code: "version_conflict" })
    metrics.answered({ routeClass: "read", status: 404, durationMs: 1, code: "not_found" })
    const outcome = (events: number, replayed: boolean) =>
      ({ ok: true, value: { version: 1, events: Array(events).fill({}), state: {}, replayed } }) as never
    metrics.commandAnswered(outcome(2, false))
    metrics.commandAnswered(outcome(1, true))
    metrics.commandAnswered(outcome(0, false))
    metrics.commandAnswered({ ok: false, error: { _tag: "Rejected", code: "x", message: "x" } })
    metrics.subscriptionOpened("websocket")
    metrics.subscriptionOpened("sse")
    metrics.subscriptionOpened("sse")
    metrics.sseClosed()
    const snapshot = metrics.snapshot()
    expect(snapshot.requests).toBe(3)
    expect(snapshot.errors).toEqual({ not_found: 1, version_conflict: 2 })
    expect(snapshot.commands).toEqual({ appended: 1, events: 2 })
    expect(snapshot.subscriptions).toEqual({ opened: { websocket: 1, sse: 2 }, open: { sse: 1 } })
  })

  it("keeps the last minutes in slots, empty ones included, and forgets older ones", () => {
    const metrics = new RequestMetrics()
    const start = Date.UTC(2026, 11, 1, 12, 0, 0)
    const at = (slot: number, ms = 0) => start + slot * RECENT_SLOT_MS + ms
    const request = (now: number, code?: string) =>
      metrics.answered({ routeClass: "read", status: code ? 400 : 200, durationMs: 7, code }, now)
    request(at(0, 100))
    request(at(0, 500), "invalid_query")
    request(at(3))
    let slots = metrics.snapshot(at(3, 2_500)).recent.slots
    expect(slots.map(({ requests, errors }) => [requests, errors])).toEqual([
      [2, 1],
      [0, 0],
      [0, 0],
      [1, 0],
    ])
    expect(slots[1]!.p95).toBeNull()
    expect(slots[0]!.durationMs).toBe(RECENT_SLOT_MS)
    expect(slots[3]!.durationMs).toBe(2_500)
    expect(slots[3]!.at).toBe(new Date(at(3)).toISOString())
    request(at(RECENT_SLOTS + 1))
    slots = metrics.snapshot(at(RECENT_SLOTS + 1, 1)).recent.slots
    expect(slots).toHaveLength(RECENT_SLOTS)
    expect(slots.reduce((sum, slot) => sum + slot.requests, 0)).toBe(2) // the slot at 3 and the newest
    expect(metrics.snapshot(at(RECENT_SLOTS + 1, 1)).since).toBe(new Date(at(0, 100) - 7).toISOString())
  })
})
