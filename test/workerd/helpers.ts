import { SELF, env, runInDurableObject } from "cloudflare:test"

import type { ActorApi } from "../../src/actors/durable-actor.js"
import { chainHash } from "../../src/core/hash-chain.js"
import { DEV_TENANT, actorName, scopedName } from "../../src/core/names.js"

export const BASE = "http://emberlog.test"

/** The Durable Object name of an actor, topic or room addressed with auth off. */
export const devName = (id: string) => scopedName(DEV_TENANT, id)

let n = 0
/** A fresh actor id per test, so tests never share state. */
export const freshId = (prefix = "t") => `${prefix}-${Date.now()}-${++n}`

export const send = (kind: string, id: string, command: unknown, headers: Record<string, string> = {}) =>
  SELF.fetch(`${BASE}/v1/${kind}/${id}/commands`, {
    method: "POST",
    body: typeof command === "string" ? command : JSON.stringify(command),
    headers: { "content-type": "application/json", ...headers },
  })

export const get = (path: string) => SELF.fetch(`${BASE}${path}`)

export const json = async (response: Response) => ({ status: response.status, body: (await response.json()) as any })

export interface OpenSocket {
  readonly ws: WebSocket
  readonly frames: Array<any>
  readonly closed: Promise<{ code: number; reason: string }>
  /** Resolves once `predicate` holds for the frames received so far. */
  readonly until: (predicate: (frames: Array<any>) => boolean, timeoutMs?: number) => Promise<Array<any>>
}

/** A received frame: its JSON value, or the raw data when it is not JSON ("pong" stays "pong"). */
export const parseFrame = (data: unknown): unknown => {
  if (typeof data !== "string") return data
  if (data === "pong") return data
  try {
    return JSON.parse(data)
  } catch {
    return data
  }
}

/** Opens a WebSocket through the Worker (as a client would) and records every frame; non-JSON frames raw. */
export const openSocket = async (path: string): Promise<OpenSocket> => {
  const response = await SELF.fetch(`${BASE}${path}`, { headers: { Upgrade: "websocket" } })
  if (response.status !== 101 || !response.webSocket)
    throw new Error(`expected 101, got ${response.status} ${await response.text()}`)
  const ws = response.webSocket
  const frames: Array<any> = []
  const waiters = new Set<() => void>()
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (event) => {
      resolve({ code: event.code, reason: event.reason })
      for (const wake of waiters) wake()
    }),
  )
  // A listener that throws is an uncaught exception in workerd: a frame that is not JSON
  // (a raw text or binary frame) is recorded as it came, for the test to judge.
  ws.addEventListener("message", (event) => {
    frames.push(parseFrame(event.data))
    for (const wake of waiters) wake()
  })
  ws.accept()
  const until = (predicate: (frames: Array<any>) => boolean, timeoutMs = 10_000) =>
    new Promise<Array<any>>((resolve, reject) => {
      const check = () => {
        if (predicate(frames)) {
          waiters.delete(check)
          clearTimeout(timer)
          resolve(frames)
        }
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`timed out; frames so far: ${JSON.stringify(frames).slice(0, 2000)}`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })
  return { ws, frames, closed, until }
}

export const eventSeqs = (frames: Array<any>) =>
  frames.filter((f) => f?.type === "event").map((f) => f.event.seq as number)

export const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/** Reads an SSE response until `count` events arrived; returns them parsed. */
export const readSse = async (response: Response, count: number, timeoutMs = 10_000) => {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  const events: Array<{ id: string; event: string; data: any }> = []
  let buffer = ""
  const deadline = Date.now() + timeoutMs
  while (events.length < count) {
    if (Date.now() > deadline) throw new Error(`SSE timed out after ${events.length} events`)
    const { value, done } = await reader.read()
    if (done) break
    buffer += value
    let end: number
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const fields = Object.fromEntries(
        block
          .split("\n")
          .filter((l) => !l.startsWith(":"))
          .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]),
      )
      if (fields.data !== undefined)
        events.push({ id: fields.id ?? "", event: fields.event ?? "", data: JSON.parse(fields.data) })
    }
  }
  await reader.cancel()
  return events
}

/** The object of actor `kind/id` (one namespace hosts every kind), by default in the local-development tenant. */
export const actorObject = (kind: string, id: string, tenant = DEV_TENANT) =>
  env.EMBERLOG_ACTOR.getByName(actorName(tenant, kind, id))

/** The object of topic `name` (which also holds the projections that topic feeds). */
export const topicObject = (name: string, tenant = DEV_TENANT) => env.EMBERLOG_TOPIC.getByName(scopedName(tenant, name))

export const mcpSessionObject = (id: string, tenant = DEV_TENANT) =>
  env.EMBERLOG_MCP_SESSION.getByName(scopedName(tenant, id))

/** The id of actor `kind/id`'s object (memory content in R2 and vectors are keyed by it). */
export const actorObjectId = (kind: string, id: string, tenant = DEV_TENANT) =>
  env.EMBERLOG_ACTOR.idFromName(actorName(tenant, kind, id))

/** Actor `kind/id` over RPC, typed as the edge calls it. */
export const actorApi = (kind: string, id: string, tenant = DEV_TENANT) =>
  actorObject(kind, id, tenant) as unknown as ActorApi

/**
 * Writes counter `id`'s event 2 as an old deployment would have: `Incremented` at schema version 1
 * (data `{by: 41}` only), straight into SQLite, with a valid chain link to event 1.
 */
export const appendLegacyIncremented = (id: string, at = Date.now()) =>
  runInDurableObject(actorObject("counter", id), (_instance, state: DurableObjectState) => {
    const prev = state.storage.sql.exec("SELECT hash FROM events WHERE seq = 1").one().hash as string
    const meta = { at, causationId: null, commandId: "legacy", correlationId: "legacy", principal: "legacy" }
    const body = { seq: 2, type: "Incremented", schemaVersion: 1, data: { by: 41 }, meta }
    state.storage.sql.exec(
      "INSERT INTO events (seq, type, schema_version, data, meta, at, hash) VALUES (2, 'Incremented', 1, ?, ?, ?, ?)",
      JSON.stringify(body.data),
      JSON.stringify(meta),
      meta.at,
      chainHash(prev, body),
    )
  })

/** A bare wire event to deliver straight to a topic in tests (its type is all a filter looks at). */
export const topicTestEvent = (seq: number, type: string) => ({
  seq,
  type,
  schemaVersion: 1,
  data: {},
  meta: { at: 0, principal: "test" },
  hash: `h${seq}`,
})

/**
 * What the outbox and the replica would do once they caught up with a counter's log to `through`:
 * the counter topic's cursor and every follower's (the replica's) move there. Archive tests seed
 * logs of many thousand events whose delivery is not what they test; sealing waits for both.
 */
export const deliveredThrough = (
  core: {
    advanceTopic(topic: string, through: number): void
    followers(): ReadonlyArray<string>
    advanceFollower(name: string, through: number): void
  },
  through: number,
): void => {
  core.advanceTopic("counter", through)
  for (const follower of core.followers()) core.advanceFollower(follower, through)
}
