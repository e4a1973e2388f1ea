/**
 * Delivery of an actor's events to topics (DESIGN.md, "The log": outbox → topics).
 * The command transaction writes outbox rows; the actor's alarm drains them here.
 * At-least-once: rows are deleted only after the topic acknowledged them, and a thrown
 * delivery makes the platform retry the alarm with backoff. Topics deduplicate by
 * (source kind, source id, seq), so a redelivery changes nothing.
 */
import { PAGE_BYTES, takeWithinBudget } from "../domain/json-size.js"
import type { Source } from "../core/wire.js"
import type { ActorCore } from "./actor-core.js"
import type { TopicApi } from "./topic.js"
import { DIRECTORY_TOPIC } from "./directory.js"
import { NAME_PATTERN } from "../core/names.js"

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
  let more = batches.some(({ events }) => events.length === OUTBOX_BATCH)
  const failures: Array<unknown> = []
  for (const { topic, events: pending } of batches) {
    if (!current()) return false
    if (pending.length === 0) continue
    if (topic !== DIRECTORY_TOPIC && !NAME_PATTERN.test(topic)) {
      // An entity's topics() named no topic (`~usage`, `#deletions/…`): such a name would reach an
      // object reserved for the host. Refused: never delivered, and dropped from the outbox (it never could be).
      console.error(
        `emberlog: ${source.kind}.topics returned ${JSON.stringify(topic)}, which is not a topic name ` +
          `(1–128 characters of A-Z a-z 0-9 . _ : -); its events are not delivered there`,
      )
      core.acknowledge(topic, pending[pending.length - 1]!.seq)
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
      for (let i = 0; i < copies && current(); i++) await topicOf(topic).deliver(source, events)
      if (!current()) return false
      core.acknowledge(topic, events[events.length - 1]!.seq)
    } catch (error) {
      failures.push(error)
    }
  }
  if (failures.length === 1) throw failures[0]
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} topic deliveries failed`)
  return more
}
