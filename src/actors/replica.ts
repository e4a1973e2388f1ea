/**
 * An actor's log followed into a Cloudflare Queue (issue 15 §3, replicas), the way the outbox
 * follows topics: a cursor in the topics' cursor table under a name no topic can have
 * (`~replica/<binding>`), so a command writes nothing for it, and the alarm sends what lies past
 * the cursor with `sendBatch`, in seq order, moving the cursor only once a batch was accepted.
 * At-least-once and in order per actor; the consumer (`emberlog/replica`) drops duplicates and
 * fills gaps from the source. A failed send is retried by the alarm with capped exponential
 * backoff, never given up on; without the binding nothing is sent and the cursor keeps its place,
 * so binding the queue later sends the whole log from there.
 */
import { replicaBatches, type ReplicaSource } from "../core/replica.js"
import type { ActorCore } from "./actor-core.js"

/** Events read per send step (at most 4 MiB of them, as any page): a few `sendBatch` calls each. */
export const REPLICA_PAGE = 500
export const REPLICA_RETRY_BASE_MS = 1_000
export const REPLICA_RETRY_MAX_MS = 60_000

/** The cursor of the replica behind the queue producer `binding`. */
export const replicaCursorName = (binding: string): string => `~replica/${binding}`

/**
 * Faults to inject in tests: the next `fail` `sendBatch` calls throw before sending. Kept on
 * globalThis so a test in the same isolate reaches the objects' copy of this module.
 */
export const replicaFaults: { fail: number } = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("emberlog.replicaFaults")
] ??= { fail: 0 }) as { fail: number }

/** Bindings found missing in this isolate: said once, not by every actor that wakes up. */
const unboundWarned = new Set<string>()

/** What the follower needs of its object. */
export interface ReplicaHost {
  readonly core: () => ActorCore
  readonly source: ReplicaSource
  readonly binding: string
  /** The queue producer, or undefined when the Worker has no such binding. */
  readonly queue: () => Queue | undefined
  /** Whether `core` is still the object's log (false once it was erased: a send in flight moves no cursor). */
  readonly current: () => boolean
  readonly now: () => number
}

/** One actor's replica: the alarm asks `dueAt` when rescheduling and runs `send` when it rings. */
export class ReplicaFollower {
  private readonly cursor: string
  private failures = 0
  /** No send before this (ms epoch): a failed send backs off even when commits ring the alarm sooner. */
  private retryAt = 0
  private sending = false
  private followed = false

  constructor(private readonly host: ReplicaHost) {
    this.cursor = replicaCursorName(host.binding)
  }

  /**
   * Gives the replica its cursor once the actor has a log and the queue is bound (at boot, after a
   * commit): the events past it are then kept for it, whatever else trims the log.
   */
  follow(): void {
    const core = this.host.core()
    if (this.followed || core.currentVersion === 0 || this.queue() === undefined) return
    core.follow(this.cursor)
    this.followed = true
  }

  /** Events past the cursor (an unsent page, a failed send): when to send them; undefined when none or unbound. */
  dueAt(): number | undefined {
    const core = this.host.core()
    if (core.followerCursor(this.cursor) >= core.currentVersion || this.queue() === undefined) return undefined
    return Math.max(this.host.now(), this.retryAt)
  }

  /** Sends one page past the cursor, batch by batch; a failure leaves the cursor after the last batch accepted. */
  async send(now: number): Promise<void> {
    const queue = this.queue()
    if (queue === undefined || this.sending || now < this.retryAt) return
    this.sending = true
    try {
      await this.sendPage(queue)
      this.failures = 0
      this.retryAt = 0
    } catch (error) {
      if (!this.host.current()) return
      this.failures++
      const delay =
        Math.min(REPLICA_RETRY_MAX_MS, REPLICA_RETRY_BASE_MS * 2 ** (this.failures - 1)) * (0.5 + Math.random() / 2)
      this.retryAt = this.host.now() + delay
      console.warn(
        `emberlog: replica send to ${this.host.binding} failed (attempt ${this.failures}); retrying in ${Math.round(delay)} ms`,
        error,
      )
    } finally {
      this.sending = false
    }
  }

  private async sendPage(queue: Queue): Promise<void> {
    const core = this.host.core()
    const reply = core.readEvents(core.followerCursor(this.cursor), REPLICA_PAGE)
    if (!reply.ok) throw new Error(`emberlog: reading the log for the replica failed: ${reply.error.message}`)
    for (const batch of replicaBatches(this.host.source, reply.value.events)) {
      if (!this.host.current()) return
      if (replicaFaults.fail > 0) {
        replicaFaults.fail--
        throw new Error(`injected replica send failure (${this.host.binding})`)
      }
      await queue.sendBatch(batch)
      if (!this.host.current()) return
      core.advanceFollower(this.cursor, batch[batch.length - 1]!.body.seq)
    }
  }

  private queue(): Queue | undefined {
    const queue = this.host.queue()
    if (queue !== undefined && typeof (queue as Partial<Queue>).sendBatch === "function") return queue
    if (!unboundWarned.has(this.host.binding)) {
      unboundWarned.add(this.host.binding)
      console.warn(
        `emberlog: replica binding ${this.host.binding} is not a queue producer in this Worker: ` +
          `nothing is replicated until it is bound (the replica's cursor keeps its place)`,
      )
    }
    return undefined
  }
}
