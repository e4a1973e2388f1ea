// A user's instance: provisioned at sign-in (the session kind's signedIn hook, called as the
// authorization server calls it, against real session actors in the user's tenant), whoami,
// and command tools made safe to re-send by an idempotencyKey, through the MCP SDK's own client.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client"
import { createExecutionContext, env } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import { HttpError } from "../../src/edge/errors.js"
import { kindRegistry, type SignIn } from "../../src/edge/kind.js"
import { counter, document, job, memory, room, session } from "../../src/kinds/index.js"
import { actorApi, BASE, freshId, send } from "./helpers.js"

const served = kindRegistry([counter, document, room, session, job, memory])
const toolsLike = (prefix: string) => served.tools.filter((tool) => tool.startsWith(prefix))
const ACL = `
[default]
tools = ["read_*", "whoami"]

[users.{login}]
tools = ["counter_*", "verify_log", "no_such_tool"]
`

/** A fresh GitHub user: a login with capitals (tenant = the login lowercased) and an id of its own. */
const freshUser = () => {
  const login = freshId("Gh")
  return { login, tenant: login.toLowerCase(), githubId: Math.floor(Math.random() * 1e9) }
}
type User = ReturnType<typeof freshUser>

const signInOf = (user: User, event: SignIn["event"] = "signed-in", at = Date.now()): SignIn => ({
  event,
  login: user.login,
  tenant: user.tenant,
  githubId: user.githubId,
  clientId: "client-1",
  clientName: "Claude",
  scopes: ["read", "write"],
  at,
})

const sessionOf = (user: User) => actorApi("session", user.login, user.tenant)
const signedIn = (user: User, settings: Record<string, unknown> = {}, signIn = signInOf(user)) =>
  session.signedIn!((id) => actorApi("session", id, user.tenant), signIn, {
    env: { ...env, ...settings } as never,
    tools: served.tools,
  })
const eventsOf = async (user: User) => {
  const reply = await sessionOf(user).readEvents(0, 100)
  if (!reply.ok) throw new Error(reply.error.message)
  return reply.value.events as ReadonlyArray<{ type: string; data: any; meta: any }>
}
const stateOf = async (user: User) => {
  const reply = await sessionOf(user).readState({})
  if (!reply.ok) throw new Error(reply.error.message)
  return reply.value as { version: number; state: any }
}
const grantsOf = (user: User) =>
  session.toolGrants!((id) => actorApi("session", id, user.tenant), {
    sub: user.login,
    tenant: user.tenant,
    scopes: new Set(["read", "write"]),
  })
const refusalOf = async (work: Promise<unknown>) => {
  const error = await work.then(
    () => undefined,
    (thrown: unknown) => thrown,
  )
  expect(error).toBeInstanceOf(HttpError)
  const { status, code, message } = error as HttpError
  return { status, code, message }
}

describe("provisioning at sign-in", () => {
  it("opens the user's session on the first sign-in and, with no ACL configured, leaves the user to its scopes", async () => {
    const user = freshUser()
    await signedIn(user)
    const { state } = await stateOf(user)
    expect(state).toMatchObject({ status: "open", user: user.login, githubId: user.githubId, scopesOnly: true })
    expect(state.ttlSeconds).toBe(30 * 24 * 3600)
    const events = await eventsOf(user)
    expect(events.map((e) => e.type)).toEqual(["Opened", "SignedIn", "AclApplied"])
    expect(events[1]!.data).toMatchObject({ client: "client-1", clientName: "Claude", scopes: ["read", "write"] })
    expect(events[1]!.data.githubId).toBe(user.githubId)
    expect(events[2]!.data).toMatchObject({ tools: null, source: "none", section: null })
    // The log's principal is the user: the audit trail says who.
    expect(events.every((e) => e.meta.principal === user.login)).toBe(true)
    expect(await grantsOf(user)).toBeUndefined()
  })

  it("applies the user's own section (login matched case-insensitively), patterns expanded, else [default]", async () => {
    const alice = freshUser()
    const carol = freshUser()
    const settings = { TOOL_ACL: ACL.replace("{login}", alice.login.toLowerCase()) }
    await signedIn(alice, settings)
    await signedIn(carol, settings)
    expect([...(await grantsOf(alice))!]).toEqual([...toolsLike("counter_"), "verify_log"])
    expect([...(await grantsOf(carol))!]).toEqual(["read_state", "read_events", "whoami"])
    const applied = (await eventsOf(alice)).find((e) => e.type === "AclApplied")!.data
    expect(applied).toMatchObject({
      source: "TOOL_ACL",
      section: `users.${alice.login.toLowerCase()}`,
      unmatched: ["no_such_tool"],
    })
    expect((await eventsOf(carol)).find((e) => e.type === "AclApplied")!.data.section).toBe("default")
    expect((await stateOf(alice)).state.scopesOnly).toBe(false)
  })

  it("reapplies the ACL at every sign-in and refresh: grants what is missing, revokes what is extra", async () => {
    const user = freshUser()
    await signedIn(user, { TOOL_ACL: `[default]\ntools = ["counter_*"]` })
    const before = (await eventsOf(user)).length
    // A refresh under the same ACL only records the refresh, which touches the session.
    const expiresAt = (await stateOf(user)).state.expiresAt
    await signedIn(user, { TOOL_ACL: `[default]\ntools = ["counter_*"]` }, signInOf(user, "refreshed"))
    expect((await eventsOf(user)).slice(before).map((e) => e.type)).toEqual(["Refreshed"])
    expect((await stateOf(user)).state.expiresAt).toBeGreaterThanOrEqual(expiresAt)
    await signedIn(
      user,
      { TOOL_ACL: `[default]\ntools = ["counter_reset", "read_state"]` },
      signInOf(user, "refreshed"),
    )
    const changed = (await eventsOf(user)).slice(before + 1)
    expect(changed.map((e) => [e.type, e.data.tool])).toEqual([
      ["Refreshed", undefined],
      ["Granted", "read_state"],
      ...toolsLike("counter_")
        .filter((tool) => tool !== "counter_reset")
        .map((tool) => ["Revoked", tool]),
      ["AclApplied", undefined],
    ])
    expect([...(await grantsOf(user))!].sort()).toEqual(["counter_reset", "read_state"])
    // The ACL removed: scopes alone again, and the event says so.
    await signedIn(user)
    expect(await grantsOf(user)).toBeUndefined()
    expect((await eventsOf(user)).at(-1)!.data).toMatchObject({ tools: null, source: "none" })
  })

  it("an ACL section's scopes cap the token: the hook answers the cap, the log records what the token gets", async () => {
    const user = freshUser()
    const capped = { TOOL_ACL: `[default]\ntools = ["read_*"]\nscopes = ["read"]` }
    expect(await signedIn(user, capped)).toEqual({ scopes: ["read"] })
    const signedInEvent = (await eventsOf(user)).find((event) => event.type === "SignedIn")
    expect(signedInEvent?.data.scopes).toEqual(["read"])
    expect((await eventsOf(user)).at(-1)).toMatchObject({ type: "AclApplied", data: { scopes: ["read"] } })
    // Nothing asked is left: refused, and nothing recorded.
    const { version } = await stateOf(user)
    const writeOnly = { ...signInOf(user), scopes: ["write"] }
    expect(await refusalOf(signedIn(user, capped, writeOnly))).toMatchObject({ status: 403, code: "no_scopes_left" })
    expect((await stateOf(user)).version).toBe(version)
    // A section without scopes sets no cap.
    expect(await signedIn(freshUser(), { TOOL_ACL: `[default]\ntools = ["*"]` })).toEqual({})
    const invalid = { TOOL_ACL: `[default]\ntools = ["*"]\nscopes = ["operator"]` }
    expect(await refusalOf(signedIn(freshUser(), invalid))).toMatchObject({
      status: 503,
      code: "sign_in_misconfigured",
    })
  })

  it("a refresh never reopens a session its user closed; the next sign-in does, keeping the user's attributes", async () => {
    const user = freshUser()
    const acl = { TOOL_ACL: `[default]\ntools = ["whoami"]` }
    await signedIn(user, acl)
    const close = await sessionOf(user).command({ command: { type: "Close" }, principal: user.login })
    expect(close.ok).toBe(true)
    expect(await grantsOf(user)).toEqual(new Set())
    const { version } = await stateOf(user)
    const refusal = await refusalOf(signedIn(user, acl, signInOf(user, "refreshed")))
    expect(refusal.status).toBeLessThan(500)
    expect(refusal.code).toBe("session_closed")
    expect((await stateOf(user)).version).toBe(version)
    await signedIn(user, acl)
    const reopened = ["Closed", "Opened", "SignedIn", "AclApplied"]
    expect((await eventsOf(user)).slice(-4).map((e) => e.type)).toEqual(reopened)
    expect((await stateOf(user)).state.status).toBe("open")
    expect(await grantsOf(user)).toEqual(new Set(["whoami"]))
  })

  it("once the ACL manages a session, the user's own admin scope cannot grant past it; an operator can", async () => {
    const user = freshUser()
    await signedIn(user, { TOOL_ACL: `[default]\ntools = ["whoami"]` })
    const grant = { type: "Grant", tool: "counter_increment" }
    const asAdmin = await sessionOf(user).command({
      command: grant,
      principal: user.login,
      scopes: ["read", "write", "admin"],
    })
    expect(asAdmin.ok ? "granted" : asAdmin.error.code).toBe("acl_managed")
    expect(await grantsOf(user)).toEqual(new Set(["whoami"]))
    const asOperator = await sessionOf(user).command({
      command: grant,
      principal: "ops",
      scopes: ["admin", "operator"],
    })
    expect(asOperator.ok).toBe(true)
    expect(await grantsOf(user)).toEqual(new Set(["whoami", "counter_increment"]))
  })

  it("refuses a sign-in under a known login with another GitHub id, appending nothing", async () => {
    const user = freshUser()
    await signedIn(user)
    const { version } = await stateOf(user)
    const impostor = { ...user, githubId: user.githubId + 1 }
    const refusal = await refusalOf(signedIn(impostor))
    expect(refusal).toMatchObject({ status: 403, code: "github_id_mismatch" })
    expect(refusal.message).toMatch(/renamed or re-registered/)
    expect((await stateOf(user)).version).toBe(version)
  })

  it("binds the GitHub id to the tenant: a case variant of the login under another id is refused too", async () => {
    const user = freshUser()
    await signedIn(user)
    const lower = { ...user, login: user.tenant, githubId: user.githubId + 1 }
    const upper = { ...user, login: user.login.toUpperCase(), githubId: user.githubId + 1 }
    expect(await refusalOf(signedIn(lower))).toMatchObject({ status: 403, code: "github_id_mismatch" })
    expect(await refusalOf(signedIn(upper))).toMatchObject({ status: 403, code: "github_id_mismatch" })
    expect((await stateOf(lower)).state).toMatchObject({ status: "new", githubId: user.githubId })
    expect((await stateOf(upper)).version).toBe(0)
    // The same GitHub user renamed to another spelling of the login is still its own tenant's user.
    const renamed = { ...user, login: user.tenant }
    await signedIn(renamed)
    expect((await stateOf(renamed)).state).toMatchObject({ status: "open", githubId: user.githubId })
    // A session that only binds the id limits no tool: its principal never opened it.
    expect(await grantsOf({ ...user, login: user.login.toUpperCase() })).toBeUndefined()
  })

  it("refuses every sign-in while the ACL is invalid or misconfigured, with a message that says why", async () => {
    const user = freshUser()
    const invalid = await refusalOf(signedIn(user, { TOOL_ACL: `[default]\ntool = ["*"]` }))
    expect(invalid).toMatchObject({ status: 503, code: "sign_in_misconfigured" })
    expect(invalid.message).toMatch(/^The tool ACL \(TOOL_ACL\) is invalid: \[default\] has an unknown key "tool"/)
    const unbound = await refusalOf(signedIn(user, { TOOL_ACL_KEY: "acl.toml" }))
    expect(unbound.message).toMatch(/no R2 bucket CONFIG_BUCKET/)
    const twice = await refusalOf(signedIn(user, { TOOL_ACL: "[default]\ntools=[]", TOOL_ACL_KEY: "acl.toml" }))
    expect(twice.message).toMatch(/Both TOOL_ACL and TOOL_ACL_KEY/)
    const ttl = await refusalOf(signedIn(user, { SESSION_TTL_SECONDS: "forever" }))
    expect(ttl.message).toMatch(/SESSION_TTL_SECONDS/)
    expect((await stateOf(user)).version).toBe(0)
  })

  it("lets a refresh through while the ACL is invalid, keeping the grants the session has", async () => {
    const user = freshUser()
    await signedIn(user, { TOOL_ACL: `[default]\ntools = ["whoami", "read_state"]` })
    const before = (await eventsOf(user)).length
    await signedIn(user, { TOOL_ACL: "[default\n" }, signInOf(user, "refreshed"))
    expect((await eventsOf(user)).slice(before).map((e) => e.type)).toEqual(["Refreshed"])
    expect(await grantsOf(user)).toEqual(new Set(["whoami", "read_state"]))
    // A sign-in is refused all the same.
    expect(await refusalOf(signedIn(user, { TOOL_ACL: "[default\n" }))).toMatchObject({ status: 503 })
  })

  it("reads the ACL from R2 (CONFIG_BUCKET, TOOL_ACL_KEY) at each sign-in", async () => {
    const user = freshUser()
    const key = `acl/${freshId()}.toml`
    const settings = { CONFIG_BUCKET: env.MEMORY_BUCKET, TOOL_ACL_KEY: key }
    const missing = await refusalOf(signedIn(user, settings))
    expect(missing.message).toBe(`The tool ACL CONFIG_BUCKET/${key} does not exist`)
    await env.MEMORY_BUCKET.put(key, `[users.${user.login}]\ntools = ["document_*"]`)
    await signedIn(user, settings)
    expect((await eventsOf(user)).at(-1)!.data).toMatchObject({ source: `CONFIG_BUCKET/${key}` })
    expect([...(await grantsOf(user))!]).toEqual(served.tools.filter((tool) => tool.startsWith("document_")))
    await env.MEMORY_BUCKET.delete(key)
  })

  it("keeps SignIn emberlog's own: no client sends it, over HTTP or as an MCP tool", async () => {
    const user = freshUser()
    const forged = { type: "SignIn", event: "signed-in", login: "anonymous", githubId: 1, client: "x", scopes: [] }
    const acl = { tools: ["*"], source: "TOOL_ACL", section: "default", unmatched: [] }
    const response = await send("session", "anonymous", { ...forged, ttlSeconds: 60, acl })
    expect(response.status).toBe(400)
    expect(((await response.json()) as any).error.code).toBe("internal_command")
    expect(served.tools).not.toContain("session_sign_in")
    expect((await stateOf(user)).version).toBe(0)
  })
})

const SECRET = "provisioning-test-secret-" + crypto.randomUUID()
const authed = { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET } as never
/** A token as the OAuth server's principal is: sub the login, tenant the login lowercased. */
const tokenOf = (user: User, scope = "read write") =>
  new SignJWT({ sub: user.login, tenant: user.tenant, scope })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(SECRET))
const fetchWorker = (input: string | URL | Request, init?: RequestInit) =>
  worker.fetch(new Request(input, init), authed, createExecutionContext())

/** The MCP SDK's own client over Streamable HTTP, its requests answered by the Worker. */
const mcpClient = async (token: string) => {
  const client = new Client({ name: "provisioning-test", version: "1" })
  const transport = new StreamableHTTPClientTransport(new URL(`${BASE}/mcp`), {
    fetch: fetchWorker,
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  })
  await client.connect(transport)
  return client
}
const errorOf = (result: { content?: unknown }) =>
  JSON.parse((result.content as Array<{ text: string }>)[0]!.text).error as { code: string; message: string }

describe("whoami", () => {
  it("shows a signed-in user what the server sees, the same through MCP and GET /v1/whoami", async () => {
    const user = freshUser()
    await signedIn(user, { TOOL_ACL: `[users.${user.login}]\ntools = ["counter_*"]` })
    const token = await tokenOf(user)
    const client = await mcpClient(token)
    const whoami = await client.callTool({ name: "whoami", arguments: {} })
    expect(whoami.isError).toBeFalsy()
    expect(whoami.structuredContent).toEqual({
      principal: user.login,
      tenant: user.tenant,
      scopes: ["read", "write"],
      // whoami is always granted: a user the ACL locks out can still see why.
      tools: [...toolsLike("counter_"), "whoami"],
      expiresAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/),
    })
    expect(Date.parse((whoami.structuredContent as any).expiresAt)).toBeGreaterThan(Date.now())
    // What it says is what the server enforces.
    expect(errorOf(await client.callTool({ name: "read_state", arguments: { kind: "counter", id: "c" } })).code).toBe(
      "tool_not_granted",
    )
    const response = await fetchWorker(`${BASE}/v1/whoami`, { headers: { Authorization: `Bearer ${token}` } })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual(whoami.structuredContent)
    await client.close()
  })

  it("says tools: null for a user no ACL limits, and needs the read scope", async () => {
    const user = freshUser()
    const response = await fetchWorker(`${BASE}/v1/whoami`, {
      headers: { Authorization: `Bearer ${await tokenOf(user)}` },
    })
    expect(await response.json()).toMatchObject({ principal: user.login, tools: null })
    const writeOnly = await fetchWorker(`${BASE}/v1/whoami`, {
      headers: { Authorization: `Bearer ${await tokenOf(user, "write")}` },
    })
    expect(writeOnly.status).toBe(403)
    expect(((await writeOnly.json()) as any).error.code).toBe("insufficient_scope")
  })
})

describe("idempotent command tools", () => {
  it("apply a call re-sent with the same idempotencyKey once, and say the answer is a replay", async () => {
    const user = freshUser()
    const client = await mcpClient(await tokenOf(user))
    const id = freshId("c")
    const call = { name: "counter_increment", arguments: { id, command: { by: 5 }, idempotencyKey: "retry-1" } }
    const first = await client.callTool(call)
    expect(first.structuredContent).toMatchObject({ version: 1, state: { value: 5 }, replayed: false })
    const again = await client.callTool(call)
    expect(again.isError).toBeFalsy()
    expect(again.structuredContent).toEqual({ ...(first.structuredContent as object), replayed: true })
    // The same key for another command is refused; a key outside the Idempotency-Key rule is invalid.
    const reused = await client.callTool({ ...call, arguments: { ...call.arguments, command: { by: 6 } } })
    expect(errorOf(reused).code).toBe("idempotency_key_reused")
    const invalid = await client.callTool({ ...call, arguments: { ...call.arguments, idempotencyKey: "two words" } })
    expect(invalid.isError).toBe(true)
    const state = await client.callTool({ name: "read_state", arguments: { kind: "counter", id } })
    expect(state.structuredContent).toMatchObject({ version: 1, state: { value: 5 } })
    // Without a key, each call applies.
    await client.callTool({ name: "counter_increment", arguments: { id, command: { by: 1 } } })
    await client.callTool({ name: "counter_increment", arguments: { id, command: { by: 1 } } })
    const after = await client.callTool({ name: "read_state", arguments: { kind: "counter", id } })
    expect(after.structuredContent).toMatchObject({ version: 3, state: { value: 7 } })
    await client.close()
  })

  it("make the memory tools' writes safe to re-send too: a forget re-sent with its key answers alike", async () => {
    const client = await mcpClient(await tokenOf(freshUser()))
    const namespace = freshId("notes")
    const store = { name: "store_memory", arguments: { namespace, content: "milk", idempotencyKey: "store-1" } }
    const stored = (await client.callTool(store)).structuredContent as { hash: string }
    expect(stored).toMatchObject({ stored: true, replayed: false })
    expect((await client.callTool(store)).structuredContent).toMatchObject({ stored: true, replayed: true })
    const forget = { name: "delete_memory", arguments: { namespace, hash: stored.hash, idempotencyKey: "forget-1" } }
    expect((await client.callTool(forget)).structuredContent).toMatchObject({ forgotten: true, replayed: false })
    expect((await client.callTool(forget)).structuredContent).toMatchObject({ forgotten: true, replayed: true })
    const unkeyed = await client.callTool({ name: "delete_memory", arguments: { namespace, hash: stored.hash } })
    expect(errorOf(unkeyed).code).toBe("unknown_memory")
    await client.close()
  })
})
