// A projection lives in the object of the topic that feeds it (issue 11): applied in the same
// transaction as the topic's append, caught up from the topic's log when it is added to a topic
// that already has entries, and creating nothing on a topic with none. One that throws is isolated: it
// stops at its entry (503 projection_failed) while its topic and the other projections go on.
import { env, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { defineProjection, topicClass, type TopicApi, type TopicProjection } from "../../src/actors/topic.js"
import type { WireEvent } from "../../src/core/wire.js"
import { failed } from "../../src/edge/errors.js"
import { freshId, topicObject } from "./helpers.js"

const event = (seq: number, by: number): WireEvent =>
  ({
    seq,
    type: "Incremented",
    schemaVersion: 2,
    data: { by, reason: null },
    meta: { at: seq },
    hash: `h${seq}`,
  }) as never

/** A projection of its own topic (the Worker's topic class does not host it): the sum of `by`. */
const sumOf = (topic: string) =>
  defineProjection<{ sum: number; entries: number; topicSeq: number }>({
    name: `sum-${topic}`,
    topic,
    setup: (sql) => sql.exec("CREATE TABLE IF NOT EXISTS sum_of_by (one INTEGER PRIMARY KEY, sum INTEGER, n INTEGER)"),
    apply: (sql, entries) => {
      sql.exec("INSERT OR IGNORE INTO sum_of_by (one, sum, n) VALUES (1, 0, 0)")
      for (const entry of entries) {
        const by = (entry.event.data as { by: number }).by
        sql.exec("UPDATE sum_of_by SET sum = sum + ?, n = n + 1 WHERE one = 1", by)
      }
    },
    read: (sql, topicSeq) => {
      const row = sql.exec("SELECT sum, n FROM sum_of_by WHERE one = 1").toArray()[0]
      return { sum: (row?.sum as number) ?? 0, entries: (row?.n as number) ?? 0, topicSeq }
    },
    empty: { sum: 0, entries: 0, topicSeq: 0 },
  })

/** The topic's object as a topic class hosting `projection` sees it (the same storage). */
const withProjection = (topic: string, run: (object: TopicApi, state: DurableObjectState) => unknown) =>
  runInDurableObject(topicObject(topic), (_instance: unknown, state: DurableObjectState) => {
    const Topic = topicClass([sumOf(topic)])
    return run(new Topic(state, env) as unknown as TopicApi, state)
  })

/** The topic's object as a topic class hosting `projections` sees it: a new instance, as at a wake. */
const hosting = <R>(
  topic: string,
  projections: ReadonlyArray<TopicProjection<any>>,
  run: (object: TopicApi, state: DurableObjectState) => Promise<R>,
) =>
  runInDurableObject(topicObject(topic), (_instance: unknown, state: DurableObjectState) => {
    const Topic = topicClass(projections)
    return run(new Topic(state, env) as unknown as TopicApi, state)
  })

/**
 * A projection that keeps one row per entry and throws on any entry whose `by` is in `poison`
 * (after writing its row, and after rows for the batch's earlier entries: all must be rolled back).
 */
const throwingOn = (topic: string, poison: ReadonlyArray<number>, setupThrows = false) =>
  defineProjection<{ seqs: Array<number>; topicSeq: number }>({
    name: `flaky-${topic}`,
    topic,
    setup: (sql) => {
      sql.exec("CREATE TABLE IF NOT EXISTS flaky_rows (topic_seq INTEGER PRIMARY KEY)")
      if (setupThrows) throw new Error("setup broke")
    },
    apply: (sql, entries) => {
      for (const entry of entries) {
        sql.exec("INSERT INTO flaky_rows (topic_seq) VALUES (?)", entry.topicSeq)
        if (poison.includes((entry.event.data as { by: number }).by)) throw new Error(`cannot fold ${entry.topicSeq}`)
      }
    },
    read: (sql, topicSeq) => ({
      seqs: sql
        .exec("SELECT topic_seq FROM flaky_rows ORDER BY topic_seq")
        .toArray()
        .map((row) => row.topic_seq as number),
      topicSeq,
    }),
    empty: { seqs: [], topicSeq: 0 },
  })

const tables = (state: DurableObjectState) =>
  state.storage.sql
    .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
    .toArray()
    .map((row) => row.name)

describe("projections in their topic's object", () => {
  it("catch up from the topic's log when added to a topic that already has entries", async () => {
    const topic = freshId("projected")
    const source = { kind: "counter", id: "c1" }
    // Entries appended by a topic class without the projection.
    const plain = topicObject(topic) as unknown as TopicApi
    expect(await plain.deliver(source, [event(1, 2), event(2, 3)])).toEqual({ accepted: 2, duplicates: 0 })
    const view = await withProjection(topic, (object) => object.readProjection(`sum-${topic}`))
    expect(view).toEqual({ ok: true, value: { sum: 5, entries: 2, topicSeq: 2 } })
    // Then fed in the append's own transaction: never behind its topic, and duplicates skipped.
    const fed = await withProjection(topic, async (object) => {
      object.deliver(source, [event(2, 3), event(3, 10)])
      return object.readProjection(`sum-${topic}`)
    })
    expect(fed).toEqual({ ok: true, value: { sum: 15, entries: 3, topicSeq: 3 } })
  })

  it("create nothing on a topic with no entries, whatever is read", async () => {
    const topic = freshId("empty-projected")
    const read = await withProjection(topic, async (object, state) => ({
      view: object.readProjection(`sum-${topic}`),
      unknown: object.readProjection("no-such-projection"),
      tables: tables(state),
    }))
    expect(read).toEqual({
      view: { ok: true, value: { sum: 0, entries: 0, topicSeq: 0 } },
      unknown: { ok: false, error: expect.objectContaining({ code: "unknown_projection" }) },
      tables: [],
    })
  })

  it("counter-totals is its counter topic's, read through /v1/projections", async () => {
    const tenant = "public"
    const reply = await (topicObject("counter", tenant) as unknown as TopicApi).readProjection("counter-totals")
    expect(reply).toMatchObject({ ok: true, value: { total: expect.any(Number), counters: expect.any(Number) } })
    // Another topic's object does not feed it.
    const other = await (topicObject(freshId("other"), tenant) as unknown as TopicApi).readProjection("counter-totals")
    expect(other).toMatchObject({ ok: false, error: { code: "unknown_projection" } })
  })

  it("a projection that throws stops at its entry; the append, reads and the other projections go on", async () => {
    const topic = freshId("failing-projection")
    const source = { kind: "counter", id: "c1" }
    const broken = [sumOf(topic), throwingOn(topic, [13])]
    const errors = console.error
    console.error = () => undefined
    try {
      const first = await hosting(topic, broken, async (object, state) => ({
        delivered: await object.deliver(source, [event(1, 2), event(2, 13), event(3, 4)]),
        again: await object.deliver(source, [event(4, 1)]),
        entries: (await object.readEntries(0, 10)).entries.map((entry) => entry.topicSeq),
        sum: await object.readProjection(`sum-${topic}`),
        flaky: await object.readProjection(`flaky-${topic}`),
        // Its tables hold exactly the entries before the one it failed on: the failed batch's rows were rolled back.
        rows: state.storage.sql.exec("SELECT topic_seq FROM flaky_rows").toArray(),
        recorded: state.storage.sql
          .exec("SELECT topic_seq, failed_seq, error FROM projections WHERE name = ?", `flaky-${topic}`)
          .one(),
      }))
      expect(first).toMatchObject({
        delivered: { accepted: 3, duplicates: 0 },
        again: { accepted: 1, duplicates: 0 },
        entries: [1, 2, 3, 4],
        sum: { ok: true, value: { sum: 20, entries: 4, topicSeq: 4 } },
        flaky: {
          ok: false,
          error: {
            _tag: "Unavailable",
            code: "projection_failed",
            message: expect.stringContaining("topic entry 2"),
            details: { projection: `flaky-${topic}`, topicSeq: 2, error: "cannot fold 2" },
          },
        },
        rows: [{ topic_seq: 1 }],
        recorded: { topic_seq: 1, failed_seq: 2, error: "cannot fold 2" },
      })
      // What /v1/projections/{name} answers, through the one failure table.
      expect(first.flaky.ok === false && failed(first.flaky.error).status).toBe(503)

      // A wake with the definition still broken: the topic is constructed, the failure stands, appends go on.
      const woken = await hosting(topic, broken, async (object) => ({
        delivered: await object.deliver(source, [event(5, 5)]),
        sum: await object.readProjection(`sum-${topic}`),
        flaky: await object.readProjection(`flaky-${topic}`),
      }))
      expect(woken).toMatchObject({
        delivered: { accepted: 1 },
        sum: { ok: true, value: { sum: 25, entries: 5, topicSeq: 5 } },
        flaky: { ok: false, error: { code: "projection_failed", details: { topicSeq: 2 } } },
      })

      // A deploy with a fix: the next wake retries from the failed entry, and the projection catches up.
      const fixed = await hosting(topic, [sumOf(topic), throwingOn(topic, [])], async (object, state) => ({
        flaky: await object.readProjection(`flaky-${topic}`),
        recorded: state.storage.sql
          .exec("SELECT topic_seq, failed_seq, error FROM projections WHERE name = ?", `flaky-${topic}`)
          .one(),
      }))
      expect(fixed).toEqual({
        flaky: { ok: true, value: { seqs: [1, 2, 3, 4, 5], topicSeq: 5 } },
        recorded: { topic_seq: 5, failed_seq: null, error: null },
      })
    } finally {
      console.error = errors
    }
  })

  it("a catch-up that throws, or a setup that throws, leaves the topic constructible and serving", async () => {
    const topic = freshId("failing-catch-up")
    const source = { kind: "counter", id: "c1" }
    // Entries appended by a topic class without the projections, then a wake with them.
    const plain = topicObject(topic) as unknown as TopicApi
    expect(await plain.deliver(source, [event(1, 7), event(2, 3)])).toEqual({ accepted: 2, duplicates: 0 })
    const errors = console.error
    console.error = () => undefined
    try {
      const caughtUp = await hosting(topic, [throwingOn(topic, [7])], async (object) => ({
        flaky: await object.readProjection(`flaky-${topic}`),
        delivered: await object.deliver(source, [event(3, 1)]),
        entries: (await object.readEntries(0, 10)).entries.length,
      }))
      expect(caughtUp).toMatchObject({
        flaky: { ok: false, error: { code: "projection_failed", details: { topicSeq: 1, error: "cannot fold 1" } } },
        delivered: { accepted: 1 },
        entries: 3,
      })
      const setUp = await hosting(topic, [sumOf(topic), throwingOn(topic, [], true)], async (object) => ({
        flaky: await object.readProjection(`flaky-${topic}`),
        sum: await object.readProjection(`sum-${topic}`),
      }))
      expect(setUp).toMatchObject({
        flaky: { ok: false, error: { code: "projection_failed", details: { topicSeq: null, error: "setup broke" } } },
        sum: { ok: true, value: { sum: 11, entries: 3, topicSeq: 3 } },
      })
    } finally {
      console.error = errors
    }
  })

  it("counter-totals folds only counters' events: another kind may publish to the counter topic", async () => {
    const tenant = freshId("tenant")
    const counterTopic = topicObject("counter", tenant) as unknown as TopicApi
    const joined = {
      seq: 1,
      type: "Joined",
      schemaVersion: 1,
      data: { name: "alice" },
      meta: { at: 99 },
      hash: "r1",
    } as unknown as WireEvent
    expect(await counterTopic.deliver({ kind: "counter", id: "c1" }, [event(1, 2), event(2, 3)])).toMatchObject({
      accepted: 2,
    })
    expect(await counterTopic.deliver({ kind: "room", id: "r1" }, [joined])).toMatchObject({ accepted: 1 })
    expect(await counterTopic.deliver({ kind: "counter", id: "c2" }, [event(1, 4)])).toMatchObject({ accepted: 1 })
    expect(await counterTopic.readProjection("counter-totals")).toEqual({
      ok: true,
      value: { total: 9, counters: 2, lastUpdate: 1, topicSeq: 4 },
    })
  })
})
