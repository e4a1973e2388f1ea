import { abortAllDurableObjects, createExecutionContext, env, runInDurableObject } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import {
  DeletionCoordinator,
  deletionFaults,
  deletionName,
  type DeletionStatus,
  type TenantEraser,
} from "../../src/actors/deletion.js"
import { directoryName, type DirectoryMethods } from "../../src/actors/directory.js"
import { actorName, scopedName } from "../../src/core/names.js"
import { createClient } from "../../src/client/index.js"
import { BASE, freshId } from "./helpers.js"

const SECRET = "tenants-test-secret-" + crypto.randomUUID()

const token = (sub: string, scope: string, tenant = sub) =>
  new SignJWT({ sub, scope, tenant })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(SECRET))

/** The Worker with JWT auth on, as in production (the project runs with AUTH_MODE=off). */
const call = async (path: string, bearer: string, init: RequestInit = {}) => {
  const headers = new Headers(init.headers)
  headers.set("Authorization", `Bearer ${bearer}`)
  const response = await worker.fetch(
    new Request(new URL(path, BASE), { ...init, headers }),
    { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET } as never,
    createExecutionContext(),
  )
  const text = await response.text()
  let body: any = text
  try {
    body = JSON.parse(text)
  } catch {
    // An SSE answer (MCP) stays text.
  }
  return { status: response.status, body, headers: response.headers }
}

/** The typed client as an app builds it, reaching the Worker (auth on) without the network. */
const clientOf = (bearer: string) =>
  createClient({
    baseUrl: BASE,
    token: bearer,
    fetch: (input, init) =>
      worker.fetch(
        new Request(input, init),
        { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET } as never,
        createExecutionContext(),
      ),
  })

/** A WebSocket subscription through the Worker, and its close code once it closes. */
const subscription = async (path: string, bearer: string): Promise<{ readonly closed: Promise<number> }> => {
  const response = await worker.fetch(
    new Request(new URL(path, BASE), { headers: { Upgrade: "websocket", Authorization: `Bearer ${bearer}` } }),
    { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET } as never,
    createExecutionContext(),
  )
  expect(response.status).toBe(101)
  const ws = response.webSocket!
  const closed = new Promise<number>((resolve) => ws.addEventListener("close", (event) => resolve(event.code)))
  ws.accept()
  return { closed }
}

const command = (bearer: string, kind: string, id: string, body: unknown) =>
  call(`/v1/${kind}/${id}/commands`, bearer, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  })

const mcp = (bearer: string, message: unknown, sessionId?: string) =>
  call("/mcp", bearer, {
    method: "POST",
    body: JSON.stringify(message),
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" }),
    },
  })

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "tenants-test", version: "1" } },
}

/** Polls until the assertion holds: the outbox and alarms run a little after the request that started them. */
const eventually = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 15_000 })

const listed = async (bearer: string, query = "") => (await call(`/v1/actors${query}`, bearer)).body

/** A tenant of its own per test: tenants never share a directory. */
const tenantNamed = (name: string) => freshId(name).toLowerCase()

describe("the tenant directory", () => {
  it("lists every actor a tenant appended to, by kind and prefix, a page at a time, and nothing of other tenants", async () => {
    const alice = tenantNamed("alice")
    const bob = tenantNamed("bob")
    const aliceToken = await token(alice, "read write")
    const bobToken = await token(bob, "read write")
    for (const id of ["b-2", "a-1", "b-1"]) await command(aliceToken, "counter", id, { type: "Increment", by: 1 })
    await command(aliceToken, "document", "notes", { type: "Create", title: "t", content: "hi" })
    // Read, refused or never written: not listed.
    await call("/v1/counter/only-read", aliceToken)
    await command(aliceToken, "counter", "refused", { type: "Increment", by: "x" })
    await command(bobToken, "counter", "bobs", { type: "Increment", by: 1 })

    // Delivered through the outbox, which trails the commit by a few ms.
    await eventually(async () => (await listed(aliceToken)).actors?.length).toBe(4)
    const all = await listed(aliceToken)
    expect(all.actors.map((a: any) => `${a.kind}/${a.id}`)).toEqual([
      "counter/a-1",
      "counter/b-1",
      "counter/b-2",
      "document/notes",
    ])
    expect(all.next).toBeNull()
    expect(Date.parse(all.actors[0].listedAt)).toBeGreaterThan(0)
    expect((await listed(aliceToken, "?kind=document")).actors.map((a: any) => a.id)).toEqual(["notes"])
    expect((await listed(aliceToken, "?kind=counter&prefix=b-")).actors.map((a: any) => a.id)).toEqual(["b-1", "b-2"])

    // A page at a time, with the typed client.
    const emberlog = clientOf(aliceToken)
    const seen: Array<string> = []
    let cursor: string | undefined
    for (let pages = 0; pages === 0 || cursor !== undefined; pages++) {
      expect(pages).toBeLessThan(4)
      const page = await emberlog.actors({ limit: 1, cursor })
      expect(page.actors).toHaveLength(1)
      seen.push(`${page.actors[0]!.kind}/${page.actors[0]!.id}`)
      cursor = page.next ?? undefined
    }
    expect(seen).toEqual(all.actors.map((a: any) => `${a.kind}/${a.id}`))

    await eventually(async () => (await listed(bobToken)).actors?.length).toBe(1)
    expect((await listed(bobToken)).actors.map((a: any) => a.id)).toEqual(["bobs"])
    // An operator lists any tenant's; the tenant itself only its own.
    const operator = await token("ops", "read operator", "ops")
    expect((await call(`/v1/admin/tenants/${alice}/actors?kind=document`, operator)).body.actors).toMatchObject([
      { kind: "document", id: "notes" },
    ])
    expect((await call(`/v1/admin/tenants/${alice}/actors`, bobToken)).body.error.code).toBe("insufficient_scope")
  })

  it("refuses bad queries and changes nothing", async () => {
    const who = await token(tenantNamed("carol"), "read")
    const refusals = [
      ["?kind=nope", 404, "unknown_kind"],
      ["?limit=0", 400, "invalid_query"],
      ["?limit=1001", 400, "invalid_query"],
      ["?prefix=%2F", 400, "invalid_query"],
      ["?cursor=not-a-cursor", 400, "invalid_query"],
    ] as const
    for (const [query, status, code] of refusals) {
      const response = await call(`/v1/actors${query}`, who)
      expect([query, response.status, response.body.error?.code]).toEqual([query, status, code])
    }
    expect((await call("/v1/actors", await token("dave", "write"))).body.error.code).toBe("insufficient_scope")
    // A token without a tenant claim is of its sub's own tenant, `user:{sub}`, named escaped in the path.
    const personal = await new SignJWT({ sub: "dave", scope: "admin" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(SECRET))
    expect((await call("/v1/tenants/user%3Adave/deletion", personal)).body.error.code).toBe("no_deletion")
    expect((await call("/v1/tenants/dave/deletion", personal)).body.error.code).toBe("wrong_tenant")
  })

  it("lists an actor whose object crashed right after its first commit", async () => {
    const erin = tenantNamed("erin")
    const erinToken = await token(erin, "read write")
    expect((await command(erinToken, "counter", "crashy", { type: "Increment", by: 1 })).status).toBe(200)
    // The outbox row was written with the event; the alarm that delivers it outlives the crash.
    await abortAllDurableObjects()
    await eventually(async () => (await listed(erinToken)).actors?.map((a: any) => a.id)).toEqual(["crashy"])
  })

  it("lists an actor whose log predates the directory when it next wakes", async () => {
    const fay = tenantNamed("fay")
    const fayToken = await token(fay, "read write")
    await command(fayToken, "counter", "old", { type: "Increment", by: 1 })
    await eventually(async () => (await listed(fayToken)).actors?.length).toBe(1)
    // As an object written before the directory existed: no marker, not listed.
    const directory = env.EMBERLOG_TOPIC.getByName(directoryName(fay)) as DurableObjectStub
    await runInDurableObject(directory, (instance: unknown) =>
      (instance as DirectoryMethods).removeFromDirectory([{ type: "actor", kind: "counter", id: "old" }]),
    )
    const actor = env.EMBERLOG_ACTOR.getByName(actorName(fay, "counter", "old"))
    await runInDurableObject(actor, (_instance, state) => state.storage.sql.exec("DROP TABLE emberlog_listed"))
    expect((await listed(fayToken)).actors).toEqual([])
    await abortAllDurableObjects()
    expect((await call("/v1/counter/old", fayToken)).body.version).toBe(1)
    await eventually(async () => (await listed(fayToken)).actors?.map((a: any) => a.id)).toEqual(["old"])
  })
})

const ACTORS = [
  ["counter", "c1"],
  ["counter", "c2"],
  ["document", "d1"],
  ["memory", "m1"],
  ["job", "j1"],
  ["room", "r1"],
] as const

/** Everything the issue names, in one tenant: counters, a document, memories (one in R2), a job, an MCP session. */
const populate = async (tenant: string) => {
  const bearer = await token(tenant, "read write admin")
  await command(bearer, "counter", "c1", { type: "Increment", by: 2 })
  await command(bearer, "counter", "c1", { type: "Increment", by: 3 })
  await command(bearer, "counter", "c2", { type: "Increment", by: 1 }).then(() => undefined)
  await call("/v1/counter/c2/commands", bearer, {
    method: "POST",
    body: JSON.stringify({ type: "Increment", by: 1 }),
    headers: { "content-type": "application/json", "Idempotency-Key": "once" },
  })
  await command(bearer, "document", "d1", { type: "Create", title: "t", content: "secret" })
  await command(bearer, "memory", "m1", { type: "Store", content: "zebrafish remember everything" })
  const large = `zebrafish ${"lorem ipsum dolor sit amet ".repeat(50_000)}`
  expect((await command(bearer, "memory", "m1", { type: "Store", content: large })).status).toBe(200)
  await command(bearer, "job", "j1", { type: "Submit", task: "generate", input: { description: "GET /x" } })
  const init = await mcp(bearer, INITIALIZE)
  expect(init.status).toBe(200)
  const sessionId = init.headers.get("mcp-session-id")!
  // Kept from idling out (MCP_SESSION_IDLE_MS is 400 ms in tests) until the deletion ends it.
  const session = env.EMBERLOG_MCP_SESSION.getByName(scopedName(tenant, sessionId)) as DurableObjectStub
  await runInDurableObject(session, (instance: unknown) => {
    ;(instance as { lastSeen: number }).lastSeen = Date.now() + 10 * 60_000
  })
  const memoryObject = env.EMBERLOG_ACTOR.idFromName(actorName(tenant, "memory", "m1")).toString()
  await eventually(async () => (await env.MEMORY_BUCKET.list({ prefix: `${memoryObject}/` })).objects.length).toBe(1)
  await eventually(() => env.MEMORY_VECTORS.namespaceSize(memoryObject)).toBe(2)
  const sockets = await Promise.all([
    subscription("/v1/counter/c1/ws", bearer),
    subscription("/v1/topics/counter/ws", bearer),
    // A room member: joining is an event; the room must not log its Leave after the deletion.
    subscription("/ws?room=r1&name=ann", bearer),
  ])
  await eventually(async () => (await listed(bearer)).actors?.length).toBe(ACTORS.length)
  await eventually(async () => (await call("/v1/topics/counter/events", bearer)).body.entries?.length).toBe(4)
  let events = 0
  for (const [kind, id] of ACTORS) events += (await call(`/v1/${kind}/${id}`, bearer)).body.version
  return { bearer, sessionId, memoryObject, events, sockets }
}

/** What every route shows of a tenant that was deleted: nothing. */
const expectNothingLeft = async (tenant: string, bearer: string, sessionId: string, memoryObject: string) => {
  for (const [kind, id] of ACTORS) {
    const state = await call(`/v1/${kind}/${id}`, bearer)
    expect([kind, state.status, state.body.version]).toEqual([kind, 200, 0])
    expect((await call(`/v1/${kind}/${id}/events`, bearer)).body).toEqual({ events: [], next: null })
  }
  // An idempotency key used before the deletion is new again.
  const again = await call("/v1/counter/c2/commands", bearer, {
    method: "POST",
    body: JSON.stringify({ type: "Increment", by: 1 }),
    headers: { "content-type": "application/json", "Idempotency-Key": "once" },
  })
  expect([again.headers.get("Idempotent-Replayed"), again.body.version]).toEqual([null, 1])
  expect((await call("/v1/topics/counter/events", bearer)).body.entries).toEqual([])
  expect((await call("/v1/projections/counter-totals", bearer)).body).toMatchObject({ total: 0 })
  expect((await call("/v1/memory/m1/search?q=zebrafish", bearer)).body.items).toEqual([])
  expect((await env.MEMORY_BUCKET.list({ prefix: `${memoryObject}/` })).objects).toEqual([])
  expect(await env.MEMORY_VECTORS.namespaceSize(memoryObject)).toBe(0)
  expect((await mcp(bearer, { jsonrpc: "2.0", id: 2, method: "ping" }, sessionId)).status).toBe(404)
  const session = env.EMBERLOG_MCP_SESSION.getByName(scopedName(tenant, sessionId))
  expect(
    await runInDurableObject(session, async (_instance, state) => ({
      keys: (await state.storage.list()).size,
      alarm: await state.storage.getAlarm(),
    })),
  ).toEqual({ keys: 0, alarm: null })
}

describe("deleting a tenant", () => {
  it("erases every actor, topic, memory (R2 and vectors) and MCP session, leaves other tenants alone, and keeps an audit record", async () => {
    const gina = tenantNamed("gina")
    const hal = tenantNamed("hal")
    const { bearer, sessionId, memoryObject, events, sockets } = await populate(gina)
    const halToken = await token(hal, "read write")
    await command(halToken, "counter", "c1", { type: "Increment", by: 7 })

    // Only the tenant itself with admin, or an operator.
    expect(
      (await call(`/v1/tenants/${gina}`, await token(gina, "read write"), { method: "DELETE" })).body.error.code,
    ).toBe("insufficient_scope")
    expect((await call(`/v1/tenants/${gina}`, await token(hal, "admin"), { method: "DELETE" })).body.error.code).toBe(
      "wrong_tenant",
    )
    expect((await call(`/v1/tenants/${gina}/deletion`, bearer)).status).toBe(404)

    const started = await call(`/v1/tenants/${gina}`, bearer, { method: "DELETE" })
    expect(started.status).toBe(202)
    expect(started.headers.get("Location")).toBe(`/v1/tenants/${gina}/deletion`)
    expect(started.body.deletion).toMatchObject({ tenant: gina, status: "in-progress", requestedBy: gina })
    // The audit names who asked, from which tenant, and by which right.
    expect(started.body.deletion.requester).toEqual({ sub: gina, tenant: gina, as: "admin" })
    // A repeated DELETE while it runs starts nothing new.
    const repeated = await call(`/v1/tenants/${gina}`, bearer, { method: "DELETE" })
    expect(repeated.body.deletion.id).toBe(started.body.deletion.id)

    await eventually(async () => (await call(`/v1/tenants/${gina}/deletion`, bearer)).body.deletion?.status).toBe(
      "done",
    )
    const audit = (await call(`/v1/tenants/${gina}/deletion`, bearer)).body.deletion
    expect(audit).toMatchObject({
      id: started.body.deletion.id,
      requestedBy: gina,
      step: null,
      failure: null,
      passes: 1,
    })
    expect(Date.parse(audit.finishedAt)).toBeGreaterThanOrEqual(Date.parse(audit.requestedAt))
    const erased = Object.fromEntries(audit.steps.map((step: any) => [step.name, step.erased]))
    expect(erased["mcp-sessions"]).toEqual({ sessions: 1, openSessions: 1 })
    expect(erased.actors).toMatchObject({ actors: ACTORS.length, events, memories: 2, r2Objects: 1, vectors: 2 })
    expect(erased.topics.topics).toBeGreaterThanOrEqual(1)
    expect(erased.topics.entries).toBeGreaterThanOrEqual(4)
    expect(audit.steps.every((step: any) => step.status === "done")).toBe(true)
    // The app's own erasers ran too: its OAuth grants (before the objects) and its usage (after).
    expect(audit.steps.map((step: any) => step.name)).toEqual(
      expect.arrayContaining(["oauth-grants", "actors", "topics", "usage"]),
    )

    await expectNothingLeft(gina, bearer, sessionId, memoryObject)
    // The actor's and the topic's subscribers were told: what they followed is gone.
    expect(await Promise.all(sockets.map((socket) => socket.closed))).toEqual([4410, 4410, 4410])
    // The member's socket ended with the room's log: no Leave was appended to the erased room.
    expect((await call("/v1/room/r1", bearer)).body.version).toBe(0)
    // The directory lists again only what was written since (the idempotency check above).
    await eventually(async () => (await listed(bearer)).actors?.map((a: any) => a.id)).toEqual(["c2"])
    // Another tenant is untouched.
    expect((await call("/v1/counter/c1", halToken)).body).toMatchObject({ version: 1, state: { value: 7 } })
    // The audit record outlives the tenant's data (an operator reads it too).
    const operator = await token("ops", "read operator", "ops")
    expect((await call(`/v1/tenants/${gina}/deletion`, operator)).body.deletion.id).toBe(audit.id)
    // An operator deleting another tenant is recorded as such.
    const byOperator = await call(`/v1/tenants/${hal}`, operator, { method: "DELETE" })
    expect(byOperator.body.deletion.requester).toEqual({ sub: "ops", tenant: "ops", as: "operator" })
    await eventually(async () => (await call(`/v1/tenants/${hal}/deletion`, operator)).body.deletion?.status).toBe(
      "done",
    )
  })

  it("a crash in the middle is finished by the alarm, and the status says where it stood meanwhile", async () => {
    const ivy = tenantNamed("ivy")
    const { bearer, sessionId, memoryObject } = await populate(ivy)
    const emberlog = clientOf(bearer).tenant(ivy)
    deletionFaults.failSteps.push("topics")
    const errors = console.warn
    console.warn = () => undefined
    try {
      expect((await emberlog.delete()).status).toBe("in-progress")
      await eventually(async () => (await emberlog.deletion()).failure?.step).toBe("topics")
      const stalled = await emberlog.deletion()
      expect(stalled).toMatchObject({ status: "in-progress", step: "topics" })
      expect(stalled.failure).toMatchObject({ attempts: 1, message: "injected failure of the topics step" })
      expect(stalled.steps.find((step) => step.name === "actors")!.status).toBe("done")
      // The process dies while the deletion waits for its retry: only what is stored survives.
      await abortAllDurableObjects()
      await eventually(async () => (await emberlog.deletion()).status).toBe("done")
    } finally {
      console.warn = errors
    }
    const done = await emberlog.deletion()
    expect(done.failure).toBeNull()
    expect(done.steps.find((step) => step.name === "actors")!.erased).toMatchObject({ actors: ACTORS.length })
    await expectNothingLeft(ivy, bearer, sessionId, memoryObject)
  })
})

describe("a deletion's pluggable erasers", () => {
  it("run in their place (grants before the objects and once more at the end, usage after) on every pass, a failing one is retried, and what the tenant wrote meanwhile is erased on another pass", async () => {
    const tenant = tenantNamed("jo")
    const bearer = await token(tenant, "read write")
    await command(bearer, "counter", "c1", { type: "Increment", by: 1 })
    await eventually(async () => (await listed(bearer)).actors?.length).toBe(1)
    const calls: Array<string> = []
    let usageDown = true
    const erasers: ReadonlyArray<TenantEraser> = [
      {
        name: "usage",
        erase: async (_env, of) => {
          calls.push(`usage ${of}`)
          // The tenant writes while its deletion runs: that actor is listed after its objects were erased.
          if (calls.filter((call) => call.startsWith("usage")).length > 1) return
          await command(bearer, "counter", "late", { type: "Increment", by: 1 })
          await eventually(async () => (await listed(bearer)).actors?.length).toBe(1)
        },
      },
      {
        name: "oauth-grants",
        when: "before",
        erase: async (_env, of) => {
          calls.push(`grants ${of}`)
          if (usageDown) {
            usageDown = false
            throw new Error("the grant store is down")
          }
          return 2
        },
      },
    ]
    const coordinatorObject = env.EMBERLOG_TOPIC.getByName(deletionName(tenant)) as DurableObjectStub
    const run = await runInDurableObject(coordinatorObject, async (_instance: unknown, state: DurableObjectState) => {
      const coordinator = new DeletionCoordinator(state.storage, env, tenant, erasers)
      const started = await coordinator.requestDeletion(tenant, "ops")
      // This test runs the steps itself, not the object's own alarm (which knows no test erasers).
      await state.storage.deleteAlarm()
      await coordinator.run()
      const failed = (await coordinator.deletionStatus())!
      const retryIn = ((await state.storage.getAlarm()) ?? 0) - Date.now()
      await state.storage.deleteAlarm()
      await coordinator.run()
      // The directory found the late actor: the object steps run again, on the next alarm.
      const again = (await coordinator.deletionStatus())!
      await state.storage.deleteAlarm()
      await coordinator.run()
      const done = (await coordinator.deletionStatus())!
      await state.storage.deleteAlarm()
      return { started, failed, retryIn, again, done }
    })
    const names = (status: DeletionStatus) => status.steps.map((step) => step.name)
    expect(names(run.started)).toEqual([
      "oauth-grants",
      "mcp-sessions",
      "actors",
      "topics",
      "usage",
      "directory",
      "oauth-grants",
    ])
    expect(run.failed).toMatchObject({
      status: "in-progress",
      step: "oauth-grants",
      failure: { step: "oauth-grants", attempts: 1, message: "the grant store is down" },
    })
    expect(run.retryIn).toBeGreaterThan(0)
    expect(run.again).toMatchObject({ status: "in-progress", step: "oauth-grants", passes: 2 })
    expect(run.done).toMatchObject({ status: "done", failure: null, requestedBy: "ops", passes: 2 })
    expect(run.done.steps.find((step) => step.name === "actors")!.erased).toMatchObject({ actors: 2, events: 2 })
    // Both passes' grants (2 each), then the last one's at the end.
    expect(run.done.steps.map((step) => step.erased).filter((_, i) => names(run.done)[i] === "oauth-grants")).toEqual([
      { "oauth-grants": 4 },
      { "oauth-grants": 2 },
    ])
    // Pluggable steps run on every pass (a grant or usage made during pass 1 is erased by pass 2), the grants once more at the end.
    expect(calls).toEqual([
      `grants ${tenant}`,
      `grants ${tenant}`,
      `usage ${tenant}`,
      `grants ${tenant}`,
      `usage ${tenant}`,
      `grants ${tenant}`,
    ])
    expect((await call("/v1/counter/c1", bearer)).body.version).toBe(0)
    expect((await call("/v1/counter/late", bearer)).body.version).toBe(0)
    expect((await listed(bearer)).actors).toEqual([])
  })
})
