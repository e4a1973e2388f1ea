// Replicas through Cloudflare Queues (issue 15 §3 and §4): the app follows every actor's log into
// the EMBERLOG_REPLICA queue, and the local consumer (test/workerd/standins/replica-consumer.ts,
// the library's replicaConsumer over a store in memory) keeps a copy of each, caught up after it was
// down, gaps filled from the actors themselves, the producer's failures retried.
import { env, runInDurableObject } from "cloudflare:test"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import type { ActorObject } from "../../src/actors/durable-actor.js"
import { replicaCursorName, replicaFaults } from "../../src/actors/replica.js"
import { GENESIS_HASH } from "../../src/core/hash-chain.js"
import { DEV_TENANT } from "../../src/core/names.js"
import { replicaBatches } from "../../src/core/replica.js"
import type { WireEvent } from "../../src/core/wire.js"
import { counter } from "../../src/kinds/index.js"
import { emberlog } from "../../src/worker.js"
import { actorApi, actorObject, freshId, get, json, send } from "./helpers.js"

const CURSOR = replicaCursorName("EMBERLOG_REPLICA")
const consumer = env.REPLICA_CONSUMER

// The producer logs each failed send it retries; the failures here are the tests' own.
beforeEach(() => void vi.spyOn(console, "warn").mockImplementation(() => undefined))
afterEach(async () => {
  vi.restoreAllMocks()
  replicaFaults.fail = 0
  await consumer.setDown(false)
  await consumer.setOnDiverged("reset")
})

/** The whole log of actor `kind/id` (a counter unless told), as /events pages it. */
const logOf = async (id: string, kind = "counter"): Promise<Array<WireEvent>> => {
  const events: Array<WireEvent> = []
  for (let after: number | null = 0; after !== null;) {
    const { body }: { body: { events: Array<WireEvent>; next: number | null } } = await json(
      await get(`/v1/${kind}/${id}/events?after=${after}&limit=1000`),
    )
    events.push(...body.events)
    after = body.next
  }
  return events
}

const increment = async (id: string, times: number) => {
  for (let i = 0; i < times; i++) expect((await send("counter", id, { type: "Increment", by: i + 1 })).status).toBe(200)
}

const keptOf = (id: string, kind = "counter") => consumer.kept(DEV_TENANT, kind, id) as Promise<Array<WireEvent>>

/** Waits until the consumer's copy of every actor in `ids` is its whole log, then checks it is exactly that. */
const expectReplicated = async (ids: ReadonlyArray<string>, kind = "counter") => {
  for (const id of ids) {
    const log = await logOf(id, kind)
    await expect.poll(async () => (await keptOf(id, kind)).length, { timeout: 20_000, interval: 50 }).toBe(log.length)
    expect(await keptOf(id, kind)).toEqual(log)
  }
  expect((await consumer.stats()).violations).toEqual([])
}

const cursorOf = (id: string) =>
  runInDurableObject(actorObject("counter", id), (instance: ActorObject) => instance.core.followerCursor(CURSOR))

describe("a replica through the queue", () => {
  it("gets every event of several actors once, in order per actor, and ignores redelivered messages", async () => {
    const ids = [freshId("replica"), freshId("replica"), freshId("replica")]
    await Promise.all(ids.map((id, i) => increment(id, 5 + i * 3)))
    await expectReplicated(ids)
    for (const id of ids) expect(await cursorOf(id)).toBe((await logOf(id)).length)

    // The queue delivers at least once: the same messages again change nothing.
    const before = (await consumer.stats()).duplicates
    const source = { tenant: DEV_TENANT, kind: "counter", id: ids[1]! }
    for (const batch of replicaBatches(source, await logOf(ids[1]!), GENESIS_HASH))
      await env.EMBERLOG_REPLICA.sendBatch(batch)
    await expect
      .poll(async () => (await consumer.stats()).duplicates, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(before + 8)
    await expectReplicated(ids)
  })

  it("catches up after its consumer was down while commands went on: nothing lost, nothing twice", async () => {
    const ids = [freshId("replica-down"), freshId("replica-down")]
    await increment(ids[0]!, 2)
    await expectReplicated([ids[0]!])
    await consumer.setDown(true)
    const failedBefore = (await consumer.stats()).failedBatches
    await Promise.all(ids.map((id) => increment(id, 6)))
    // The queue keeps handing the batches back while the consumer fails them.
    await expect
      .poll(async () => (await consumer.stats()).failedBatches, { timeout: 20_000 })
      .toBeGreaterThan(failedBefore)
    expect((await keptOf(ids[0]!)).length).toBe(2)
    expect(await keptOf(ids[1]!)).toEqual([])
    const resyncsBefore = (await consumer.stats()).resyncs
    await consumer.setDown(false)
    // No command after it is back: the queue's own redelivery catches it up, no read of the actors.
    await expectReplicated(ids)
    expect((await consumer.stats()).resyncs).toBe(resyncsBefore)
  })

  it("fills a gap (messages lost, as to a dead-letter queue) from the actor's own log", async () => {
    const id = freshId("replica-gap")
    await increment(id, 2)
    await expectReplicated([id])
    const resyncsBefore = (await consumer.stats()).resyncs
    await consumer.loseNext(DEV_TENANT, "counter", id, 3)
    await increment(id, 3)
    await expect.poll(async () => (await consumer.stats()).lost, { timeout: 20_000 }).toBeGreaterThanOrEqual(3)
    // Nothing after the lost messages yet: the copy stops at the last event it got.
    expect((await keptOf(id)).length).toBe(2)
    await increment(id, 2)
    await expectReplicated([id])
    expect((await consumer.stats()).resyncs).toBeGreaterThan(resyncsBefore)
  })

  it("keeps the cursor when sendBatch throws and retries with backoff until it is sent", async () => {
    const id = freshId("replica-producer")
    replicaFaults.fail = 2
    await increment(id, 3)
    // The first attempt failed: nothing moved, and the alarm is set for a retry a backoff away.
    await expect.poll(() => replicaFaults.fail, { timeout: 10_000 }).toBeLessThan(2)
    const failedAt = Date.now()
    // Past the alarms the commits asked for (25 ms): what is left is the retry, at least 500 ms after the failure.
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(await cursorOf(id)).toBe(0)
    // The cursor is stored from the first commit on, at 0: nothing past it may be trimmed from the log (archiving).
    expect(
      await runInDurableObject(actorObject("counter", id), (_, state) =>
        state.storage.sql.exec("SELECT through FROM topic_cursors WHERE topic = ?", CURSOR).toArray(),
      ),
    ).toEqual([{ through: 0 }])
    const alarm = await runInDurableObject(actorObject("counter", id), (_, state) => state.storage.getAlarm())
    expect(alarm).not.toBeNull()
    expect(alarm! - failedAt).toBeGreaterThanOrEqual(300)
    expect(await keptOf(id)).toEqual([])
    await expectReplicated([id])
    expect(replicaFaults.fail).toBe(0)
    expect(await cursorOf(id)).toBe(3)
  })

  it("sends large events within the queue's limits, and one too large for a message is read from the actor", async () => {
    const id = freshId("replica-large")
    // The first send fails, so the retry sends every event below in one page, cut into batches by size.
    replicaFaults.fail = 1
    expect((await send("document", id, { type: "Create", title: "big", content: "" })).status).toBe(200)
    const resyncsBefore = (await consumer.stats()).resyncs
    // 100,000 characters an event: two fit a batch (256 KB) and three would not; the last is over a message's 128 KB.
    let length = 0
    for (const [version, size] of [
      [1, 100_000],
      [2, 100_000],
      [3, 100_000],
      [4, 150_000],
    ] as const) {
      const ops = [{ op: "insert", at: length, text: "x".repeat(size) }]
      expect((await send("document", id, { type: "Edit", baseVersion: version, ops })).status).toBe(200)
      length += size
    }
    await expectReplicated([id], "document")
    expect((await consumer.stats()).resyncs).toBeGreaterThan(resyncsBefore)
  })

  it("fails a restarted log (the actor erased) loudly, keeping the copy, or rebuilds it with onDiverged: reset", async () => {
    const id = freshId("replica-erased")
    await increment(id, 2)
    await expectReplicated([id])
    const old = await keptOf(id)
    await consumer.setOnDiverged("fail")
    const divergedBefore = (await consumer.stats()).diverged
    // The tenant deleted: the actor's log restarts at seq 1, with other events.
    await actorApi("counter", id).eraseAll()
    await increment(id, 3)
    await expect.poll(() => cursorOf(id), { timeout: 20_000 }).toBe(3)
    await expect
      .poll(async () => (await consumer.stats()).diverged, { timeout: 20_000 })
      .toBeGreaterThan(divergedBefore)
    // Retried over and over, seq 2 is another event than the one kept: nothing of the new log is mixed into the old copy.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await keptOf(id)).toEqual(old)
    await consumer.setOnDiverged("reset")
    await expectReplicated([id])
    expect((await keptOf(id))[1]!.hash).not.toBe(old[1]!.hash)
  })

  it("is configured with a queue binding and kinds the app serves, or the app refuses to load", () => {
    expect(() => emberlog({ kinds: [counter], replica: { binding: "EMBERLOG REPLICA" } })).toThrow(
      /replica.binding must name a queue producer binding/,
    )
    expect(() => emberlog({ kinds: [counter], replica: { binding: "Q", kinds: ["cart"] } })).toThrow(
      /replica.kinds names "cart", which this app does not serve \(it serves counter\)/,
    )
    expect(
      emberlog({ kinds: [counter], replica: { binding: "Q", kinds: ["counter"] } }).objects.EmberlogActor,
    ).toBeTypeOf("function")
  })
})
