/**
 * An actor's log followed into a Cloudflare Queue (issue 15 §3, replicas), the way the outbox
 * follows topics (./follower.ts): a cursor in the topics' cursor table under a name no topic can
 * have (`~replica/<binding>`), so a command writes nothing for it, and the alarm sends what lies
 * past the cursor with `sendBatch`, in seq order, moving the cursor only once a batch was accepted.
 * At-least-once and in order per actor; the consumer (`emberlog/replica`) drops duplicates, fills
 * gaps from the source and checks each message links to its copy (`prevHash`). A failed send is
 * retried by the alarm with capped exponential backoff, never given up on. A cursor whose binding
 * is not configured and bound is dropped: it would hold the log back (archiving) for nothing.
 */
import { GENESIS_HASH } from "../core/hash-chain.js"
import { replicaBatches, type ReplicaSource } from "../core/replica.js"
import type { WireEvent } from "../core/wire.js"
import type { ActorCore } from "./actor-core.js"
import { handOver, RetryBackoff } from "./follower.js"

/** Events read per send step (at most 4 MiB of them, as any page): a few `sendBatch` calls each. */
export const REPLICA_PAGE = 500
export const REPLICA_RETRY_BASE_MS = 1_000
export const REPLICA_RETRY_MAX_MS = 60_000

const CURSOR_PREFIX = "~replica/"

/** The cursor of the replica behind the queue producer `binding`. */
export const replicaCursorName = (binding: string): string => `${CURSOR_PREFIX}${binding}`

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
  /**
   * The log's events after `after`, at most `limit`, in seq order and as stored (not upcast: their
   * hashes verify). The host's own read; an archive-aware host reads archived pages here too.
   */
  readonly readPage: (after: number, limit: number) => Promise<ReadonlyArray<WireEvent>>
  /**
   * Where the log's readable history starts when retention deleted its oldest events: the seq of
   * the last deleted event and its hash (the chain's recorded link); undefined when nothing was deleted.
   */
  readonly deletedThrough?: () => { readonly seq: number; readonly hash: string } | undefined
  /** Whether `core` is still the object's log (false once it was erased: a send in flight moves no cursor). */
  readonly current: () => boolean
  readonly now: () => number
}

/**
 * Drops the replica cursors of `core` other than `keep` (the cursor of the replica configured for
 * this actor, when its queue is bound): a binding removed or renamed, a kind no longer replicated,
 * the option dropped. Such a cursor never moves again, and the log past it would be kept forever.
 */
export const dropStaleReplicaCursors = (core: ActorCore, source: ReplicaSource, keep: string | undefined): void => {
  for (const name of core.followers()) {
    if (!name.startsWith(CURSOR_PREFIX) || name === keep) continue
    const through = core.followerCursor(name)
    core.unfollow(name)
    console.warn(
      `emberlog: ${source.kind}/${source.id} dropped its replica cursor ${name} (at seq ${through}): ` +
        `its queue binding is not configured and bound in this Worker`,
    )
  }
}

/** One actor's replica: the alarm asks `dueAt` when rescheduling and runs `send` when it rings. */
export class ReplicaFollower {
  readonly cursor: string
  private readonly backoff = new RetryBackoff(REPLICA_RETRY_BASE_MS, REPLICA_RETRY_MAX_MS)
  /** No send before this (ms epoch): a failed send backs off even when commits ring the alarm sooner. */
  private retryAt = 0
  private sending = false

  constructor(private readonly host: ReplicaHost) {
    this.cursor = replicaCursorName(host.binding)
  }

  /**
   * At boot and after a commit: gives the replica its cursor once the actor has a log and the queue
   * is bound (the events past it are then kept for it, whatever else trims the log), or drops every
   * replica cursor when the queue is not bound.
   */
  follow(): void {
    const core = this.host.core()
    const bound = this.queue() !== undefined
    dropStaleReplicaCursors(core, this.host.source, bound ? this.cursor : undefined)
    if (bound && core.currentVersion > 0) core.follow(this.cursor)
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
      this.backoff.succeeded()
      this.retryAt = 0
    } catch (error) {
      if (!this.host.current()) return
      const delay = this.backoff.failed()
      this.retryAt = this.host.now() + delay
      console.warn(
        `emberlog: replica send to ${this.host.binding} failed (attempt ${this.backoff.failures}); retrying in ${Math.round(delay)} ms`,
        error,
      )
    } finally {
      this.sending = false
    }
  }

  private async sendPage(queue: Queue): Promise<void> {
    const core = this.host.core()
    let cursor = core.followerCursor(this.cursor)
    const deleted = this.host.deletedThrough?.()
    if (deleted !== undefined && cursor <= deleted.seq) {
      // A replica that starts (the queue bound, a kind added) after retention deleted the log's
      // oldest events starts where the log still is, linked to the chain's recorded hash there: its
      // cursor would otherwise stay below the cut for good, and archiving waits for every cursor.
      if (cursor < deleted.seq) {
        console.warn(
          `emberlog: the replica ${this.host.binding} of ${this.host.source.kind}/${this.host.source.id} starts after seq ` +
            `${deleted.seq}: the events before it were deleted by retention before they were sent`,
        )
        core.advanceFollower(this.cursor, deleted.seq)
        cursor = deleted.seq
      }
      const events = await this.host.readPage(cursor, REPLICA_PAGE)
      return this.hand(queue, events, deleted.hash)
    }
    // The event at the cursor too (the last one sent): its hash is what the first message links to.
    const read = await this.host.readPage(Math.max(0, cursor - 1), REPLICA_PAGE + (cursor > 0 ? 1 : 0))
    let prevHash = GENESIS_HASH
    let events = read
    if (cursor > 0) {
      if (read[0]?.seq !== cursor)
        throw new Error(`emberlog: the replica's page after ${cursor - 1} lacks seq ${cursor}`)
      prevHash = read[0].hash
      events = read.slice(1)
    }
    await this.hand(queue, events, prevHash)
  }

  /** Sends `events` (the first linking to `prevHash`) batch by batch, the cursor moved after each. */
  private async hand(queue: Queue, events: ReadonlyArray<WireEvent>, prevHash: string): Promise<void> {
    const core = this.host.core()
    await handOver(replicaBatches(this.host.source, events, prevHash), {
      current: this.host.current,
      send: async (batch) => {
        if (replicaFaults.fail > 0) {
          replicaFaults.fail--
          throw new Error(`injected replica send failure (${this.host.binding})`)
        }
        await queue.sendBatch(batch)
      },
      advance: (batch) => core.advanceFollower(this.cursor, batch[batch.length - 1]!.body.seq),
    })
  }

  private queue(): Queue | undefined {
    const queue = this.host.queue()
    if (queue !== undefined && typeof (queue as Partial<Queue>).sendBatch === "function") return queue
    if (!unboundWarned.has(this.host.binding)) {
      unboundWarned.add(this.host.binding)
      console.warn(
        `emberlog: replica binding ${this.host.binding} is not a queue producer in this Worker: ` +
          `nothing is replicated (actors drop their replica cursors) until it is bound`,
      )
    }
    return undefined
  }
}
