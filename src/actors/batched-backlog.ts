/**
 * A `batch=1` socket's backlog (subscribers.ts, "Batched backlogs"): the log from the last seq
 * the socket was sent, in frames of many entries' JSON, each within BATCH_FRAME_BYTES and the
 * room the socket's cap has left. Frames are sized in UTF-8 bytes, wrapper and commas included,
 * as the cap counts them, so a frame is only built when it fits and is never thrown away; rows
 * are read about as many as that room holds, so an ack that makes room for one frame reads one
 * frame's rows. At the cap the backlog pauses (the next ack goes on from the last seq sent); at
 * the head it is live; a log it cannot read below the head ends the socket, since going live past
 * entries never sent would be a silent gap.
 *
 * A filtered socket (`types=`) is sent only the entries its filter lets through; when the
 * backlog ends with entries it skipped, a head frame tells it how far it has seen. A pause keeps
 * the position examined (every entry before it sent or skipped), so a long skipped stretch is
 * read once, not again at every resume; the socket's last seq sent stays what its acks name.
 */
import { utf8Length } from "../domain/json-size.js"
import { BATCH_FRAME_BYTES, WS_MAX_UNCONFIRMED, batchFrame, headFrame } from "../domain/protocol.js"
import type { TypeFilter } from "./type-filters.js"

/** Rows read at most at a time. */
const PAGE = 500

/** What a batched backlog reads of its log (subscribers.ts's LogSource has it; no import, no cycle). */
export interface BatchSource {
  readonly head: () => number
  readonly batchType: string
  readonly readAfter: (
    after: number,
    limit: number,
  ) => ReadonlyArray<{ readonly position: number; readonly name: string; readonly payload: unknown }>
  readonly readAfterJson?: (
    after: number,
    limit: number,
  ) => ReadonlyArray<{ readonly position: number; readonly name: string; readonly json: string }>
}

/** What a batched backlog reads and moves of its socket's account. */
export interface BatchAccount {
  readonly sent: number
  readonly confirmed: number
  readonly lastSeq: number
  /** Where a paused backlog goes on from (every entry up to it sent or skipped); undefined: lastSeq. */
  readonly backlogAfter?: number
  /** The average UTF-8 bytes sent per row last read (sizes the next read to the room). */
  entryBytes?: number
}

/** The socket a batched backlog is sent on, as its Subscribers keeps it. */
export interface BatchedSocket {
  readonly source: BatchSource
  readonly account: BatchAccount
  /** The entries it asked for (undefined: every entry). */
  readonly filter?: TypeFilter | undefined
  /** Whether `bytes` more fit the cap. */
  readonly fits: (bytes: number) => boolean
  /** Sends a frame that fits, checkpointed at `seq`; false: the socket is closing. */
  readonly write: (text: string, bytes: number, seq: number) => boolean
  /** At the cap: not live until an ack resumes it from `after` (the last seq sent, or past what was skipped since). */
  readonly pause: (after: number) => void
  /** At the head: live again. */
  readonly live: () => void
  /** The log below the head could not be read. */
  readonly unreadable: () => void
}

export const sendBatches = (socket: BatchedSocket): void => {
  const { source, account, filter } = socket
  const type = source.batchType
  const empty = utf8Length(batchFrame(type, []))
  let parts: Array<string> = []
  let bytes = empty
  let lastInFrame = account.lastSeq
  // Every entry up to `settled` was sent or skipped by the filter; `examined` is the last one looked at.
  let settled = account.backlogAfter ?? account.lastSeq
  let examined = settled
  const pause = () => socket.pause(settled)
  const room = () => WS_MAX_UNCONFIRMED - (account.sent - account.confirmed)
  /** Sends the frame in hand; false: paused at the cap, or the socket is closing. */
  const flush = (): boolean => {
    if (!socket.fits(bytes)) {
      pause()
      return false
    }
    const text = batchFrame(type, parts)
    const sent = bytes
    parts = []
    bytes = empty
    if (!socket.write(text, sent, lastInFrame)) return false
    settled = examined
    return true
  }
  const head = source.head()
  const readJson =
    source.readAfterJson ??
    ((after: number, limit: number) =>
      source
        .readAfter(after, limit)
        .map((entry) => ({ position: entry.position, name: entry.name, json: JSON.stringify(entry.payload) })))
  for (let cursor = settled; cursor < head;) {
    const want = account.entryBytes === undefined ? PAGE : Math.ceil(room() / account.entryBytes)
    const page = readOrUndefined(() => readJson(cursor, Math.max(1, Math.min(PAGE, want))))
    if (page === undefined || page.length === 0) return socket.unreadable()
    let pageBytes = 0
    for (const { position, name, json } of page) {
      if (filter !== undefined && !filter.types.has(name)) {
        examined = position
        if (parts.length === 0) settled = position
        continue
      }
      const entryBytes = utf8Length(json)
      pageBytes += entryBytes
      if (parts.length > 0 && bytes + 1 + entryBytes > Math.min(BATCH_FRAME_BYTES, room())) {
        if (!flush()) return
        // The next entry does not fit what is left: wait for the ack that makes room.
        if (empty + entryBytes > room() && account.sent > account.confirmed) return pause()
      }
      bytes += (parts.length > 0 ? 1 : 0) + entryBytes
      parts.push(json)
      lastInFrame = examined = position
    }
    // Per row read, skipped ones included: a filter that skips most rows reads more of them.
    account.entryBytes = Math.max(1, Math.ceil(pageBytes / page.length))
    cursor = examined
  }
  if (parts.length > 0 && !flush()) return
  // A skipped tail: the client learns it has seen up to there (its acks may then name it).
  if (settled > account.lastSeq) {
    const text = headFrame(settled)
    const size = utf8Length(text)
    if (!socket.fits(size)) return pause()
    if (!socket.write(text, size, settled)) return
  }
  socket.live()
}

const readOrUndefined = <A>(read: () => A): A | undefined => {
  try {
    return read()
  } catch {
    return undefined
  }
}
