import { createExecutionContext, env } from "cloudflare:test"
import { SignJWT, exportJWK, generateKeyPair } from "jose"
import { describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import { BASE, freshId, readSse } from "./helpers.js"

const SECRET = "test-secret-generated-for-this-run-" + crypto.randomUUID()

/** The Worker with auth configured as in production (the test project runs it with AUTH_MODE=off). */
const call = (
  path: string,
  init: RequestInit & { token?: string; settings?: Record<string, unknown>; host?: string } = {},
) => {
  const { token, settings, host, ...rest } = init
  const headers = new Headers(rest.headers)
  if (token !== undefined) headers.set("Authorization", `Bearer ${token}`)
  const url = new URL(path, host ? `http://${host}` : BASE)
  return worker.fetch(
    new Request(url, { ...rest, headers }),
    { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET, ...settings } as never,
    createExecutionContext(),
  )
}

const hs256 = (claims: Record<string, unknown>, options: { expiresIn?: string; secret?: string } = {}) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "5m")
    .sign(new TextEncoder().encode(options.secret ?? SECRET))

const token = (sub: string, scope: string, extra: Record<string, unknown> = {}) => hs256({ sub, scope, ...extra })
const body = async (response: Response) => ({
  status: response.status,
  body: (await response.json()) as any,
  headers: response.headers,
})
const increment = (id: string, tokenValue: string) =>
  call(`/v1/counter/${id}/commands`, {
    method: "POST",
    body: JSON.stringify({ type: "Increment", by: 1 }),
    token: tokenValue,
  })

describe("authentication", () => {
  it("refuses /v1 with 401 and says how to configure when no auth is configured", async () => {
    const response = await body(await call("/v1/counter/a", { settings: { JWT_SECRET: undefined } }))
    expect(response.status).toBe(401)
    expect(response.body.error.code).toBe("auth_not_configured")
    expect(response.body.error.message).toMatch(/JWT_SECRET.*AUTH_MODE=off/)
    expect((await call("/health", { settings: { JWT_SECRET: undefined } })).status).toBe(200)
  })

  it("401 with a WWW-Authenticate challenge for a missing, expired, forged or misaddressed token", async () => {
    const missing = await body(await call("/v1/counter/a"))
    expect(missing.status).toBe(401)
    expect(missing.headers.get("WWW-Authenticate")).toMatch(
      /^Bearer realm="emberlog", resource_metadata="http:\/\/emberlog\.test\/\.well-known\/oauth-protected-resource"/,
    )
    const expired = await body(
      await call("/v1/counter/a", { token: await hs256({ sub: "u", scope: "read" }, { expiresIn: "-1m" }) }),
    )
    expect([expired.status, expired.body.error.code]).toEqual([401, "token_expired"])
    expect(expired.headers.get("WWW-Authenticate")).toContain('error="invalid_token"')
    const forged = await body(
      await call("/v1/counter/a", { token: await hs256({ sub: "u", scope: "read" }, { secret: "not-the-secret" }) }),
    )
    expect([forged.status, forged.body.error.code]).toEqual([401, "invalid_token"])
    const noExp = await new SignJWT({ sub: "u", scope: "read" })
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(SECRET))
    expect((await call("/v1/counter/a", { token: noExp })).status).toBe(401)
    const audience = { JWT_AUDIENCE: "emberlog", JWT_ISSUER: "https://issuer.example" }
    expect(
      (
        await call("/v1/counter/a", {
          token: await token("u", "read", { aud: "other", iss: "https://issuer.example" }),
          settings: audience,
        })
      ).status,
    ).toBe(401)
    expect(
      (
        await call("/v1/counter/a", {
          token: await token("u", "read", { aud: "emberlog", iss: "https://evil.example" }),
          settings: audience,
        })
      ).status,
    ).toBe(401)
    expect(
      (
        await call("/v1/counter/a", {
          token: await token("u", "read", { aud: "emberlog", iss: "https://issuer.example" }),
          settings: audience,
        })
      ).status,
    ).toBe(200)
    expect((await call("/v1/counter/a", { headers: { Authorization: "Basic dTpw" } })).status).toBe(401)
  })

  it("verifies RS256 and ES256 tokens against a JWKS", async () => {
    for (const alg of ["RS256", "ES256"] as const) {
      const { publicKey, privateKey } = await generateKeyPair(alg)
      const jwk = { ...(await exportJWK(publicKey)), kid: `k-${alg}`, alg }
      const signed = await new SignJWT({ sub: "rsa-user", scope: "read" })
        .setProtectedHeader({ alg, kid: jwk.kid })
        .setExpirationTime("5m")
        .sign(privateKey)
      const settings = { JWT_SECRET: undefined, JWT_JWKS: JSON.stringify({ keys: [jwk] }) }
      expect((await call("/v1/counter/a", { token: signed, settings })).status).toBe(200)
      const { privateKey: otherKey } = await generateKeyPair(alg)
      const forged = await new SignJWT({ sub: "rsa-user", scope: "read" })
        .setProtectedHeader({ alg, kid: jwk.kid })
        .setExpirationTime("5m")
        .sign(otherKey)
      expect((await call("/v1/counter/a", { token: forged, settings })).status).toBe(401)
    }
  })

  it("serves protected-resource metadata naming the issuer", async () => {
    const response = await body(
      await call("/.well-known/oauth-protected-resource", { settings: { JWT_ISSUER: "https://issuer.example" } }),
    )
    expect(response.body).toMatchObject({
      resource: "http://emberlog.test",
      authorization_servers: ["https://issuer.example"],
      bearer_methods_supported: ["header"],
    })
    expect(response.body.scopes_supported).toEqual(["read", "write", "admin", "operator"])
  })
})

describe("scopes", () => {
  it("403 naming the missing scope, and nothing appended", async () => {
    const id = freshId()
    const reader = await token("reader", "read")
    const refused = await body(await increment(id, reader))
    expect(refused).toMatchObject({
      status: 403,
      body: { error: { code: "insufficient_scope", details: { scope: "write" } } },
    })
    expect(refused.headers.get("WWW-Authenticate")).toContain('scope="write"')
    expect((await body(await call(`/v1/counter/${id}`, { token: reader }))).body.version).toBe(0)
    expect((await body(await call(`/v1/counter/${id}/verify`, { token: reader }))).status).toBe(403)
    expect((await body(await call(`/v1/counter/${id}`, { token: await token("writer", "write") }))).status).toBe(403)
    expect(
      (await body(await call(`/v1/counter/${id}/verify`, { token: await token("auditor", "read admin") }))).body.ok,
    ).toBe(true)
  })

  it("ignores X-Emberlog-* headers from clients: no joining a room or forging a principal with a read token", async () => {
    const room = freshId("room")
    const reader = await token("reader", "read")
    const response = await call(`/v1/room/${room}/ws?after=0`, {
      token: reader,
      headers: {
        Upgrade: "websocket",
        "X-Emberlog-Member": "system",
        "X-Emberlog-Principal": "system",
        "X-Emberlog-Can-Write": "1",
      },
    })
    const socket = response.webSocket!
    const frames: Array<any> = []
    const arrived = new Promise<void>((resolve) =>
      socket.addEventListener("message", (e) => (frames.push(JSON.parse(e.data as string)), resolve())),
    )
    socket.accept()
    socket.send(
      JSON.stringify({
        type: "command",
        id: "p",
        command: { type: "Post", messageType: "chat", payload: "forged", sender: "system" },
      }),
    )
    await arrived
    expect(frames[0]).toMatchObject({ type: "error", error: { code: "insufficient_scope" } })
    socket.close(1000)
    expect((await body(await call(`/v1/room/${room}/events`, { token: reader }))).body.events).toEqual([])
  })

  it("records the token's sub as every event's principal", async () => {
    const id = freshId()
    const appended = await body(await increment(id, await token("alice", "write")))
    expect(appended.body.events[0].meta.principal).toBe("alice")
  })

  it("refuses commands on a socket opened with a read-only token", async () => {
    const id = freshId()
    const response = await call(`/v1/counter/${id}/ws`, {
      token: await token("reader", "read"),
      headers: { Upgrade: "websocket" },
    })
    const socket = response.webSocket!
    const frames: Array<any> = []
    const arrived = new Promise<void>((resolve) =>
      socket.addEventListener("message", (e) => (frames.push(JSON.parse(e.data as string)), resolve())),
    )
    socket.accept()
    socket.send(JSON.stringify({ type: "command", id: "x", command: { type: "Increment", by: 1 } }))
    await arrived
    expect(frames[0]).toMatchObject({ type: "error", id: "x", error: { code: "insufficient_scope" } })
    socket.close(1000)
  })
})

describe("tenancy", () => {
  it("gives each tenant its own actors, topics and streams on every route", async () => {
    const id = freshId("shared-name")
    const alice = await token("alice", "read write", { tenant: "acme" })
    const mallory = await token("mallory", "read write admin", { tenant: "evil" })
    expect((await increment(id, alice)).status).toBe(200)
    await new Promise((r) => setTimeout(r, 100)) // let acme's outbox reach its topic
    expect((await body(await call(`/v1/counter/${id}`, { token: mallory }))).body).toMatchObject({
      version: 0,
      state: { value: 0 },
    })
    expect((await body(await call(`/v1/counter/${id}/events`, { token: mallory }))).body.events).toEqual([])
    const entries = (await body(await call(`/v1/topics/counter/events`, { token: mallory }))).body.entries
    expect(entries.filter((e: any) => e.source.id === id)).toEqual([])
    expect((await body(await call(`/v1/projections/counter-totals`, { token: mallory }))).body.total).toBe(0)
    const stream = await call(`/v1/counter/${id}/events/stream?after=0`, { token: mallory })
    await increment(id, mallory)
    expect((await readSse(stream, 1)).map((e) => e.data.meta.principal)).toEqual(["mallory"])
    // acme still sees only its own single event.
    expect((await body(await call(`/v1/counter/${id}`, { token: alice }))).body.version).toBe(1)
    const acmeEntries = (await body(await call(`/v1/topics/counter/events`, { token: alice }))).body.entries
    expect(acmeEntries.filter((e: any) => e.source.id === id).map((e: any) => e.event.meta.principal)).toEqual([
      "alice",
    ])
  })

  it("scopes and tenants apply to memory stores: search, items and commands", async () => {
    const ns = freshId("mem")
    const alice = await token("alice", "read write", { tenant: "acme" })
    const reader = await token("reader", "read", { tenant: "acme" })
    const mallory = await token("mallory", "read write", { tenant: "evil" })
    const store = (tokenValue: string) =>
      call(`/v1/memory/${ns}/commands`, {
        method: "POST",
        body: JSON.stringify({ type: "Store", content: "acme's launch date is secret" }),
        token: tokenValue,
      })
    expect((await body(await store(reader))).status).toBe(403)
    const hash = (await body(await store(alice))).body.events[0].data.hash
    expect((await body(await call(`/v1/memory/${ns}/search?q=launch`, { token: reader }))).body.items).toHaveLength(1)
    expect((await body(await call(`/v1/memory/${ns}/search?q=launch`, { token: mallory }))).body.items).toEqual([])
    expect((await body(await call(`/v1/memory/${ns}/items/${hash}`, { token: mallory }))).status).toBe(404)
    expect((await body(await call(`/v1/memory/${ns}/search?q=launch`))).status).toBe(401)
  })

  it("keeps WebSocket subscriptions, rooms and broadcasts within the tenant", async () => {
    const id = freshId()
    const alice = await token("alice", "read write", { tenant: "acme" })
    const mallory = await token("mallory", "read write", { tenant: "evil" })
    const socket = (await call(`/v1/counter/${id}/ws?after=0`, { token: mallory, headers: { Upgrade: "websocket" } }))
      .webSocket!
    const frames: Array<any> = []
    socket.addEventListener("message", (event) => frames.push(JSON.parse(event.data as string)))
    socket.accept()
    await increment(id, alice)
    await increment(id, mallory)
    for (let i = 0; i < 100 && frames.length < 1; i++) await new Promise((r) => setTimeout(r, 10))
    await new Promise((r) => setTimeout(r, 50))
    expect(frames.map((f) => f.event.meta.principal)).toEqual(["mallory"])
    socket.close(1000)

    const room = freshId("room")
    const member = (await call(`/ws?room=${room}&name=Alice%20A.`, { token: alice, headers: { Upgrade: "websocket" } }))
      .webSocket!
    member.accept()
    // The member's display name is theirs to choose; the principal is the token's.
    const joined = (await body(await call(`/v1/room/${room}/events`, { token: alice }))).body.events[0]
    expect(joined).toMatchObject({ type: "Joined", data: { name: "Alice A." }, meta: { principal: "alice" } })
    const post = (tokenValue: string) =>
      call("/broadcast", { method: "POST", token: tokenValue, body: JSON.stringify({ room, type: "x", payload: 1 }) })
    expect((await body(await post(mallory))).body.error.code).toBe("unknown_room")
    expect((await post(alice)).status).toBe(200)
    member.close(1000)
  })

  it("lets only operators read another tenant, through the explicit admin route", async () => {
    const id = freshId()
    await increment(id, await token("alice", "write", { tenant: "acme" }))
    const operator = await token("root", "read operator", { tenant: "ops" })
    const read = await body(await call(`/v1/admin/tenants/acme/counter/${id}`, { token: operator }))
    expect(read.body).toMatchObject({ version: 1, state: { value: 1 } })
    expect((await body(await call(`/v1/admin/tenants/acme/counter/${id}/verify`, { token: operator }))).body.ok).toBe(
      true,
    )
    expect(
      (
        await call(`/v1/admin/tenants/acme/counter/${id}`, {
          token: await token("bob", "read write", { tenant: "other" }),
        })
      ).status,
    ).toBe(403)
  })

  it("keeps admin within its own tenant: verify there, nothing of another tenant's", async () => {
    const id = freshId()
    await increment(id, await token("alice", "write", { tenant: "acme" }))
    const evilAdmin = await token("mallory", "read write admin", { tenant: "evil" })
    const actor = `/v1/admin/tenants/acme/counter/${id}`
    for (const path of [actor, `${actor}/events`, `${actor}/verify`]) {
      const { status, body: refused } = await body(await call(path, { token: evilAdmin }))
      const expected = [path, 403, "insufficient_scope", { scope: "operator" }]
      expect([path, status, refused.error.code, refused.error.details]).toEqual(expected)
    }
    const acmeAdmin = await token("boss", "read admin", { tenant: "acme" })
    const verified = await body(await call(`/v1/counter/${id}/verify`, { token: acmeAdmin }))
    expect(verified.body).toMatchObject({ ok: true, events: 1 })
  })

  it("never makes a sub without a tenant claim into that tenant, unless TENANT_FROM_SUB says so", async () => {
    const id = freshId()
    const path = `/v1/counter/${id}`
    const stateOf = async (init: Parameters<typeof call>[1]) => (await body(await call(path, init))).body.state
    const alice = await token("alice", "read write", { tenant: "globex" })
    await call(`${path}/commands`, { method: "POST", body: JSON.stringify({ type: "Increment", by: 5 }), token: alice })
    // A user who is called "globex" is not the tenant globex.
    const named = await token("globex", "read write admin")
    expect((await body(await call(path, { token: named }))).body).toMatchObject({ version: 0 })
    expect((await body(await call(`${path}/verify`, { token: named }))).body).toMatchObject({ ok: true, events: 0 })
    // Their own namespace is theirs across requests, and kept apart from every tenant's.
    expect((await increment(id, named)).status).toBe(200)
    expect(await stateOf({ token: await token("globex", "read") })).toEqual({ value: 1 })
    expect(await stateOf({ token: alice })).toEqual({ value: 5 })
    // On a subdomain of BASE_DOMAIN too.
    const settings = { BASE_DOMAIN: "emberlog.test" }
    expect(await stateOf({ token: named, settings, host: "globex.emberlog.test" })).toEqual({ value: 1 })
    expect(await stateOf({ token: alice, settings, host: "globex.emberlog.test" })).toEqual({ value: 5 })
    // Configured so, every sub is its own tenant (deployments with no tenant claims at all).
    expect(await stateOf({ token: named, settings: { TENANT_FROM_SUB: "true" } })).toEqual({ value: 5 })
  })

  it("routes {user}.BASE_DOMAIN to that user's namespace and refuses other users' tokens", async () => {
    const settings = { BASE_DOMAIN: "emberlog.test" }
    const id = freshId()
    const alice = await token("alice", "read write")
    expect(
      (
        await call(`/v1/counter/${id}/commands`, {
          method: "POST",
          body: '{"type":"Increment","by":2}',
          token: alice,
          settings,
          host: "alice.emberlog.test",
        })
      ).status,
    ).toBe(200)
    expect((await body(await call(`/v1/counter/${id}`, { token: alice, settings }))).body.version).toBe(1)
    const wrong = await body(
      await call(`/v1/counter/${id}`, { token: await token("bob", "read"), settings, host: "alice.emberlog.test" }),
    )
    expect([wrong.status, wrong.body.error.code]).toEqual([403, "wrong_tenant"])
  })
})

describe("limits", () => {
  it("429 with Retry-After when the rate limiter says no", async () => {
    const settings = { LIMITER: { limit: async () => ({ success: false }) } }
    const limited = await body(await call("/v1/counter/a", { token: await token("u", "read"), settings }))
    expect(limited.status).toBe(429)
    expect(limited.body.error.code).toBe("rate_limited")
    expect(limited.headers.get("Retry-After")).toBe("60")
  })

  it("answers CORS only for configured origins", async () => {
    const settings = { CORS_ORIGINS: "https://app.example" }
    const allowed = await call("/health", { headers: { Origin: "https://app.example" }, settings })
    expect(allowed.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example")
    const denied = await call("/health", { headers: { Origin: "https://evil.example" }, settings })
    expect(denied.headers.get("Access-Control-Allow-Origin")).toBeNull()
    expect(
      (await call("/health", { headers: { Origin: "https://app.example" } })).headers.get(
        "Access-Control-Allow-Origin",
      ),
    ).toBeNull()
  })
})

describe("small holes", () => {
  it("validates X-Correlation-Id and X-Causation-Id like Idempotency-Key; a bad one appends nothing", async () => {
    const id = freshId()
    const writer = await token("writer", "read write")
    const send = (headers: Record<string, string>) =>
      call(`/v1/counter/${id}/commands`, {
        method: "POST",
        body: '{"type":"Increment","by":1}',
        token: writer,
        headers,
      })
    for (const header of ["X-Correlation-Id", "X-Causation-Id"]) {
      for (const value of ["x".repeat(256), "has space", "tab\there"]) {
        const refused = await body(await send({ [header]: value }))
        const seen = [header, value.length, refused.status, refused.body.error.code]
        expect(seen).toEqual([header, value.length, 400, "invalid_header"])
        expect(refused.body.error.message).toContain(header)
      }
    }
    expect((await body(await call(`/v1/counter/${id}`, { token: writer }))).body.version).toBe(0)
    const ok = await body(await send({ "X-Correlation-Id": "c".repeat(255), "X-Causation-Id": "cause-1" }))
    expect(ok.body.events[0].meta).toMatchObject({ correlationId: "c".repeat(255), causationId: "cause-1" })
  })

  it("keeps each tenant's /api/analyze cache apart", async () => {
    const info = { title: `Cached ${freshId()}`, version: "1" }
    const spec = JSON.stringify({ openapi: "3.0.0", info, paths: { "/a": { get: { operationId: "a" } } } })
    const request = JSON.stringify({ specType: "openapi", spec })
    const analyze = async (tenant: string) =>
      call("/api/analyze", { method: "POST", body: request, token: await token("u", "read", { tenant }) })
    const first = await analyze("acme")
    expect([first.status, first.headers.get("X-Emberlog-Cache")]).toEqual([200, "miss"])
    expect((await analyze("acme")).headers.get("X-Emberlog-Cache")).toBe("hit")
    // Another tenant learns nothing about what acme analyzed.
    expect((await analyze("evil")).headers.get("X-Emberlog-Cache")).toBe("miss")
  })

  it("with auth off, refuses a foreign Origin or Host on /v1, /api, /ws and /broadcast as on /mcp", async () => {
    const id = freshId()
    const dev = (path: string, init: RequestInit & { host?: string } = {}) => {
      const { host, ...rest } = init
      const url = new URL(path, host ? `http://${host}` : BASE)
      return worker.fetch(new Request(url, rest), env as never, createExecutionContext())
    }
    const evil = { Origin: "https://evil.example" }
    const increment = { method: "POST", body: '{"type":"Increment","by":1}' }
    const attempts: Array<[string, RequestInit & { host?: string }]> = [
      [`/v1/counter/${id}/commands`, { ...increment, headers: evil }],
      [`/v1/counter/${id}/commands`, { ...increment, host: "rebound.evil.example" }],
      [`/v1/counter/${id}`, { headers: evil }],
      [`/v1/counter/${id}`, { host: "rebound.evil.example" }],
      [`/v1/counter/${id}/ws`, { headers: { ...evil, Upgrade: "websocket" } }],
      ["/broadcast", { method: "POST", body: JSON.stringify({ room: id, type: "x", payload: 1 }), headers: evil }],
      ["/api/generate-from-description", { method: "POST", body: '{"description":"GET /x"}', headers: evil }],
      ["/ws?room=x&name=n", { headers: { ...evil, Upgrade: "websocket" } }],
    ]
    for (const [path, init] of attempts) {
      const refused = await body(await dev(path, init))
      const code = expect.stringMatching(/^invalid_(origin|host)$/)
      expect([path, init.host ?? "", refused.status, refused.body.error.code]).toEqual([
        path,
        init.host ?? "",
        403,
        code,
      ])
    }
    expect((await body(await dev(`/v1/counter/${id}`))).body.version).toBe(0)
    // Its own origin, and a client that sends none, are served.
    expect((await dev(`/v1/counter/${id}/commands`, { ...increment, headers: { Origin: BASE } })).status).toBe(200)
    expect((await dev(`/v1/counter/${id}`)).status).toBe(200)
    const mcp = await dev("/mcp", {
      method: "POST",
      body: "{}",
      headers: { ...evil, "content-type": "application/json" },
    })
    expect(mcp.status).toBe(403)
  })

  it("/health asks an external executor at most once every few seconds", async () => {
    const original = globalThis.fetch
    const probes: Array<string> = []
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : String(input)
      if (!url.startsWith("https://openhands.test/")) return original(input, init)
      probes.push(url)
      return new Response("{}", { headers: { "content-type": "application/json" } })
    }) as typeof fetch
    try {
      const settings = { JOB_EXECUTOR: "openhands", OPENHANDS_API_URL: "https://openhands.test" }
      const health = async () => body(await call("/health", { settings }))
      const answers = await Promise.all(Array.from({ length: 20 }, health))
      for (const answer of answers) expect(answer.body.executor).toMatchObject({ name: "openhands", healthy: true })
      for (let i = 0; i < 10; i++) expect((await health()).body.status).toBe("ok")
      expect(probes).toEqual(["https://openhands.test/health"])
    } finally {
      globalThis.fetch = original
    }
  })
})
