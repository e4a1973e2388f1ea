/**
 * What a command may store and answer, checked by the host before anything commits.
 * Production refuses a SQLite row or string over 2 MB and a Durable Object RPC message
 * over 32 MiB; local workerd may accept both, so emberlog enforces them itself, the same
 * everywhere, instead of finding out after a commit (README, "HTTP API", Limits).
 */
import { utf8Length } from "../domain/json-size.js"

/** Nesting beyond this is refused with 400 `too_deep`, on every body and socket frame, before anything runs. */
export const MAX_JSON_DEPTH = 64

/** The one answer to input nested deeper than MAX_JSON_DEPTH, whichever transport it came by. */
export const tooDeep = {
  code: "too_deep",
  message: `JSON may nest at most ${MAX_JSON_DEPTH} levels of arrays and objects`,
  details: { maxDepth: MAX_JSON_DEPTH },
} as const

/** A SQLite row (an event, a snapshot) in production's Durable Objects: 2 MB. */
export const MAX_ROW_BYTES = 2_000_000

/** A Durable Object RPC message: 32 MiB, less room for the envelope around a reply. */
export const MAX_RPC_BYTES = 32 * 1024 * 1024 - 64 * 1024

/**
 * Whether `value` nests arrays and objects deeper than `max` (a scalar is depth 0, `{}` is 1).
 * Iterative: the input it exists to refuse would overflow the stack of a recursive walk.
 */
export const exceedsDepth = (value: unknown, max: number = MAX_JSON_DEPTH): boolean => {
  const pending: Array<unknown> = [value]
  const depths: Array<number> = [0]
  while (pending.length > 0) {
    const current = pending.pop()
    const depth = depths.pop()!
    if (current === null || typeof current !== "object") continue
    if (depth + 1 > max) return true
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (child !== null && typeof child === "object") {
        pending.push(child)
        depths.push(depth + 1)
      }
    }
  }
  return false
}

/**
 * The same test on JSON text, before it is parsed: a 25 MiB body of `[[[[…` would otherwise
 * be built in memory (millions of arrays) only to be refused. Exact for valid JSON.
 */
export const textExceedsDepth = (json: string, max: number = MAX_JSON_DEPTH): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < json.length; i++) {
    const unit = json.charCodeAt(i)
    if (inString) {
      if (unit === 0x5c)
        i++ // a backslash escapes the next unit, a quote included
      else if (unit === 0x22) inString = false
    } else if (unit === 0x22) inString = true
    else if (unit === 0x5b || unit === 0x7b) {
      if (++depth > max) return true
    } else if (unit === 0x5d || unit === 0x7d) depth--
  }
  return false
}

/** Whether a string takes more than `limit` UTF-8 bytes, counting only when it could. */
export const overBytes = (text: string, limit: number): boolean =>
  text.length * 3 > limit && (text.length > limit || utf8Length(text) > limit)

/**
 * An upper bound on the bytes structured clone (DO RPC) needs for a value whose JSON is
 * `json`: V8 stores a string with any code unit above U+00FF as two bytes per unit.
 */
export const serializedBound = (json: string): number => (/[^\u0000-\u00ff]/.test(json) ? 2 * json.length : json.length)
