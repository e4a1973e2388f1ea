// The official Durable Streams client follows an actor's /log and a topic's /log across a restart of
// `wrangler dev` (state on disk, the same port) and gets every item once, in order. It follows them
// with long-polls there: its 0.2.7 SSE reader gives up on a connection cut mid-stream (it reconnects
// only after a stream the server ended), so its SSE is followed live on the restarted server.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { stream, type JsonBatch } from "@durable-streams/client"
import { EventSource } from "eventsource"
import { afterAll, describe, expect, it } from "vitest"
import { unstable_dev, type Unstable_DevWorker } from "wrangler"
import { freePort, sharedWorkerBase } from "./dev-worker.js"

const persistTo = mkdtempSync(join(tmpdir(), "emberlog-log-streams-"))
let worker: Unstable_DevWorker | undefined

const start = async (port: number) => {
  worker = await unstable_dev("src/app.ts", {
    config: "wrangler.toml",
    ip: "127.0.0.1",
    port,
    persistTo,
    logLevel: "none",
    vars: { AUTH_MODE: "off" },
    experimental: { disableExperimentalWarning: true },
  })
}

afterAll(async () => {
  await worker?.stop()
  rmSync(persistTo, { recursive: true, force: true })
})

const until = async (check: () => boolean, what: string, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe("@durable-streams/client follows emberlog's logs", () => {
  it("gets every event of an actor and every topic entry once, in order, across a server restart", async () => {
    const port = await freePort()
    await start(port)
    const base = `http://127.0.0.1:${port}`
    const id = `ds-${Date.now()}`
    const increment = async (by: number) => {
      const response = await fetch(`${base}/v1/counter/${id}/commands`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "Increment", by }),
      })
      expect(response.status).toBe(200)
    }
    for (let by = 1; by <= 3; by++) await increment(by)

    // The client retries a server that is gone (network errors) until it is back.
    const backoffOptions = { initialDelay: 50, maxDelay: 500, multiplier: 1.5, maxRetries: Infinity }
    const controller = new AbortController()
    const events: Array<any> = []
    const actorLog = await stream({
      url: `${base}/v1/counter/${id}/log`,
      offset: "-1",
      live: "long-poll",
      backoffOptions,
      signal: controller.signal,
      onError: () => ({}),
      warnOnHttp: false,
    })
    actorLog.subscribeJson((batch: JsonBatch<any>) => void events.push(...batch.items))
    // The topic `counter` is fed by every counter; only this actor's entries are counted.
    const entries: Array<any> = []
    const topicLog = await stream({
      url: `${base}/v1/topics/counter/log`,
      offset: "-1",
      live: "long-poll",
      backoffOptions,
      signal: controller.signal,
      onError: () => ({}),
      warnOnHttp: false,
    })
    topicLog.subscribeJson((batch: JsonBatch<any>) => void entries.push(...batch.items))
    const mine = () => entries.filter((entry) => entry.source.id === id)
    // Filtered, by long-poll across the restart too: its offset moves over the skipped Increments.
    const polledResets: Array<any> = []
    const offsets: Array<string> = []
    const resetLog = await stream({
      url: `${base}/v1/counter/${id}/log`,
      offset: "-1",
      live: "long-poll",
      params: { types: "Reset" },
      backoffOptions,
      signal: controller.signal,
      onError: () => ({}),
      warnOnHttp: false,
    })
    resetLog.subscribeJson((batch: JsonBatch<any>) => {
      polledResets.push(...batch.items)
      offsets.push(batch.offset)
    })

    await until(() => events.length === 3 && mine().length === 3 && offsets.length > 0, "the first three events")
    expect(polledResets).toEqual([])
    await worker!.stop()
    await start(port)
    for (let by = 4; by <= 6; by++) await increment(by)
    await until(() => events.length >= 6 && mine().length >= 6, "the events after the restart")
    // SSE, filtered: only Reset events, from the start, then live.
    const resets: Array<any> = []
    const sse = await stream({
      url: `${base}/v1/counter/${id}/log`,
      offset: "-1",
      live: "sse",
      params: { types: "Reset" },
      signal: controller.signal,
      warnOnHttp: false,
    })
    sse.subscribeJson((batch: JsonBatch<any>) => void resets.push(...batch.items))
    await until(() => sse.upToDate, "the SSE reader to catch up")
    expect(resets).toEqual([])
    const reset = await fetch(`${base}/v1/counter/${id}/commands`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "Reset" }),
    })
    expect(reset.status).toBe(200)
    await until(() => resets.length === 1 && events.length >= 7 && polledResets.length >= 1, "the Reset, live")
    expect(resets[0]).toMatchObject({ seq: 7, type: "Reset" })
    // Time for a duplicate to show, if the client were to resume anywhere but after the last item.
    await new Promise((resolve) => setTimeout(resolve, 300))
    controller.abort()

    const log = (await (await fetch(`${base}/v1/counter/${id}/events`)).json()) as { events: Array<any> }
    expect(events).toEqual(log.events)
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(polledResets.map((event) => [event.seq, event.type])).toEqual([[7, "Reset"]])
    expect(mine().map((entry) => entry.event)).toEqual(log.events)
    const topicSeqs = entries.map((entry) => entry.topicSeq)
    expect(topicSeqs).toEqual([...topicSeqs].sort((a, b) => a - b))
    expect(new Set(topicSeqs).size).toBe(topicSeqs.length)
  })
})

describe("a filtered SSE subscription with a standard EventSource", () => {
  it("moves Last-Event-ID past skipped events with the head event, and resumes there after a drop", async () => {
    const base = sharedWorkerBase()
    const id = `es-${Date.now()}`
    const command = async (body: object) => {
      const response = await fetch(`${base}/v1/counter/${id}/commands`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      })
      expect(response.status).toBe(200)
    }
    await command({ type: "Increment", by: 1 })
    await command({ type: "Reset" })
    await command({ type: "Increment", by: 1 })
    const sentLastEventIds: Array<string | null> = []
    let connections = 0
    const source = new EventSource(`${base}/v1/counter/${id}/events/stream?types=Reset`, {
      fetch: async (url, init) => {
        sentLastEventIds.push(new Headers(init?.headers).get("Last-Event-ID"))
        const response = await fetch(url, init)
        if (connections++ > 0) return response
        // The first connection drops right after the head event of seq 3 (a network cut).
        const decoder = new TextDecoder()
        let seen = ""
        const cut = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            controller.enqueue(chunk)
            seen += decoder.decode(chunk, { stream: true })
            if (seen.includes('"seq":3}\n\n')) controller.terminate()
          },
        })
        return new Response(response.body!.pipeThrough(cut), response)
      },
    })
    const received: Array<[string, string, unknown]> = []
    for (const type of ["Reset", "head"])
      source.addEventListener(type, (event) => received.push([type, event.lastEventId, JSON.parse(event.data).seq]))
    await until(() => received.length === 2, "the Reset and the head event")
    await command({ type: "Reset" })
    await until(() => received.length === 3, "the Reset after the drop")
    source.close()
    expect(received).toEqual([
      ["Reset", "2", 2],
      ["head", "3", 3],
      ["Reset", "4", 4],
    ])
    expect(sentLastEventIds).toEqual([null, "3"])
  })
})

describe("/log live reads take the Worker's Durable Streams settings", () => {
  it("a long-poll with nothing new answers 204 after STREAM_LONG_POLL_MS (1 s on the shared worker)", async () => {
    const base = sharedWorkerBase()
    const started = Date.now()
    const response = await fetch(`${base}/v1/counter/lp-${Date.now()}/log?offset=now&live=long-poll`)
    const waited = Date.now() - started
    expect(response.status).toBe(204)
    expect(response.headers.get("Stream-Up-To-Date")).toBe("true")
    expect(waited).toBeGreaterThanOrEqual(900)
    expect(waited).toBeLessThan(15_000)
  })
})
