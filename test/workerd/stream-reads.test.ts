import { describe, expect, it } from "vitest"
import {
  StreamReads,
  encodeOffset,
  nextCursor,
  parseOffset,
  parseReadRequest,
  readPage,
  streamReadsSettings,
  type ReadOptions,
  type SourceStatus,
} from "../../src/actors/stream-reads.js"

interface Item {
  readonly position: number
  readonly type: string
  readonly text: string
}

/** An in-memory log as a host would expose it. */
const memoryLog = (texts: ReadonlyArray<string> = []) => {
  const items: Array<Item> = texts.map((text, i) => ({ position: i + 1, type: "A", text }))
  let closed = false
  const log = {
    items,
    append: (text: string, type = "A") => items.push({ position: items.length + 1, type, text }),
    close: () => (closed = true),
    source: {
      head: () => items.length,
      readAfter: (after: number, limit: number) => items.filter((item) => item.position > after).slice(0, limit),
      closed: () => closed,
    },
  }
  return log
}

const jsonOptions = (log: ReturnType<typeof memoryLog>, filter?: (item: Item) => boolean): ReadOptions<Item> => ({
  source: log.source,
  rendering: { mode: "json", contentType: "application/json", json: (item) => JSON.stringify(item.text) },
  filter,
  etag: "test",
})

const bytesOptions = (log: ReturnType<typeof memoryLog>, contentType = "text/plain"): ReadOptions<Item> => ({
  source: log.source,
  rendering: { mode: "bytes", contentType, bytes: (item) => new TextEncoder().encode(item.text) },
  etag: "test",
})

const at = (query: string) => new Request(`https://emberlog.test/s${query}`)

const readSse = async (response: Response, until: string): Promise<string> => {
  const reader = response.body!.getReader()
  let text = ""
  while (!text.includes(until)) {
    const { done, value } = await reader.read()
    if (done) break
    text += new TextDecoder().decode(value)
  }
  await reader.cancel()
  return text
}

describe("offsets", () => {
  it("are fixed-width decimals: lexicographic order is position order, none is -1 or now", () => {
    const offsets = [0, 1, 9, 10, 99, 100, 123_456_789, Number.MAX_SAFE_INTEGER].map(encodeOffset)
    expect([...offsets].sort()).toEqual(offsets)
    for (const offset of offsets) expect(offset).toMatch(/^0{16}_\d{16}$/)
    expect(encodeOffset(0)).toBe("0000000000000000_0000000000000000")
  })

  it("parse back, with -1, now and no offset as sentinels, and refuse anything else", () => {
    expect(parseOffset(encodeOffset(42))).toEqual({ after: 42 })
    expect(parseOffset("-1")).toBe("start")
    expect(parseOffset(undefined)).toBe("start")
    expect(parseOffset("now")).toBe("now")
    for (const bad of ["1,2", "a", " 1", "-2", "1.5", "0000000000000000_1", "0000000000000001_0000000000000001"])
      expect(parseOffset(bad)).toHaveProperty("invalid")
  })

  it("a read request needs one offset, and one for live modes", () => {
    const url = (query: string) => new URL(`https://x/s?${query}`)
    expect(parseReadRequest(url("offset=1&offset=2"))).toHaveProperty("invalid")
    expect(parseReadRequest(url("offset="))).toHaveProperty("invalid")
    expect(parseReadRequest(url("live=long-poll"))).toHaveProperty("invalid")
    expect(parseReadRequest(url("offset=-1&live=sometimes"))).toHaveProperty("invalid")
    expect(parseReadRequest(url("offset=now&live=sse&cursor=7"))).toEqual({ offset: "now", live: "sse", cursor: "7" })
  })

  it("cursors never go back to or below the client's", () => {
    const now = Date.now()
    const current = Number(nextCursor(undefined, now))
    expect(Number(nextCursor(String(current), now))).toBeGreaterThan(current)
    expect(Number(nextCursor(String(current + 500), now))).toBeGreaterThan(current + 500)
    expect(nextCursor(String(current - 3), now)).toBe(String(current))
  })
})

describe("catch-up reads", () => {
  it("return a JSON array from the start, then resume exactly after the last item read", async () => {
    const log = memoryLog(["a", "b"])
    const reads = new StreamReads()
    const first = await reads.read(at("?offset=-1"), jsonOptions(log))
    expect(await first.json()).toEqual(["a", "b"])
    expect(first.headers.get("Stream-Up-To-Date")).toBe("true")
    expect(first.headers.get("X-Content-Type-Options")).toBe("nosniff")
    const next = first.headers.get("Stream-Next-Offset")!
    expect(next).toBe(encodeOffset(2))
    log.append("c")
    const second = await reads.read(at(`?offset=${next}`), jsonOptions(log))
    expect(await second.json()).toEqual(["c"])
  })

  it("page a long log without Stream-Up-To-Date until the last page", () => {
    const log = memoryLog(Array.from({ length: 25 }, (_, i) => `item-${i}`))
    const page = readPage(jsonOptions(log), 0, { items: 10, bytes: 1 << 20 })
    expect(page.items.map((item) => item.position)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(page.upToDate).toBe(false)
    expect(readPage(jsonOptions(log), 20, { items: 10, bytes: 1 << 20 })).toMatchObject({ next: 25, upToDate: true })
  })

  it("concatenate bytes in byte mode, with the stream's content type", async () => {
    const log = memoryLog(["hello ", "world"])
    const response = await new StreamReads().read(at(""), bytesOptions(log))
    expect(response.headers.get("Content-Type")).toBe("text/plain")
    expect(await response.text()).toBe("hello world")
  })

  it("a filtered read advances to the head it has seen, so the reader resumes without gaps or repeats", async () => {
    const log = memoryLog()
    for (const type of ["A", "B", "B", "A", "B"]) log.append(type, type)
    const onlyA = (item: Item) => item.type === "A"
    const response = await new StreamReads().read(at("?offset=-1"), jsonOptions(log, onlyA))
    expect(await response.json()).toEqual(["A", "A"])
    expect(response.headers.get("Stream-Next-Offset")).toBe(encodeOffset(5))
    const none = await new StreamReads().read(at(`?offset=${encodeOffset(4)}`), jsonOptions(log, onlyA))
    expect(await none.json()).toEqual([])
    expect(none.headers.get("Stream-Next-Offset")).toBe(encodeOffset(5))
  })

  it("answer 304 to a matching If-None-Match, and a new ETag once the log grows or closes", async () => {
    const log = memoryLog(["a"])
    const reads = new StreamReads()
    const first = await reads.read(at("?offset=-1"), jsonOptions(log))
    const etag = first.headers.get("ETag")!
    const again = await reads.read(
      new Request(at("?offset=-1"), { headers: { "If-None-Match": etag } }),
      jsonOptions(log),
    )
    expect(again.status).toBe(304)
    log.close()
    const closed = await reads.read(at("?offset=-1"), jsonOptions(log))
    expect(closed.headers.get("ETag")).not.toBe(etag)
    expect(closed.headers.get("Stream-Closed")).toBe("true")
  })

  it("offset=now answers the tail with an empty array and no ETag", async () => {
    const log = memoryLog(["a", "b"])
    const response = await new StreamReads().read(at("?offset=now"), jsonOptions(log))
    expect(await response.json()).toEqual([])
    expect(response.headers.get("Stream-Next-Offset")).toBe(encodeOffset(2))
    expect(response.headers.get("ETag")).toBeNull()
    expect(response.headers.get("Cache-Control")).toBe("no-store")
  })

  it("a malformed offset is a 400 in the edge's error shape", async () => {
    const response = await new StreamReads().read(at("?offset=a,b"), jsonOptions(memoryLog()))
    expect(response.status).toBe(400)
    expect(await response.json()).toMatchObject({ error: { code: "invalid_offset" } })
  })
})

describe("long-polls", () => {
  it("wait as long as the Worker's STREAM_LONG_POLL_MS says (30 s unless set or malformed)", () => {
    expect(streamReadsSettings({ STREAM_LONG_POLL_MS: "2000" }).longPollMs).toBe(2_000)
    expect(streamReadsSettings({ STREAM_LONG_POLL_MS: "soon" }).longPollMs).toBe(30_000)
    expect(streamReadsSettings(undefined)).toMatchObject({ longPollMs: 30_000, sseMaxMs: 60_000 })
  })

  it("wake on notify with what was appended, with a cursor", async () => {
    const log = memoryLog(["a"])
    const reads = new StreamReads({ longPollMs: 10_000, sseMaxMs: 10_000, maxReaders: 10 })
    const started = Date.now()
    const pending = reads.read(at(`?offset=${encodeOffset(1)}&live=long-poll`), jsonOptions(log))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(reads.readers).toBe(1)
    log.append("b")
    reads.notify()
    const response = await pending
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual(["b"])
    expect(response.headers.get("Stream-Cursor")).toMatch(/^\d+$/)
    expect(reads.readers).toBe(0)
  })

  it("time out with 204, the tail and Stream-Up-To-Date", async () => {
    const log = memoryLog(["a"])
    const reads = new StreamReads({ longPollMs: 100, sseMaxMs: 10_000, maxReaders: 10 })
    const response = await reads.read(at(`?offset=${encodeOffset(1)}&live=long-poll`), jsonOptions(log))
    expect(response.status).toBe(204)
    expect(response.headers.get("Stream-Next-Offset")).toBe(encodeOffset(1))
    expect(response.headers.get("Stream-Up-To-Date")).toBe("true")
  })

  it("answer at once at the end of a closed log", async () => {
    const log = memoryLog(["a"])
    log.close()
    const reads = new StreamReads({ longPollMs: 10_000, sseMaxMs: 10_000, maxReaders: 10 })
    const response = await reads.read(at(`?offset=${encodeOffset(1)}&live=long-poll`), jsonOptions(log))
    expect(response.status).toBe(204)
    expect(response.headers.get("Stream-Closed")).toBe("true")
  })

  it("are bounded per object", async () => {
    const log = memoryLog()
    const reads = new StreamReads({ longPollMs: 10_000, sseMaxMs: 10_000, maxReaders: 1 })
    const waiting = reads.read(at("?offset=now&live=long-poll"), jsonOptions(log))
    const refused = await reads.read(at("?offset=now&live=long-poll"), jsonOptions(log))
    expect(refused.status).toBe(503)
    reads.closeAll()
    expect((await waiting).status).toBe(204)
  })
})

describe("SSE", () => {
  it("pairs each data event with a control event, then streams appends as they are notified", async () => {
    const log = memoryLog(["a"])
    const reads = new StreamReads({ longPollMs: 10_000, sseMaxMs: 10_000, maxReaders: 10 })
    const response = await reads.read(at("?offset=-1&live=sse"), jsonOptions(log))
    expect(response.headers.get("Content-Type")).toBe("text/event-stream")
    const received = readSse(response, `"streamNextOffset":"${encodeOffset(2)}"`)
    await new Promise((resolve) => setTimeout(resolve, 20))
    log.append("b")
    reads.notify()
    const text = await received
    expect(text).toContain(`event: data\ndata:["a"]\n\nevent: control\ndata:{"streamNextOffset":"${encodeOffset(1)}"`)
    expect(text).toContain(`event: data\ndata:["b"]\n\nevent: control\ndata:{"streamNextOffset":"${encodeOffset(2)}"`)
  })

  it("ends a closed log with streamClosed and no cursor, and base64-encodes binary data", async () => {
    const log = memoryLog(["\u0000\u0001"])
    log.close()
    const response = await new StreamReads().read(
      at("?offset=-1&live=sse"),
      bytesOptions(log, "application/octet-stream"),
    )
    expect(response.headers.get("Stream-SSE-Data-Encoding")).toBe("base64")
    const text = await response.text()
    expect(text).toContain("data:AAE=")
    expect(text).toContain(`{"streamNextOffset":"${encodeOffset(1)}","streamClosed":true,"upToDate":true}`)
    expect(text).not.toContain("streamCursor")
  })

  it("keeps every line of a text payload inside its data event", async () => {
    const log = memoryLog(["one\r\nevent: control\rdata: x\n two"])
    log.close()
    const text = await (await new StreamReads().read(at("?offset=-1&live=sse"), bytesOptions(log))).text()
    expect(text).toContain("event: data\ndata:one\ndata:event: control\ndata:data: x\ndata:  two\n\n")
  })
})

/** A log whose status the test sets, as the stream kind reports a deleted or re-created stream. */
const deletableLog = (texts: ReadonlyArray<string> = []) => {
  const log = memoryLog(texts)
  let status: SourceStatus = "live"
  return {
    log,
    setStatus: (next: SourceStatus) => (status = next),
    options: (): ReadOptions<Item> => ({ ...jsonOptions(log), source: { ...log.source, status: () => status } }),
  }
}

const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms))
const live = { longPollMs: 10_000, sseMaxMs: 10_000, maxReaders: 2_000 }

describe("a log deleted or replaced while readers wait", () => {
  it("a long-poll woken by the delete answers 404 (410 when gone), not the next generation's items", async () => {
    for (const [status, code] of [
      ["missing", 404],
      ["gone", 410],
    ] as const) {
      const { log, setStatus, options } = deletableLog(["a"])
      const reads = new StreamReads(live)
      const pending = reads.read(at(`?offset=${encodeOffset(1)}&live=long-poll`), options())
      await tick()
      setStatus(status)
      log.append("of another generation")
      reads.notify()
      const response = await pending
      expect(response.status).toBe(code)
      expect(await response.text()).not.toContain("another generation")
    }
  })

  it("closeAll answers a waiting long-poll at once", async () => {
    const { setStatus, options } = deletableLog(["a"])
    const reads = new StreamReads(live)
    const pending = reads.read(at(`?offset=${encodeOffset(1)}&live=long-poll`), options())
    await tick()
    setStatus("missing")
    reads.closeAll()
    expect((await pending).status).toBe(404)
  })

  it("an SSE stream ends at the next wake and sends nothing of the new generation", async () => {
    const { log, setStatus, options } = deletableLog(["a"])
    const reads = new StreamReads(live)
    const response = await reads.read(at(`?offset=-1&live=sse`), options())
    await tick()
    setStatus("missing")
    log.append("of another generation")
    reads.notify()
    const text = await response.text()
    expect(text).toContain('data:["a"]')
    expect(text).not.toContain("another generation")
    expect(reads.readers).toBe(0)
  })

  it("a read or HEAD of a source that reports itself missing or gone is refused", async () => {
    const { setStatus, options } = deletableLog(["a"])
    const reads = new StreamReads(live)
    setStatus("gone")
    expect((await reads.read(at("?offset=-1"), options())).status).toBe(410)
    expect(reads.head(options()).status).toBe(410)
    setStatus("missing")
    expect((await reads.read(at("?offset=-1&live=sse"), options())).status).toBe(404)
  })
})

describe("offsets beyond the tail", () => {
  it("are 400 invalid_offset in every mode, never an up-to-date answer that skips what comes next", async () => {
    const log = memoryLog(["a", "b"])
    const reads = new StreamReads(live)
    for (const mode of ["", "&live=long-poll", "&live=sse"]) {
      const response = await reads.read(at(`?offset=${encodeOffset(3)}${mode}`), jsonOptions(log))
      expect(response.status).toBe(400)
      expect(await response.json()).toMatchObject({ error: { code: "invalid_offset" } })
    }
    expect((await reads.read(at(`?offset=${encodeOffset(2)}`), jsonOptions(log))).status).toBe(200)
  })
})

describe("bounded work per read", () => {
  it("a filtered read examines a bounded stretch of the log however sparse the matches", () => {
    const log = memoryLog()
    for (let i = 0; i < 30_000; i++) log.append(`x${i}`, i === 0 || i === 29_999 ? "A" : "B")
    let examined = 0
    const counting: ReadOptions<Item> = {
      ...jsonOptions(log, (item) => item.type === "A"),
      source: {
        head: log.source.head,
        readAfter: (after, limit) => {
          const batch = log.source.readAfter(after, limit)
          examined += batch.length
          return batch
        },
      },
    }
    const page = readPage(counting, 0)
    expect(examined).toBeLessThanOrEqual(10_000)
    expect(page.items.map((item) => item.position)).toEqual([1])
    expect(page.next).toBe(examined)
    expect(page.upToDate).toBe(false)
  })

  it("readers woken by one append share one read and one rendering of it", async () => {
    const log = memoryLog(["a"])
    let renders = 0
    const options: ReadOptions<Item> = {
      ...jsonOptions(log),
      rendering: {
        mode: "json",
        contentType: "application/json",
        json: (item) => {
          renders += 1
          return JSON.stringify(item.text)
        },
      },
    }
    const reads = new StreamReads(live)
    const polls = Array.from({ length: 200 }, () =>
      reads.read(at(`?offset=${encodeOffset(1)}&live=long-poll`), options),
    )
    await tick()
    expect(reads.readers).toBe(200)
    log.append("b")
    reads.notify()
    const bodies = await Promise.all((await Promise.all(polls)).map((response) => response.json()))
    expect(bodies.every((body) => JSON.stringify(body) === '["b"]')).toBe(true)
    // One size check in the page read and one rendering, not one per reader.
    expect(renders).toBeLessThanOrEqual(2)
  })

  it("an SSE read from the start of a large log holds about one page until the reader takes it", async () => {
    const kib = "x".repeat(1024)
    const log = memoryLog(Array.from({ length: 5_000 }, () => kib))
    log.close()
    const reads = new StreamReads(live)
    const response = await reads.read(at("?offset=-1&live=sse"), jsonOptions(log))
    await tick(50)
    // Five pages of ~1 MiB: all of them at once would be ~5 MiB.
    expect(reads.bufferedBytes).toBeLessThan(2.5 * 1024 * 1024)
    const text = await response.text()
    expect(text.split("event: data").length - 1).toBe(5)
    expect(text).toContain(`"streamNextOffset":"${encodeOffset(5_000)}","streamClosed":true`)
  })

  it("SSE readers that do not read are dropped past the object's byte budget, and stop counting", async () => {
    const log = memoryLog()
    const reads = new StreamReads({ ...live, bufferedBytes: 256 * 1024 })
    const responses = await Promise.all(
      Array.from({ length: 3 }, () => reads.read(at("?offset=now&live=sse"), jsonOptions(log))),
    )
    await tick()
    expect(reads.readers).toBe(3)
    for (let i = 0; i < 8; i++) {
      log.append(`${i}`.repeat(100 * 1024))
      reads.notify()
      await tick(5)
    }
    expect(reads.readers).toBe(0)
    expect(reads.bufferedBytes).toBeLessThanOrEqual(256 * 1024)
    for (const response of responses) await response.body!.cancel()
  })
})

describe("readers that go away stop counting", () => {
  it("an SSE reader whose body is cancelled", async () => {
    const reads = new StreamReads(live)
    const response = await reads.read(at("?offset=now&live=sse"), jsonOptions(memoryLog()))
    await tick()
    expect(reads.readers).toBe(1)
    await response.body!.cancel()
    await tick()
    expect(reads.readers).toBe(0)
  })

  it("a long-poll whose client disconnects", async () => {
    const reads = new StreamReads(live)
    const controller = new AbortController()
    const request = new Request(at("?offset=now&live=long-poll"), { signal: controller.signal })
    const pending = reads.read(request, jsonOptions(memoryLog()))
    await tick()
    expect(reads.readers).toBe(1)
    controller.abort()
    await pending
    expect(reads.readers).toBe(0)
  })
})

describe("headers for browsers", () => {
  it("a read carries CSP sandbox and nosniff, so an HTML stream never runs as a page of the API", async () => {
    const log = memoryLog(["<script>alert(1)</script>"])
    const response = await new StreamReads().read(at("?offset=-1"), bytesOptions(log, "text/html"))
    expect(response.headers.get("Content-Security-Policy")).toContain("sandbox")
    expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff")
  })

  it("SSE of a +json or ndjson stream is base64 (§5.7: neither text/* nor application/json)", async () => {
    for (const type of ["application/vnd.api+json", "application/ndjson"]) {
      const log = memoryLog(['{"a":1}'])
      log.close()
      const response = await new StreamReads().read(at("?offset=-1&live=sse"), bytesOptions(log, type))
      expect(response.headers.get("Stream-SSE-Data-Encoding")).toBe("base64")
      expect(await response.text()).toContain(`data:${btoa('{"a":1}')}`)
    }
  })

  it("a catch-up at the tail of an open log must be revalidated; pages behind it may be cached", async () => {
    const log = memoryLog(["a", "b"])
    const reads = new StreamReads()
    expect((await reads.read(at("?offset=-1"), jsonOptions(log))).headers.get("Cache-Control")).toBe(
      "private, no-cache",
    )
    const behind = await reads.read(at("?offset=-1"), {
      ...jsonOptions(log),
      source: { ...log.source, head: () => 2_000 },
    })
    expect(behind.headers.get("Cache-Control")).toContain("max-age=60")
  })
})

describe("SSE framing", () => {
  it("a data event and its control event come in one chunk, even when the payload looks like an event", async () => {
    const log = memoryLog(["start\r\revent: control\rdata: {}\r\rend"])
    const response = await new StreamReads(live).read(at("?offset=-1&live=sse"), bytesOptions(log))
    const reader = response.body!.getReader()
    const first = new TextDecoder().decode((await reader.read()).value)
    await reader.cancel()
    expect(first).toMatch(/^event: data\n[\s\S]*\n\nevent: control\ndata:\{"streamNextOffset"[^\n]*\n\n$/)
  })
})

describe("live reads, filtered and not", () => {
  it("a waiting long-poll reads nothing until notified (no polling)", async () => {
    const log = memoryLog(["a"])
    let reads = 0
    const options: ReadOptions<Item> = {
      ...jsonOptions(log),
      source: { ...log.source, readAfter: (after, limit) => (reads++, log.source.readAfter(after, limit)) },
    }
    const server = new StreamReads(live)
    const pending = server.read(at(`?offset=${encodeOffset(1)}&live=long-poll`), options)
    await tick(200)
    const whileWaiting = reads
    expect(whileWaiting).toBeLessThanOrEqual(1)
    log.append("b")
    server.notify()
    expect(await (await pending).json()).toEqual(["b"])
  })

  it("a catch-up's ETag changes once the log grows", async () => {
    const log = memoryLog(["a"])
    const reads = new StreamReads()
    const before = (await reads.read(at("?offset=-1"), jsonOptions(log))).headers.get("ETag")
    log.append("b")
    const after = await reads.read(
      new Request(at("?offset=-1"), { headers: { "If-None-Match": before! } }),
      jsonOptions(log),
    )
    expect(after.status).toBe(200)
    expect(after.headers.get("ETag")).not.toBe(before)
  })

  it("a filtered long-poll sleeps through appends it does not want and answers the first it does", async () => {
    const log = memoryLog(["A0"])
    const onlyA = (item: Item) => item.type === "A"
    const reads = new StreamReads(live)
    const pending = reads.read(at(`?offset=${encodeOffset(1)}&live=long-poll`), jsonOptions(log, onlyA))
    await tick()
    log.append("B1", "B")
    reads.notify()
    await tick()
    expect(reads.readers).toBe(1)
    log.append("A2", "A")
    reads.notify()
    const response = await pending
    expect(await response.json()).toEqual(["A2"])
    expect(response.headers.get("Stream-Next-Offset")).toBe(encodeOffset(3))
  })

  it("a filtered SSE reader gets only what it wants, and control events that move over the rest", async () => {
    const log = memoryLog()
    const onlyA = (item: Item) => item.type === "A"
    const reads = new StreamReads(live)
    const response = await reads.read(at("?offset=-1&live=sse"), jsonOptions(log, onlyA))
    const received = readSse(response, `"streamNextOffset":"${encodeOffset(3)}"`)
    await tick()
    log.append("B1", "B")
    reads.notify()
    await tick()
    log.append("A2", "A")
    log.append("B3", "B")
    reads.notify()
    const text = await received
    expect(text).not.toContain("B1")
    expect(text).not.toContain("B3")
    expect(text).toContain('data:["A2"]')
    expect(text).toContain(`"streamNextOffset":"${encodeOffset(1)}"`)
  })
})
