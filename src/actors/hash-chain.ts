/**
 * The tamper-evident chain over an actor's log: hash = SHA-256(prevHash ‖ canonical event).
 * Synchronous `node:crypto` because the hash is computed inside `transactionSync`,
 * whose callback cannot await (see PLATFORM-NOTES).
 */
import { createHash } from "node:crypto"
import type { StoredEvent } from "../infra/event-store.js"

export const GENESIS_HASH = ""

/** JSON with object keys sorted at every depth, so equal values always hash equally. */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`
}

export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex")

export const chainHash = (prevHash: string, event: Omit<StoredEvent, "hash">): string =>
  sha256(
    prevHash +
      canonicalJson({ seq: event.seq, type: event.type, schemaVersion: event.schemaVersion, data: event.data, meta: event.meta }),
  )
