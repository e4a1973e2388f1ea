/**
 * What an actor's followers share (the outbox following topics, a replica following the log into a
 * queue): the events past a cursor are handed over a chunk at a time, the cursor moving only after
 * a chunk was accepted, and a failure is retried by the actor's own alarm with capped exponential
 * backoff that never gives up (the platform's alarm retries stop after a few attempts, which would
 * strand the events past the cursor).
 */

/** Capped exponential backoff with jitter: the delay before the next attempt after each failure in a row. */
export class RetryBackoff {
  /** Failures since the last success. */
  failures = 0

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  /** One more failure: how long to wait (ms) before trying again. */
  failed(): number {
    this.failures++
    return Math.min(this.maxMs, this.baseMs * 2 ** (this.failures - 1)) * (0.5 + Math.random() / 2)
  }

  succeeded(): void {
    this.failures = 0
  }
}

/** How a follower hands one chunk over and records it. */
export interface HandOver<Chunk> {
  /** Whether the log is still the object's (false once it was erased: nothing more is sent, no cursor moves). */
  readonly current: () => boolean
  /** Hands the chunk to the follower; resolves once it was accepted. */
  readonly send: (chunk: Chunk) => Promise<unknown>
  /** The chunk was accepted: the cursor moves past it. */
  readonly advance: (chunk: Chunk) => void
}

/**
 * Hands `chunks` over in order, moving the cursor after each one accepted. A failed send throws,
 * leaving the cursor after the last chunk accepted; false when the log was erased meanwhile.
 */
export const handOver = async <Chunk>(chunks: Iterable<Chunk>, step: HandOver<Chunk>): Promise<boolean> => {
  for (const chunk of chunks) {
    if (!step.current()) return false
    await step.send(chunk)
    if (!step.current()) return false
    step.advance(chunk)
  }
  return true
}
