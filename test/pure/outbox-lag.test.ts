// The outbox-lag gauge (src/actors/outbox-lag.ts): one entry per actor behind, the oldest report
// dropped past MAX_LAGGING_ACTORS, a report forgotten after OUTBOX_LAG_TTL_MS (its actor was
// evicted while behind), and the stall timed from the last delivery that succeeded.
import { afterEach, describe, expect, it } from "vitest"
import {
  MAX_LAGGING_ACTORS,
  OUTBOX_LAG_TTL_MS,
  outboxLag,
  reportOutboxLag,
  resetOutboxLag,
} from "../../src/actors/outbox-lag.js"

afterEach(resetOutboxLag)

describe("outbox lag", () => {
  it("keeps the latest report per actor, and forgets one caught up", () => {
    reportOutboxLag("a", 5, false, 1_000)
    reportOutboxLag("a", 7, false, 1_100)
    reportOutboxLag("b", 2, false, 1_200)
    expect(outboxLag(1_300)).toMatchObject({ scope: "isolate", actorsBehind: 2, eventsBehind: 9, maxBehind: 7 })
    reportOutboxLag("a", 0, true, 1_400)
    expect(outboxLag(1_500)).toMatchObject({ actorsBehind: 1, eventsBehind: 2, maxBehind: 2 })
  })

  it("remembers at most MAX_LAGGING_ACTORS actors, the oldest report going first", () => {
    for (let i = 0; i <= MAX_LAGGING_ACTORS; i++) reportOutboxLag(`actor-${i}`, i === 0 ? 1_000_000 : 1, false, 10)
    const lag = outboxLag(20)
    expect(lag.actorsBehind).toBe(MAX_LAGGING_ACTORS)
    // actor-0, the first to report, is the one dropped.
    expect(lag.maxBehind).toBe(1)
  })

  it("forgets a report older than OUTBOX_LAG_TTL_MS: its actor stopped reporting", () => {
    reportOutboxLag("evicted", 50, false, 0)
    reportOutboxLag("alive", 3, false, OUTBOX_LAG_TTL_MS)
    expect(outboxLag(OUTBOX_LAG_TTL_MS).actorsBehind).toBe(2)
    expect(outboxLag(OUTBOX_LAG_TTL_MS + 1)).toMatchObject({ actorsBehind: 1, maxBehind: 3 })
  })

  it("times a stall from the last delivery that succeeded, not from the last report", () => {
    reportOutboxLag("stuck", 4, false, 0)
    reportOutboxLag("stuck", 5, false, 30_000)
    expect(outboxLag(40_000).stalledMs).toBe(40_000)
    reportOutboxLag("stuck", 2, true, 50_000)
    expect(outboxLag(60_000).stalledMs).toBe(10_000)
    reportOutboxLag("stuck", 0, true, 70_000)
    expect(outboxLag(80_000).stalledMs).toBe(0)
  })
})
