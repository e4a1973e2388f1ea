/**
 * An archived segment as R2 holds it: gzip'd NDJSON, one stored row per line exactly as the
 * store held it (seq, type, schemaVersion, data, meta, hash), under a key made of the actor's
 * name and the segment's ends; and the check that a segment read back is exactly what the index
 * recorded (every seq, chained from its prevHash to its lastHash).
 */
import type { ArchivedSegment, StoredEvent } from "../core/event-store.js"
import { ChainWalk } from "../core/hash-chain.js"

export const DEFAULT_SEGMENT_EVENTS = 10_000
/** A segment's rows' JSON at most (it always holds at least one event). */
export const SEGMENT_BYTES = 8 * 1024 * 1024

const pad = (seq: number) => String(seq).padStart(16, "0")

/** A segment's object key: deterministic, so a seal redone after a crash overwrites its own object. */
export const segmentKey = (actor: string, first: number, last: number) =>
  `${actor}/${pad(first)}-${pad(last)}.ndjson.gz`

/** One stored row as its NDJSON line: data and meta are the stored canonical JSON, spliced as they are. */
export const rowLine = (seq: number, type: string, schemaVersion: number, data: string, meta: string, hash: string) =>
  `{"seq":${seq},"type":${JSON.stringify(type)},"schemaVersion":${schemaVersion},"data":${data},"meta":${meta},"hash":${JSON.stringify(hash)}}`

export const gzip = async (text: string): Promise<Uint8Array> =>
  new Uint8Array(await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer())

export const gunzipLines = async (body: ReadableStream): Promise<ReadonlyArray<StoredEvent>> => {
  const text = await new Response(body.pipeThrough(new DecompressionStream("gzip"))).text()
  const events: Array<StoredEvent> = []
  for (const line of text.split("\n")) if (line.length > 0) events.push(JSON.parse(line) as StoredEvent)
  return events
}

/** Whether `events` are exactly the segment's (every seq, chained from its prevHash to its lastHash). */
export const segmentBreak = (
  segment: ArchivedSegment,
  events: ReadonlyArray<StoredEvent>,
): { readonly firstBadSeq: number; readonly reason: string } | undefined => {
  const walk = new ChainWalk()
  walk.events = segment.first - 1
  walk.head = segment.prevHash
  for (const event of events) {
    const broken = walk.check(event)
    if (broken !== undefined) return broken
    if (event.seq === segment.last) break
  }
  if (walk.events !== segment.last)
    return { firstBadSeq: walk.events + 1, reason: `archived segment ${segment.key} ends before seq ${segment.last}` }
  if (walk.head !== segment.lastHash)
    return { firstBadSeq: segment.last, reason: `archived segment ${segment.key} does not end with its recorded hash` }
  return undefined
}
