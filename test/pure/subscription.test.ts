import { describe, expect, it } from "vitest"
import { SubscriptionRefused, backoffDelay, resumable, type SocketLike } from "../../src/client/subscription.js"

/** A scripted connection: sends the given positions, then closes (or stays open). */
const fakeSocket = (positions: Array<number>, closeAfter: boolean): SocketLike => {
  const listeners: Record<string, Array<(event: any) => void>> = { message: [], close: [], error: [] }
  setTimeout(() => {
    for (const position of positions) for (const l of listeners.message!) l({ data: JSON.stringify({ type: "event", event: { seq: position } }) })
    if (closeAfter) for (const l of listeners.close!) l({})
  }, 1)
  return { addEventListener: (type: string, l: any) => void listeners[type]!.push(l), close: () => undefined } as SocketLike
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
