// A projection lives in the object of the topic that feeds it (issue 11): applied in the same
// transaction as the topic's append, caught up from the topic's log when it is added to a topic
// that already has entries, and creating nothing on a topic with none.
import { env, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { defineProjection, topicClass, type TopicApi } from "../../src/actors/topic.js"
import type { WireEvent } from "../../src/core/wire.js"
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
})
