import { createExecutionContext, env, runDurableObjectAlarm } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import { scopedName } from "../../src/actors/names.js"
import worker from "../../src/edge/worker.js"
import { BASE, freshId, get, json, send } from "./helpers.js"
import { devName } from "./helpers.js"

const events = async (id: string) => (await json(await get(`/v1/session/${id}/events`))).body.events as Array<any>

describe("sessions", () => {
  it("opens, grants, touches and closes; commands on a closed session are refused", async () => {
    const id = freshId("s")
    expect((await send("session", id, { type: "Open", ttlSeconds: 600, attributes: { plan: "pro" } })).status).toBe(200)
    await send("session", id, { type: "Grant", tool: "counter_increment" })
    await send("session", id, { type: "Grant", tool: "counter_increment" }) // already granted: appends nothing
    await send("session", id, { type: "SetConfig", key: "theme", value: "dark" })
    await send("session", id, { type: "Touch" })
    const { state } = (await json(await get(`/v1/session/${id}`))).body
    const expected = { grants: ["counter_increment"], config: { theme: "dark" }, attributes: { plan: "pro" } }
    expect(state).toMatchObject({ status: "open", user: "anonymous", ...expected })
    expect((await events(id)).map((e) => e.type)).toEqual(["Opened", "Granted", "ConfigSet", "Touched"])
    await send("session", id, { type: "Close" })
    expect((await json(await send("session", id, { type: "Touch" }))).body.error.code).toBe("session_closed")
  })

  it("expires by alarm when the TTL passes without a touch: one Expired even if the alarm runs twice", async () => {
    const id = freshId("s")
    await send("session", id, { type: "Open", ttlSeconds: 1 })
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
    await send("session", id, { type: "Open", user: "anonymous", ttlSeconds: 1 })
    await new Promise((resolve) => setTimeout(resolve, 600))
    await send("session", id, { type: "Touch" })
    await new Promise((resolve) => setTimeout(resolve, 600))
    await runDurableObjectAlarm(env.SESSION.getByName(devName(id)))
    expect((await json(await get(`/v1/session/${id}`))).body.state.status).toBe("open")
  })
})

describe("session ownership (auth on)", () => {
  const SECRET = "session-test-secret-" + crypto.randomUUID()
  const token = (sub: string, scope: string) =>
    new SignJWT({ sub, scope, tenant: "acme" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(SECRET))
  const authed = { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET } as never
  const command = async (id: string, as: string, body: unknown) => {
    const request = new Request(`${BASE}/v1/session/${id}/commands`, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { Authorization: `Bearer ${as}`, "content-type": "application/json" },
    })
    return json(await worker.fetch(request, authed, createExecutionContext()))
  }
  const read = async (id: string, as: string) => {
    const request = new Request(`${BASE}/v1/session/${id}/events`, { headers: { Authorization: `Bearer ${as}` } })
    return (await json(await worker.fetch(request, authed, createExecutionContext()))).body.events as Array<any>
  }

  it("lets only the session's own user open and touch it; another writer changes nothing", async () => {
    const id = freshId("alice")
    const alice = await token("alice", "read write")
    const mallory = await token("mallory", "read write")
    // Nobody opens a session for someone else.
    expect(await command(id, mallory, { type: "Open", user: "alice", ttlSeconds: 600 })).toMatchObject({
      status: 403,
      body: { error: { code: "not_session_owner" } },
    })
    expect((await command(id, alice, { type: "Open", ttlSeconds: 600 })).body.state).toMatchObject({ status: "open", user: "alice" })
    const attempts: Array<{ type: string } & Record<string, unknown>> = [{ type: "Touch" }, { type: "Close" }]
    attempts.push({ type: "SetConfig", key: "k", value: 1 }, { type: "Open", ttlSeconds: 5 })
    for (const body of attempts) {
      const refused = await command(id, mallory, body)
      const expected = body.type === "Open" ? [422, "already_opened"] : [403, "not_session_owner"]
      expect([body.type, refused.status, refused.body.error.code]).toEqual([body.type, ...expected])
    }
    expect((await read(id, alice)).map((e) => e.type)).toEqual(["Opened"])
    expect((await command(id, alice, { type: "Touch" })).status).toBe(200)
  })

  it("needs admin to grant or revoke, even on one's own session", async () => {
    const id = freshId("alice")
    const alice = await token("alice", "read write")
    const admin = await token("root", "read write admin")
    await command(id, alice, { type: "Open", ttlSeconds: 600 })
    expect(await command(id, alice, { type: "Grant", tool: "counter_increment" })).toMatchObject({
      status: 403,
      body: { error: { code: "insufficient_scope", details: { scope: "admin" } } },
    })
    expect((await command(id, admin, { type: "Grant", tool: "counter_increment" })).status).toBe(200)
    expect((await command(id, alice, { type: "Revoke", tool: "counter_increment" })).status).toBe(403)
    expect((await command(id, admin, { type: "Revoke", tool: "counter_increment" })).status).toBe(200)
    expect((await read(id, alice)).map((e) => e.type)).toEqual(["Opened", "Granted", "Revoked"])
  })

  it("reopens a closed or expired session for its owner only, keeping its grants", async () => {
    const id = freshId("alice")
    const alice = await token("alice", "read write")
    const mallory = await token("mallory", "read write admin")
    await command(id, alice, { type: "Open", ttlSeconds: 1 })
    await command(id, mallory, { type: "Grant", tool: "read_state" })
    await command(id, alice, { type: "Close" })
    expect((await command(id, mallory, { type: "Open", ttlSeconds: 600 })).body.error.code).toBe("not_session_owner")
    const reopened = await command(id, alice, { type: "Open", ttlSeconds: 1 })
    expect(reopened.body.state).toMatchObject({ status: "open", user: "alice", grants: ["read_state"] })
    await new Promise((resolve) => setTimeout(resolve, 1100))
    await runDurableObjectAlarm(env.SESSION.getByName(scopedName("acme", id)))
    // Expired (by the alarm, or by time if it has not run yet): the owner may open it again.
    expect((await command(id, alice, { type: "Open", ttlSeconds: 600 })).body.state).toMatchObject({ status: "open" })
  })

  it("keeps config, attributes and grants named like Object.prototype members as plain data", async () => {
    const id = freshId("alice")
    const alice = await token("alice", "read write")
    const admin = await token("root", "write admin")
    const names = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]
    const attributes = JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}')
    expect((await command(id, alice, { type: "Open", ttlSeconds: 600, attributes })).status).toBe(200)
    for (const name of names) {
      expect((await command(id, alice, { type: "SetConfig", key: name, value: name })).status).toBe(200)
      expect((await command(id, admin, { type: "Grant", tool: name })).status).toBe(200)
    }
    const request = new Request(`${BASE}/v1/session/${id}`, { headers: { Authorization: `Bearer ${alice}` } })
    const { state } = (await json(await worker.fetch(request, authed, createExecutionContext()))).body
    expect(Object.keys(state.config).sort()).toEqual([...names].sort())
    for (const name of names) expect(Object.hasOwn(state.config, name) && state.config[name]).toBe(name)
    expect(state.grants).toEqual(names)
    expect(Object.keys(state.attributes).sort()).toEqual(["__proto__", "constructor"])
  })
})
