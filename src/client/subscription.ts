/**
 * A subscription that survives dropped connections: it reconnects with capped
 * exponential backoff and jitter, resumes after the last position it yielded, and
 * drops anything at or before that position, so the consumer sees every entry once,
 * in order, whatever happens to the connection. Batch frames (a `batch=1` backlog,
 * protocol.ts) are unpacked into their entries, and each is acked with its last position,
 * which is what lets the server send a long backlog on one connection.
 */
import { ACK_EVERY, CLOSE_RESUME, ackFrame } from "../domain/protocol.js"

/** How long a batch=1 subscription waits after its last frame before it confirms what it read. */
const ACK_IDLE_MS = 200

/** The part of the standard WebSocket API a subscription uses (`send` carries its acks). */
export interface SocketLike {
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void
  addEventListener(type: "close" | "error", listener: (event: unknown) => void): void
  close(code?: number, reason?: string): void
  send?(data: string): void
}

export interface ReconnectOptions {
  /** First retry delay (ms); default 250. */
  readonly initialDelayMs?: number
  /** Cap on the delay (ms); default 30,000. */
  readonly maxDelayMs?: number
  /** Growth per failed attempt; default 2. */
  readonly factor?: number
  /** Fraction of the delay that is randomized away (0–1); default 0.5. */
  readonly jitter?: number
  /** Give up after this many consecutive failed connections; default never. */
  readonly maxAttempts?: number
}

/** A refusal the server will repeat (a 4xx other than 429): reconnecting cannot help. */
export class SubscriptionRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`subscription refused with ${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`)
  }
}

export interface ResumableOptions<T> {
  /** Opens a connection that starts after `after`. */
  readonly open: (after: number) => Promise<SocketLike>
  /** The position and payload a frame carries, or undefined for frames that are not entries. */
  readonly entryOf: (frame: unknown) => Positioned<T> | undefined
  /** The entries of a batch frame, oldest first, or undefined for frames that are not batches. */
  readonly batchOf?: (frame: unknown) => ReadonlyArray<Positioned<T>> | undefined
  /**
   * The position a frame that carries no entry has seen up to (a filtered subscription's head
   * frame), so a reconnection resumes after what the filter skipped; undefined for other frames.
   */
  readonly headOf?: (frame: unknown) => number | undefined
  /** Told each position a head frame moved the cursor to. */
  readonly onHead?: (position: number) => void
  readonly after: number
  readonly reconnect?: ReconnectOptions
  readonly signal?: AbortSignal
}

export interface Positioned<T> {
  readonly position: number
  readonly value: T
}

export const backoffDelay = (attempt: number, options: ReconnectOptions = {}, random = Math.random): number => {
  const { initialDelayMs = 250, maxDelayMs = 30_000, factor = 2, jitter = 0.5 } = options
  const capped = Math.min(maxDelayMs, initialDelayMs * factor ** attempt)
  return capped * (1 - jitter * random())
}

export const resumable = <T>(options: ResumableOptions<T>): AsyncIterableIterator<T> => {
  const buffered: Array<T> = []
  let cursor = options.after
  let failure: unknown
  let finished = false
  let wake: (() => void) | undefined
  let socket: SocketLike | undefined
  let attempts = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const notify = () => {
    wake?.()
    wake = undefined
  }
  const stop = (error?: unknown) => {
    if (finished) return
    finished = true
    failure = error
    if (timer !== undefined) clearTimeout(timer)
    socket?.close(1000, "done")
    notify()
  }

  const connect = async () => {
    if (finished) return
    let opened: SocketLike
    try {
      opened = await options.open(cursor)
    } catch (error) {
      if (error instanceof SubscriptionRefused && error.status !== 429) return stop(error)
      return retry()
    }
    if (finished) return opened.close(1000, "done")
    socket = opened
    let closed = false
    let unacknowledged = 0
    let idleAck: ReturnType<typeof setTimeout> | undefined
    const acknowledge = () => {
      if (opened.send === undefined) return
      unacknowledged = 0
      try {
        opened.send(ackFrame(cursor))
      } catch {
        // Closing; the close handler reconnects.
      }
    }
    const onGone = (event: unknown) => {
      if (closed) return
      closed = true
      if (idleAck !== undefined) clearTimeout(idleAck)
      if (socket === opened) socket = undefined
      // Told to resume: the server is fine, this reader was behind; nothing to back off from.
      if ((event as { code?: unknown } | undefined)?.code === CLOSE_RESUME) {
        attempts = 0
        return void connect()
      }
      retry()
    }
    opened.addEventListener("message", (event) => {
      // After an unreadable frame, what the socket still delivers would come after a gap.
      if (closed) return
      const text = String(event.data)
      let batch: ReadonlyArray<Positioned<T>> | undefined
      let entries: ReadonlyArray<Positioned<T> | undefined>
      let head: number | undefined
      try {
        const frame: unknown = JSON.parse(text)
        batch = options.batchOf?.(frame)
        entries = batch ?? [options.entryOf(frame)]
        head = batch === undefined && entries[0] === undefined ? options.headOf?.(frame) : undefined
      } catch {
        // Never skipped: its entries would be missing, and the acks of later frames would confirm
        // past them. This connection ends; the next starts after the last entry read.
        try {
          opened.close(1000, "unreadable frame")
        } catch {
          // Already closing.
        }
        return onGone(undefined)
      }
      // A frame with no entry may tell how far a filtered subscription has seen (its head frame).
      if (head !== undefined && head > cursor) {
        cursor = head
        options.onHead?.(head)
      }
      unacknowledged += text.length
      for (const entry of entries) {
        if (entry === undefined || entry.position <= cursor) continue
        attempts = 0
        cursor = entry.position
        buffered.push(entry.value)
        notify()
      }
      // A batch frame is always acked: a paused backlog goes on only when its last frame is confirmed.
      if (batch !== undefined || unacknowledged >= ACK_EVERY) acknowledge()
      else if (options.batchOf !== undefined) {
        // A batch=1 socket also pauses at the cap live, after single frames: when they stop
        // coming, everything read is confirmed by its last seq, which resumes it even when the
        // server hibernated meanwhile (and so can only match an ack of exactly its last seq sent).
        if (idleAck !== undefined) clearTimeout(idleAck)
        idleAck = setTimeout(() => {
          idleAck = undefined
          if (!closed && !finished && unacknowledged > 0) acknowledge()
        }, ACK_IDLE_MS)
      }
    })
    opened.addEventListener("close", onGone)
    opened.addEventListener("error", onGone)
  }

  const retry = () => {
    if (finished) return
    if (options.reconnect?.maxAttempts !== undefined && attempts >= options.reconnect.maxAttempts) {
      return stop(new Error(`subscription lost after ${attempts} reconnection attempts`))
    }
    timer = setTimeout(() => void connect(), backoffDelay(attempts++, options.reconnect))
  }

  options.signal?.addEventListener("abort", () => stop())
  void connect()

  const iterator: AsyncIterableIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (buffered.length > 0) return { done: false, value: buffered.shift()! }
        if (finished) {
          if (failure !== undefined) throw failure
          return { done: true, value: undefined }
        }
        await new Promise<void>((resolve) => (wake = resolve))
      }
    },
    async return(): Promise<IteratorResult<T>> {
      stop()
      return { done: true, value: undefined }
    },
    [Symbol.asyncIterator]() {
      return iterator
    },
  }
  return iterator
}
