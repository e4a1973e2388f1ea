/**
 * Stream paths and actor ids. A Durable Streams URL is `/v1/stream/{path}` and the path may hold
 * `/` (and anything else); actor ids are 1–128 characters of NAME_PATTERN. The id is the path
 * with every UTF-8 byte outside `A-Z a-z 0-9 . _ -` written as `:` and two hex digits (`:` itself
 * included), so the mapping is one-to-one and reversible: `a/b` is the actor `a:2Fb`. A path
 * whose id would be longer than 128 characters is refused (400).
 */
export const STREAM_ROUTE = "/v1/stream/"
/** The kind's name: `/v1/durable-stream/{id}/…` are the stream's emberlog routes (events, verify, ws). */
export const STREAM_KIND = "durable-stream"

const KEPT = /^[A-Za-z0-9._-]$/
const MAX_ID = 128

export const streamIdOf = (path: string): string | undefined => {
  if (path.length === 0) return undefined
  let id = ""
  for (const byte of new TextEncoder().encode(path)) {
    const char = String.fromCharCode(byte)
    id += byte < 0x80 && KEPT.test(char) ? char : `:${byte.toString(16).toUpperCase().padStart(2, "0")}`
    if (id.length > MAX_ID) return undefined
  }
  return id
}

export const streamPathOf = (id: string): string => {
  const bytes: Array<number> = []
  for (let i = 0; i < id.length; i++) {
    if (id[i] === ":") {
      bytes.push(parseInt(id.slice(i + 1, i + 3), 16))
      i += 2
    } else bytes.push(id.charCodeAt(i))
  }
  return new TextDecoder().decode(new Uint8Array(bytes))
}

/** The stream path of a URL path under STREAM_ROUTE (percent-decoded), or undefined. */
export const streamPathIn = (urlPath: string): string | undefined => {
  if (!urlPath.startsWith(STREAM_ROUTE)) return undefined
  try {
    return decodeURIComponent(urlPath.slice(STREAM_ROUTE.length))
  } catch {
    return undefined
  }
}
