// A refused room join is answered by the object itself (before any socket exists): with the status
// the edge's one table gives its failure, and with the failure's details.
import { SELF, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import type { ActorApi } from "../../src/actors/durable-actor.js"
import { MEMBER_HEADER } from "../../src/kinds/room/presence.js"
import { actorObject, BASE, freshId, json, send } from "./helpers.js"

describe("a refused room join", () => {
  it("answers with its failure's status and details, and joins nobody", async () => {
    const room = actorObject("room", freshId("room")) as unknown as ActorApi
    // The entity's member names are 1–64 characters: the edge checks the same, so only a direct caller gets here.
    const headers = { Upgrade: "websocket", [MEMBER_HEADER]: "m".repeat(65) }
    const refused = await json(await room.fetch(new Request("https://room/ws", { headers })))
    const error = { code: "invalid_command", details: { issues: expect.any(Array) } }
    expect(refused).toMatchObject({ status: 400, body: { error } })
    expect(await room.readState({})).toMatchObject({ ok: true, value: { version: 0 } })
  })

  it("that rolled back is a 500 saying nothing was appended, through the edge's /ws", async () => {
    const name = freshId("room")
    expect((await send("room", name, { type: "Join", name: "first" })).status).toBe(200)
    const room = actorObject("room", name)
    await runInDurableObject(room, (_, state) =>
      state.storage.sql.exec("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END"),
    )
    const upgrade = { headers: { Upgrade: "websocket" } }
    const refused = await json(await SELF.fetch(`${BASE}/ws?room=${name}&name=alice`, upgrade))
    const message = expect.stringContaining("rolled back: nothing was appended")
    expect(refused).toMatchObject({ status: 500, body: { error: { code: "internal", message } } })
    expect(await (room as unknown as ActorApi).readState({})).toMatchObject({ ok: true, value: { version: 1 } })
  })
})
