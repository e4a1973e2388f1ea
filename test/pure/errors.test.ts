// One place maps failures to statuses; a 500 from there cannot know whether a command committed.
import { Hono } from "hono"
import { describe, expect, it } from "vitest"
import type { ActorFailure } from "../../src/core/wire.js"
import { HttpError, handleError, unwrap } from "../../src/edge/errors.js"

const statusOf = (tag: ActorFailure["_tag"]) => {
  try {
    unwrap({ ok: false, error: { _tag: tag, code: "c", message: "m" } })
  } catch (error) {
    return (error as HttpError).status
  }
}

describe("errors", () => {
  it("maps every actor failure to its status", () => {
    const tags = ["InvalidInput", "Conflict", "TooLarge", "Rejected", "RolledBack", "Unavailable"] as const
    expect(tags.map(statusOf)).toEqual([400, 409, 413, 422, 500, 503])
  })

  it("an unexpected error claims nothing about what changed, and says how to find out", async () => {
    const app = new Hono()
    app.onError(handleError)
    app.get("/boom", () => {
      throw new Error("lost after the commit, perhaps")
    })
    const response = await app.request("/boom")
    expect(response.status).toBe(500)
    const { error } = (await response.json()) as { error: { code: string; message: string } }
    expect(error.code).toBe("internal")
    expect(error.message).not.toMatch(/nothing was changed/i)
    expect(error.message).toMatch(/may or may not have taken effect/)
    expect(error.message).toContain("Idempotency-Key")
  })
})
