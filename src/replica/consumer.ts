/**
 * The consumer side of a replica (issue 15 §3): a Queue handler that keeps a downstream copy of
 * actors' logs in a store of the user's. Queues deliver at least once and in no guaranteed order,
 * and a message may be lost to a dead-letter queue or a store restored from an older backup, so
 * the handler trusts only the store's position per source (the last event kept: its seq and hash):
 * a message at or below it is a duplicate (acked, applied again never), the next one is applied if
 * it links to it (`prevHash`), and one beyond it means a gap, which is filled by reading the
 * source's log from the last event kept (`fetchEvents`), whose hash must be the one kept. A message
 * or a log that does not link is another history of the actor (its tenant deleted and the log
 * restarted at 1): a divergence, failed loudly (retried, into the dead-letter queue in the end), or
 * with `onDiverged: "reset"` the copy is dropped and rebuilt from the source. Events of one source
 * are applied in seq order with no gap, each `apply` all or nothing. A failure (the store, the
 * source) retries only the messages not applied, with a delay.
 */
import type { ReplicaMessage, ReplicaSource } from "../core/replica.js"
import type { WireEvent } from "../core/wire.js"

/** Where a source's copy stands: the last event kept (seq 0 and GENESIS_HASH, "", when none). */
export interface ReplicaPosition {
  readonly seq: number
  readonly hash: string
}

/**
 * The position of a copy that holds nothing yet: the hash is the chain's GENESIS_HASH (core/hash-chain.ts),
 * written out so this module loads nothing that hashes (it runs in any consumer).
 */
export const EMPTY_POSITION: ReplicaPosition = { seq: 0, hash: "" }

/** The downstream copy: per source, the events kept so far. */
export interface ReplicaStore {
  /** The last event kept of `source`: its seq and `hash` (EMPTY_POSITION when none). */
  readonly position: (source: ReplicaSource) => ReplicaPosition | Promise<ReplicaPosition>
  /**
   * Keeps `events` of `source` atomically (all or none): consecutive, in seq order, the first right
   * after `position(source)` as it was read. A store that consumer invocations may write at the same
   * time (a queue's max_concurrency above 1) skips, in the same transaction, events at or below
   * the last seq it holds.
   */
  readonly apply: (source: ReplicaSource, events: ReadonlyArray<WireEvent>) => void | Promise<void>
  /** Drops every event kept of `source` (needed by `onDiverged: "reset"`): its copy is rebuilt from seq 1. */
  readonly reset?: (source: ReplicaSource) => void | Promise<void>
}

/**
 * The source's own log after `after`: a page of events in seq order starting at `after + 1`
 * (empty at the head), as stored (not upcast, hashes intact). E.g. `actorEventSource`.
 */
export type FetchEvents = (source: ReplicaSource, after: number) => Promise<ReadonlyArray<WireEvent>>

export interface ReplicaConsumerOptions {
  readonly fetchEvents: FetchEvents
  /** How long a retried message waits before it is delivered again (default 5 s). */
  readonly retryDelaySeconds?: number
  /**
   * What a divergence does (a message or the source's log not linking to the copy): "fail" (the
   * default) logs an error naming the source and retries its messages, which reach the queue's
   * dead-letter queue after its retries; "reset" drops the copy (`store.reset`) and rebuilds it from
   * the source's log.
   */
  readonly onDiverged?: "fail" | "reset"
  /** Told what each batch did (metrics, logs). */
  readonly onBatch?: (report: ReplicaBatchReport) => void
}

/** What one batch did, for logs and tests. */
export interface ReplicaBatchReport {
  /** Events kept, from messages and from resyncs. */
  readonly applied: number
  /** Messages for events the store already had. */
  readonly duplicates: number
  /** Reads of a source's log to fill a gap (or to get an event too large for a message). */
  readonly resyncs: number
  /** Messages handed back to the queue (a failure before their event was kept, a divergence). */
  readonly retried: number
  /** Messages that are no replica message (acked: they never could be applied). */
  readonly invalid: number
  /** Sources whose copy diverged from the messages or the source's log. */
  readonly diverged: number
  /** Copies dropped and rebuilt from their source (`onDiverged: "reset"`). */
  readonly resets: number
}

/** A queue message as the handler uses it (`Message` of @cloudflare/workers-types). */
export interface ReplicaQueueMessage {
  readonly body: unknown
  ack(): void
  retry(options?: { delaySeconds?: number }): void
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/** The message, if `body` is one this version of emberlog sends. */
export const parseReplicaMessage = (body: unknown): ReplicaMessage | undefined => {
  if (!isRecord(body) || body.v !== 1) return undefined
  const { tenant, kind, id, seq, prevHash, hash, event, tooLarge } = body
  if (typeof tenant !== "string" || typeof kind !== "string" || typeof id !== "string") return undefined
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) return undefined
  if (typeof prevHash !== "string" || typeof hash !== "string") return undefined
  const link = { v: 1, tenant, kind, id, seq, prevHash, hash } as const
  if (tooLarge === true && event === undefined) return { ...link, tooLarge }
  if (!isRecord(event) || event.seq !== seq || event.hash !== hash || typeof event.type !== "string") return undefined
  return { ...link, event: event as unknown as WireEvent }
}

const sourceKey = (source: ReplicaSource): string => JSON.stringify([source.tenant, source.kind, source.id])

const named = (source: ReplicaSource) => `${source.kind}/${source.id} (tenant ${JSON.stringify(source.tenant)})`

interface Delivery {
  readonly message: ReplicaQueueMessage
  readonly body: ReplicaMessage
}

/** The copy and what it is fed do not link: another history of the source, from `seq` on. */
class Diverged extends Error {
  constructor(
    readonly seq: number,
    reason: string,
    /** The source's log links to the copy but ends before the messages: they are from a history it no longer has. */
    readonly staleMessages = false,
  ) {
    super(reason)
  }
}

interface SourceOutcome {
  applied: number
  duplicates: number
  resyncs: number
  retried: number
  diverged: number
  resets: number
}

/** Catching one source up: its store and where its copy stands, moved as events are kept. */
class CatchUp {
  readonly outcome: SourceOutcome = { applied: 0, duplicates: 0, resyncs: 0, retried: 0, diverged: 0, resets: 0 }
  kept: ReplicaPosition | undefined

  constructor(
    private readonly store: ReplicaStore,
    private readonly options: ReplicaConsumerOptions,
    readonly source: ReplicaSource,
  ) {}

  async apply(events: ReadonlyArray<WireEvent>): Promise<void> {
    await this.store.apply(this.source, events)
    const last = events[events.length - 1]!
    this.kept = { seq: last.seq, hash: last.hash }
    this.outcome.applied += events.length
  }

  /** The messages' own events while they follow on and link, from the position read. */
  async fromMessages(deliveries: ReadonlyArray<Delivery>): Promise<void> {
    const run: Array<WireEvent> = []
    let next = this.kept!
    for (const { body } of deliveries) {
      if (body.seq < next.seq) continue
      if (body.seq === next.seq) {
        if (body.hash !== next.hash) throw new Diverged(body.seq, `seq ${body.seq} is another event than the one kept`)
        continue
      }
      if (body.seq !== next.seq + 1) break
      if (body.prevHash !== next.hash)
        throw new Diverged(body.seq, `seq ${body.seq} does not follow the event kept at ${next.seq}`)
      if (body.event === undefined) break
      run.push(body.event)
      next = { seq: body.seq, hash: body.hash }
    }
    if (run.length > 0) await this.apply(run)
  }

  /** The source's log past what is kept, up to `wanted` (or its head); the event kept last must be there. */
  async resync(wanted: number): Promise<void> {
    while (this.kept!.seq < wanted) {
      this.outcome.resyncs++
      const kept = this.kept!
      const from = Math.max(0, kept.seq - 1)
      const page = (await this.options.fetchEvents(this.source, from)).filter((event) => event.seq > from)
      if (kept.seq > 0) {
        const at = page.shift()
        if (at === undefined)
          throw new Diverged(kept.seq, `the source's log ends before seq ${kept.seq}, which is kept`)
        if (at.seq !== kept.seq || at.hash !== kept.hash)
          throw new Diverged(kept.seq, `the source's log has another event at seq ${kept.seq} than the one kept`)
      }
      if (page.length === 0) {
        if (wanted === Infinity) return
        // A message is sent only once its event was committed: one past the source's head is from an erased log.
        throw new Diverged(
          kept.seq + 1,
          `the source's log ends at seq ${kept.seq}, before seq ${wanted} of a message`,
          true,
        )
      }
      page.forEach((event, i) => {
        if (event.seq !== kept.seq + 1 + i)
          throw new Error(`the source's page after ${kept.seq} is not consecutive (seq ${event.seq} at position ${i})`)
      })
      await this.apply(page)
    }
  }
}

/**
 * Brings one source's copy up to the highest seq among `deliveries` (sorted by seq): the messages'
 * own events while they follow on, the source's log from the first gap on. Then acks every
 * message the store now covers and retries the rest.
 */
const catchUp = async (
  store: ReplicaStore,
  options: ReplicaConsumerOptions,
  source: ReplicaSource,
  deliveries: ReadonlyArray<Delivery>,
): Promise<SourceOutcome> => {
  const state = new CatchUp(store, options, source)
  const { outcome } = state
  const wanted = deliveries[deliveries.length - 1]!.body.seq
  /** Fail mode: the first seq of the other history, whose messages are not acked. */
  let divergedAt = Infinity
  /** Reset mode: the copy is the source's log up to its head, so a message past it is from another history. */
  let settled = false
  try {
    state.kept = await store.position(source)
    const startedAt = state.kept.seq
    outcome.duplicates = deliveries.filter(({ body }) => body.seq <= startedAt).length
    try {
      await state.fromMessages(deliveries)
      // A gap, or an event too large to travel in a message: the source's log from what is kept.
      await state.resync(wanted)
    } catch (error) {
      if (!(error instanceof Diverged)) throw error
      outcome.diverged++
      if (options.onDiverged !== "reset") {
        divergedAt = error.seq
        throw error
      }
      if (error.staleMessages) {
        console.warn(`emberlog replica: ${named(source)}: ${error.message}; those messages are dropped`)
      } else {
        console.warn(
          `emberlog replica: the copy of ${named(source)} diverged at seq ${error.seq} (${error.message}); ` +
            "it is dropped and rebuilt from the source",
        )
        await store.reset!(source)
        outcome.resets++
        state.kept = EMPTY_POSITION
        await state.resync(Infinity)
      }
      settled = true
    }
  } catch (error) {
    if (error instanceof Diverged)
      console.error(
        `emberlog replica: the copy of ${named(source)} diverged at seq ${error.seq}: ${error.message}. ` +
          "Its messages are retried (then dead-lettered); a deleted tenant's copies are to be deleted, " +
          'or pass onDiverged: "reset"',
      )
    else
      console.error(
        `emberlog replica: ${named(source)} stopped after seq ${state.kept?.seq ?? "(none read)"}; its later messages are retried`,
        error,
      )
  }
  const kept = state.kept?.seq ?? -1
  for (const { message, body } of deliveries) {
    if (settled || (body.seq <= kept && body.seq < divergedAt)) message.ack()
    else {
      message.retry({ delaySeconds: options.retryDelaySeconds ?? 5 })
      outcome.retried++
    }
  }
  return outcome
}

/**
 * A Queue consumer's handler: `export default { queue: replicaConsumer(store, { fetchEvents }) }`.
 * Sources are caught up side by side, each on its own: one whose store or log fails holds up no other.
 */
export const replicaConsumer = (store: ReplicaStore, options: ReplicaConsumerOptions) => {
  if (options.onDiverged === "reset" && typeof store.reset !== "function")
    throw new Error('emberlog replica: onDiverged: "reset" needs a store with reset(source)')
  return async (
    batch: { readonly messages: ReadonlyArray<ReplicaQueueMessage> },
    _env?: unknown,
    _ctx?: unknown,
  ): Promise<void> => {
    const bySource = new Map<string, Array<Delivery>>()
    let invalid = 0
    for (const message of batch.messages) {
      const body = parseReplicaMessage(message.body)
      if (body === undefined) {
        invalid++
        console.error("emberlog replica: a message that is no replica message (v:1) was dropped", message.body)
        message.ack()
        continue
      }
      const key = sourceKey(body)
      const deliveries = bySource.get(key)
      if (deliveries === undefined) bySource.set(key, [{ message, body }])
      else deliveries.push({ message, body })
    }
    const outcomes = await Promise.all(
      [...bySource.values()].map((deliveries) => {
        deliveries.sort((a, b) => a.body.seq - b.body.seq)
        const { tenant, kind, id } = deliveries[0]!.body
        return catchUp(store, options, { tenant, kind, id }, deliveries)
      }),
    )
    const total = (field: keyof SourceOutcome) => outcomes.reduce((sum, outcome) => sum + outcome[field], 0)
    options.onBatch?.({
      applied: total("applied"),
      duplicates: total("duplicates"),
      resyncs: total("resyncs"),
      retried: total("retried"),
      invalid,
      diverged: total("diverged"),
      resets: total("resets"),
    })
  }
}
