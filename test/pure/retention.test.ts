// A kind's retention (README, "History beyond one object"): checked when the app is built, and
// reported when there is no R2 binding to archive to.
import { describe, expect, it, vi } from "vitest"
import { archiveUnavailable } from "../../src/actors/retention.js"
import { segmentKey } from "../../src/actors/segment-format.js"
import { defineKind, kindRegistry } from "../../src/edge/kind.js"
import { Counter } from "../../src/kinds/counter/entity.js"

const withRetention = (retention: unknown) =>
  kindRegistry([defineKind({ entity: Counter, retention: retention as never })])

describe("retention", () => {
  it("accepts a threshold, a segment size and an age", () => {
    const registry = withRetention({ archiveAfterEvents: 5, segmentEvents: 3, deleteArchivedAfterDays: 0.5 })
    expect(registry.get("counter")?.retention).toEqual({
      archiveAfterEvents: 5,
      segmentEvents: 3,
      deleteArchivedAfterDays: 0.5,
    })
  })

  it("refuses at startup what would never archive or delete, naming the kind and the field", () => {
    for (const [retention, field] of [
      [{}, "archiveAfterEvents"],
      [{ archiveAfterEvents: 0 }, "archiveAfterEvents"],
      [{ archiveAfterEvents: 1.5 }, "archiveAfterEvents"],
      [{ archiveAfterEvents: 10, segmentEvents: 0 }, "segmentEvents"],
      [{ archiveAfterEvents: 10, deleteArchivedAfterDays: -1 }, "deleteArchivedAfterDays"],
      [{ archiveAfterEvents: 10, deleteArchivedAfterDays: Number.POSITIVE_INFINITY }, "deleteArchivedAfterDays"],
    ] as const) {
      expect(() => withRetention(retention)).toThrow(new RegExp(`the counter kind's retention: ${field}`))
    }
  })

  it("names the kinds with a retention but no R2 binding, warning once per kind", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined)
    const kinds = [{ kind: "ledger", retention: { archiveAfterEvents: 10 } }, { kind: "room" }]
    expect(archiveUnavailable({}, kinds)).toEqual(["ledger"])
    expect(archiveUnavailable({}, kinds)).toEqual(["ledger"])
    expect(warn).toHaveBeenCalledTimes(1)
    expect(archiveUnavailable({ EMBERLOG_ARCHIVE: {} as R2Bucket }, kinds)).toEqual([])
    warn.mockRestore()
  })

  it("keys a segment by its actor and its ends, so a seal redone after a crash writes the same object", () => {
    expect(segmentKey("public/counter/c1", 1, 10_000)).toBe(
      "public/counter/c1/0000000000000001-0000000000010000.ndjson.gz",
    )
  })
})
