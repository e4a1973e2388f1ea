// The ack frame as clients send it and the server reads it (src/domain/protocol.ts).
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ACK_TYPE, ackFrame, errorFrame, parseAck } from "../../src/domain/protocol.js"
import { propertyParameters } from "../../src/testing/parameters.js"

describe("ack frames", () => {
  it("reads back every ack a client sends: up to a seq, or everything so far", () => {
    fc.assert(
      fc.property(fc.option(fc.maxSafeNat(), { nil: undefined }), (seq) => {
        expect(parseAck(ackFrame(seq))).toEqual(seq === undefined ? {} : { seq })
      }),
      propertyParameters({ numRuns: 300 }),
    )
  })

  it("leaves every other frame to its own parser, and names what is wrong with a malformed ack", () => {
    const other = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.record({ type: fc.string().filter((type) => type !== ACK_TYPE), seq: fc.integer() }).map(JSON.stringify),
      fc.jsonValue().map((value) => JSON.stringify(value) ?? "null"),
    )
    fc.assert(
      fc.property(other, (message) => {
        const parsed = parseAck(message)
        const frame = (() => {
          try {
            return JSON.parse(message)
          } catch {
            return undefined
          }
        })()
        if (frame?.type !== ACK_TYPE || message.length > 64) expect(parsed).toBeUndefined()
        else expect(parsed).toBeDefined()
      }),
      propertyParameters({ numRuns: 300 }),
    )
    for (const seq of [-1, 1.5, "7", null, 2 ** 53]) {
      expect(parseAck(JSON.stringify({ type: "ack", seq }))).toEqual({ invalid: expect.stringContaining("seq") })
    }
  })

  it("answers errors in one shape, echoing only a string or number id", () => {
    expect(JSON.parse(errorFrame("c1", "invalid_ack", "no"))).toEqual({
      type: "error",
      id: "c1",
      error: { code: "invalid_ack", message: "no" },
    })
    expect(JSON.parse(errorFrame({ x: 1 }, "c", "m", { at: 1 }))).toEqual({
      type: "error",
      id: null,
      error: { code: "c", message: "m", details: { at: 1 } },
    })
  })
})
