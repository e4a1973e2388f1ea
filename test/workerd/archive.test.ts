// History beyond one object (issue 15 §3): a 250,000-event counter (the counter kind's retention:
// 10,000 events live, segments of 10,000) sealed into segments in local R2, then every read route
// across the segment boundaries and the archive/live boundary (/events and verify over all of it,
// the others from a few segments back), verify, and retention with its 410
// (crash safety and the failure cases: archive-repair.test.ts).
import { SELF, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test"
import { beforeAll, describe, expect, it } from "vitest"
import type { ActorObject } from "../../src/actors/durable-actor.js"
import { encodeOffset } from "../../src/actors/stream-offsets.js"
import { createClient } from "../../src/client/client.js"
import { BASE, actorObject, freshId, get, json, openSocket, send, deliveredThrough } from "./helpers.js"

const TOTAL = 250_000
const LIVE = 10_000
const SEGMENT = 10_000
const ARCHIVED = TOTAL - LIVE
const DAY_MS = 24 * 60 * 60 * 1000
/**
 * Where the reads that need not walk all 250,000 events start: four segments before the live tail,
 * so each crosses three segment boundaries and the archive's end (the round trip — /events from 0
 * and verify — reads everything).
 */
const WINDOW_AFTER = ARCHIVED - 4 * SEGMENT + 1_234

const stub = (id: string) => actorObject("counter", id)

/** Commits `count` increments inside the object in one RPC (each command its own transaction). */
const seed = (id: string, count: number) =>
  runInDurableObject(stub(id), (instance: ActorObject) => {
    for (let i = 0; i < count; i++) {
      const reply = instance.commit({ command: { type: "Increment", by: 1 } })
      if (!reply.ok) throw new Error(reply.error.message)
    }
  })

/**
 * What the outbox would do once the topic caught up: the counter topic's cursor moves to the head
 * (delivering 250,000 events to the topic is not what this file tests; sealing waits for it, below).
 */
const topicCaughtUp = (id: string) =>
  runInDurableObject(stub(id), (instance: ActorObject) => deliveredThrough(instance.core, instance.core.currentVersion))

const archivedThrough = (id: string) =>
  runInDurableObject(stub(id), (instance: ActorObject) => instance.archiver.index.archivedThrough)

/** Seals every full segment due, one per call as the alarm does. */
const sealAll = (id: string) =>
  runInDurableObject(stub(id), async (instance: ActorObject) => {
    while ((await instance.archiver.sealNext()) !== undefined);
    return instance.archiver.index.archivedThrough
  })

const sqlRow = (id: string, query: string) =>
  runInDurableObject(stub(id), (_instance, state) => state.storage.sql.exec(query).toArray()[0] as any)

/** Every event through the /events pages from `after`, `stored` as the export reads them. */
const pageAll = async (id: string, after = 0, stored = false) => {
  const seqs: Array<number> = []
  for (let cursor: number | null = after; cursor !== null;) {
    const { status, body } = await json(
      await get(`/v1/counter/${id}/events?after=${cursor}&limit=10000${stored ? "&stored=true" : ""}`),
    )
    expect(status).toBe(200)
    for (const event of body.events) seqs.push(event.seq)
    cursor = body.next
  }
  return seqs
}

/**
 * A socket predicate: whether a frame of event `seq` has come, looking only at the frames since its
 * last look (it runs on every frame: scanning them all each time is quadratic over 22,000 frames).
 */
const sawSeq = (seq: number) => {
  let from = 0
  return (frames: Array<any>) => {
    for (; from < frames.length; from++) if (frames[from].event?.seq === seq) return true
    return false
  }
}

const expectGone = async (response: Response, firstAvailableSeq: number) => {
  const { status, body } = await json(response)
  expect(status).toBe(410)
  expect(body.error).toMatchObject({ code: "history_deleted", details: { firstAvailableSeq } })
}

describe("archive: a 250,000-event actor", () => {
  const id = freshId("archive")
  let seedMs = 0
  let sealMs = 0

  beforeAll(async () => {
    const started = Date.now()
    await seed(id, TOTAL)
    seedMs = Date.now() - started
    await topicCaughtUp(id)
    const sealing = Date.now()
    // The alarm seals (one segment per ring) once its directory delivery is out of the way.
    await runDurableObjectAlarm(stub(id))
    await runDurableObjectAlarm(stub(id))
    expect(await archivedThrough(id)).toBeGreaterThanOrEqual(SEGMENT)
    expect(await sealAll(id)).toBe(ARCHIVED)
    sealMs = Date.now() - sealing
    console.log(
      `archive.test: seeded ${TOTAL} events in ${seedMs} ms, sealed ${ARCHIVED / SEGMENT} segments in ${sealMs} ms`,
    )
  }, 120_000)

  it("keeps only the live tail in SQLite, a segment index and a snapshot at each boundary", async () => {
    expect(await sqlRow(id, "SELECT min(seq) AS low, max(seq) AS high, count(*) AS n FROM events")).toEqual({
      low: ARCHIVED + 1,
      high: TOTAL,
      n: LIVE,
    })
    const segments = await runInDurableObject(stub(id), (instance: ActorObject) => instance.archiver.index.all)
    expect(segments).toHaveLength(ARCHIVED / SEGMENT)
    segments.forEach((segment, i) => {
      expect(segment).toMatchObject({ first: i * SEGMENT + 1, last: (i + 1) * SEGMENT, deletedAt: null })
      if (i > 0) expect(segment.prevHash).toBe(segments[i - 1]!.lastHash)
    })
    const listed = await env.EMBERLOG_ARCHIVE.list({ prefix: `public/counter/${id}/` })
    expect(listed.objects.map((object) => object.key)).toEqual(segments.map((segment) => segment.key))
    const head = await env.EMBERLOG_ARCHIVE.head(segments[2]!.key)
    expect(head?.customMetadata).toEqual({
      firstSeq: "20001",
      lastSeq: "30000",
      prevHash: segments[2]!.prevHash,
      lastHash: segments[2]!.lastHash,
    })
    const boundaries = await sqlRow(id, `SELECT count(*) AS n FROM snapshots WHERE seq <= ${ARCHIVED}`)
    expect(boundaries.n).toBe(ARCHIVED / SEGMENT)
    // The object rebuilt from SQLite alone (no R2 read): the boundary snapshot and the live tail.
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: TOTAL, state: { value: TOTAL } })
  })

  it("pages /events from 0 to the head: every seq once, in order", async () => {
    const seqs = await pageAll(id)
    expect(seqs.length).toBe(TOTAL)
    expect(seqs.every((seq, i) => seq === i + 1)).toBe(true)
  })

  it("answers at= inside a segment, at a boundary and in the live tail, and asOf=", async () => {
    for (const at of [0, 1, 12_345, 20_000, 20_001, ARCHIVED, ARCHIVED + 7, TOTAL]) {
      const { status, body } = await json(await get(`/v1/counter/${id}?at=${at}`))
      expect(status).toBe(200)
      expect(body).toMatchObject({ version: at, state: { value: at } })
    }
    const { body: page } = await json(await get(`/v1/counter/${id}/events?after=55554&limit=1`))
    const at = page.events[0].meta.at as number
    const { body } = await json(await get(`/v1/counter/${id}?asOf=${new Date(at).toISOString()}`))
    // The last event at or before that ms: event 55,555 or one written in the same ms after it.
    expect(body.version).toBeGreaterThanOrEqual(55_555)
    const { body: after } = await json(await get(`/v1/counter/${id}/events?after=${body.version - 1}&limit=2`))
    expect(after.events[0].meta.at).toBeLessThanOrEqual(at)
    if (after.events[1] !== undefined) expect(after.events[1].meta.at).toBeGreaterThan(at)
    expect(body.state).toEqual({ value: body.version })
  })

  it("verifies across every segment and the live tail; a segment altered or missing in R2 is reported", async () => {
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, events: TOTAL })
    const key = (await runInDurableObject(stub(id), (instance: ActorObject) => instance.archiver.index.all[3]!.key))!
    const original = await (await env.EMBERLOG_ARCHIVE.get(key))!.arrayBuffer()
    const text = await new Response(new Blob([original]).stream().pipeThrough(new DecompressionStream("gzip"))).text()
    const lines = text.split("\n")
    const forged = JSON.parse(lines[30_500 - 30_001]!)
    expect(forged.seq).toBe(30_500)
    lines[30_500 - 30_001] = JSON.stringify({ ...forged, data: { ...forged.data, by: 5 } })
    const tampered = lines.join("\n")
    expect(tampered).not.toBe(text)
    const gz = await new Response(
      new Blob([tampered]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer()
    await env.EMBERLOG_ARCHIVE.put(key, gz)
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: false, firstBadSeq: 30_500 })
    await env.EMBERLOG_ARCHIVE.delete(key)
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: false, firstBadSeq: 30_001 })
    await env.EMBERLOG_ARCHIVE.put(key, original)
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, events: TOTAL })
  })

  it("sends a WebSocket subscription from an old `after` its backlog across segments, then live", async () => {
    const after = ARCHIVED - SEGMENT - 2_000
    const socket = await openSocket(`/v1/counter/${id}/ws?after=${after}`)
    await socket.until(sawSeq(TOTAL), 30_000)
    expect((await send("counter", id, { type: "Increment", by: 1 })).status).toBe(200)
    const frames = await socket.until(sawSeq(TOTAL + 1), 30_000)
    const seqs = frames.filter((frame) => frame.type === "event").map((frame) => frame.event.seq)
    expect(seqs.length).toBe(TOTAL + 1 - after)
    expect(seqs.every((seq, i) => seq === after + 1 + i)).toBe(true)
    socket.ws.close()
  })

  it("streams SSE from an old `after` across segments, resuming with Last-Event-ID past what was loaded, then live", async () => {
    // Across three segment boundaries and the archive's end: more than one connection's 8 MiB of segments.
    const after = ARCHIVED - 2 * SEGMENT - 1_000
    const head = (await json(await get(`/v1/counter/${id}`))).body.version as number
    const decoder = new TextDecoder()
    // The stream's text in chunks, joined only when the whole is needed: searching a string grown by
    // `+=` flattens it each time (quadratic over 11 MB), so a chunk is searched with the end before it.
    let chunks: Array<string> = []
    let tail = ""
    const text = () => {
      const joined = chunks.join("")
      chunks = [joined]
      return joined
    }
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
    let connections = 0
    const lastId = () => [...text().matchAll(/^id: (\d+)$/gm)].at(-1)?.[1] ?? String(after)
    /** Reads until `marker`; a stream the server ended is reopened from the last id, as EventSource does. */
    const readUntil = async (marker: string) => {
      // Only the text since the last look is searched (with room for a marker split across chunks).
      for (let seen = text().includes(marker); !seen;) {
        if (reader === undefined) {
          const response = await SELF.fetch(`${BASE}/v1/counter/${id}/events/stream`, {
            headers: { "Last-Event-ID": lastId() },
          })
          expect(response.status).toBe(200)
          reader = response.body!.getReader()
          connections++
        }
        const { value, done } = await reader.read()
        if (done) {
          // Only at an event's end: what follows starts after the last whole event.
          const whole = text()
          chunks = [whole.slice(0, whole.lastIndexOf("\n\n") + 2)]
          tail = ""
          reader = undefined
          continue
        }
        const chunk = decoder.decode(value, { stream: true })
        chunks.push(chunk)
        tail = tail.slice(-marker.length) + chunk
        seen = tail.includes(marker)
      }
    }
    await readUntil(`id: ${head}\n`)
    expect((await send("counter", id, { type: "Increment", by: 1 })).status).toBe(200)
    await readUntil(`id: ${head + 1}\n`)
    await reader!.cancel()
    expect(connections).toBeGreaterThan(1)
    const ids = [...text().matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]))
    expect(ids.length).toBe(head + 1 - after)
    expect(ids.every((seq, i) => seq === after + 1 + i)).toBe(true)
  })

  it("catches /log up from four segments back across their boundaries and the archive's end", async () => {
    const head = (await json(await get(`/v1/counter/${id}`))).body.version as number
    let offset = encodeOffset(WINDOW_AFTER)
    let count = 0
    let expected = WINDOW_AFTER + 1
    for (;;) {
      const response = await get(`/v1/counter/${id}/log?offset=${offset}`)
      expect(response.status).toBe(200)
      const items = (await response.json()) as Array<{ seq: number }>
      for (const item of items) {
        expect(item.seq).toBe(expected++)
        count++
      }
      offset = response.headers.get("Stream-Next-Offset")!
      if (response.headers.get("Stream-Up-To-Date") === "true") break
    }
    expect(count).toBe(head - WINDOW_AFTER)
  })

  it("exports the stored rows from four segments back through the client's pager", async () => {
    const client = createClient({ baseUrl: BASE, fetch: (input, init) => SELF.fetch(input, init) })
    let expected = WINDOW_AFTER + 1
    for await (const event of client
      .actor("counter", id)
      .events({ after: WINDOW_AFTER, limit: 10_000, stored: true })) {
      if (event.seq !== expected) throw new Error(`expected seq ${expected}, got ${event.seq}`)
      expected++
    }
    const head = (await json(await get(`/v1/counter/${id}`))).body.version as number
    expect(expected - 1).toBe(head)
  })

  it("retention deletes old segments: reads of them are 410 with the first available seq, verify starts after them", async () => {
    const later = Date.now() + 3651 * DAY_MS
    // At most 16 segments per alarm ring: the first run deletes segments 1–16, the rest stay.
    const deleted = await runInDurableObject(stub(id), (instance: ActorObject) =>
      instance.archiver.deleteExpired(later),
    )
    expect(deleted).toBe(16)
    const firstAvailableSeq = 16 * SEGMENT + 1
    const segments = await runInDurableObject(stub(id), (instance: ActorObject) => instance.archiver.index.all)
    expect(segments.filter((segment) => segment.deletedAt !== null)).toHaveLength(16)
    expect(await env.EMBERLOG_ARCHIVE.head(segments[0]!.key)).toBeNull()
    expect(await env.EMBERLOG_ARCHIVE.head(segments[16]!.key)).not.toBeNull()

    await expectGone(await get(`/v1/counter/${id}/events?after=0`), firstAvailableSeq)
    await expectGone(await get(`/v1/counter/${id}/events?after=${firstAvailableSeq - 2}`), firstAvailableSeq)
    expect((await get(`/v1/counter/${id}/events?after=${firstAvailableSeq - 1}&limit=1`)).status).toBe(200)
    await expectGone(await get(`/v1/counter/${id}?at=5`), firstAvailableSeq)
    // At the cut itself the snapshot answers: no deleted event is needed.
    expect((await json(await get(`/v1/counter/${id}?at=${firstAvailableSeq - 1}`))).body).toMatchObject({
      version: firstAvailableSeq - 1,
    })
    await expectGone(await get(`/v1/counter/${id}/events/stream?after=10`), firstAvailableSeq)
    await expectGone(
      await SELF.fetch(`${BASE}/v1/counter/${id}/ws?after=10`, { headers: { Upgrade: "websocket" } }),
      firstAvailableSeq,
    )
    expect((await get(`/v1/counter/${id}/log?offset=-1`)).status).toBe(410)

    const report = (await json(await get(`/v1/counter/${id}/verify`))).body
    expect(report).toMatchObject({ ok: true, from: firstAvailableSeq - 1 })

    // The alarm deletes the rest on its next ring.
    expect(await runInDurableObject(stub(id), (instance: ActorObject) => instance.archiver.deleteExpired(later))).toBe(
      8,
    )
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, from: ARCHIVED })
  })
})
