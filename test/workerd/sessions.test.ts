import { createExecutionContext, env, runDurableObjectAlarm } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import { scopedName } from "../../src/core/names.js"
import worker from "../../src/app.js"
import { actorObject, BASE, freshId, get, json, send } from "./helpers.js"

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
const stateOf = async (id: string, as: string) => {
  const request = new Request(`${BASE}/v1/session/${id}`, { headers: { Authorization: `Bearer ${as}` } })
  return (await json(await worker.fetch(request, authed, createExecutionContext()))).body.state
}
/** A session's id names its user: a fresh user, with every scope, for the lifecycle tests. */
const freshUser = async () => {
  const id = freshId("u")
  return { id, as: await token(id, "read write admin") }
}

describe("sessions", () => {
  it("opens, grants, touches and closes; commands on a closed session are refused", async () => {
    const { id, as } = await freshUser()
    expect((await command(id, as, { type: "Open", ttlSeconds: 600, attributes: { plan: "pro" } })).status).toBe(200)
    await command(id, as, { type: "Grant", tool: "counter_increment" })
    await command(id, as, { type: "Grant", tool: "counter_increment" }) // already granted: appends nothing
    await command(id, as, { type: "SetConfig", key: "theme", value: "dark" })
    await command(id, as, { type: "Touch" })
    const state = await stateOf(id, as)
    const expected = { grants: ["counter_increment"], config: { theme: "dark" }, attributes: { plan: "pro" } }
    expect(state).toMatchObject({ status: "open", user: id, ...expected })
    expect((await read(id, as)).map((e) => e.type)).toEqual(["Opened", "Granted", "ConfigSet", "Touched"])
    await command(id, as, { type: "Close" })
    expect((await command(id, as, { type: "Touch" })).body.error.code).toBe("session_closed")
  })

  it("expires by alarm when the TTL passes without a touch: one Expired even if the alarm runs twice", async () => {
    const { id, as } = await freshUser()
    await command(id, as, { type: "Open", ttlSeconds: 1 })
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const stub = actorObject("session", id, "acme")
    await runDurableObjectAlarm(stub)
    await runDurableObjectAlarm(stub)
    // The platform may also have run it on its own by now; either way there is exactly one.
    expect((await read(id, as)).filter((e) => e.type === "Expired")).toHaveLength(1)
    expect((await stateOf(id, as)).status).toBe("expired")
    const refused = await command(id, as, { type: "Grant", tool: "x" })
    expect(refused).toMatchObject({ status: 422, body: { error: { code: "session_expired" } } })
    // Expire is the alarm's command; clients cannot send it.
    expect((await command(id, as, { type: "Expire" })).body.error.code).toBe("internal_command")
  })

  it("a touch pushes expiry back", async () => {
    const { id, as } = await freshUser()
    await command(id, as, { type: "Open", user: id, ttlSeconds: 1 })
    await new Promise((resolve) => setTimeout(resolve, 600))
    await command(id, as, { type: "Touch" })
    await new Promise((resolve) => setTimeout(resolve, 600))
    await runDurableObjectAlarm(actorObject("session", id, "acme"))
    expect((await stateOf(id, as)).status).toBe("open")
  })

  it("with auth off, the one principal (anonymous) opens only session/anonymous", async () => {
    const id = freshId("s")
    expect(await json(await send("session", id, { type: "Open", ttlSeconds: 600 }))).toMatchObject({
      status: 403,
      body: { error: { code: "not_session_owner" } },
    })
    expect((await json(await get(`/v1/session/${id}`))).body.version).toBe(0)
    const own = await json(await send("session", "anonymous", { type: "Open", ttlSeconds: 600 }))
    expect(own).toMatchObject({ status: 200, body: { state: { status: "open", user: "anonymous" } } })
    expect((await send("session", "anonymous", { type: "Close" })).status).toBe(200)
  })
})

describe("session ownership (auth on)", () => {
  it("lets only the session's own user open and touch it; another writer changes nothing", async () => {
    const id = freshId("alice")
    const alice = await token(id, "read write")
    const mallory = await token("mallory", "read write")
    // Nobody opens a session for someone else.
    expect(await command(id, mallory, { type: "Open", user: id, ttlSeconds: 600 })).toMatchObject({
      status: 403,
      body: { error: { code: "not_session_owner" } },
    })
    const opened = (await command(id, alice, { type: "Open", ttlSeconds: 600 })).body.state
    expect(opened).toMatchObject({ status: "open", user: id })
    const attempts: Array<{ type: string } & Record<string, unknown>> = [{ type: "Touch" }, { type: "Close" }]
    attempts.push({ type: "SetConfig", key: "k", value: 1 }, { type: "Open", ttlSeconds: 5 })
    for (const body of attempts) {
      const refused = await command(id, mallory, body)
      // Open too: whether the session is open is none of another writer's business.
      expect([body.type, refused.status, refused.body.error.code]).toEqual([body.type, 403, "not_session_owner"])
    }
    expect((await read(id, alice)).map((e) => e.type)).toEqual(["Opened"])
    expect((await command(id, alice, { type: "Touch" })).status).toBe(200)
  })

  it("belongs to the principal its id names: opening it first (user omitted) takes nothing over", async () => {
    const id = freshId("alice")
    const alice = await token(id, "read write")
    const mallory = await token("mallory", "read write admin")
    const admin = await token("root", "read write admin")
    // Even with admin, nobody opens session/{sub} but sub; before or after sub has opened it.
    for (const body of [{ type: "Open", ttlSeconds: 600 }, { type: "Touch" }]) {
      const refused = await command(id, mallory, body)
      expect(refused).toMatchObject({ status: 403, body: { error: { code: "not_session_owner" } } })
    }
    expect(await read(id, alice)).toEqual([])
    const opened = (await command(id, alice, { type: "Open", ttlSeconds: 600 })).body.state
    expect(opened).toMatchObject({ status: "open", user: id })
    expect((await command(id, admin, { type: "Grant", tool: "read_state" })).status).toBe(200)
    expect((await command(id, mallory, { type: "Open", ttlSeconds: 600 })).body.error.code).toBe("not_session_owner")
    const log = (await read(id, alice)).map((e) => [e.type, e.meta.principal])
    expect(log).toEqual([
      ["Opened", id],
      ["Granted", "root"],
    ])
  })

  it("needs admin to grant or revoke, even on one's own session", async () => {
    const id = freshId("alice")
    const alice = await token(id, "read write")
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
    const alice = await token(id, "read write")
    const mallory = await token("mallory", "read write admin")
    await command(id, alice, { type: "Open", ttlSeconds: 1 })
    await command(id, mallory, { type: "Grant", tool: "read_state" })
    await command(id, alice, { type: "Close" })
    expect((await command(id, mallory, { type: "Open", ttlSeconds: 600 })).body.error.code).toBe("not_session_owner")
    const reopened = await command(id, alice, { type: "Open", ttlSeconds: 1 })
    expect(reopened.body.state).toMatchObject({ status: "open", user: id, grants: ["read_state"] })
    await new Promise((resolve) => setTimeout(resolve, 1100))
    await runDurableObjectAlarm(actorObject("session", id, "acme"))
    // Expired (by the alarm, or by time if it has not run yet): the owner may open it again.
    expect((await command(id, alice, { type: "Open", ttlSeconds: 600 })).body.state).toMatchObject({ status: "open" })
  })

  it("keeps config, attributes and grants named like Object.prototype members as plain data", async () => {
    const id = freshId("alice")
    const alice = await token(id, "read write")
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
