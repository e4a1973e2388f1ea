// A refused room join is answered by the object itself (before any socket exists): with the status
// the edge's one table gives its failure, and with the failure's details.
import { env } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { MEMBER_HEADER, type ActorApi } from "../../src/actors/durable-actor.js"
import { devName, freshId, json } from "./helpers.js"

describe("a refused room join", () => {
  it("answers with its failure's status and details, and joins nobody", async () => {
    const room = env.ROOM.getByName(devName(freshId("room"))) as unknown as ActorApi
    // The entity's member names are 1–64 characters: the edge checks the same, so only a direct caller gets here.
    const headers = { Upgrade: "websocket", [MEMBER_HEADER]: "m".repeat(65) }
    const refused = await json(await room.fetch(new Request("https://room/ws", { headers })))
    expect(refused).toMatchObject({ status: 400, body: { error: { code: "invalid_command", details: { issues: expect.any(Array) } } } })
    expect(await room.readState({})).toMatchObject({ ok: true, value: { version: 0 } })
  })
})
