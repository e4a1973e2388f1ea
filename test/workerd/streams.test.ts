import { createExecutionContext, env, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test"
import fc from "fast-check"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import { streamIdOf, streamPathOf } from "../../src/kinds/stream/paths.js"
import { BASE, actorObject, freshId, get, json } from "./helpers.js"

const KIND = "durable-stream"

const stream = (path: string, init: RequestInit = {}) => SELF_fetch(`/v1/stream/${path}`, init)
// Through the Worker exactly as a client calls it (auth off, the test project's default).
const SELF_fetch = (path: string, init: RequestInit = {}) =>
  worker.fetch(new Request(new URL(path, BASE), init), env as never, createExecutionContext())

const create = (path: string, body?: string, headers: Record<string, string> = {}) =>
  stream(path, { method: "PUT", headers: { "Content-Type": "text/plain", ...headers }, body })
const append = (path: string, body: string, headers: Record<string, string> = {}) =>
  stream(path, { method: "POST", headers: { "Content-Type": "text/plain", ...headers }, body })

const eventsOf = async (path: string) => {
  const { body } = await json(await get(`/v1/${KIND}/${streamIdOf(path)}/events`))
  return body.events as Array<{ seq: number; type: string; data: any }>
}

describe("stream paths and actor ids", () => {
  it("map one-to-one, `/` and all, onto the actor id alphabet", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }), (path) => {
        const id = streamIdOf(path)
        if (id === undefined) return
        expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/)
        expect(streamPathOf(id)).toBe(path)
      }),
    )
    expect(streamIdOf("chat/room-1")).toBe("chat:2Froom-1")
    expect(streamIdOf("a:b")).toBe("a:3Ab")
  })

  it("a path whose id would pass 128 characters is a 400, and creates nothing", async () => {
    const response = await create("/".repeat(60))
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: { code: "invalid_stream_path" } })
    expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff")
  })
})

describe("a stream is an emberlog log", () => {
  it("every create and append is a hash-chained event of the actor its path names", async () => {
    const path = `logs/${freshId("s")}`
    expect((await create(path, "hello ")).status).toBe(201)
    expect((await append(path, "world")).status).toBe(204)
    expect(await (await stream(path)).text()).toBe("hello world")
    const events = await eventsOf(path)
    expect(events.map((event) => event.type)).toEqual(["Created", "Appended"])
    expect(atob(events[1]!.data.items[0])).toBe("world")
    const verify = await json(await get(`/v1/${KIND}/${streamIdOf(path)}/verify`))
    expect(verify.body).toMatchObject({ ok: true, events: 2 })
  })

  it("is listed among the tenant's actors, as the inspector's picker reads them", async () => {
    const path = `listed/${freshId("s")}`
    await create(path, "x")
    await runDurableObjectAlarm(actorObject(KIND, streamIdOf(path)!))
    await expect
      .poll(async () => (await json(await get(`/v1/actors?kind=${KIND}&prefix=listed`))).body.actors)
      .toContainEqual(expect.objectContaining({ kind: KIND, id: streamIdOf(path) }))
  })

  it("the generic commands route cannot append around the protocol's checks", async () => {
    const path = freshId("s")
    await create(path)
    const response = await SELF_fetch(`/v1/${KIND}/${streamIdOf(path)}/commands`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        type: "Append",
        contentType: "text/plain",
        items: [],
        producer: null,
        streamSeq: null,
        close: true,
      }),
    })
    expect(response.status).toBe(400)
    expect((await eventsOf(path)).map((event) => event.type)).toEqual(["Created"])
  })

  it("a producer's epoch and seq survive the object's restart: a retry after it is a duplicate", async () => {
    const path = freshId("s")
    await create(path)
    const producer = (seq: number) => ({ "Producer-Id": "writer", "Producer-Epoch": "0", "Producer-Seq": String(seq) })
    expect((await append(path, "a", producer(0))).status).toBe(200)
    await evictDurableObject(actorObject(KIND, streamIdOf(path)!))
    const retry = await append(path, "a", producer(0))
    expect(retry.status).toBe(204)
    expect(retry.headers.get("Producer-Seq")).toBe("0")
    const gap = await append(path, "c", producer(2))
    expect(gap.status).toBe(409)
    expect(gap.headers.get("Producer-Expected-Seq")).toBe("1")
    expect(await gap.json()).toMatchObject({ error: { code: "producer_sequence_gap" } })
    expect(await (await stream(path)).text()).toBe("a")
  })

  it("a body over the limit is a 413 and appends nothing", async () => {
    const path = freshId("s")
    await create(path)
    const response = await append(path, "x".repeat(256 * 1024 + 1))
    expect(response.status).toBe(413)
    expect((await eventsOf(path)).map((event) => event.type)).toEqual(["Created"])
  })

  it("delete and re-create: a new generation in the same log, whose positions never repeat the old ones", async () => {
    const path = freshId("s")
    await create(path, "old")
    const oldOffset = (await stream(path)).headers.get("Stream-Next-Offset")!
    expect((await stream(path, { method: "DELETE" })).status).toBe(204)
    expect((await stream(path, { method: "HEAD" })).status).toBe(404)
    await create(path, "new")
    const fresh = await stream(path)
    expect(await fresh.text()).toBe("new")
    expect(fresh.headers.get("Stream-Next-Offset")! > oldOffset).toBe(true)
    // An offset of the deleted stream reads the new one from its start.
    expect(await (await stream(`${path}?offset=${oldOffset}`)).text()).toBe("new")
    expect((await eventsOf(path)).map((event) => event.type)).toEqual(["Created", "Deleted", "Created"])
  })

  it("a TTL's expiry is an event, committed by the alarm", async () => {
    const path = freshId("s")
    await create(path, "short-lived", { "Stream-TTL": "1" })
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    await runDurableObjectAlarm(actorObject(KIND, streamIdOf(path)!))
    const events = await eventsOf(path)
    expect(events.at(-1)).toMatchObject({ type: "Deleted", data: { reason: "expired" } })
    expect((await stream(path, { method: "HEAD" })).status).toBe(404)
  })

  it("a long-poll held in the object is woken by an append, with no polling", async () => {
    const path = freshId("s")
    const tail = (await create(path, "a")).headers.get("Stream-Next-Offset")!
    const started = Date.now()
    const pending = stream(`${path}?offset=${tail}&live=long-poll`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    await append(path, "b")
    const response = await pending
    expect(response.status).toBe(200)
    expect(await response.text()).toBe("b")
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it("a fork records its origin in its log, and keeps its data when the source is deleted", async () => {
    const source = freshId("src")
    const fork = freshId("fork")
    await create(source, "shared")
    expect((await create(fork, undefined, { "Stream-Forked-From": `/v1/stream/${source}` })).status).toBe(201)
    expect((await stream(source, { method: "DELETE" })).status).toBe(204)
    expect((await stream(source, { method: "HEAD" })).status).toBe(410)
    expect(await (await stream(fork)).text()).toBe("shared")
    const [created] = await eventsOf(fork)
    expect(created).toMatchObject({ type: "Created", data: { forkedFrom: { id: source, subOffset: 0 } } })
    expect((await stream(fork, { method: "DELETE" })).status).toBe(204)
    expect((await stream(source, { method: "HEAD" })).status).toBe(404)
  })
})

describe("auth, scopes and tenancy", () => {
  const SECRET = "stream-test-secret-" + crypto.randomUUID()
  const token = (sub: string, scope: string, tenant: string) =>
    new SignJWT({ sub, scope, tenant })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(SECRET))
  const call = async (path: string, bearer: string | undefined, init: RequestInit = {}, settings: object = {}) => {
    const headers = new Headers(init.headers)
    if (bearer !== undefined) headers.set("Authorization", `Bearer ${bearer}`)
    return worker.fetch(
      new Request(new URL(path, BASE), { ...init, headers }),
      { ...env, AUTH_MODE: undefined, JWT_SECRET: SECRET, ...settings } as never,
      createExecutionContext(),
    )
  }

  it("every write method needs write scope", async () => {
    const path = `/v1/stream/${freshId("s")}`
    const writer = await token("alice", "read write", "acme")
    const reader = await token("rita", "read", "acme")
    expect((await call(path, writer, { method: "PUT", headers: { "Content-Type": "text/plain" } })).status).toBe(201)
    for (const method of ["PUT", "POST", "DELETE"]) {
      const refused = await call(path, reader, {
        method,
        headers: { "Content-Type": "text/plain" },
        body: method === "DELETE" ? undefined : "x",
      })
      expect([method, refused.status]).toEqual([method, 403])
    }
    expect((await call(path, reader, { method: "HEAD" })).status).toBe(200)
  })

  it("the shared guard's refusals (401, 403, 413, 429) carry the protocol's security headers too", async () => {
    const path = `/v1/stream/${freshId("s")}`
    const writer = await token("alice", "read write", "acme")
    const refusals = [
      await call(path, undefined),
      await call(path, await token("rita", "read", "acme"), { method: "POST", body: "x" }),
      await stream(freshId("s"), { headers: { Origin: "https://evil.example" } }),
      await call(path, writer, {
        method: "PUT",
        headers: { "Content-Type": "text/plain" },
        body: "x".repeat(300 * 1024),
      }),
      await call(path, writer, {}, { LIMITER: { limit: async () => ({ success: false }) } }),
    ]
    expect(refusals.map((response) => response.status)).toEqual([401, 403, 403, 413, 429])
    for (const response of refusals) {
      expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff")
      expect(response.headers.get("Cross-Origin-Resource-Policy")).toBe("cross-origin")
      expect(response.headers.get("Content-Security-Policy")).toContain("sandbox")
    }
  })

  it("a stream belongs to its tenant; reading needs read, writing needs write", async () => {
    const path = `/v1/stream/${freshId("s")}`
    const alice = await token("alice", "read write", "acme")
    const reader = await token("rita", "read", "acme")
    const mallory = await token("mallory", "read write", "evil")
    expect((await call(path, undefined, { method: "PUT" })).status).toBe(401)
    expect(
      (await call(path, alice, { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "mine" })).status,
    ).toBe(201)
    expect(await (await call(path, reader)).text()).toBe("mine")
    const refused = await call(path, reader, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "x" })
    expect(refused.status).toBe(403)
    expect((await call(path, mallory, { method: "HEAD" })).status).toBe(404)
    expect(await (await call(path, alice)).text()).toBe("mine")
  })
})

describe("the protocol's answers at the edge", () => {
  it("a method a stream does not take is the protocol's 405 with Allow, not an unknown kind", async () => {
    const response = await stream(freshId("s"), { method: "PATCH", body: "x" })
    expect(response.status).toBe(405)
    expect(response.headers.get("Allow")).toBe("GET, HEAD, PUT, POST, DELETE")
    expect(await response.json()).toMatchObject({ error: { code: "method_not_allowed" } })
  })

  it("an HTML stream is read with CSP sandbox and nosniff, so it never runs as a page of the API", async () => {
    const path = freshId("s")
    await stream(path, { method: "PUT", headers: { "Content-Type": "text/html" }, body: "<script>alert(1)</script>" })
    const response = await stream(path)
    expect(response.headers.get("Content-Type")).toBe("text/html")
    expect(response.headers.get("Content-Security-Policy")).toBe("sandbox; default-src 'none'")
    expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff")
  })
})

describe("review fixes in the stream kind", () => {
  it("a long-poll or SSE read waiting on a stream that is deleted and re-created ends with 404, not the new stream", async () => {
    const path = freshId("s")
    const tail = (
      await stream(path, { method: "PUT", headers: { "Content-Type": "application/json" }, body: "[1]" })
    ).headers.get("Stream-Next-Offset")!
    const poll = stream(`${path}?offset=${tail}&live=long-poll`)
    const sse = await stream(`${path}?offset=${tail}&live=sse`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await stream(path, { method: "DELETE" })).status).toBe(204)
    await create(path, "bytes of another generation")
    const answered = await poll
    expect(answered.status).toBe(404)
    const text = await sse.text()
    expect(text).not.toContain("another generation")
    expect(text).not.toContain(btoa("bytes of another generation"))
  })

  it("JSON messages are stored and read back exactly as sent", async () => {
    const path = freshId("s")
    await stream(path, { method: "PUT", headers: { "Content-Type": "application/json" } })
    const message = '{"big": 12345678901234567890123, "huge": 1e400, "zero": -0, "s": "a\\"],b"}'
    await stream(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: message })
    await stream(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: ' [ 2.50 , [1, 2] ,{"k": [ ]} ] ',
    })
    expect(await (await stream(path)).text()).toBe(`[${message},2.50,[1, 2],{"k": [ ]}]`)
  })

  it("a fork where a deleted stream gave out later offsets is refused (409), so no offset names other data", async () => {
    const source = freshId("src")
    const path = freshId("reused")
    await create(source, "s")
    await create(path, "one")
    await append(path, "two")
    expect((await stream(path, { method: "DELETE" })).status).toBe(204)
    const refused = await create(path, undefined, { "Stream-Forked-From": `/v1/stream/${source}` })
    expect(refused.status).toBe(409)
    expect(await refused.json()).toMatchObject({ error: { code: "path_offsets_taken" } })
    // The refused fork holds no reference: the source deletes for good.
    expect((await stream(source, { method: "DELETE" })).status).toBe(204)
    expect((await stream(source, { method: "HEAD" })).status).toBe(404)
  })

  it("concurrent identical fork PUTs count the fork once: deleting it frees the source", async () => {
    const source = freshId("src")
    const fork = freshId("fork")
    await create(source, "s")
    const puts = await Promise.all(
      [1, 2, 3].map(() => create(fork, undefined, { "Stream-Forked-From": `/v1/stream/${source}` })),
    )
    expect(puts.map((response) => response.status).sort()).toEqual([200, 200, 201])
    expect((await stream(fork, { method: "DELETE" })).status).toBe(204)
    expect((await stream(source, { method: "DELETE" })).status).toBe(204)
    expect((await stream(source, { method: "HEAD" })).status).toBe(404)
  })

  it("a fork of a source over 2 MB is 413 before the source loads it", async () => {
    const source = freshId("big")
    await create(source, "x".repeat(200 * 1024))
    for (let i = 0; i < 10; i++) await append(source, "x".repeat(200 * 1024))
    const fork = await create(freshId("fork"), undefined, { "Stream-Forked-From": `/v1/stream/${source}` })
    expect(fork.status).toBe(413)
    expect(await fork.json()).toMatchObject({ error: { code: "fork_too_large" } })
  })

  it("a Stream-Forked-From URL of another server is a 400", async () => {
    const source = freshId("src")
    await create(source, "s")
    const response = await create(freshId("fork"), undefined, {
      "Stream-Forked-From": `https://elsewhere.example/v1/stream/${source}`,
    })
    expect(response.status).toBe(400)
  })

  it("a repeated fork PUT must match the closure it was created with", async () => {
    const source = freshId("src")
    const fork = freshId("fork")
    await create(source, "s")
    const from = { "Stream-Forked-From": `/v1/stream/${source}` }
    expect((await create(fork, undefined, { ...from, "Stream-Closed": "true" })).status).toBe(201)
    expect((await create(fork, undefined, from)).status).toBe(409)
    expect((await create(fork, undefined, { ...from, "Stream-Closed": "true" })).status).toBe(200)
  })

  it("an append to a closed stream is 409 Stream-Closed before its body or Content-Type is looked at", async () => {
    const path = freshId("s")
    await stream(path, { method: "PUT", headers: { "Content-Type": "application/json", "Stream-Closed": "true" } })
    for (const init of [{ body: "not json", headers: { "Content-Type": "application/json" } }, { body: "x" }]) {
      const response = await stream(path, { method: "POST", ...init })
      expect(response.status).toBe(409)
      expect(response.headers.get("Stream-Closed")).toBe("true")
    }
  })
})

describe("a sliding TTL and live readers", () => {
  it("does not run out under an SSE reader still open, and does once it has gone", async () => {
    const path = freshId("s")
    await create(path, "x", { "Stream-TTL": "1" })
    const sse = await stream(`${path}?offset=-1&live=sse`)
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    await runDurableObjectAlarm(actorObject(KIND, streamIdOf(path)!))
    expect((await eventsOf(path)).map((event) => event.type)).toEqual(["Created"])
    await sse.body!.cancel()
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    await runDurableObjectAlarm(actorObject(KIND, streamIdOf(path)!))
    expect((await eventsOf(path)).at(-1)).toMatchObject({ type: "Deleted", data: { reason: "expired" } })
  })
})
