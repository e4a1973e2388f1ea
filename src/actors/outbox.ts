/**
 * Delivery of an actor's events to topics (DESIGN.md, "The log": outbox → topics).
 * The log is the outbox: each topic the entity routes events to has a cursor, written once in the
 * transaction of the first event routed there and moved only after the topic acknowledged what
 * it covers, so a command writes nothing for delivery. Queued rows remain for the few deliveries
 * outside the entity's routing (its first event to the tenant's directory) and for logs written
 * before cursors. The actor's alarm drains both here. At-least-once: a thrown delivery makes the
 * alarm retry with backoff, and topics deduplicate by (source kind, source id, seq), so a
 * redelivery changes nothing.
 */
import { PAGE_BYTES, takeWithinBudget } from "../domain/json-size.js"
import type { Source } from "../core/wire.js"
import type { ActorCore, PendingDelivery } from "./actor-core.js"
import type { TopicApi } from "./topic.js"
import { DIRECTORY_TOPIC } from "./directory.js"
import { NAME_PATTERN } from "../core/names.js"
import { handOver } from "./follower.js"

export const OUTBOX_BATCH = 200

/**
 * Faults to inject in tests: the next `fail` deliveries throw, the next `duplicate`
 * deliveries are sent twice. Kept on globalThis so a test in the same isolate reaches
 * the objects' copy of this module.
 */
export const deliveryFaults: { fail: number; duplicate: number } = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("emberlog.deliveryFaults")
] ??= { fail: 0, duplicate: 0 }) as { fail: number; duplicate: number }

/**
 * Delivers every pending batch; returns whether more remain. Each topic is delivered on its
 * own: one whose delivery fails holds up none of the others, and once all were tried the
 * failures are thrown (so the caller retries with backoff; the delivered ones were acknowledged).
 */
export const drainOutbox = async (
  core: ActorCore,
  source: Source,
  topicOf: (topic: string) => Pick<TopicApi, "deliver">,
  /** Whether `core` is still the object's log (false once it was erased: the drain stops, acknowledging nothing). */
  current: () => boolean = () => true,
): Promise<boolean> => {
  // The tenant's directory last: topics have subscribers waiting on their entries, the directory has none.
  const batches = [...core.pendingDeliveries(OUTBOX_BATCH)].sort(
    (a, b) => Number(a.topic === DIRECTORY_TOPIC) - Number(b.topic === DIRECTORY_TOPIC),
  )
  let more = batches.some((batch) => batch.more)
  const failures: Array<unknown> = []
  /** The topic has every event of the batch up to `seq`: its cursor or its rows move past them. */
  const delivered = (batch: PendingDelivery, seq: number) =>
    batch.through === undefined ? core.acknowledge(batch.topic, seq) : core.advanceTopic(batch.topic, seq)
  for (const batch of batches) {
    const { topic, events: pending } = batch
    if (!current()) return false
    // Nothing routed to it in the stretch read: the cursor moves past what was routed elsewhere.
    if (pending.length === 0) {
      delivered(batch, batch.through!)
      continue
    }
    if (topic !== DIRECTORY_TOPIC && !NAME_PATTERN.test(topic)) {
      // An entity's topics() named no topic (`~usage`, `#deletions/…`): such a name would reach an
      // object reserved for the host. Refused: never delivered, and dropped from the outbox (it never could be).
      console.error(
        `emberlog: ${source.kind}.topics returned ${JSON.stringify(topic)}, which is not a topic name ` +
          `(1–128 characters of A-Z a-z 0-9 . _ : -); its events are not delivered there`,
      )
      delivered(batch, batch.through ?? pending[pending.length - 1]!.seq)
      continue
    }
    // One delivery is one RPC, capped at 32 MiB: large events go a page at a time.
    const events = takeWithinBudget(pending, PAGE_BYTES)
    more ||= events.length < pending.length
    try {
      if (deliveryFaults.fail > 0) {
        deliveryFaults.fail--
        throw new Error(`injected delivery failure (topic ${topic})`)
      }
      const copies = deliveryFaults.duplicate > 0 ? (deliveryFaults.duplicate--, 2) : 1
      const handed = await handOver([events], {
        current,
        send: async (page) => {
          for (let i = 0; i < copies && current(); i++) await topicOf(topic).deliver(source, page)
        },
        advance: (page) =>
          delivered(
            batch,
            page.length < pending.length ? page[page.length - 1]!.seq : (batch.through ?? page[page.length - 1]!.seq),
          ),
      })
      if (!handed) return false
    } catch (error) {
      failures.push(error)
    }
  }
  if (failures.length === 1) throw failures[0]
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} topic deliveries failed`)
  return more
}
