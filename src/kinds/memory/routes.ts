/**
 * Memory search and retrieval: `GET /v1/memory/{ns}/search` (full text, bm25-ranked, or
 * semantic with `mode=semantic` when Workers AI and Vectorize are bound; filtered by tags,
 * type and time, paged by cursor: at most `limit` hits and PAGE_BYTES of JSON, at least one)
 * and `GET /v1/memory/{ns}/items/{hash}`
 * (404 once forgotten). Storing, tagging and forgetting are ordinary commands.
 */
import type { Context } from "hono"
import { MAX_TAGS } from "./entity.js"
import {
  HttpError,
  Params,
  actorOf,
  badRequest,
  failed,
  kindMethods,
  requireScope,
  type App,
  type AppEnv,
} from "../../worker.js"
import type { MemoryMethods } from "./api.js"
import type { MemoryEnv } from "./store.js"

export const MAX_SEARCH_PAGE = 100

const memoryOf = (c: Context<AppEnv>) => kindMethods<MemoryMethods>(actorOf(c, "memory", c.req.param("ns")!))

export const memoryRoutes = (app: App) => {
  app.get("/v1/memory/:ns/search", requireScope("read"), async (c) => {
    const match = c.req.query("match") ?? "any"
    if (match !== "all" && match !== "any") throw badRequest("invalid_query", "match must be all or any")
    const limit = Params.nonNegativeInt("limit", c.req.query("limit"), 20)
    if (limit < 1 || limit > MAX_SEARCH_PAGE)
      throw badRequest("invalid_query", `limit must be an integer from 1 to ${MAX_SEARCH_PAGE}`)
    const from = c.req.query("from")
    const to = c.req.query("to")
    const mode = c.req.query("mode") ?? "text"
    if (mode !== "text" && mode !== "semantic" && mode !== "auto")
      throw badRequest("invalid_query", "mode must be text, semantic or auto")
    const tags = Params.commaList(c.req.query("tags"))
    if (tags.length > MAX_TAGS) throw badRequest("invalid_query", `Search by at most ${MAX_TAGS} tags`)
    const page = await memoryOf(c).search({
      q: c.req.query("q"),
      mode,
      tags,
      match,
      type: c.req.query("type") || undefined,
      from: from === undefined ? undefined : Params.isoTime("from", from),
      to: to === undefined ? undefined : Params.isoTime("to", to),
      limit,
      offset: Params.nonNegativeInt("cursor", c.req.query("cursor"), 0),
    })
    if ("error" in page) throw failed(page.error)
    return c.json(page)
  })

  app.get("/v1/memory/:ns/items/:hash", requireScope("read"), async (c) => {
    const hash = c.req.param("hash")
    if (!/^[0-9a-f]{64}$/.test(hash))
      throw badRequest("invalid_hash", "A memory id is the SHA-256 of its content: 64 hex digits")
    const forgotten = () => new HttpError(404, "unknown_memory", `No memory ${hash} (never stored, or forgotten)`)
    const item = await memoryOf(c).item(hash)
    if (item === undefined) throw forgotten()
    const { blobKey, ...memory } = item
    if (blobKey === null) return c.json(memory)
    // Large content is read from R2 here, not passed through the object; forgotten meanwhile → 404.
    const bucket = (c.env as MemoryEnv).MEMORY_BUCKET
    if (bucket === undefined)
      throw failed({
        _tag: "Unavailable",
        code: "storage_unavailable",
        message: "This memory's content is in R2, and no MEMORY_BUCKET is bound",
      })
    const object = await bucket.get(blobKey)
    if (object === null) throw forgotten()
    return c.json({ ...memory, content: await object.text(), truncated: false })
  })
}
