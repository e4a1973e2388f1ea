/**
 * The tamper-evident chain over an actor's log: hash = SHA-256(prevHash ‖ canonical event).
 * Synchronous (`./sha256.ts`) because the hash is computed inside `transactionSync`,
 * whose callback cannot await (see PLATFORM-NOTES).
 */
import type { SerializedEvent, StoredEvent } from "./event-store.js"
import { sha256 } from "./sha256.js"

export { sha256 }

export const GENESIS_HASH = ""

/**
 * JSON with object keys sorted at every depth, so equal values always hash equally.
 * Written as loops rather than entries/sort/map: it runs on every command's hot path.
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) {
    let out = "["
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i] ?? null)
    return out + "]"
  }
  const record = value as Record<string, unknown>
  // Default sort compares UTF-16 code units, the same order on every runtime.
  const keys = Object.keys(record).sort()
  let out = "{"
  for (const key of keys) {
    const field = record[key]
    if (field === undefined) continue
    out += (out.length === 1 ? "" : ",") + JSON.stringify(key) + ":" + canonicalJson(field)
  }
  return out + "}"
}

/** The canonical text of an event, from its parts already in canonical JSON (keys in sorted order). */
const canonicalEvent = (seq: number, type: string, schemaVersion: number, dataJson: string, metaJson: string) =>
  `{"data":${dataJson},"meta":${metaJson},"schemaVersion":${schemaVersion},"seq":${seq},"type":${JSON.stringify(type)}}`

export const chainHash = (prevHash: string, event: Omit<StoredEvent, "hash">): string =>
  sha256(
    prevHash +
      canonicalEvent(event.seq, event.type, event.schemaVersion, canonicalJson(event.data), canonicalJson(event.meta)),
  )

export interface ChainBreak {
  readonly firstBadSeq: number
  readonly reason: string
}

/**
 * Walks a log in seq order, as `verify` on the server and `emberlog replay` offline do:
 * each event must be the next seq and match its hash. After a mismatched hash the walk
 * goes on from that event's hash, so a caller may keep reading past it.
 */
export class ChainWalk {
  head = GENESIS_HASH
  events = 0

  /** The break this event shows, if any. */
  check(event: StoredEvent): ChainBreak | undefined {
    const expected = this.events + 1
    if (event.seq !== expected) return { firstBadSeq: expected, reason: `seq ${expected} is missing` }
    const { hash, ...body } = event
    const mismatch = chainHash(this.head, body) !== hash
    this.head = hash
    this.events = event.seq
    return mismatch ? { firstBadSeq: event.seq, reason: `event ${event.seq} does not match its hash` } : undefined
  }
}

/**
 * Links a new event onto the chain, serializing data and meta once: the canonical JSON
 * the hash covers is also what is stored. `metaJson` is shared by a command's events.
 */
export const linkEvent = (prevHash: string, event: Omit<StoredEvent, "hash">, metaJson: string): SerializedEvent => {
  const dataJson = canonicalJson(event.data)
  const hash = sha256(prevHash + canonicalEvent(event.seq, event.type, event.schemaVersion, dataJson, metaJson))
  return { ...event, hash, dataJson, metaJson }
}
