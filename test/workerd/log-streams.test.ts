// Every actor's events and topic's entries as a read-only Durable Stream (JSON mode) at /log.
import { SELF, createExecutionContext, env, runInDurableObject } from "cloudflare:test"
import { SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import type { TopicApi } from "../../src/actors/topic.js"
import { BASE, actorApi, actorObject, freshId, get, json, openSocket, send, topicObject } from "./helpers.js"

const increment = (id: string, by = 1) => send("counter", id, { type: "Increment", by })
const reset = (id: string) => send("counter", id, { type: "Reset" })

const events = async (id: string) =>
  (await json(await get(`/v1/counter/${id}/events?limit=1000`))).body.events as Array<any>

const read = async (path: string, init?: RequestInit) => {
  const response = await SELF.fetch(`${BASE}${path}`, init)
  const text = await response.text()
  return { response, status: response.status, next: response.headers.get("Stream-Next-Offset"), text }
}

const withOffset = (path: string, offset: string, rest = "") => `${path}?offset=${encodeURIComponent(offset)}${rest}`

interface SseEvent {
  readonly event: string
  readonly data: any
}

/** Reads SSE events (data: lines joined, parsed as JSON) until `done` holds. */
const readSse = async (response: Response, done: (events: Array<SseEvent>) => boolean) => {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const received: Array<SseEvent> = []
  let buffer = ""
  const deadline = Date.now() + 10_000
  while (!done(received)) {
    if (Date.now() > deadline) throw new Error(`SSE timed out; so far ${JSON.stringify(received)}`)
    const { value, done: ended } = await reader.read()
    if (ended) break
    buffer += value
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const lines = buffer.slice(0, end).split("\n")
      buffer = buffer.slice(end + 2)
      const event = lines
        .find((line) => line.startsWith("event:"))
        ?.slice(6)
        .trim()
      if (event === undefined) continue
      const data = lines
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n")
      received.push({ event, data: JSON.parse(data) })
    }
  }
  await reader.cancel()
  return received
}

describe("actor logs as Durable Streams", () => {
  it("catch-up from -1 (or no offset) gives every event exactly as /events does, with the protocol's headers", async () => {
    const id = freshId()
    for (let i = 1; i <= 3; i++) await increment(id, i)
    const path = `/v1/counter/${id}/log`
    const first = await read(withOffset(path, "-1"))
    expect(first.status).toBe(200)
    expect(first.response.headers.get("content-type")).toBe("application/json")
    expect(JSON.parse(first.text)).toEqual(await events(id))
    expect(first.response.headers.get("Stream-Up-To-Date")).toBe("true")
    expect(first.response.headers.get("ETag")).toEqual(expect.any(String))
    // At the tail, the next commit changes this answer: a cache must revalidate it (the ETag makes that cheap).
    expect(first.response.headers.get("Cache-Control")).toBe("private, no-cache")
    expect(first.response.headers.get("X-Content-Type-Options")).toBe("nosniff")
    const omitted = await read(path)
    expect(omitted.text).toBe(first.text)
    expect(omitted.next).toBe(first.next)
    // At the tail: an empty array, and the same offset back.
    const tail = await read(withOffset(path, first.next!))
    expect({ status: tail.status, body: JSON.parse(tail.text), next: tail.next }).toEqual({
      status: 200,
      body: [],
      next: first.next,
    })
    // The offset is opaque and resumes exactly after the last item read.
    await increment(id, 10)
    await reset(id)
    const resumed = await read(withOffset(path, first.next!))
    expect(JSON.parse(resumed.text).map((event: any) => event.seq)).toEqual([4, 5])
    expect(resumed.next! > first.next!).toBe(true)
    const revalidated = await SELF.fetch(`${BASE}${withOffset(path, first.next!)}`, {
      headers: { "If-None-Match": resumed.response.headers.get("ETag")! },
    })
    expect(revalidated.status).toBe(304)
  })

  it("an erased log written anew is another log: a page of the old one is not revalidated (304) for it", async () => {
    const id = freshId()
    const path = `/v1/counter/${id}/log?offset=-1`
    await increment(id)
    await increment(id)
    const tag = (await read(path)).response.headers.get("ETag")!
    const revalidate = () => SELF.fetch(`${BASE}${path}`, { headers: { "If-None-Match": tag } })
    expect((await revalidate()).status).toBe(304)
    await actorApi("counter", id).eraseAll()
    await increment(id, 5)
    await increment(id, 5)
    const renewed = await revalidate()
    expect(renewed.status).toBe(200)
    expect(((await renewed.json()) as Array<any>).map((event) => [event.seq, event.data.by])).toEqual([
      [1, 5],
      [2, 5],
    ])
    expect(renewed.headers.get("ETag")).not.toBe(tag)
    // A topic's too: its entries start from 1 again after an erasure.
    const name = freshId("erased")
    const topic = topicObject(name) as unknown as TopicApi
    const entry = (hash: string) => ({ seq: 1, type: "Incremented", schemaVersion: 1, data: {}, meta: { at: 0 }, hash })
    await topic.deliver({ kind: "counter", id: "a" }, [entry("old")] as any)
    const topicPath = `/v1/topics/${name}/log?offset=-1`
    const topicTag = (await read(topicPath)).response.headers.get("ETag")!
    await topic.eraseAll()
    await topic.deliver({ kind: "counter", id: "a" }, [entry("new")] as any)
    const topicRenewed = await SELF.fetch(`${BASE}${topicPath}`, { headers: { "If-None-Match": topicTag } })
    expect(topicRenewed.status).toBe(200)
    expect(((await topicRenewed.json()) as Array<any>).map((item) => item.event.hash)).toEqual(["new"])
  })

  it("a page cut short by its size ends where the next read resumes: every item once, in order", async () => {
    const room = freshId("pages")
    // Six posts of ~200 KB: more than a page's 1 MiB, so the log takes two reads.
    for (let i = 0; i < 6; i++) {
      const post = { type: "Post", messageType: "blob", payload: `${i}:${"x".repeat(200_000)}`, sender: "s" }
      expect((await send("room", room, post)).status).toBe(200)
    }
    const path = `/v1/room/${room}/log`
    const first = await read(`${path}?offset=-1`)
    const firstItems = JSON.parse(first.text) as Array<any>
    expect(firstItems.length).toBeGreaterThan(0)
    expect(firstItems.length).toBeLessThan(6)
    expect(first.response.headers.get("Stream-Up-To-Date")).toBeNull()
    // A page behind the tail never changes: cacheable.
    expect(first.response.headers.get("Cache-Control")).toBe("private, max-age=60, stale-while-revalidate=300")
    const second = await read(withOffset(path, first.next!))
    const secondItems = JSON.parse(second.text) as Array<any>
    expect(second.response.headers.get("Stream-Up-To-Date")).toBe("true")
    expect([...firstItems, ...secondItems].map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6])
  })

  it("HEAD tells the tail offset and the content type, uncached, with no body", async () => {
    const id = freshId()
    const empty = await SELF.fetch(`${BASE}/v1/counter/${id}/log`, { method: "HEAD" })
    expect(empty.status).toBe(200)
    for (let i = 0; i < 2; i++) await increment(id)
    const head = await SELF.fetch(`${BASE}/v1/counter/${id}/log`, { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(head.headers.get("content-type")).toBe("application/json")
    expect(head.headers.get("Cache-Control")).toBe("no-store")
    expect(await head.text()).toBe("")
    const all = await read(`/v1/counter/${id}/log?offset=-1`)
    expect(head.headers.get("Stream-Next-Offset")).toBe(all.next)
    expect(empty.headers.get("Stream-Next-Offset")! < all.next!).toBe(true)
    // offset=now is the same tail, and an empty array.
    const now = await read(`/v1/counter/${id}/log?offset=now`)
    expect({ body: now.text, next: now.next }).toEqual({ body: "[]", next: all.next })
  })

  it("a long-poll at the tail is woken by the next command, and offset=now waits for the next one", async () => {
    const id = freshId()
    await increment(id)
    const { next } = await read(`/v1/counter/${id}/log?offset=-1`)
    const started = Date.now()
    const polled = SELF.fetch(`${BASE}${withOffset(`/v1/counter/${id}/log`, next!, "&live=long-poll")}`)
    const fromNow = SELF.fetch(`${BASE}/v1/counter/${id}/log?offset=now&live=long-poll`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await increment(id, 7)
    for (const response of [await polled, await fromNow]) {
      expect(response.status).toBe(200)
      expect(response.headers.get("Stream-Cursor")).toEqual(expect.any(String))
      expect((await response.json()) as Array<any>).toEqual([
        expect.objectContaining({ seq: 2, data: { by: 7, reason: null } }),
      ])
    }
    expect(Date.now() - started).toBeLessThan(5_000)
  })

  it("SSE sends data and control events, catching up and then live", async () => {
    const id = freshId()
    await increment(id)
    await increment(id)
    const response = await SELF.fetch(`${BASE}/v1/counter/${id}/log?offset=-1&live=sse`)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    const live = readSse(
      response,
      (received) => received.filter((e) => e.event === "data").length === 2 && received.at(-1)!.event === "control",
    )
    await new Promise((resolve) => setTimeout(resolve, 50))
    await reset(id)
    const received = await live
    const data = received.filter((e) => e.event === "data").flatMap((e) => e.data)
    expect(data).toEqual(await events(id))
    const controls = received.filter((e) => e.event === "control")
    const head = await read(`/v1/counter/${id}/log?offset=-1`)
    expect(controls.at(-1)!.data).toMatchObject({ streamNextOffset: head.next, upToDate: true })
  })

  it("is read-only: POST, PUT, DELETE and PATCH are 405 with a clear error, and append nothing", async () => {
    const id = freshId()
    await increment(id)
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const response = await SELF.fetch(`${BASE}/v1/counter/${id}/log`, {
        method,
        body: method === "DELETE" ? undefined : JSON.stringify([{ type: "Incremented" }]),
        headers: { "content-type": "application/json" },
      })
      expect(response.status).toBe(405)
      expect(response.headers.get("Allow")).toBe("GET, HEAD")
      expect(await response.json()).toEqual({
        error: {
          code: "method_not_allowed",
          message: `${method} is not allowed: this log is a read-only Durable Stream (GET, HEAD); append through POST /v1/counter/${id}/commands`,
        },
      })
    }
    const topic = await json(await SELF.fetch(`${BASE}/v1/topics/counter/log`, { method: "POST", body: "[1]" }))
    expect(topic).toMatchObject({ status: 405, body: { error: { code: "method_not_allowed" } } })
    expect((await events(id)).length).toBe(1)
  })

  it("refuses malformed offsets, offsets past the head and bad live modes (400), and kinds not served (404)", async () => {
    const id = freshId()
    await increment(id)
    const path = `/v1/counter/${id}/log`
    const { next } = await read(`${path}?offset=-1`)
    const beyond = next!.replace(/\d$/, (digit) => String(Number(digit) + 1))
    for (const query of ["?offset=abc", "?offset=", "?offset=1,2", `?offset=${beyond}`, "?offset=-1&live=push"]) {
      const answer = await json(await get(`${path}${query}`))
      expect({ query, status: answer.status }).toEqual({ query, status: 400 })
      expect(answer.body.error.code).toEqual(expect.stringMatching(/^invalid_/))
    }
    expect((await json(await get(`${path}?offset=${beyond}`))).body.error.message).toContain("beyond the head")
    expect(await json(await get(`/v1/nokind/${id}/log`))).toMatchObject({
      status: 404,
      body: { error: { code: "unknown_kind" } },
    })
  })

  it("filters by event type, with Stream-Next-Offset advancing over what was skipped", async () => {
    const id = freshId()
    for (const command of [increment, reset, increment, increment]) await command(id)
    const path = `/v1/counter/${id}/log`
    const filtered = await read(`${path}?offset=-1&types=Reset`)
    expect(JSON.parse(filtered.text).map((event: any) => [event.seq, event.type])).toEqual([[2, "Reset"]])
    const full = await read(`${path}?offset=-1`)
    expect(filtered.next).toBe(full.next)
    expect(filtered.response.headers.get("ETag")).not.toBe(full.response.headers.get("ETag"))
    // Resuming from there reads nothing again; a long-poll skips what it does not want and waits on.
    const polled = SELF.fetch(`${BASE}${withOffset(path, filtered.next!, "&live=long-poll&types=Reset")}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await increment(id)
    await reset(id)
    const woken = await polled
    expect(((await woken.json()) as Array<any>).map((event) => [event.seq, event.type])).toEqual([[6, "Reset"]])
    expect(woken.headers.get("Stream-Next-Offset")).toBe((await read(`${path}?offset=-1`)).next)
    const unknown = await json(await get(`${path}?offset=-1&types=Resett`))
    expect(unknown).toMatchObject({ status: 400, body: { error: { code: "unknown_event_type" } } })
  })
})

describe("/log answers as a Durable Stream, errors included", () => {
  const browserHeaders = (response: Response) => ({
    status: response.status,
    nosniff: response.headers.get("X-Content-Type-Options"),
    resourcePolicy: response.headers.get("Cross-Origin-Resource-Policy"),
    cache: response.headers.get("Cache-Control"),
  })

  it("every refusal carries the browser security headers (§10.7) and is not stored", async () => {
    const id = freshId()
    await increment(id)
    const refusals = [
      await get(`/v1/counter/${id}/log?offset=-1&types=Resett`),
      await get(`/v1/counter/${id}/log?offset=abc`),
      await get(`/v1/nokind/${id}/log`),
      await get(`/v1/topics/counter/log?types=Nope`),
      await SELF.fetch(`${BASE}/v1/counter/${id}/log`, { method: "POST", body: "[]" }),
    ]
    expect(refusals.map(browserHeaders)).toEqual(
      [400, 400, 404, 400, 405].map((status) => ({
        status,
        nosniff: "nosniff",
        resourcePolicy: "cross-origin",
        cache: "no-store",
      })),
    )
  })
})

describe("reading a /log creates nothing", () => {
  const tablesOf = (stub: DurableObjectStub) =>
    runInDurableObject(stub, (_instance, state) =>
      state.storage.sql
        .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
        .toArray()
        .map((row) => row.name),
    )

  it("of an actor with no events, or a topic with no entries", async () => {
    const id = freshId("fresh")
    const topic = freshId("fresh-topic")
    for (const path of [`/v1/counter/${id}/log`, `/v1/topics/${topic}/log`]) {
      expect(await read(`${path}?offset=-1`)).toMatchObject({ status: 200, text: "[]" })
      expect((await read(`${path}?offset=now`)).status).toBe(200)
      expect((await SELF.fetch(`${BASE}${path}`, { method: "HEAD" })).status).toBe(200)
      // Live reads too: an SSE stream's first message, and a long-poll that waits until its reader gives up.
      const sse = await SELF.fetch(`${BASE}${path}?offset=-1&live=sse`)
      expect(sse.status).toBe(200)
      const reader = sse.body!.getReader()
      expect((await reader.read()).done).toBe(false)
      await reader.cancel()
      const gaveUp = new AbortController()
      const polled = SELF.fetch(`${BASE}${path}?offset=now&live=long-poll`, { signal: gaveUp.signal })
      await new Promise((resolve) => setTimeout(resolve, 200))
      gaveUp.abort()
      await polled.catch(() => undefined)
    }
    expect(await tablesOf(actorObject("counter", id))).toEqual([])
    expect(await tablesOf(topicObject(topic))).toEqual([])
  })
})

describe("topic logs as Durable Streams", () => {
  it("reads a topic's entries as /events has them, long-polls for deliveries, and filters by event type", async () => {
    const name = freshId("log-topic")
    const topic = topicObject(name) as unknown as TopicApi
    const event = (seq: number, type: string) => ({
      seq,
      type,
      schemaVersion: 1,
      data: { n: seq },
      meta: { at: seq, principal: "test" },
      hash: `h${seq}`,
    })
    await topic.deliver({ kind: "counter", id: "a" }, [event(1, "Incremented"), event(2, "Reset")] as any)
    const path = `/v1/topics/${name}/log`
    const all = await read(`${path}?offset=-1`)
    expect(JSON.parse(all.text)).toEqual((await json(await get(`/v1/topics/${name}/events`))).body.entries)
    const polled = SELF.fetch(`${BASE}${withOffset(path, all.next!, "&live=long-poll&types=Joined")}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await topic.deliver({ kind: "room", id: "b" }, [event(1, "Posted"), event(2, "Joined")] as any)
    const woken = await polled
    expect(((await woken.json()) as Array<any>).map((entry) => [entry.topicSeq, entry.event.type])).toEqual([
      [4, "Joined"],
    ])
    const head = await SELF.fetch(`${BASE}${path}`, { method: "HEAD" })
    expect(head.headers.get("Stream-Next-Offset")).toBe(woken.headers.get("Stream-Next-Offset"))
  })
})

describe("a room's log is its audit view", () => {
  it("shows every message, direct ones included, with their recipient", async () => {
    const room = freshId("audit")
    const alice = await openSocket(`/ws?room=${room}&name=alice`)
    const bob = await openSocket(`/ws?room=${room}&name=bob`)
    alice.ws.send(JSON.stringify({ type: "chat", payload: "psst", to: "bob" }))
    await bob.until((frames) => frames.length === 1)
    const posted = JSON.parse((await read(`/v1/room/${room}/log?offset=-1&types=Posted`)).text)
    expect(posted.map((event: any) => event.data)).toEqual([
      { messageType: "chat", payload: "psst", sender: "alice", to: "bob" },
    ])
    for (const socket of [alice, bob]) socket.ws.close(1000)
  })
})

describe("/log under auth", () => {
  const secret = "log-streams-secret-" + crypto.randomUUID()
  const call = (path: string, token?: string) =>
    worker.fetch(
      new Request(new URL(path, BASE), { headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } }),
      { ...env, AUTH_MODE: undefined, JWT_SECRET: secret } as never,
      createExecutionContext(),
    )
  /** A token for `sub` in tenant `acme` that expires `seconds` from now. */
  const token = (sub: string, scope: string, seconds = 300) =>
    new SignJWT({ sub, scope, tenant: "acme" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
      .sign(new TextEncoder().encode(secret))

  it("refuses without a token or the read scope with the browser headers, and reads the token's own tenant", async () => {
    const id = freshId()
    const headersOf = (response: Response) => [
      response.status,
      response.headers.get("X-Content-Type-Options"),
      response.headers.get("Cache-Control"),
    ]
    expect(headersOf(await call(`/v1/counter/${id}/log`))).toEqual([401, "nosniff", "no-store"])
    expect(headersOf(await call(`/v1/counter/${id}/log`, await token("alice", "write")))).toEqual([
      403,
      "nosniff",
      "no-store",
    ])
    // acme's counter has an event; another tenant's token reads its own counter of that id, empty.
    const body = JSON.stringify({ type: "Increment", by: 1 })
    const headers = { Authorization: `Bearer ${await token("alice", "write")}`, "content-type": "application/json" }
    const bindings = { ...env, AUTH_MODE: undefined, JWT_SECRET: secret } as never
    const request = new Request(new URL(`/v1/counter/${id}/commands`, BASE), { method: "POST", body, headers })
    expect((await worker.fetch(request, bindings, createExecutionContext())).status).toBe(200)
    const own = await call(`/v1/counter/${id}/log?offset=-1`, await token("alice", "read"))
    expect(((await own.json()) as Array<any>).map((event) => event.seq)).toEqual([1])
    const other = new SignJWT({ sub: "eve", scope: "read", tenant: "globex" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
      .sign(new TextEncoder().encode(secret))
    const theirs = await call(`/v1/counter/${id}/log?offset=-1`, await other)
    expect(theirs.status).toBe(200)
    expect(await theirs.json()).toEqual([])
  })

  it("needs a token, and live reads end when it expires", async () => {
    const id = freshId()
    expect((await call(`/v1/counter/${id}/log`)).status).toBe(401)
    const reading = await token("alice", "read", 2)
    expect((await call(`/v1/counter/${id}/log?offset=-1`, reading)).status).toBe(200)
    const started = Date.now()
    const polled = await call(`/v1/counter/${id}/log?offset=now&live=long-poll`, reading)
    // Answered (204, nothing new) at the token's expiry, well before the 30 s a long-poll may wait.
    expect(polled.status).toBe(204)
    expect(Date.now() - started).toBeLessThan(4_000)
    const sse = await call(`/v1/counter/${id}/log?offset=-1&live=sse`, await token("alice", "read", 2))
    const reader = sse.body!.getReader()
    const ended = (async () => {
      for (;;) if ((await reader.read()).done) return "ended"
    })()
    expect(await Promise.race([ended, new Promise((r) => setTimeout(() => r("still open"), 5_000))])).toBe("ended")
  })

  it("a long-poll open when its actor is erased ends with 404, never reading on into the log written anew", async () => {
    const id = freshId("erased-log")
    await send("counter", id, { type: "Increment", by: 1 })
    const tail = (await get(`/v1/counter/${id}/log?offset=-1`)).headers.get("Stream-Next-Offset")!
    const waiting = get(`/v1/counter/${id}/log?offset=${tail}&live=long-poll`)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await actorApi("counter", id).eraseAll()
    await send("counter", id, { type: "Increment", by: 5 })
    await send("counter", id, { type: "Increment", by: 6 })
    expect((await waiting).status).toBe(404)
  })
})
