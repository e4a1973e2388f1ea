/**
 * Sizes of values as they travel and rest: UTF-8 bytes of their JSON. SQLite measures a
 * row in UTF-8 bytes (2 MB at most in production) and an RPC reply is capped at 32 MiB,
 * so bounds on state and on pages are stated in these bytes.
 */

/**
 * Bytes of JSON a page of a read (events, topic entries, search hits) holds at most, beyond
 * its first item: a reply crosses a Durable Object RPC, capped at 32 MiB, and then HTTP.
 * 4 MiB of UTF-8 is at most 8 MiB as the RPC serializes strings (2 bytes per UTF-16 unit),
 * and no single item (a row is at most 2 MB) can push a page near the cap.
 */
export const PAGE_BYTES = 4 * 1024 * 1024

/** UTF-8 bytes of `text`; a lone surrogate counts 3 (TextEncoder writes U+FFFD for it). */
export const utf8Length = (text: string): number => {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

/** UTF-8 bytes of `JSON.stringify(value)` (0 for what JSON cannot hold). */
export const jsonBytes = (value: unknown): number => utf8Length(JSON.stringify(value) ?? "")

/**
 * The first of `items` (in order) that fit `budget` bytes of JSON, never fewer than one: a
 * page always makes progress, even when a single item is larger than the budget. `items`
 * is read lazily, one past the last item taken at most.
 */
export const takeWithinBudget = <A>(
  items: Iterable<A>,
  budget: number,
  size: (item: A) => number = jsonBytes,
): Array<A> => {
  const taken: Array<A> = []
  let used = 0
  for (const item of items) {
    used += size(item)
    if (taken.length > 0 && used > budget) break
    taken.push(item)
  }
  return taken
}
