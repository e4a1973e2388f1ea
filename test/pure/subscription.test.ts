import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ACK_EVERY, CLOSE_RESUME as RESUME_CLOSE_CODE } from "../../src/domain/protocol.js"
import { SubscriptionRefused, backoffDelay, resumable, type SocketLike } from "../../src/client/subscription.js"

/** A scripted connection: sends the given positions, then closes (or stays open). */
const fakeSocket = (positions: Array<number>, closeAfter: boolean): SocketLike => {
  const listeners: Record<string, Array<(event: any) => void>> = { message: [], close: [], error: [] }
  setTimeout(() => {
    for (const position of positions)
      for (const l of listeners.message!) l({ data: JSON.stringify({ type: "event", event: { seq: position } }) })
    if (closeAfter) for (const l of listeners.close!) l({})
  }, 1)
  return {
    addEventListener: (type: string, l: any) => void listeners[type]!.push(l),
    close: () => undefined,
  } as SocketLike
}

describe("resumable subscription", () => {
  it("reconnects after the last position it yielded and drops repeats", async () => {
    const opens: Array<number> = []
    const scripts = [
      [1, 2, 3],
      [3, 4], // a repeat of 3 from a server that resent it
      [2, 5, 6],
    ]
    const iterator = resumable<{ seq: number }>({
      open: async (after) => {
        opens.push(after)
        const script = scripts.shift() ?? []
        return fakeSocket(script, scripts.length > 0)
      },
      entryOf: (frame: any) => (frame.type === "event" ? { position: frame.event.seq, value: frame.event } : undefined),
      after: 0,
      reconnect: { initialDelayMs: 1, maxDelayMs: 2 },
    })
    const seen: Array<number> = []
    for await (const event of iterator) {
      seen.push(event.seq)
      if (seen.length === 6) break
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6])
    expect(opens).toEqual([0, 3, 4])
  })

  it("stops on a refusal the server will repeat", async () => {
    const iterator = resumable({
      open: async () => {
        throw new SubscriptionRefused(400, { error: { code: "invalid_query" } })
      },
      entryOf: () => undefined,
      after: 5,
    })
    await expect(iterator.next()).rejects.toBeInstanceOf(SubscriptionRefused)
  })

  it("backs off exponentially, capped, with jitter", () => {
    const options = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 }
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, options, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000])
    expect(backoffDelay(2, options, () => 1)).toBe(200)
  })
})

describe("resumable subscription: acks and the resume close code", () => {
  const entryOf = (frame: any) =>
    frame.type === "event" ? { position: frame.event.seq as number, value: frame.event as { seq: number } } : undefined

  /** Sends `frames` (padded to `pad` characters), then closes with `code`; `sent` records its acks. */
  const scripted = (frames: Array<number>, code: number, pad: number, sent: Array<string>): SocketLike => {
    const listeners: Record<string, Array<(event: any) => void>> = { message: [], close: [], error: [] }
    setTimeout(() => {
      for (const seq of frames) {
        const data = JSON.stringify({ type: "event", event: { seq }, pad: "p".repeat(pad) })
        for (const l of listeners.message!) l({ data })
      }
      for (const l of listeners.close!) l({ code })
    }, 0)
    return {
      addEventListener: (type: string, l: any) => void listeners[type]!.push(l),
      close: () => undefined,
      send: (data: string) => void sent.push(data),
    }
  }

  it("yields 1..n once, in order, whatever each connection resends and however it closes; acks trail", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.array(
          fc.record({
            take: fc.integer({ min: 0, max: 8 }),
            repeat: fc.integer({ min: 0, max: 3 }),
            resume: fc.boolean(),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        fc.constantFrom(10, 300 * 1024),
        async (n, connections, pad) => {
          const opens: Array<number> = []
          const sent: Array<string> = []
          let script = 0
          const iterator = resumable<{ seq: number }>({
            open: async (after) => {
              opens.push(after)
              const plan = connections[script++ % connections.length]!
              // A server may resend up to `repeat` entries at or before the cursor, then sends `take` new ones.
              const from = Math.max(1, after + 1 - plan.repeat)
              const upTo = Math.min(n, after + Math.max(1, plan.take))
              const frames = Array.from({ length: Math.max(0, upTo - from + 1) }, (_, i) => from + i)
              return scripted(frames, plan.resume ? RESUME_CLOSE_CODE : 1006, pad, sent)
            },
            entryOf,
            after: 0,
            reconnect: { initialDelayMs: 0, maxDelayMs: 0 },
          })
          const seen: Array<number> = []
          for await (const event of iterator) {
            seen.push(event.seq)
            if (seen.length === n) break
          }
          expect(seen).toEqual(Array.from({ length: n }, (_, i) => i + 1))
          expect(opens.slice(1).every((after, i) => after >= opens[i]!)).toBe(true)
          const acks = sent.map((data) => JSON.parse(data))
          expect(acks.every((ack) => ack.type === "ack" && ack.seq <= n)).toBe(true)
          expect(acks.map((ack) => ack.seq)).toEqual([...acks.map((ack) => ack.seq)].sort((a, b) => a - b))
          if (pad === 10) expect(acks).toEqual([])
        },
      ),
      { numRuns: 100, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31), verbose: 1 },
    )
    // 100 runs of frames padded to 300 KiB take 3–5 s on a shared machine: past vitest's default 5 s.
  }, 60_000)

  it("with batch frames, confirms what it read once single frames stop coming (a socket paused at the cap live)", async () => {
    const acks: Array<number> = []
    const frames = [
      JSON.stringify({ type: "events", events: [{ seq: 1 }, { seq: 2 }] }),
      ...[3, 4, 5].map((seq) => JSON.stringify({ type: "event", event: { seq } })),
    ]
    const iterator = resumable<{ seq: number }>({
      open: async () => {
        const listeners: Record<string, Array<(event: any) => void>> = { message: [], close: [], error: [] }
        setTimeout(() => {
          for (const data of frames) for (const l of listeners.message!) l({ data })
        }, 0)
        return {
          addEventListener: (type: string, l: any) => void listeners[type]!.push(l),
          close: () => undefined,
          send: (data: string) => void acks.push(JSON.parse(data).seq),
        } as SocketLike
      },
      entryOf,
      batchOf: (frame: any) =>
        frame.type === "events"
          ? frame.events.map((event: { seq: number }) => ({ position: event.seq, value: event }))
          : undefined,
      after: 0,
    })
    for (let read = 0; read < 5; read++) await iterator.next()
    // The batch frame at once; the three small single frames after a moment without frames.
    expect(acks).toEqual([2])
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(acks).toEqual([2, 5])
    await iterator.return!()
  })

  it("never skips a frame it cannot read: it closes and resumes after the last entry it read", async () => {
    const batch = (from: number, to: number) =>
      JSON.stringify({ type: "events", events: Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i })) })
    const unreadable = [batch(4, 6).slice(0, -5), JSON.stringify({ type: "events", events: { seq: 4 } })]
    for (const broken of unreadable) {
      const scripts = [[batch(1, 3), broken, batch(7, 9)], [batch(4, 9)]]
      const opens: Array<number> = []
      const closedByClient: Array<number> = []
      const acks: Array<number> = []
      const iterator = resumable<{ seq: number }>({
        open: async (after) => {
          opens.push(after)
          const script = scripts.shift() ?? []
          const listeners: Record<string, Array<(event: any) => void>> = { message: [], close: [], error: [] }
          setTimeout(() => {
            for (const data of script) for (const l of listeners.message!) l({ data })
          }, 0)
          return {
            addEventListener: (type: string, l: any) => void listeners[type]!.push(l),
            close: () => void closedByClient.push(after),
            send: (data: string) => void acks.push(JSON.parse(data).seq),
          } as SocketLike
        },
        entryOf,
        // As the typed client's: a batch frame without its array is as unreadable as bad JSON.
        batchOf: (frame: any) => {
          if (frame.type !== "events") return undefined
          if (!Array.isArray(frame.events)) throw new TypeError("no events array")
          return frame.events.map((event: { seq: number }) => ({ position: event.seq, value: event }))
        },
        after: 0,
        reconnect: { initialDelayMs: 0, maxDelayMs: 0 },
      })
      const seen: Array<number> = []
      for await (const event of iterator) {
        seen.push(event.seq)
        if (seen.length === 9) break
      }
      expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
      expect(opens).toEqual([0, 3])
      expect(closedByClient).toContain(0)
      // Nothing after the unreadable frame was confirmed on the first connection.
      expect(acks[0]).toBe(3)
      expect(acks.slice(1)).toEqual([9])
    }
  })

  it("reconnects at once on the resume code (no backoff) and acks about every ACK_EVERY characters", async () => {
    const opens: Array<number> = []
    const sent: Array<string> = []
    const pad = Math.ceil(ACK_EVERY / 2)
    const iterator = resumable<{ seq: number }>({
      open: async (after) => {
        opens.push(after)
        return scripted([after + 1, after + 2, after + 3], RESUME_CLOSE_CODE, pad, sent)
      },
      entryOf,
      after: 0,
      // Any backoff would outlast the test: only the resume code's immediate reconnect finishes it.
      reconnect: { initialDelayMs: 600_000, maxDelayMs: 600_000 },
    })
    const seen: Array<number> = []
    for await (const event of iterator) {
      seen.push(event.seq)
      if (seen.length === 9) break
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(opens.slice(0, 3)).toEqual([0, 3, 6])
    expect(sent.slice(0, 3).map((data) => JSON.parse(data))).toEqual([2, 5, 8].map((seq) => ({ type: "ack", seq })))
  })
})

describe("resumable subscription: batch frames", () => {
  /** A connection that sends `frames` (arrays are batch frames, numbers single ones), then closes with `code`. */
  const batched = (frames: Array<number | Array<number>>, code: number, sent: Array<string>): SocketLike => {
    const listeners: Record<string, Array<(event: any) => void>> = { message: [], close: [], error: [] }
    setTimeout(() => {
      for (const frame of frames) {
        const data = JSON.stringify(
          Array.isArray(frame)
            ? { type: "events", events: frame.map((seq) => ({ seq })) }
            : { type: "event", event: { seq: frame } },
        )
        for (const l of listeners.message!) l({ data })
      }
      for (const l of listeners.close!) l({ code })
    }, 0)
    return {
      addEventListener: (type: string, l: any) => void listeners[type]!.push(l),
      close: () => undefined,
      send: (data: string) => void sent.push(data),
    }
  }
  const reader = {
    entryOf: (frame: any) => (frame.type === "event" ? { position: frame.event.seq, value: frame.event } : undefined),
    batchOf: (frame: any) =>
      frame.type === "events" ? frame.events.map((event: any) => ({ position: event.seq, value: event })) : undefined,
  }

  it("yields each entry of a batch once, in order, dropping repeats, and acks every batch frame at once", async () => {
    const sent: Array<string> = []
    const scripts: Array<Array<number | Array<number>>> = [
      [[1, 2, 3], [4, 5], 6],
      [[5, 6, 7], 8, [9]], // a server that resent 5 and 6 in a batch
    ]
    const opens: Array<number> = []
    const iterator = resumable<{ seq: number }>({
      open: async (after) => {
        opens.push(after)
        return batched(scripts.shift() ?? [], RESUME_CLOSE_CODE, sent)
      },
      ...reader,
      after: 0,
      reconnect: { initialDelayMs: 600_000, maxDelayMs: 600_000 },
    })
    const seen: Array<number> = []
    for await (const event of iterator) {
      seen.push(event.seq)
      if (seen.length === 9) break
    }
    expect(seen).toEqual(range(1, 9))
    expect(opens.slice(0, 2)).toEqual([0, 6])
    // One ack per batch frame, with the last position seen; single frames are acked only every ACK_EVERY.
    expect(sent.map((data) => JSON.parse(data))).toEqual([3, 5, 7, 9].map((seq) => ({ type: "ack", seq })))
  })
})

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
