import { env, runDurableObjectAlarm } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { freshId, get, json, send } from "./helpers.js"
import { devName } from "./helpers.js"

const events = async (id: string) => (await json(await get(`/v1/session/${id}/events`))).body.events as Array<any>

describe("sessions", () => {
  it("opens, grants, touches and closes; commands on a closed session are refused", async () => {
    const id = freshId("s")
    expect((await send("session", id, { type: "Open", user: "alice", ttlSeconds: 600, attributes: { plan: "pro" } })).status).toBe(200)
    await send("session", id, { type: "Grant", tool: "counter_increment" })
    await send("session", id, { type: "Grant", tool: "counter_increment" }) // already granted: appends nothing
    await send("session", id, { type: "SetConfig", key: "theme", value: "dark" })
    await send("session", id, { type: "Touch" })
    const { state } = (await json(await get(`/v1/session/${id}`))).body
    expect(state).toMatchObject({ status: "open", user: "alice", grants: ["counter_increment"], config: { theme: "dark" }, attributes: { plan: "pro" } })
    expect((await events(id)).map((e) => e.type)).toEqual(["Opened", "Granted", "ConfigSet", "Touched"])
    await send("session", id, { type: "Close" })
    expect((await json(await send("session", id, { type: "Touch" }))).body.error.code).toBe("session_closed")
  })

  it("expires by alarm when the TTL passes without a touch: one Expired even if the alarm runs twice", async () => {
    const id = freshId("s")
    await send("session", id, { type: "Open", user: "bob", ttlSeconds: 1 })
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const stub = env.SESSION.getByName(devName(id))
    await runDurableObjectAlarm(stub)
    await runDurableObjectAlarm(stub)
    // The platform may also have run it on its own by now; either way there is exactly one.
    expect((await events(id)).filter((e) => e.type === "Expired")).toHaveLength(1)
    expect((await json(await get(`/v1/session/${id}`))).body.state.status).toBe("expired")
    const refused = await json(await send("session", id, { type: "Grant", tool: "x" }))
    expect(refused).toMatchObject({ status: 422, body: { error: { code: "session_expired" } } })
    // Expire is the alarm's command; clients cannot send it.
    expect((await json(await send("session", id, { type: "Expire" }))).body.error.code).toBe("internal_command")
  })

  it("a touch pushes expiry back", async () => {
    const id = freshId("s")
    await send("session", id, { type: "Open", user: "carol", ttlSeconds: 1 })
    await new Promise((resolve) => setTimeout(resolve, 600))
    await send("session", id, { type: "Touch" })
    await new Promise((resolve) => setTimeout(resolve, 600))
    await runDurableObjectAlarm(env.SESSION.getByName(devName(id)))
    expect((await json(await get(`/v1/session/${id}`))).body.state.status).toBe("open")
  })
})
