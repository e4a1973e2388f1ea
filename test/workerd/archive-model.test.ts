// A model-based run of the archive (issue 15 §4): appends, archive steps (some crashing between the
// R2 put and the trim), retention deleting the oldest segments, restarts and reads (some at once),
// with every read through the Worker compared to a model of the log. The counter's archiver is swapped for one with tiny segments, so a run crosses many.
import { evictDurableObject, runInDurableObject } from "cloudflare:test"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { Archiver } from "../../src/actors/archiver.js"
import type { Retention } from "../../src/actors/retention.js"
import type { ActorObject } from "../../src/actors/durable-actor.js"
import { actorObject, freshId, get, json, deliveredThrough } from "./helpers.js"
import { withRetention } from "./archive-helpers.js"

const DAY_MS = 24 * 60 * 60 * 1000
const TINY: Retention = { archiveAfterEvents: 3, segmentEvents: 4, deleteArchivedAfterDays: 1 }
const tiny = new WeakSet<Archiver>()
/** Segments sealed across all runs, and reads answered from below the live tail: the runs must reach the archive. */
const reached = { segments: 0, archivedReads: 0, deletedReads: 0 }

interface Model {
  readonly id: string
  /** Each event's `by`, seq 1 first. */
  readonly values: Array<number>
  /** The last seq retention deleted (0: none). */
  deletedThrough: number
}

const stub = (id: string) => actorObject("counter", id)

/** The object's archiver, with TINY segments (again after a restart), sharing its segment index. */
const withTinyArchiver = <A>(id: string, body: (instance: ActorObject) => Promise<A> | A) =>
  withRetention(id, TINY, tiny, body)

const archivedThrough = (id: string) =>
  runInDurableObject(stub(id), (instance: ActorObject) => instance.archiver.index.archivedThrough)

const sum = (values: ReadonlyArray<number>) => values.reduce((total, by) => total + by, 0)

const append = (values: ReadonlyArray<number>): fc.AsyncCommand<Model, object> => ({
  check: () => true,
  run: async (model) => {
    await runInDurableObject(stub(model.id), (instance: ActorObject) => {
      for (const by of values) {
        const reply = instance.commit({ command: { type: "Increment", by } })
        if (!reply.ok) throw new Error(reply.error.message)
      }
      // As the outbox would once delivered: the topic and the directory do not hold the archive back here.
      deliveredThrough(instance.core, instance.core.currentVersion)
      instance.core.acknowledge("#directory", 1)
    })
    model.values.push(...values)
  },
  toString: () => `append ${values.join(",")}`,
})

const seal = (rings: number, crash: boolean): fc.AsyncCommand<Model, object> => ({
  check: () => true,
  run: async (model) => {
    await withTinyArchiver(model.id, async (instance) => {
      for (let i = 0; i < rings; i++) {
        instance.archiver.afterSegmentWritten = crash
          ? () => {
              throw new Error("crash after the R2 put")
            }
          : undefined
        try {
          await instance.archiver.step(Date.now())
        } catch {
          // The injected crash: the rows stay in SQLite, the next step redoes the segment.
        } finally {
          instance.archiver.afterSegmentWritten = undefined
        }
      }
      const { all, archivedThrough } = instance.archiver.index
      reached.segments = Math.max(reached.segments, all.length)
      expect(archivedThrough).toBeLessThanOrEqual(Math.max(0, model.values.length - TINY.archiveAfterEvents))
      all.forEach((segment, i) => {
        expect(segment.first).toBe(i * TINY.segmentEvents! + 1)
        expect(segment.last - segment.first + 1).toBe(TINY.segmentEvents)
      })
    })
  },
  toString: () => `seal ×${rings}${crash ? " (crash)" : ""}`,
})

const expectGone = (model: Model, status: number, body: any) => {
  reached.deletedReads++
  expect(status).toBe(410)
  expect(body.error).toMatchObject({
    code: "history_deleted",
    details: { firstAvailableSeq: model.deletedThrough + 1 },
  })
}

/** Retention as at a time past the `segments`-th kept segment's end: it and those before it (and any as old) go. */
const expire = (segments: number): fc.AsyncCommand<Model, object> => ({
  check: () => true,
  run: async (model) => {
    model.deletedThrough = await withTinyArchiver(model.id, async (instance) => {
      const kept = instance.archiver.index.all.filter((segment) => segment.deletedAt === null)
      const last = kept[Math.min(segments, kept.length) - 1]
      if (last !== undefined)
        await instance.archiver.deleteExpired(last.lastAt + TINY.deleteArchivedAfterDays! * DAY_MS + 1)
      const { firstAvailableSeq, archivedThrough } = instance.archiver.index
      // Only a prefix of the archive, never past it.
      expect(firstAvailableSeq - 1).toBeLessThanOrEqual(archivedThrough)
      expect(firstAvailableSeq - 1).toBeGreaterThanOrEqual(model.deletedThrough)
      if (last !== undefined) expect(firstAvailableSeq - 1).toBeGreaterThanOrEqual(last.last)
      return firstAvailableSeq - 1
    })
  },
  toString: () => `expire ${segments} segment(s)`,
})

/** Reads at once (they may load the same segments): each answers as it would alone. */
const together = (fractions: ReadonlyArray<number>): fc.AsyncCommand<Model, object> => ({
  check: () => true,
  run: async (model) => {
    await Promise.all(
      fractions.flatMap((fraction) => [readAt(fraction).run(model, {}), readPage(fraction, 7).run(model, {})]),
    )
  },
  toString: () => `reads at once at ${fractions.map((f) => f.toFixed(2)).join(", ")}`,
})

const restart: fc.AsyncCommand<Model, object> = {
  check: () => true,
  // An object not running (never woken, or evicted already) has nothing to lose.
  run: async (model) => void (await evictDurableObject(stub(model.id)).catch(() => undefined)),
  toString: () => "restart",
}

const readAt = (fraction: number): fc.AsyncCommand<Model, object> => ({
  check: () => true,
  run: async (model) => {
    const at = Math.floor(fraction * model.values.length)
    if (at < (await archivedThrough(model.id))) reached.archivedReads++
    const { status, body } = await json(await get(`/v1/counter/${model.id}?at=${at}`))
    // At the cut itself the snapshot there answers, at 0 the initial state; between them the events are gone.
    if (at > 0 && at < model.deletedThrough) return expectGone(model, status, body)
    expect(status).toBe(200)
    expect(body).toMatchObject({ version: at, state: { value: sum(model.values.slice(0, at)) } })
  },
  toString: () => `read at ${fraction.toFixed(2)} of the log`,
})

const readPage = (fraction: number, limit: number): fc.AsyncCommand<Model, object> =>
  readPageAfter((model) => Math.floor(fraction * model.values.length), limit, `${fraction.toFixed(2)} of the log`)

const readPageAfter = (
  afterOf: (model: Model) => number,
  limit: number,
  where: string,
): fc.AsyncCommand<Model, object> => ({
  check: () => true,
  run: async (model) => {
    const after = afterOf(model)
    if (after < (await archivedThrough(model.id))) reached.archivedReads++
    const { status, body } = await json(await get(`/v1/counter/${model.id}/events?after=${after}&limit=${limit}`))
    if (after < model.deletedThrough) return expectGone(model, status, body)
    expect(status).toBe(200)
    const expected = model.values.slice(after, after + limit)
    expect(body.events.map((event: { seq: number }) => event.seq)).toEqual(expected.map((_, i) => after + 1 + i))
    expect(body.events.map((event: { data: { by: number } }) => event.data.by)).toEqual(expected)
    expect(body.next).toBe(after + limit < model.values.length ? after + limit : null)
  },
  toString: () => `page after ${where}, limit ${limit}`,
})

const verify: fc.AsyncCommand<Model, object> = {
  check: () => true,
  run: async (model) => {
    const { body } = await json(await get(`/v1/counter/${model.id}/verify`))
    expect(body).toMatchObject({ ok: true, events: model.values.length })
    if (model.deletedThrough > 0) expect(body.from).toBe(model.deletedThrough)
  },
  toString: () => "verify",
}

describe("archive: model-based", () => {
  it("appends, archive steps, crashes and restarts never change what reads and verify answer", async () => {
    const commands = fc.commands(
      [
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 12 }).map(append),
        fc.tuple(fc.integer({ min: 1, max: 4 }), fc.boolean()).map(([rings, crash]) => seal(rings, crash)),
        fc.constant(restart),
        fc.double({ min: 0, max: 1, noNaN: true }).map(readAt),
        fc
          .tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 20 }))
          .map(([f, l]) => readPage(f, l)),
        fc.constant(verify),
        fc.integer({ min: 1, max: 2 }).map(expire),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 4 }).map(together),
      ],
      { maxCommands: 45, size: "max" },
    )
    await fc.assert(
      fc.asyncProperty(commands, async (steps) => {
        const model: Model = { id: freshId("archive-model"), values: [], deletedThrough: 0 }
        await fc.asyncModelRun(() => ({ model, real: {} }), steps)
        // Whatever the run did, the whole log after what retention deleted still reads back and verifies.
        await readPageAfter((m) => m.deletedThrough, 10_000, "the cut").run(model, {})
        await verify.run(model, {})
      }),
      { numRuns: 20 },
    )
    expect(reached.segments).toBeGreaterThanOrEqual(3)
    expect(reached.archivedReads).toBeGreaterThan(10)
    expect(reached.deletedReads).toBeGreaterThan(0)
  })
})
