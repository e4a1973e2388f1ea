// History beyond one object (issue 15 §3), the second file (it shares nothing with archive.test.ts):
// crash safety and what bounds a segment (moved here to keep each file short), what goes wrong
// around the archive — an erasure during a seal, a state version change (with and
// without retention having deleted the history before it), R2 failing, a crash inside retention,
// a topic cursor appearing during a seal — and reads at the edges: concurrent loads of a segment,
// a commit while one loads, asOf at a segment's ends, the alarm's retention time, a WebSocket that
// resumes over 4100 across every segment, and the CLI's offline replay of an export from seq 1.
// Each object's archiver is swapped for one cutting segments of 500 events past 500 live (the seam
// archive-model.test.ts uses), so a test seeds a few thousand events, not tens of thousands; where a
// test needs the 8 MiB caps (a backlog's prefetch, a socket's unconfirmed bytes) the events are big.
import { SELF, env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test"
import { beforeAll, describe, expect, it } from "vitest"
import type { ActorObject } from "../../src/actors/durable-actor.js"
import { Archiver, PINNED_BYTES_LIMIT } from "../../src/actors/archiver.js"
import type { Retention } from "../../src/actors/retention.js"
import { createClient, type WireEvent } from "../../src/client/client.js"
import { replayLog } from "../../src/cli/main.js"
import { Counter } from "../../src/kinds/counter/entity.js"
import { BASE, actorObject, freshId, get, json, openSocket, send, deliveredThrough } from "./helpers.js"
import { withRetention } from "./archive-helpers.js"
import { replicaCursorName, type ReplicaFollower } from "../../src/actors/replica.js"

const SEGMENT = 500
const LIVE = 500
/** The counter's retention (3650 days) with small segments. */
const SMALL: Retention = { archiveAfterEvents: LIVE, segmentEvents: SEGMENT, deleteArchivedAfterDays: 3650 }
const DAY_MS = 24 * 60 * 60 * 1000
/** Far enough ahead that the counter's retention (3650 days) expires every segment. */
const LATER = () => Date.now() + 3651 * DAY_MS

const stub = (id: string) => actorObject("counter", id)

const small = new WeakSet<Archiver>()
/**
 * Runs `body` in the object with its archiver swapped for one cutting SMALL segments (again after
 * a restart, which builds the kind's own), sharing its segment index.
 */
const inObject = <A>(
  id: string,
  body: (instance: ActorObject, state: DurableObjectState) => Promise<A> | A,
): Promise<A> => withRetention(id, SMALL, small, body)

/**
 * `segments` full segments sealed and LIVE events live; the topics delivered (as the outbox would).
 * Each event carries `reason` (big ones fill the 8 MiB caps with a few thousand events); with
 * `spaced` each segment and the live events are written in a millisecond of their own (a clock in
 * workerd stands still while code runs: events committed in one stretch share their `at`).
 */
const seedSealed = (id: string, segments: number, options: { reason?: string; spaced?: boolean } = {}) =>
  inObject(id, async (instance) => {
    const { reason, spaced = false } = options
    const commit = (count: number) => {
      for (let i = 0; i < count; i++)
        instance.commit({ command: { type: "Increment", by: 1, ...(reason === undefined ? {} : { reason }) } })
    }
    const tick = () => (spaced ? new Promise((resolve) => setTimeout(resolve, 2)) : undefined)
    for (let segment = 0; segment < segments; segment++) {
      commit(SEGMENT)
      await tick()
    }
    commit(LIVE)
    deliveredThrough(instance.core, instance.core.currentVersion)
    instance.core.acknowledge("#directory", 1)
    while ((await instance.archiver.sealNext()) !== undefined);
    return instance.archiver.index.archivedThrough
  })

const r2Keys = async (id: string) =>
  (await env.EMBERLOG_ARCHIVE.list({ prefix: `public/counter/${id}/` })).objects.map((object) => object.key)

/** As if the kind were deployed with a new state version: no snapshot is at the version the code reads. */
const changeStateVersion = (id: string) =>
  inObject(id, (_instance, state) => state.storage.sql.exec("UPDATE snapshots SET state_version = state_version + 100"))

const stateVersionOf = (id: string) => inObject(id, (instance) => instance.core.entity.stateVersion)

/** The archiver's R2 bucket replaced for one object (its private field): to count or fail its calls. */
const withBucket = (instance: ActorObject, wrap: (bucket: R2Bucket) => R2Bucket) => {
  const archiver = instance.archiver as unknown as { bucket: R2Bucket }
  const original = archiver.bucket
  archiver.bucket = wrap(original)
  return () => {
    archiver.bucket = original
  }
}

const archivedThrough = (id: string) => inObject(id, (instance) => instance.archiver.index.archivedThrough)

const sqlRow = (id: string, query: string) =>
  inObject(id, (_instance, state) => state.storage.sql.exec(query).toArray()[0] as any)

/** Every seq through the /events pages from 0. */
const pageAll = async (id: string) => {
  const seqs: Array<number> = []
  for (let cursor: number | null = 0; cursor !== null;) {
    const { status, body } = await json(await get(`/v1/counter/${id}/events?after=${cursor}&limit=10000`))
    expect(status).toBe(200)
    for (const event of body.events) seqs.push(event.seq)
    cursor = body.next
  }
  return seqs
}

describe("archive: crash safety and what bounds a segment", () => {
  /** Commits `count` increments in the object, then runs `then` in the same stretch (no alarm rings in between). */
  const seedThen = <A>(id: string, count: number, then: (instance: ActorObject) => Promise<A>) =>
    inObject(id, (instance) => {
      for (let i = 0; i < count; i++) instance.commit({ command: { type: "Increment", by: 1 } })
      // The directory's queued first event, as the alarm's outbox step would deliver it.
      instance.core.acknowledge("#directory", 1)
      return then(instance)
    })

  it("does not archive past a topic cursor still to be delivered", async () => {
    const id = freshId("archive-cursor")
    // The counter topic has been delivered nothing yet: nothing may be archived.
    const sealed = await seedThen(id, 2 * SEGMENT + LIVE, (instance) => instance.archiver.sealNext())
    expect(sealed).toBeUndefined()
    const through = await inObject(id, async (instance) => {
      // Delivered a bit past one segment: one segment may go, the second waits for its events' delivery.
      deliveredThrough(instance.core, SEGMENT + 5)
      while ((await instance.archiver.sealNext()) !== undefined);
      return instance.archiver.index.archivedThrough
    })
    expect(through).toBe(SEGMENT)
  })

  it("does not archive the directory's queued first event before it is delivered", async () => {
    const id = freshId("archive-directory")
    const sealed = await inObject(id, async (instance) => {
      for (let i = 0; i < SEGMENT + LIVE; i++) instance.commit({ command: { type: "Increment", by: 1 } })
      // Every topic and follower cursor at the head; only the directory's queued row (seq 1) is left.
      deliveredThrough(instance.core, instance.core.currentVersion)
      const before = await instance.archiver.sealNext()
      instance.core.acknowledge("#directory", 1)
      const after = await instance.archiver.sealNext()
      return { before, after: after?.last }
    })
    expect(sealed).toEqual({ before: undefined, after: SEGMENT })
  })

  it("answers a retried Idempotency-Key whose events retention deleted with 410, appending nothing", async () => {
    const id = freshId("archive-key-deleted")
    expect((await send("counter", id, { type: "Increment", by: 7 }, { "Idempotency-Key": "key-gone" })).status).toBe(
      200,
    )
    const head = await seedThen(id, SEGMENT + LIVE, async (instance) => {
      deliveredThrough(instance.core, instance.core.currentVersion)
      await instance.archiver.sealNext()
      expect(await instance.archiver.deleteExpired(LATER())).toBe(1)
      return instance.core.currentVersion
    })
    const again = await json(await send("counter", id, { type: "Increment", by: 7 }, { "Idempotency-Key": "key-gone" }))
    expect(again.status).toBe(410)
    expect(again.body.error).toMatchObject({ code: "history_deleted", details: { firstAvailableSeq: SEGMENT + 1 } })
    expect(await inObject(id, (instance) => instance.core.currentVersion)).toBe(head)
  })

  it("answers a retried Idempotency-Key whose events are archived with its first result", async () => {
    const id = freshId("archive-key")
    const first = await json(await send("counter", id, { type: "Increment", by: 7 }, { "Idempotency-Key": "key-1" }))
    expect(first.status).toBe(200)
    const through = await seedThen(id, SEGMENT + LIVE, async (instance) => {
      deliveredThrough(instance.core, instance.core.currentVersion)
      await instance.archiver.sealNext()
      return instance.archiver.index.archivedThrough
    })
    expect(through).toBe(SEGMENT)
    const again = await json(await send("counter", id, { type: "Increment", by: 7 }, { "Idempotency-Key": "key-1" }))
    expect(again.status).toBe(200)
    expect(again.body).toMatchObject({ version: 1, events: [{ seq: 1, data: { by: 7 } }], state: { value: 7 } })
  })

  it("runs the command path once for a retried Idempotency-Key whose events are archived (capabilities' I/O is not repeated)", async () => {
    const id = freshId("archive-key-once")
    expect((await send("counter", id, { type: "Increment", by: 3 }, { "Idempotency-Key": "key-once" })).status).toBe(
      200,
    )
    const result = await seedThen(id, SEGMENT + LIVE, async (instance) => {
      deliveredThrough(instance.core, instance.core.currentVersion)
      await instance.archiver.sealNext()
      const host = instance as unknown as { commandPath: (request: unknown) => unknown }
      const path = host.commandPath
      let runs = 0
      host.commandPath = (request) => {
        runs++
        return path(request)
      }
      try {
        const reply = await instance.command({
          command: { type: "Increment", by: 3 },
          idempotencyKey: "key-once",
          principal: "anonymous",
        })
        return { runs, version: reply.ok ? reply.value.version : reply, replayed: reply.ok && reply.value.replayed }
      } finally {
        host.commandPath = path
      }
    })
    expect(result).toEqual({ runs: 1, version: 1, replayed: true })
  })

  it("a crash between writing a segment and trimming SQLite is finished by the next alarm: nothing lost or twice", async () => {
    const id = freshId("archive-crash")
    const failed = await seedThen(id, SEGMENT + LIVE + 3, async (instance) => {
      deliveredThrough(instance.core, instance.core.currentVersion)
      instance.archiver.afterSegmentWritten = () => {
        throw new Error("crash after the R2 put")
      }
      try {
        await instance.archiver.sealNext()
        return undefined
      } catch (error) {
        return String(error)
      }
    })
    expect(failed).toContain("crash after the R2 put")
    const listed = await env.EMBERLOG_ARCHIVE.list({ prefix: `public/counter/${id}/` })
    expect(listed.objects).toHaveLength(1)
    expect(await sqlRow(id, "SELECT count(*) AS n FROM events")).toEqual({ n: SEGMENT + LIVE + 3 })
    expect(await archivedThrough(id)).toBe(0)

    // The object restarts (its memory, the hook with it, is gone); its next alarm computes the same
    // segment and key, overwrites the object and trims.
    await evictDurableObject(stub(id))
    await inObject(id, () => undefined)
    await runDurableObjectAlarm(stub(id))
    await expect.poll(() => archivedThrough(id)).toBe(SEGMENT)
    const after = await env.EMBERLOG_ARCHIVE.list({ prefix: `public/counter/${id}/` })
    expect(after.objects.map((object) => object.key)).toEqual(listed.objects.map((object) => object.key))
    expect(await sqlRow(id, "SELECT min(seq) AS low, count(*) AS n FROM events")).toEqual({
      low: SEGMENT + 1,
      n: LIVE + 3,
    })
    const seqs = await pageAll(id)
    expect(seqs.length).toBe(SEGMENT + LIVE + 3)
    expect(seqs.every((seq, i) => seq === i + 1)).toBe(true)
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({
      ok: true,
      events: SEGMENT + LIVE + 3,
    })

    // Erasing the actor (its tenant's deletion) deletes its segments in R2 too.
    const erased = await inObject(id, (instance) => instance.eraseAll())
    expect(erased).toMatchObject({ events: SEGMENT + LIVE + 3, archivedSegments: 1 })
    expect((await env.EMBERLOG_ARCHIVE.list({ prefix: `public/counter/${id}/` })).objects).toHaveLength(0)
    expect(await archivedThrough(id)).toBe(0)
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 0 })
  })
})

describe("archive: erasure, state versions and failures", () => {
  it("erasing an actor while a seal awaits its R2 put leaves nothing in R2 and nothing in the new log", async () => {
    const id = freshId("archive-erase-seal")
    const sealing = await inObject(id, async (instance) => {
      for (let i = 0; i < SEGMENT + LIVE; i++) instance.commit({ command: { type: "Increment", by: 1 } })
      deliveredThrough(instance.core, instance.core.currentVersion)
      instance.core.acknowledge("#directory", 1)
      const seal = instance.archiver.sealNext()
      const erased = await instance.eraseAll()
      return { erased, sealed: await seal }
    })
    expect(sealing).toEqual({ erased: { events: SEGMENT + LIVE }, sealed: undefined })
    expect(await r2Keys(id)).toEqual([])
    const first = await json(await send("counter", id, { type: "Increment", by: 5 }))
    expect(first.body).toMatchObject({ version: 1, state: { value: 5 } })
    expect(
      (await json(await get(`/v1/counter/${id}/events?after=0`))).body.events.map((e: WireEvent) => e.seq),
    ).toEqual([1])
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, events: 1 })
  })

  it("after a state version change verify passes boundaries with no snapshot yet; the next start refolds once, a segment at a time", async () => {
    const id = freshId("archive-version")
    expect(await seedSealed(id, 3)).toBe(3 * SEGMENT)
    const version = await stateVersionOf(id)
    await changeStateVersion(id)
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({
      ok: true,
      events: 3 * SEGMENT + LIVE,
    })

    await evictDurableObject(stub(id))
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({
      version: 3 * SEGMENT + LIVE,
      state: { value: 3 * SEGMENT + LIVE },
    })
    const after = await inObject(id, (instance, state) => ({
      boundaries: state.storage.sql
        .exec("SELECT seq FROM snapshots WHERE state_version = ? AND seq <= ? ORDER BY seq", version, 3 * SEGMENT)
        .toArray()
        .map((row) => row.seq),
      // Each segment was released once folded: none is left in memory.
      cached: instance.archiver.index.cachedSegments,
    }))
    expect(after).toEqual({ boundaries: [SEGMENT, 2 * SEGMENT, 3 * SEGMENT], cached: 0 })
    // Paid once: the next start and a read inside a segment fold from the boundary before it.
    expect(await inObject(id, (instance) => instance.archiver.refoldArchive())).toBe(0)
    expect((await json(await get(`/v1/counter/${id}?at=${2.5 * SEGMENT}`))).body).toMatchObject({
      state: { value: 2.5 * SEGMENT },
    })
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({
      ok: true,
      events: 3 * SEGMENT + LIVE,
      snapshots: expect.any(Number),
    })
  })

  it("retention does not cut where no snapshot at the current state version is", async () => {
    const id = freshId("archive-version-cut")
    await seedSealed(id, 2)
    await changeStateVersion(id)
    const deleted = await inObject(id, (instance) => instance.archiver.deleteExpired(LATER()))
    expect(deleted).toBe(0)
    expect(await r2Keys(id)).toHaveLength(2)
  })

  it("history deleted by retention and a changed state version: every request is 503 history_unavailable, erasure still works", async () => {
    const id = freshId("archive-unavailable")
    await seedSealed(id, 3)
    expect(await inObject(id, (instance) => instance.archiver.deleteExpired(LATER()))).toBe(3)
    await changeStateVersion(id)
    await evictDurableObject(stub(id))
    const unavailable = async (response: Response) => {
      const { status, body } = await json(response)
      expect(status).toBe(503)
      expect(body.error.code).toBe("history_unavailable")
      expect(body.error.message).toContain("erase the actor")
    }
    await unavailable(await get(`/v1/counter/${id}`))
    await unavailable(await get(`/v1/counter/${id}/events?after=${3 * SEGMENT + LIVE / 2}`))
    await unavailable(await send("counter", id, { type: "Increment", by: 1 }))
    await unavailable(await get(`/v1/counter/${id}/verify`))
    await unavailable(await get(`/v1/counter/${id}/events/stream?after=${3 * SEGMENT + LIVE - 100}`))
    const erased = await inObject(id, (instance) => instance.eraseAll())
    expect(erased).toMatchObject({ events: 3 * SEGMENT + LIVE })
    expect((await json(await send("counter", id, { type: "Increment", by: 2 }))).body).toMatchObject({ version: 1 })
  })

  it("a seal whose R2 put fails is retried with backoff, not on every ring", async () => {
    const id = freshId("archive-backoff")
    const delays = await inObject(id, async (instance, state) => {
      for (let i = 0; i < SEGMENT + LIVE; i++) instance.commit({ command: { type: "Increment", by: 1 } })
      deliveredThrough(instance.core, instance.core.currentVersion)
      instance.core.acknowledge("#directory", 1)
      instance.archiver.afterSegmentWritten = () => {
        throw new Error("R2 put failed")
      }
      const delays: Array<number> = []
      for (let ring = 0; ring < 2; ring++) {
        // As the alarm rings when due (the backoff's time passed).
        ;(instance.archiver as unknown as { sealRetryAt: number }).sealRetryAt = 0
        await instance.alarm()
        delays.push((await state.storage.getAlarm())! - Date.now())
      }
      instance.archiver.afterSegmentWritten = undefined
      return delays
    })
    expect(delays[0]).toBeGreaterThan(500)
    expect(delays[1]).toBeGreaterThan(1_500)
  })

  it("retention marks segments deleted before deleting their objects: a failed delete is swept on the next ring", async () => {
    const id = freshId("archive-mark-first")
    // The asOf below (a deleted segment's last ms) must be neither the cut's nor a live event's.
    await seedSealed(id, 3, { spaced: true })
    const asOfDeleted = await inObject(id, (instance) => instance.archiver.index.all[1]!.lastAt)
    const failed = await inObject(id, async (instance) => {
      const restore = withBucket(
        instance,
        (bucket) =>
          ({
            ...bucket,
            get: bucket.get.bind(bucket),
            list: bucket.list.bind(bucket),
            delete: () => Promise.reject(new Error("crash before the objects were deleted")),
          }) as R2Bucket,
      )
      try {
        await instance.archiver.deleteExpired(LATER())
        return undefined
      } catch (error) {
        return String(error)
      } finally {
        restore()
      }
    })
    expect(failed).toContain("crash before the objects were deleted")
    expect(await r2Keys(id)).toHaveLength(3)
    // The index says deleted: reads answer 410 (not a 500 of a missing object), verify starts at the cut.
    const gone = await json(await get(`/v1/counter/${id}/events?after=0`))
    expect(gone.status).toBe(410)
    expect(gone.body.error).toMatchObject({ code: "history_deleted", details: { firstAvailableSeq: 3 * SEGMENT + 1 } })
    // Also where a snapshot of that history is still stored (the deleted segment's end).
    expect((await json(await get(`/v1/counter/${id}?asOf=${new Date(asOfDeleted).toISOString()}`))).status).toBe(410)
    expect((await json(await get(`/v1/counter/${id}?at=${2 * SEGMENT}`))).status).toBe(410)
    expect((await json(await get(`/v1/counter/${id}/verify`))).body).toMatchObject({ ok: true, from: 3 * SEGMENT })
    const sweep = await inObject(id, async (instance) => {
      const due = instance.archiver.dueAt()
      await instance.archiver.deleteExpired(LATER())
      return { dueNow: due !== undefined && due <= Date.now(), after: instance.archiver.dueAt() }
    })
    expect(sweep).toEqual({ dueNow: true, after: undefined })
    expect(await r2Keys(id)).toEqual([])
  })

  it("a replica started after retention deleted history starts at the cut, linked to its recorded hash", async () => {
    // Not a "replica…" id: the tests' consumer keeps only replica.test.ts's actors.
    const id = freshId("archive-replica-late")
    await seedSealed(id, 3)
    expect(await inObject(id, (instance) => instance.archiver.deleteExpired(LATER()))).toBe(3)
    const result = await inObject(id, async (instance) => {
      const cursor = replicaCursorName("EMBERLOG_REPLICA")
      // As if the queue were bound only now: the replica's cursor starts at the log's start.
      instance.core.unfollow(cursor)
      instance.core.follow(cursor)
      const sent: Array<{ seq: number; prevHash: string }> = []
      const host = instance as unknown as { env: Record<string, unknown>; replica: ReplicaFollower }
      const original = host.env
      host.env = {
        ...original,
        EMBERLOG_REPLICA: {
          sendBatch: async (batch: Array<{ body: any }>) => void sent.push(...batch.map(({ body }) => body)),
        },
      }
      try {
        await host.replica.send(Date.now())
      } finally {
        host.env = original
      }
      return {
        cursor: instance.core.followerCursor(cursor),
        head: instance.core.currentVersion,
        cutHash: instance.archiver.index.all[2]!.lastHash,
        first: sent[0],
        count: sent.length,
      }
    })
    // Without the start at the cut the read of deleted history fails on every ring and the cursor
    // (which bounds archiving) stays at 0 for good.
    expect(result.first).toMatchObject({ seq: 3 * SEGMENT + 1, prevHash: result.cutHash })
    expect(result.count).toBe(result.head - 3 * SEGMENT)
    expect(result.cursor).toBe(result.head)
  })

  it("a topic cursor created while a segment's put is in flight stops the seal before it trims", async () => {
    const id = freshId("archive-cursor-late")
    const result = await inObject(id, async (instance, state) => {
      for (let i = 0; i < SEGMENT + LIVE; i++) instance.commit({ command: { type: "Increment", by: 1 } })
      deliveredThrough(instance.core, instance.core.currentVersion)
      instance.core.acknowledge("#directory", 1)
      // A replica's reserved cursor, created below the boundary the seal computed.
      instance.archiver.afterSegmentWritten = () =>
        void state.storage.sql.exec("INSERT INTO topic_cursors (topic, through) VALUES ('#replica-test', 5)")
      const sealed = await instance.archiver.sealNext()
      instance.archiver.afterSegmentWritten = undefined
      return {
        sealed,
        through: instance.archiver.index.archivedThrough,
        live: state.storage.sql.exec("SELECT count(*) AS n FROM events").one().n,
      }
    })
    expect(result).toEqual({ sealed: undefined, through: 0, live: SEGMENT + LIVE })
  })
})

describe("archive: reads at the edges of segments", () => {
  const id = freshId("archive-edges")
  const SEGMENTS = 5
  const HEAD = SEGMENTS * SEGMENT + LIVE

  beforeAll(async () => {
    // 13 KiB events: a segment is 6.5 MiB (under the 8 MiB cut), four pass the pinned-bytes budget, and
    // a socket passes its 8 MiB of unconfirmed bytes more than twice.
    expect(await seedSealed(id, SEGMENTS, { reason: "x".repeat(13 * 1024) })).toBe(SEGMENTS * SEGMENT)
  }, 60_000)

  it("concurrent loads of one segment read R2 once; reads in progress together hold a bounded number of bytes", async () => {
    const result = await inObject(id, async (instance) => {
      let gets = 0
      const restore = withBucket(
        instance,
        (bucket) =>
          ({
            ...bucket,
            get: ((key: string) => {
              gets++
              return bucket.get(key)
            }) as R2Bucket["get"],
          }) as R2Bucket,
      )
      try {
        const [a, b] = await Promise.all([instance.readEvents(SEGMENT + 200, 5), instance.readEvents(SEGMENT + 300, 5)])
        const sharedGets = gets
        // Prefetches held open (as sockets' backlogs): past the budget a prefetch loads one segment only.
        const releases: Array<() => void> = []
        const pinnedSegments: Array<number> = []
        for (const after of [0, 2 * SEGMENT, 3 * SEGMENT, 0, 2 * SEGMENT]) {
          const before = instance.archiver.index.pinnedBytes
          releases.push(await instance.archiver.prefetch(after))
          pinnedSegments.push(instance.archiver.index.pinnedBytes - before)
        }
        const pinned = instance.archiver.index.pinnedBytes
        const segmentBytes = instance.archiver.index.all.map((segment) => segment.bytes)
        for (const release of releases) release()
        return {
          seqs: [a, b].map((reply) => (reply.ok ? reply.value.events.map((event) => event.seq) : [])),
          sharedGets,
          pinned,
          largest: Math.max(...segmentBytes),
          total: segmentBytes.reduce((total, bytes) => total + bytes, 0),
          released: instance.archiver.index.pinnedBytes,
        }
      } finally {
        restore()
      }
    })
    expect(result.seqs).toEqual([
      [701, 702, 703, 704, 705],
      [801, 802, 803, 804, 805],
    ])
    expect(result.sharedGets).toBe(1)
    // Without the budget these prefetches would hold every segment: more than the bound.
    expect(result.total).toBeGreaterThan(PINNED_BYTES_LIMIT + result.largest)
    expect(result.pinned).toBeLessThanOrEqual(PINNED_BYTES_LIMIT + result.largest)
    expect(result.released).toBe(0)
  })

  it("a command commits while a read waits on a segment's load, and the read answers its own page", async () => {
    const result = await inObject(id, async (instance) => {
      const head = instance.core.currentVersion
      const reading = instance.readEvents(3 * SEGMENT + 234, 3)
      const committed = instance.commit({ command: { type: "Increment", by: 1 } })
      const read = await reading
      return {
        read: read.ok ? read.value.events.map((event) => event.seq) : read,
        committed: committed.ok ? committed.value.version - head : committed,
      }
    })
    expect(result).toEqual({ read: [1735, 1736, 1737], committed: 1 })
  })

  it("answers asOf at a segment's firstAt and lastAt with the last event by then", async () => {
    const segment = await inObject(id, (instance) => instance.archiver.index.all[2]!)
    for (const at of [segment.firstAt, segment.lastAt]) {
      const { status, body } = await json(await get(`/v1/counter/${id}?asOf=${new Date(at).toISOString()}`))
      expect(status).toBe(200)
      expect(body.state).toEqual({ value: body.version })
      const { body: around } = await json(await get(`/v1/counter/${id}/events?after=${body.version - 1}&limit=2`))
      expect(around.events[0].meta.at).toBeLessThanOrEqual(at)
      expect(around.events[1].meta.at).toBeGreaterThan(at)
    }
    const first = (await json(await get(`/v1/counter/${id}?asOf=${new Date(segment.firstAt).toISOString()}`))).body
    expect(first.version).toBeGreaterThanOrEqual(segment.first)
  })

  it("arms the alarm for retention at the oldest segment's lastAt plus the kind's retention days", async () => {
    const { due, oldest, alarm } = await inObject(id, async (instance, state) => {
      await runDurableObjectAlarm(stub(id)).catch(() => undefined)
      return {
        due: instance.archiver.dueAt(),
        oldest: instance.archiver.index.all[0]!.lastAt,
        alarm: await state.storage.getAlarm(),
      }
    })
    expect(due).toBe(oldest + 3650 * DAY_MS)
    expect(alarm).not.toBeNull()
    expect(alarm!).toBeLessThanOrEqual(due!)
  })

  it("resumes a WebSocket from seq 0 over 4100 at each cap, across every segment, each seq once", async () => {
    const seqs: Array<number> = []
    let resumes = 0
    for (let after = 0; ;) {
      const socket = await openSocket(`/v1/counter/${id}/ws?after=${after}`)
      const ended = await Promise.race([
        socket.closed,
        socket.until((frames) => frames.some((frame) => frame.event?.seq >= HEAD), 30_000).then(() => undefined),
      ])
      for (const frame of socket.frames) if (frame.type === "event") seqs.push(frame.event.seq)
      if (ended === undefined) {
        socket.ws.close()
        break
      }
      expect(ended.code).toBe(4100)
      resumes++
      after = seqs[seqs.length - 1]!
    }
    expect(resumes).toBeGreaterThanOrEqual(2)
    expect(seqs.length).toBeGreaterThanOrEqual(HEAD)
    expect(seqs.every((seq, i) => seq === i + 1)).toBe(true)
  })

  it("closes a backlog whose read fails (not an archive miss) with 1011, which clients back off from", async () => {
    const restore = await inObject(id, (instance) => {
      const index = instance.archiver.index
      const eventsOf = index.eventsOf
      index.eventsOf = () => {
        throw new Error("a bug in the segment cache")
      }
      return () => {
        index.eventsOf = eventsOf
      }
    })
    try {
      const socket = await openSocket(`/v1/counter/${id}/ws?after=100`)
      expect((await socket.closed).code).toBe(1011)
    } finally {
      await inObject(id, () => restore())
    }
  })

  it("the CLI's offline replay folds an export from seq 1 across every segment", async () => {
    const client = createClient({ baseUrl: BASE, fetch: (input, init) => SELF.fetch(input, init) })
    const rows: Array<WireEvent> = []
    for await (const event of client.actor("counter", id).events({ limit: 10_000, stored: true })) rows.push(event)
    const replayed = replayLog(Counter, rows)
    expect(replayed.chain).toMatchObject({ ok: true, events: rows.length })
    expect(replayed.state).toEqual({ value: rows.length })
    expect(rows.length).toBeGreaterThanOrEqual(HEAD)
  })
})
