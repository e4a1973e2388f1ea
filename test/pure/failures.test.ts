// An object's own HTTP answer for a failure (a refused room join) and the edge's say the same.
import fc from "fast-check"
import { describe, it } from "vitest"
import type { ActorFailure } from "../../src/core/wire.js"
import { failureResponse } from "../../src/actors/failures.js"
import { HttpError, errorBody, unwrap } from "../../src/edge/errors.js"
import { propertyParameters } from "../../src/testing/parameters.js"

const tags = [
  "InvalidInput",
  "Forbidden",
  "Conflict",
  "TooLarge",
  "Rejected",
  "RolledBack",
  "Unimplemented",
  "Unavailable",
] as const

const failure: fc.Arbitrary<ActorFailure> = fc.record(
  {
    _tag: fc.constantFrom(...tags),
    code: fc.string({ minLength: 1 }),
    message: fc.string(),
    details: fc.jsonValue(),
  },
  { requiredKeys: ["_tag", "code", "message"] },
)

describe("failures as HTTP answers", () => {
  it("an object answers a failure with the edge's status and the same body, details included", async () => {
    await fc.assert(
      fc.asyncProperty(failure, async (failed) => {
        let edge: HttpError | undefined
        try {
          unwrap({ ok: false, error: failed })
        } catch (error) {
          edge = error as HttpError
        }
        const response = failureResponse(failed)
        const body = JSON.stringify(await response.json())
        const expected = JSON.stringify(errorBody(edge!.code, edge!.message, edge!.details))
        if (response.status !== edge!.status) throw new Error(`${failed._tag}: ${response.status} vs ${edge!.status}`)
        if (body !== expected) throw new Error(`body ${body} vs ${expected}`)
        if (failed._tag === "RolledBack" && response.status !== 500) throw new Error("a rollback is a 500")
        // A feature this deployment lacks (semantic memory search without AI and Vectorize), as memory search answered it.
        if (failed._tag === "Unimplemented" && response.status !== 501) throw new Error("unimplemented is a 501")
      }),
      propertyParameters({ numRuns: 200 }),
    )
  })
})
