// Authority on open sockets and streams: the token's expiry and the rate limit follow the socket.
import { createExecutionContext, env, runInDurableObject } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import { CLOSE_TOKEN_EXPIRED } from "../../src/actors/subscribers.js"
import worker from "../../src/app.js"
import { DEV_TENANT } from "../../src/core/names.js"
import { actorObject, BASE, freshId, mcpSessionObject, topicObject } from "./helpers.js"

const SECRET = "socket-authority-secret-" + crypto.randomUUID()

const call = (path: string, init: RequestInit & { token?: string; settings?: Record<string, unknown> } = {}) => {
  const { token, settings, ...rest } = init
  const headers = new Headers(rest.headers)
  if (token !== undefined) headers.set("Authorization", `Bearer ${token}`)
  const bindings = { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET, ...settings } as never
  return worker.fetch(new Request(new URL(path, BASE), { ...rest, headers }), bindings, createExecutionContext())
}

/** A token for `sub` in tenant `acme` that expires `seconds` from now (JWT `exp` has whole seconds). */
const token = (sub: string, scope: string, seconds = 300) =>
  new SignJWT({ sub, scope, tenant: "acme" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
    .sign(new TextEncoder().encode(SECRET))

const socketOf = async (response: Response) => {
  expect(response.status).toBe(101)
  const ws = response.webSocket!
  const frames: Array<any> = []
  const waiters = new Set<() => void>()
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })),
  )
  ws.addEventListener("message", (event) => {
    frames.push(JSON.parse(event.data as string))
    for (const wake of waiters) wake()
  })
  ws.accept()
  /** Resolves with the replies (acks and errors) and posts, once `count` of them arrived (events are not counted). */
  const next = (count: number) =>
    new Promise<Array<any>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; frames: ${JSON.stringify(frames)}`)), 10_000)
      const check = () => {
        const replies = frames.filter((f) => f.type !== "event")
        if (replies.length < count) return
        waiters.delete(check)
        clearTimeout(timer)
        resolve(replies)
      }
      waiters.add(check)
      check()
    })
  return { ws, frames, closed, next }
}

/**
 * The moment between a token's expiry and the alarm that closes its sockets: the
 * attachment says the token has expired, and the socket is still open.
 */
const expireSockets = (stub: DurableObjectStub) =>
  runInDurableObject(stub, (_: unknown, state: DurableObjectState) => {
    for (const socket of state.getWebSockets()) {
      socket.serializeAttachment({ ...socket.deserializeAttachment(), expiresAt: Date.now() - 1 })
    }
  })

/** A WebSocket opened through the Worker with `tokenValue`. */
const openWs = async (path: string, tokenValue: string, settings?: Record<string, unknown>) =>
  socketOf(await call(path, { token: tokenValue, headers: { Upgrade: "websocket" }, settings }))

const read = async (path: string, tokenValue: string) => (await (await call(path, { token: tokenValue })).json()) as any
const version = async (path: string, tokenValue: string) => (await read(path, tokenValue)).version as number
const INCREMENT = '{"type":"Increment","by":1}'
const increment = (id: string, tokenValue: string, settings?: Record<string, unknown>) =>
  call(`/v1/counter/${id}/commands`, { method: "POST", body: INCREMENT, token: tokenValue, settings })
const commandFrame = (id: string, by = 1) => JSON.stringify({ type: "command", id, command: { type: "Increment", by } })

describe("sockets outlive no token", () => {
  it("refuses a command frame after the token expired, closes with 4001, appends nothing", async () => {
    const id = freshId()
    const socket = await openWs(`/v1/counter/${id}/ws`, await token("alice", "read write"))
    socket.ws.send(commandFrame("before"))
    expect((await socket.next(1))[0]).toMatchObject({ type: "ack", id: "before", version: 1 })
    await expireSockets(actorObject("counter", id, "acme"))
    socket.ws.send(commandFrame("after"))
    const closed = await socket.closed
    expect(closed.code).toBe(CLOSE_TOKEN_EXPIRED)
    expect(closed.reason).toMatch(/expired/)
    const replies = socket.frames.filter((f) => f.type !== "event")
    expect(replies.map((f) => [f.type, f.id])).toEqual([
      ["ack", "before"],
      ["error", "after"],
    ])
    expect(replies[1].error.code).toBe("token_expired")
    expect(await version(`/v1/counter/${id}`, await token("alice", "read"))).toBe(1)
  })

  it("closes an idle socket at its token's expiry, and a room member leaves", async () => {
    const id = freshId()
    const started = Date.now()
    const subscriber = await openWs(`/v1/counter/${id}/ws`, await token("alice", "read", 2))
    const room = freshId("room")
    const member = await openWs(`/ws?room=${room}&name=alice`, await token("alice", "read write", 2))
    const [a, b] = await Promise.all([subscriber.closed, member.closed])
    expect([a.code, b.code]).toEqual([CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_EXPIRED])
    expect(Date.now()).toBeGreaterThanOrEqual((Math.floor(started / 1000) + 2) * 1000 - 1000)
    const reader = await token("alice", "read")
    for (let i = 0; i < 50 && (await version(`/v1/room/${room}`, reader)) < 2; i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    expect((await read(`/v1/room/${room}`, reader)).state.members).toEqual({})
  })

  it("closes a filtered batch socket, and ends a filtered SSE stream, at the token's expiry", async () => {
    const id = freshId()
    const writer = await token("alice", "write")
    for (let i = 0; i < 3; i++) expect((await increment(id, writer)).status).toBe(200)
    const socket = await openWs(`/v1/counter/${id}/ws?types=Reset&batch=1`, await token("alice", "read", 2))
    const sse = await call(`/v1/counter/${id}/events/stream?types=Reset`, { token: await token("alice", "read", 2) })
    const body = sse.body!.getReader()
    const ended = (async () => {
      for (;;) if ((await body.read()).done) return "ended"
    })()
    expect((await socket.closed).code).toBe(CLOSE_TOKEN_EXPIRED)
    // It was told the head it had seen (nothing matched) before it closed.
    expect(socket.frames).toEqual([{ type: "head", seq: 3 }])
    expect(await Promise.race([ended, new Promise((r) => setTimeout(() => r("still open"), 3_000))])).toBe("ended")
  })

  it("closes a topic socket at its token's expiry", async () => {
    const topic = await openWs(`/v1/topics/counter/ws`, await token("alice", "read", 2))
    expect((await topic.closed).code).toBe(CLOSE_TOKEN_EXPIRED)
  })

  // An alarm is storage: on an object with no storage yet, a timer closes the socket instead.
  it.each([
    {
      what: "topic",
      path: (name: string) => `/v1/topics/${name}/ws`,
      object: (name: string) => topicObject(name, "acme"),
    },
    {
      what: "actor",
      path: (name: string) => `/v1/counter/${name}/ws`,
      object: (name: string) => actorObject("counter", name, "acme"),
    },
  ])("closes a socket on a fresh $what at expiry without giving it storage", async ({ path, object }) => {
    const name = freshId("fresh")
    const socket = await openWs(path(name), await token("alice", "read", 2))
    expect((await socket.closed).code).toBe(CLOSE_TOKEN_EXPIRED)
    const stub = object(name)
    const storage = await runInDurableObject(stub, (_: unknown, state: DurableObjectState) => ({
      tables: state.storage.sql.exec("SELECT name FROM sqlite_master").toArray(),
      size: state.storage.sql.databaseSize,
    }))
    expect(storage).toEqual({ tables: [], size: 4096 })
  })

  it("refuses a room post after the token expired", async () => {
    const room = freshId("room")
    const member = await openWs(`/ws?room=${room}&name=bob`, await token("bob", "read write"))
    await expireSockets(actorObject("room", room, "acme"))
    member.ws.send(JSON.stringify({ type: "chat", payload: "late" }))
    expect((await member.closed).code).toBe(CLOSE_TOKEN_EXPIRED)
    expect(member.frames.map((f) => f.error?.code)).toEqual(["token_expired"])
    const { events } = await read(`/v1/room/${room}/events`, await token("bob", "read"))
    expect(events.filter((e: any) => e.type === "Posted")).toEqual([])
  })

  it("ends an SSE stream at the token's expiry", async () => {
    const id = freshId()
    const response = await call(`/v1/counter/${id}/events/stream`, { token: await token("alice", "read", 2) })
    const reader = response.body!.getReader()
    const ended = (async () => {
      for (;;) if ((await reader.read()).done) return "ended"
    })()
    expect(await Promise.race([ended, new Promise((r) => setTimeout(() => r("still open"), 5_000))])).toBe("ended")
  })
})

/** A limiter like the binding: `limit` calls per key per test, shared by the edge and the object. */
const fakeLimiter = (limit: number) => {
  const counts = new Map<string, number>()
  return {
    counts,
    limit: async ({ key }: { key: string }) => {
      counts.set(key, (counts.get(key) ?? 0) + 1)
      return { success: counts.get(key)! <= limit }
    },
  }
}

/** Changes bindings or settings in a running object's env (bindings cannot be reconfigured per test). */
const patchEnv = (stub: DurableObjectStub, changes: Record<string, unknown>) =>
  runInDurableObject(stub, (instance: unknown) => {
    const env = (instance as { env: object }).env
    Object.defineProperty(instance, "env", { value: { ...env, ...changes }, configurable: true })
  })

/** Puts `limiter` into the object's env. */
const useLimiter = (stub: DurableObjectStub, limiter: unknown) => patchEnv(stub, { LIMITER: limiter })

describe("scopes on sockets", () => {
  const frame = (id: string, command: unknown) => JSON.stringify({ type: "command", id, command })

  it("go with the socket: a read token sends nothing, a writer may not Grant, the admin may", async () => {
    const user = freshId("alice")
    const owner = await openWs(`/v1/session/${user}/ws`, await token(user, "read write"))
    owner.ws.send(frame("open", { type: "Open", ttlSeconds: 600 }))
    owner.ws.send(frame("self-grant", { type: "Grant", tool: "read_state" }))
    const [opened, selfGrant] = await owner.next(2)
    expect(opened).toMatchObject({ type: "ack", id: "open", version: 1 })
    expect(selfGrant).toMatchObject({ type: "error", id: "self-grant", error: { code: "insufficient_scope" } })

    const reader = await openWs(`/v1/session/${user}/ws`, await token(user, "read"))
    reader.ws.send(frame("touch", { type: "Touch" }))
    expect((await reader.next(1))[0]).toMatchObject({
      type: "error",
      id: "touch",
      error: { code: "insufficient_scope" },
    })

    const admin = await openWs(`/v1/session/${user}/ws`, await token("root", "read write admin"))
    admin.ws.send(frame("grant", { type: "Grant", tool: "read_state" }))
    expect((await admin.next(1))[0]).toMatchObject({ type: "ack", id: "grant", version: 2 })
    const state = await read(`/v1/session/${user}`, await token(user, "read"))
    expect(state.state.grants).toEqual(["read_state"])
  })
})

describe("rate limits on sockets", () => {
  it("counts command frames against the principal's HTTP budget: rate_limited, nothing appended", async () => {
    const id = freshId()
    const limiter = fakeLimiter(10)
    const settings = { LIMITER: limiter }
    await useLimiter(actorObject("counter", id, "acme"), limiter)
    const writer = await token("carol", "read write")
    const socket = await openWs(`/v1/counter/${id}/ws`, writer, settings)
    for (let i = 0; i < 4; i++) {
      expect((await increment(id, writer, settings)).status).toBe(200)
    }
    // 5 of 10 spent over HTTP (the upgrade and 4 commands): 5 frames pass, the rest are refused.
    for (let i = 0; i < 8; i++) socket.ws.send(commandFrame(`f${i}`))
    const frames = await socket.next(8)
    expect(frames.filter((f) => f.type === "ack").map((f) => f.id)).toEqual(["f0", "f1", "f2", "f3", "f4"])
    expect(frames.filter((f) => f.type === "error").map((f) => [f.id, f.error.code])).toEqual(
      ["f5", "f6", "f7"].map((f) => [f, "rate_limited"]),
    )
    expect([...limiter.counts.keys()]).toEqual(["sub:acme:carol"])
    expect((await increment(id, writer, settings)).status).toBe(429)
    expect(await version(`/v1/counter/${id}`, await token("auditor", "read"))).toBe(9)
    socket.ws.close(1000)
  })

  it("counts room posts too", async () => {
    const room = freshId("room")
    const limiter = fakeLimiter(3)
    await useLimiter(actorObject("room", room, "acme"), limiter)
    const member = await openWs(`/ws?room=${room}&name=dave`, await token("dave", "read write"), { LIMITER: limiter })
    for (let i = 0; i < 4; i++) member.ws.send(JSON.stringify({ type: "chat", payload: i }))
    const frames = await member.next(4)
    expect(frames.filter((f) => f.type === "chat").map((f) => f.payload)).toEqual([0, 1])
    expect(frames.filter((f) => f.type === "error").map((f) => f.error.code)).toEqual(["rate_limited", "rate_limited"])
    member.ws.close(1000)
  })

  it("with auth off, the anonymous key ignores client-set headers", async () => {
    const limiter = fakeLimiter(1000)
    const settings = { AUTH_MODE: "off", LIMITER: limiter }
    for (const ip of ["203.0.113.1", "203.0.113.2"]) {
      await call(`/v1/counter/${freshId()}`, { headers: { "CF-Connecting-IP": ip, "X-Forwarded-For": ip }, settings })
    }
    expect([...limiter.counts.entries()]).toEqual([[`anon:${DEV_TENANT}`, 2]])
  })
})

const MCP_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" }
const MODERN_META = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
}

/** "ended" once the body is done, else "still open" after `ms`. */
const endsWithin = (body: ReadableStream<Uint8Array>, ms: number) => {
  const reader = body.getReader()
  const ended = (async () => {
    for (;;) if ((await reader.read()).done) return "ended"
  })()
  return Promise.race([ended, new Promise((resolve) => setTimeout(() => resolve("still open"), ms))])
}

describe("MCP streams end with their token", () => {
  it("ends the 2025-era GET stream at its token's expiry while the session lives on", async () => {
    const long = await token("erin", "read write")
    const init = await call("/mcp", {
      method: "POST",
      token: long,
      headers: MCP_HEADERS,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
      }),
    })
    const sessionId = init.headers.get("mcp-session-id")!
    await init.text()
    // MCP_SESSION_IDLE_MS is 400 in tests: this session gets a minute, so only the token can end its stream.
    await patchEnv(mcpSessionObject(sessionId, "acme"), { MCP_SESSION_IDLE_MS: "60000" })
    const session = { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" }
    const short = await token("erin", "read write", 2)
    const stream = await call("/mcp", { token: short, headers: { accept: "text/event-stream", ...session } })
    expect(stream.status).toBe(200)
    expect(await endsWithin(stream.body!, 5_000)).toBe("ended")
    const body = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" })
    const ping = await call("/mcp", { method: "POST", token: long, headers: { ...MCP_HEADERS, ...session }, body })
    expect(ping.status).toBe(200)
  })

  it("ends a subscriptions/listen stream at its token's expiry", async () => {
    const id = freshId()
    const listen = await call("/mcp", {
      method: "POST",
      token: await token("frank", "read write", 2),
      headers: { ...MCP_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "subscriptions/listen" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "subscriptions/listen",
        params: { notifications: { resourceSubscriptions: [`emberlog://counter/${id}`] }, _meta: MODERN_META },
      }),
    })
    expect(listen.status).toBe(200)
    expect(await endsWithin(listen.body!, 5_000)).toBe("ended")
  })
})
