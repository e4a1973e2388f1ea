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

interface Gauge {
  /** Actor object id → events its slowest topic cursor is behind its head. */
  readonly behind: Map<string, number>
  reportedAt: number | undefined
}

const gauge: Gauge = ((globalThis as Record<symbol, unknown>)[Symbol.for("emberlog.outboxLag")] ??= {
  behind: new Map(),
  reportedAt: undefined,
}) as Gauge

/** An actor's outbox is `events` behind its head (0: everything delivered). */
export const reportOutboxLag = (actor: string, events: number): void => {
  gauge.reportedAt = Date.now()
  gauge.behind.delete(actor)
  if (events <= 0) return
  gauge.behind.set(actor, events)
  if (gauge.behind.size > MAX_LAGGING_ACTORS) gauge.behind.delete(gauge.behind.keys().next().value!)
}

export interface OutboxLag {
  /** Actors with events not yet delivered to a topic. */
  readonly actorsBehind: number
  /** Their undelivered events, summed. */
  readonly eventsBehind: number
  /** The most one actor is behind. */
  readonly maxBehind: number
  /** When an actor of this isolate last reported (ISO time), or null: none has since it started. */
  readonly reportedAt: string | null
}

export const outboxLag = (): OutboxLag => {
  let eventsBehind = 0
  let maxBehind = 0
  for (const events of gauge.behind.values()) {
    eventsBehind += events
    maxBehind = Math.max(maxBehind, events)
  }
  return {
    actorsBehind: gauge.behind.size,
    eventsBehind,
    maxBehind,
    reportedAt: gauge.reportedAt === undefined ? null : new Date(gauge.reportedAt).toISOString(),
  }
}
