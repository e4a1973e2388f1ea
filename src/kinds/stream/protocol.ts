/**
 * The Durable Streams protocol inside a stream's object: the edge checks auth, scope, tenancy
 * and the rate limit, then forwards the request here (STREAM_PATH_HEADER, set by the edge
 * only), where the stream's state and items are. Writes become commands (the entity decides,
 * the log records); reads are answered by the shared read module (actors/stream-reads.ts),
 * which every append and close wakes through `committed`.
 *
 * TTL (§5.1) is a sliding window, as the conformance suite expects: every read and append
 * (not HEAD) restarts it. The time of the last one is kept in the object's KV storage, not the
 * log (a read appends nothing); the expiry itself is an event (Deleted, reason "expired"),
 * committed by the first request or alarm that finds the stream past it.
 */
import type { ActorReply, CommandOutcome, WireEvent } from "../../index.js"
import {
  MAX_ROW_BYTES,
  NO_STORE,
  SECURITY_HEADERS,
  STREAM_CLOSED,
  STREAM_NEXT_OFFSET,
  StreamReads,
  actorIn,
  defineCapability,
  encodeOffset,
  fromBase64,
  parseOffset,
  parseReadRequest,
  streamError,
  streamReadsSettings,
  toBase64,
  type Env,
  type Host,
  type ReadOptions,
} from "../../worker.js"
import { exists, isJsonStream, mediaType, type StreamState } from "./entity.js"
import { ProtocolError, RFC3339, bad, decimalHeader, isTrue, itemsOf, producerOf, protocolFailure } from "./requests.js"
import { inheritedSize, itemsBetween, readItems, streamItems, type StoredItem } from "./items.js"
import { STREAM_ROUTE, streamIdOf, streamPathIn } from "./paths.js"

/** The stream's URL path, set by the edge on the request it forwards (clients cannot: X-Emberlog-* is stripped). */
export const STREAM_PATH_HEADER = "X-Emberlog-Stream-Path"

const LAST_ACCESS_KEY = "emberlog/stream-last-access"
/**
 * A fork whose inherited items alone pass the 2 MB row cannot be stored: refused before its
 * source loads them (one nearer the limit is refused by the host's own check, also 413).
 */
const MAX_FORK_BYTES = MAX_ROW_BYTES
/** What a fork takes from its source (the source's `forkSource` method answers it). */
export type ForkSource =
  | {
      readonly ok: true
      readonly contentType: string
      readonly ttlSeconds: number | null
      readonly expiresAt: string | null
      readonly start: number
      readonly inherited: ReadonlyArray<string>
    }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string }

export interface ForkRequest {
  readonly offset: number | undefined
  readonly subOffset: number
  readonly contentType: string | null
}

export const streamProtocol = defineCapability({
  name: "durable-streams",
  projection: streamItems,
  start: (host: Host) => {
    const reads = new StreamReads(streamReadsSettings(host.env))
    const state = () => host.state() as StreamState
    const kv = host.ctx.storage.kv
    const sql = () => host.ctx.storage.sql

    const expiryOf = (s: StreamState): number | undefined => {
      if (!exists(s)) return undefined
      if (s.expiresAt !== null) return Date.parse(s.expiresAt)
      if (s.ttlSeconds !== null) return (kv.get<number>(LAST_ACCESS_KEY) ?? s.createdAt) + s.ttlSeconds * 1000
      return undefined
    }
    const commit = (command: unknown): ActorReply<CommandOutcome> =>
      host.commit({ command, principal: "system", internal: true })
    const expireIfDue = async () => {
      const before = state()
      const at = expiryOf(before)
      if (at === undefined || at > Date.now()) return
      // A long-poll or SSE reader still open is reading: a sliding TTL does not run out under it.
      if (reads.readers > 0 && before.expiresAt === null) return touch()
      await releaseIfGone(before, commit({ type: "Delete", reason: "expired" }))
    }
    /** A read or an append (or a live reader still open when the TTL ends): the sliding TTL starts again. */
    const touch = () => {
      const s = state()
      if (!exists(s) || s.ttlSeconds === null || s.expiresAt !== null) return
      kv.put(LAST_ACCESS_KEY, Date.now())
      void host.wakeAt(Date.now() + s.ttlSeconds * 1000)
    }

    const metadata = (s: StreamState): Record<string, string> => {
      const headers: Record<string, string> = {}
      if (s.ttlSeconds !== null) headers["Stream-TTL"] = String(s.ttlSeconds)
      if (s.expiresAt !== null) headers["Stream-Expires-At"] = s.expiresAt
      return headers
    }

    const readOptions = (s: StreamState): ReadOptions<StoredItem> => ({
      source: {
        head: () => state().tail,
        start: () => state().start,
        readAfter: (after, limit) => (exists(state()) ? readItems(sql(), after, limit) : []),
        closed: () => state().status === "closed",
        // A read answers for the generation it began on: deleted or re-created since, it is over.
        status: () => {
          const now = state()
          if (now.generation !== s.generation) return "missing"
          return now.status === "gone" ? "gone" : exists(now) ? "live" : "missing"
        },
      },
      rendering: isJsonStream(s.contentType)
        ? { mode: "json", contentType: s.contentType, json: (item) => item.body }
        : { mode: "bytes", contentType: s.contentType, bytes: (item) => fromBase64(item.body) },
      etag: `${host.id}:${s.generation}`,
      headers: metadata(s),
    })

    const writeHeaders = (s: StreamState, extra: Record<string, string> = {}): Record<string, string> => {
      const headers: Record<string, string> = {
        ...SECURITY_HEADERS,
        "Cache-Control": NO_STORE,
        "Content-Type": s.contentType,
        [STREAM_NEXT_OFFSET]: encodeOffset(s.tail),
        ...extra,
      }
      if (s.status === "closed") headers[STREAM_CLOSED] = "true"
      return headers
    }

    const requireStream = (s: StreamState) => {
      if (s.status === "gone")
        throw new ProtocolError(410, "stream_gone", "This stream was deleted; forks of it still live")
      if (!exists(s)) throw new ProtocolError(404, "stream_not_found", "No stream here")
    }

    const sourceOf = (id: string) => actorIn(host.env as Env, host.tenant, host.kind, id)

    const releaseSource = async (origin: StreamState["forkedFrom"]) => {
      if (origin === null) return
      await sourceOf(origin.id).invoke("releaseFork", [])
    }
    /** A fork that is gone for good (not soft-deleted for forks of its own) no longer holds its source. */
    const releaseIfGone = async (before: StreamState, reply: ActorReply<CommandOutcome>) => {
      const hardDelete =
        reply.ok && reply.value.events.some((event) => event.type === "Deleted" && event.data.soft === false)
      if (hardDelete) await releaseSource(before.forkedFrom)
    }

    const create = async (request: Request): Promise<Response> => {
      const ttlSeconds = decimalHeader(request, "Stream-TTL") ?? null
      const expiresHeader = request.headers.get("Stream-Expires-At")
      if (expiresHeader !== null && (!RFC3339.test(expiresHeader) || Number.isNaN(Date.parse(expiresHeader))))
        throw bad("invalid_header", "Stream-Expires-At must be an RFC 3339 time such as 2026-12-01T12:00:00Z")
      if (ttlSeconds !== null && expiresHeader !== null)
        throw bad("invalid_header", "Give Stream-TTL or Stream-Expires-At, not both")
      const closed = isTrue(request.headers.get(STREAM_CLOSED))
      const forkedFrom = request.headers.get("Stream-Forked-From")
      const forkOffsetHeader = request.headers.get("Stream-Fork-Offset")
      const subOffset = decimalHeader(request, "Stream-Fork-Sub-Offset")
      if (forkedFrom === null && (forkOffsetHeader !== null || subOffset !== undefined))
        throw bad("invalid_header", "Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From")
      if (subOffset !== undefined && subOffset > 0 && forkOffsetHeader === null)
        throw bad("invalid_header", "Stream-Fork-Sub-Offset needs Stream-Fork-Offset")
      const givenType = request.headers.get("Content-Type")
      const body = new Uint8Array(await request.arrayBuffer())

      let origin: { id: string; offset: number | undefined; subOffset: number } | undefined
      if (forkedFrom !== null) {
        const sourceUrl = URL.parse(forkedFrom, request.url)
        // A stream of another server (or a URL that is none) is no source this object can ask.
        const sourcePath =
          sourceUrl === null || sourceUrl.origin !== new URL(request.url).origin
            ? undefined
            : streamPathIn(sourceUrl.pathname)
        const id = sourcePath === undefined ? undefined : streamIdOf(sourcePath)
        if (id === undefined)
          throw bad("invalid_header", `Stream-Forked-From must be a stream URL under ${STREAM_ROUTE}`)
        const offset = forkOffsetHeader === null ? undefined : parseOffset(forkOffsetHeader)
        if (offset !== undefined && (typeof offset !== "object" || !("after" in offset)))
          throw bad("invalid_header", "Stream-Fork-Offset must be an offset the source gave")
        origin = { id, offset: offset?.after, subOffset: subOffset ?? 0 }
      }

      const before = state()
      if (before.status === "gone")
        throw new ProtocolError(409, "stream_gone", "A stream deleted while forks of it live cannot be created again")
      let contentType = givenType ?? "application/octet-stream"
      let ttl = ttlSeconds
      let expiresAt = expiresHeader
      let inherited: ReadonlyArray<string> = []
      let forkStart: number | null = null
      let forkOrigin: StreamState["forkedFrom"] = null
      if (origin !== undefined) {
        if (exists(before)) {
          // A repeated fork PUT is answered here: asking the source again would count the fork twice.
          const same =
            before.forkedFrom !== null &&
            before.forkedFrom.id === origin.id &&
            (origin.offset === undefined || before.forkedFrom.offset === origin.offset) &&
            before.forkedFrom.subOffset === origin.subOffset &&
            (givenType === null || mediaType(givenType) === mediaType(before.contentType)) &&
            (before.status === "closed") === closed &&
            // Without TTL or Expires-At a fork took its source's: only given ones must match.
            (ttlSeconds === null || ttlSeconds === before.ttlSeconds) &&
            (expiresHeader === null || expiresHeader === before.expiresAt)
          if (!same) throw new ProtocolError(409, "stream_exists", "A stream exists here with another configuration")
          return new Response(null, { status: 200, headers: writeHeaders(before) })
        }
        const forkRequest: ForkRequest = { offset: origin.offset, subOffset: origin.subOffset, contentType: givenType }
        const reply = await sourceOf(origin.id).invoke("forkSource", [forkRequest])
        const source = (
          reply.ok ? reply.value : { ok: false, status: 404, code: "stream_not_found", message: "No source stream" }
        ) as ForkSource
        if (!source.ok) throw new ProtocolError(source.status, source.code, source.message)
        contentType = givenType ?? source.contentType
        if (ttl === null && expiresAt === null) {
          ttl = source.ttlSeconds
          expiresAt = source.expiresAt
        }
        inherited = source.inherited
        forkStart = source.start
        // Without Stream-Fork-Offset (and so without a sub-offset) the fork point is the source's head.
        forkOrigin = {
          id: origin.id,
          offset: origin.offset ?? source.start + inherited.length,
          subOffset: origin.subOffset,
        }
      }
      let items: Array<string>
      try {
        items = itemsOf(body, isJsonStream(contentType), true)
      } catch (error) {
        if (origin !== undefined) await releaseSource(forkOrigin)
        throw error
      }
      const command = {
        type: "Create",
        contentType,
        ttlSeconds: ttl,
        expiresAt,
        closed,
        inherited,
        items,
        forkedFrom: forkOrigin,
        forkStart,
        at: Date.now(),
      }
      const reply = commit(command)
      if (!reply.ok) {
        if (origin !== undefined) await releaseSource(forkOrigin)
        throw protocolFailure(reply, state())
      }
      const after = state()
      if (reply.value.events.length === 0) {
        // A concurrent PUT created the same fork while this one asked the source: this one's count goes back.
        if (origin !== undefined) await releaseSource(forkOrigin)
        return new Response(null, { status: 200, headers: writeHeaders(after) })
      }
      kv.put(LAST_ACCESS_KEY, Date.now())
      const expiry = expiryOf(after)
      if (expiry !== undefined) await host.wakeAt(expiry)
      const location = new URL(request.url)
      location.search = ""
      return new Response(null, { status: 201, headers: writeHeaders(after, { Location: location.toString() }) })
    }

    const append = async (request: Request): Promise<Response> => {
      const close = isTrue(request.headers.get(STREAM_CLOSED))
      const producer = producerOf(request)
      const streamSeq = request.headers.get("Stream-Seq")
      const contentType = request.headers.get("Content-Type")
      const body = new Uint8Array(await request.arrayBuffer())
      const before = state()
      requireStream(before)
      if (body.byteLength === 0 && !close) throw bad("empty_append", "An append needs a body (or Stream-Closed: true)")
      // A closed stream refuses the append (409) whatever its body; a producer's retry is still
      // recognised first (the entity decides both), so the body goes unparsed.
      const closedBefore = before.status === "closed"
      if (body.byteLength > 0 && contentType === null && !closedBefore)
        throw bad("content_type_required", "An append needs a Content-Type")
      // A body of another type is refused by the entity (409), unparsed.
      const sameType = contentType !== null && mediaType(contentType) === mediaType(before.contentType)
      const items =
        body.byteLength === 0
          ? []
          : sameType && !closedBefore
            ? itemsOf(body, isJsonStream(before.contentType), false)
            : [toBase64(body)]
      const reply = commit({ type: "Append", contentType, items, producer, streamSeq, close })
      if (!reply.ok) throw protocolFailure(reply, state())
      const after = state()
      touch()
      const producerHeaders: Record<string, string> = {}
      if (producer !== null) {
        const known = after.producers[producer.id]
        producerHeaders["Producer-Epoch"] = String(producer.epoch)
        producerHeaders["Producer-Seq"] = String(
          known !== undefined && known.epoch === producer.epoch ? known.seq : producer.seq,
        )
      }
      // §5.2.1: 200 when a producer's data was appended; a duplicate, a close alone or a plain append is 204.
      const appended = reply.value.events.some((event) => event.type === "Appended")
      const status = producer !== null && appended ? 200 : 204
      return new Response(null, { status, headers: writeHeaders(after, producerHeaders) })
    }

    const remove = async (): Promise<Response> => {
      const before = state()
      requireStream(before)
      const reply = commit({ type: "Delete", reason: "deleted" })
      if (!reply.ok) throw protocolFailure(reply, state())
      kv.delete(LAST_ACCESS_KEY)
      await releaseIfGone(before, reply)
      return new Response(null, { status: 204, headers: { ...SECURITY_HEADERS, "Cache-Control": NO_STORE } })
    }

    const handle = async (request: Request): Promise<Response> => {
      try {
        await expireIfDue()
        switch (request.method) {
          case "HEAD": {
            const s = state()
            if (s.status === "gone") return new Response(null, { status: 410, headers: { ...SECURITY_HEADERS } })
            if (!exists(s)) return new Response(null, { status: 404, headers: { ...SECURITY_HEADERS } })
            return reads.head(readOptions(s))
          }
          case "GET": {
            const s = state()
            requireStream(s)
            // A malformed read is refused without restarting the TTL.
            if (!("invalid" in parseReadRequest(new URL(request.url)))) touch()
            return await reads.read(request, readOptions(s))
          }
          case "PUT":
            return await create(request)
          case "POST":
            return await append(request)
          case "DELETE":
            return await remove()
          default:
            return streamError(405, "method_not_allowed", "A stream takes GET, HEAD, PUT, POST and DELETE", {
              Allow: "GET, HEAD, PUT, POST, DELETE",
            })
        }
      } catch (error) {
        if (error instanceof ProtocolError) return error.response()
        throw error
      }
    }

    /** What a fork inherits, counted as a fork of this stream (AddFork) before it is answered. */
    const forkSource = async (request: ForkRequest): Promise<ForkSource> => {
      await expireIfDue()
      const s = state()
      const fail = (status: number, code: string, message: string): ForkSource => ({ ok: false, status, code, message })
      if (s.status === "gone") return fail(409, "stream_gone", "The source stream was deleted")
      if (!exists(s)) return fail(404, "stream_not_found", "No source stream")
      if (request.contentType !== null && mediaType(request.contentType) !== mediaType(s.contentType))
        return fail(409, "content_type_mismatch", `The source's content type is ${s.contentType}`)
      const offset = request.offset ?? s.tail
      if (offset < s.start || offset > s.tail)
        return fail(400, "invalid_fork_offset", "Stream-Fork-Offset is not in the source")
      const size = inheritedSize(sql(), s.start, offset)
      if (size > MAX_FORK_BYTES)
        return fail(
          413,
          "fork_too_large",
          `A fork inherits at most ${MAX_FORK_BYTES} bytes of its source; this one would inherit ${size}`,
        )
      const inherited = itemsBetween(sql(), s.start, offset).map((item) => item.body)
      if (request.subOffset > 0) {
        const next = readItems(sql(), offset, 1)[0]
        if (next === undefined)
          return fail(400, "invalid_fork_offset", "Stream-Fork-Sub-Offset points past the source's data")
        if (isJsonStream(s.contentType)) {
          const batch = readItems(sql(), offset, request.subOffset).filter((item) => item.batch === next.batch)
          if (next.batch !== next.position || batch.length < request.subOffset)
            return fail(400, "invalid_fork_offset", "Stream-Fork-Sub-Offset is beyond the messages of that append")
          inherited.push(...batch.map((item) => item.body))
        } else {
          const bytes = fromBase64(next.body)
          if (request.subOffset > bytes.byteLength)
            return fail(400, "invalid_fork_offset", "Stream-Fork-Sub-Offset is beyond the bytes of that append")
          inherited.push(toBase64(bytes.subarray(0, request.subOffset)))
        }
      }
      const added = commit({ type: "AddFork" })
      if (!added.ok) return fail(409, added.error.code, added.error.message)
      return {
        ok: true,
        contentType: s.contentType,
        ttlSeconds: s.ttlSeconds,
        expiresAt: s.expiresAt,
        start: s.start,
        inherited,
      }
    }

    return {
      fetch: (request: Request) => (request.headers.has(STREAM_PATH_HEADER) ? handle(request) : undefined),
      committed: (events: ReadonlyArray<WireEvent>) => {
        reads.notify()
        if (events.some((event) => event.type === "Deleted")) reads.closeAll()
      },
      // The tenant is being deleted: nobody waits on its streams any longer.
      erase: async () => {
        reads.closeAll()
        return {}
      },
      onAlarm: async () => {
        await expireIfDue()
        const expiry = expiryOf(state())
        if (expiry !== undefined) await host.wakeAt(expiry)
      },
      methods: {
        forkSource,
        // The last fork of a soft-deleted stream takes it with it, and so on up a chain of forks.
        releaseFork: async () => {
          const before = state()
          const reply = commit({ type: "ReleaseFork" })
          await releaseIfGone(before, reply)
          return reply.ok
        },
      },
    }
  },
})
