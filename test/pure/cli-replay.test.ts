// Offline replay: the CLI folds an exported log with the server's own domain code,
// reading every stored schema version and checking the hash chain as the server does.
import { describe, expect, it } from "vitest"
import { GENESIS_HASH, chainHash } from "../../src/core/hash-chain.js"
import { replayLog } from "../../src/cli/main.js"
import { Counter } from "../../src/kinds/counter/entity.js"

const meta = (n: number) => ({
  at: 1_700_000_000_000 + n,
  causationId: null,
  commandId: `c${n}`,
  correlationId: `c${n}`,
  principal: "auditor",
})

/** A log as `emberlog export` writes it: rows as stored, each linked to the one before. */
const chained = (bodies: ReadonlyArray<{ type: string; schemaVersion: number; data: Record<string, unknown> }>) => {
  let prev = GENESIS_HASH
  return bodies.map((body, i) => {
    const event = { seq: i + 1, ...body, meta: meta(i + 1) }
    prev = chainHash(prev, event)
    return { ...event, hash: prev }
  })
}

describe("replayLog", () => {
  it("folds rows of old schema versions through the entity's upcasts and verifies the chain", () => {
    const log = chained([
      { type: "Incremented", schemaVersion: 1, data: { by: 40 } },
      { type: "Incremented", schemaVersion: 2, data: { by: 2, reason: "audit" } },
      { type: "Decremented", schemaVersion: 1, data: { by: 1 } },
    ])
    expect(replayLog(Counter, log)).toEqual({
      kind: "counter",
      version: 3,
      chain: { ok: true, events: 3, head: log[2]!.hash },
      state: { value: 41 },
    })
  })

  it("reports the first event whose hash does not match, and refuses a log with a gap", () => {
    const log = chained([
      { type: "Incremented", schemaVersion: 2, data: { by: 1, reason: null } },
      { type: "Incremented", schemaVersion: 2, data: { by: 1, reason: null } },
    ])
    const forged = [log[0]!, { ...log[1]!, data: { by: 1000, reason: null } }]
    expect(replayLog(Counter, forged).chain).toMatchObject({ ok: false, firstBadSeq: 2 })
    expect(() => replayLog(Counter, [log[1]!])).toThrow("seq 1 is missing")
  })
})
