/**
 * How far actors' outboxes trail their logs, as the actors of this isolate last reported it: each
 * actor reports after a command appends and after each drain (durable-actor.ts), and the edge's
 * metrics read the gauge (GET /v1/admin/metrics, /health). In `wrangler dev` and the tests the
 * Worker and its Durable Objects share an isolate, so the gauge is every local actor's; in
 * production an object usually runs in another isolate than the request that reads the gauge,
 * so it shows the objects this isolate hosts (the fleet's view is the METRICS dataset's).
 *
 * Kept on globalThis, like the delivery faults: the edge and the objects may load their own copy
 * of this module in one isolate (the test runner does), and both must see one gauge.
 */

/** Actors remembered at most (their lag only while it is above zero): the oldest report goes first. */
export const MAX_LAGGING_ACTORS = 10_000
/**
 * A report older than this is forgotten: its actor was evicted (or erased elsewhere) while behind,
 * and an actor still retrying reports at least every DELIVERY_RETRY_MAX_MS (a minute).
 */
export const OUTBOX_LAG_TTL_MS = 5 * 60_000

interface Entry {
  /** Events its slowest topic cursor is behind its head. */
  readonly events: number
  readonly reportedAt: number
  /** Since when it has been behind without a delivery succeeding: how long its oldest event has waited, at most. */
  readonly stalledSince: number
}

interface Gauge {
  /** Actor object id → its last report while behind, in report order. */
  readonly behind: Map<string, Entry>
  reportedAt: number | undefined
}

const gauge: Gauge = ((globalThis as Record<symbol, unknown>)[Symbol.for("emberlog.outboxLag")] ??= {
  behind: new Map(),
  reportedAt: undefined,
}) as Gauge

/**
 * An actor's outbox is `events` behind its head (0: everything delivered). `delivered`: the
 * report follows a delivery that succeeded (the actor is moving, however far behind); a report
 * after a command, or after a failed delivery, keeps the time its stall began.
 */
export const reportOutboxLag = (actor: string, events: number, delivered: boolean, now = Date.now()): void => {
  gauge.reportedAt = now
  const previous = gauge.behind.get(actor)
  gauge.behind.delete(actor)
  if (events <= 0) return
  const stalledSince = delivered || previous === undefined ? now : previous.stalledSince
  gauge.behind.set(actor, { events, reportedAt: now, stalledSince })
  if (gauge.behind.size > MAX_LAGGING_ACTORS) gauge.behind.delete(gauge.behind.keys().next().value!)
}

export interface OutboxLag {
  /** This isolate's actors only (module comment). */
  readonly scope: "isolate"
  /** Actors with events not yet delivered to a topic. */
  readonly actorsBehind: number
  /** Their undelivered events, summed. */
  readonly eventsBehind: number
  /** The most one actor is behind. */
  readonly maxBehind: number
  /** The longest an actor has been behind with no delivery succeeding, in ms (0: none is). */
  readonly stalledMs: number
  /** When an actor of this isolate last reported (ISO time), or null: none has since it started. */
  readonly reportedAt: string | null
}

export const outboxLag = (now = Date.now()): OutboxLag => {
  let eventsBehind = 0
  let maxBehind = 0
  let stalledMs = 0
  // In report order: the stale ones come first.
  for (const [actor, entry] of gauge.behind) {
    if (now - entry.reportedAt <= OUTBOX_LAG_TTL_MS) break
    gauge.behind.delete(actor)
  }
  for (const { events, stalledSince } of gauge.behind.values()) {
    eventsBehind += events
    maxBehind = Math.max(maxBehind, events)
    stalledMs = Math.max(stalledMs, now - stalledSince)
  }
  return {
    scope: "isolate",
    actorsBehind: gauge.behind.size,
    eventsBehind,
    maxBehind,
    stalledMs,
    reportedAt: gauge.reportedAt === undefined ? null : new Date(gauge.reportedAt).toISOString(),
  }
}

/** Forgets every report (tests). */
export const resetOutboxLag = (): void => {
  gauge.behind.clear()
  gauge.reportedAt = undefined
}
