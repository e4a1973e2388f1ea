/**
 * The consumer side of a replica (issue 15 §3): a Queue handler that keeps a downstream copy of
 * actors' logs in a store of the user's. Queues deliver at least once and in no guaranteed order,
 * and a message may be lost to a dead-letter queue or a store restored from an older backup, so
 * the handler trusts only the store's last seq per source: a message at or below it is a
 * duplicate (acked, applied again never), the next one is applied, and one beyond it means a gap,
 * which is filled by reading the source's log after the last seq kept (`fetchEvents`). Events of
 * one source are applied in seq order with no gap, each `apply` all or nothing. A failure (the
 * store, the source) retries only the messages not applied, with a delay.
 */
import type { ReplicaMessage, ReplicaSource } from "../core/replica.js"
import type { WireEvent } from "../core/wire.js"

/** The downstream copy: per source, the events kept so far. */
export interface ReplicaStore {
  /** The seq of the last event kept of `source` (0: none). */
  readonly lastSeq: (source: ReplicaSource) => number | Promise<number>
  /**
   * Keeps `events` of `source` atomically (all or none): consecutive, in seq order, the first right
   * after `lastSeq(source)` as it was read. A store that consumer invocations may write at the same
   * time (a queue's max_concurrency above 1) skips, in the same transaction, events at or below
   * the last seq it holds.
   */
  readonly apply: (source: ReplicaSource, events: ReadonlyArray<WireEvent>) => void | Promise<void>
}

/**
 * The source's own log after `after`: a page of events in seq order starting at `after + 1`
 * (empty at the head). E.g. the client's `actor(kind, id).eventsPage({ after })`, or `actorEventSource`.
 */
export type FetchEvents = (source: ReplicaSource, after: number) => Promise<ReadonlyArray<WireEvent>>

export interface ReplicaConsumerOptions {
  readonly fetchEvents: FetchEvents
  /** How long a retried message waits before it is delivered again (default 5 s). */
  readonly retryDelaySeconds?: number
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
  /** Messages handed back to the queue (a failure before their event was kept). */
  readonly retried: number
  /** Messages that are no replica message (acked: they never could be applied). */
  readonly invalid: number
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
  const { tenant, kind, id, seq, event, tooLarge } = body
  if (typeof tenant !== "string" || typeof kind !== "string" || typeof id !== "string") return undefined
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) return undefined
  if (tooLarge === true && event === undefined) return { v: 1, tenant, kind, id, seq, tooLarge }
  if (!isRecord(event) || event.seq !== seq || typeof event.type !== "string") return undefined
  return { v: 1, tenant, kind, id, seq, event: event as unknown as WireEvent }
}

const sourceKey = (source: ReplicaSource): string => JSON.stringify([source.tenant, source.kind, source.id])

interface Delivery {
  readonly message: ReplicaQueueMessage
  readonly body: ReplicaMessage
}

interface SourceOutcome {
  applied: number
  duplicates: number
  resyncs: number
  retried: number
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
  const outcome: SourceOutcome = { applied: 0, duplicates: 0, resyncs: 0, retried: 0 }
  const wanted = deliveries[deliveries.length - 1]!.body.seq
  let kept = -1
  try {
    kept = await store.lastSeq(source)
    const startedAt = kept
    const run: Array<WireEvent> = []
    let next = kept
    for (const { body } of deliveries) {
      if (body.seq <= next) continue
      if (body.seq !== next + 1 || body.event === undefined) break
      run.push(body.event)
      next = body.seq
    }
    if (run.length > 0) {
      await store.apply(source, run)
      kept = next
      outcome.applied += run.length
    }
    // A gap, or an event too large to travel in a message: the source's log from what is kept.
    while (kept < wanted) {
      outcome.resyncs++
      const page = (await options.fetchEvents(source, kept)).filter((event) => event.seq > kept)
      if (page.length === 0) break
      page.forEach((event, i) => {
        if (event.seq !== kept + 1 + i)
          throw new Error(`the source's page after ${kept} is not consecutive (seq ${event.seq} at position ${i})`)
      })
      await store.apply(source, page)
      kept += page.length
      outcome.applied += page.length
    }
    outcome.duplicates = deliveries.filter(({ body }) => body.seq <= startedAt).length
  } catch (error) {
    console.error(
      `emberlog replica: ${source.kind}/${source.id} (tenant ${JSON.stringify(source.tenant)}) stopped after seq ${kept}; ` +
        "its later messages are retried",
      error,
    )
  }
  for (const { message, body } of deliveries) {
    if (body.seq <= kept) message.ack()
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
export const replicaConsumer =
  (store: ReplicaStore, options: ReplicaConsumerOptions) =>
  async (
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
    })
  }
