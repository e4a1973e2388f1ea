// The local consumer of the app's replica queue (emberlog-replica) in the workerd tests: the
// library's own `replicaConsumer` over a store in this isolate's memory, resynchronizing from the
// app's actors over RPC (`actorEventSource`). vitest.config.ts bundles it with esbuild (an auxiliary
// Worker is not transformed by Vite). The tests steer it through `ReplicaControl`: take the consumer
// down (it hands every batch back to the queue), lose messages (acked unread, as a dead-letter
// queue would take them), and read what it kept.
import { WorkerEntrypoint } from "cloudflare:workers"
import type { WireEvent } from "../../../src/core/wire.js"
import {
  actorEventSource,
  EMPTY_POSITION,
  parseReplicaMessage,
  replicaConsumer,
  type ReplicaSource,
  type ReplicaStore,
} from "../../../src/replica/index.js"

interface ConsumerEnv {
  readonly EMBERLOG_ACTOR: DurableObjectNamespace
}

/** The ids test/workerd/replica.test.ts gives its actors (`freshId("replica…")`). */
const REPLICA_TEST_IDS = "replica"

const keyOf = (source: ReplicaSource) => JSON.stringify([source.tenant, source.kind, source.id])

const kept = new Map<string, Array<WireEvent>>()
/** Runs given to `apply` that did not start right after the last seq kept: a consumer bug, never expected. */
const violations: Array<string> = []
const stats = {
  batches: 0,
  failedBatches: 0,
  applied: 0,
  duplicates: 0,
  resyncs: 0,
  retried: 0,
  lost: 0,
  diverged: 0,
}
let down = false
/**
 * What a divergence does (replicaConsumer's onDiverged). "reset" unless a test asks for "fail": other
 * files erase actors, whose restarted logs would otherwise be retried a hundred times at once.
 */
let onDiverged: "fail" | "reset" = "reset"
/** Messages of a source to lose next (acked without being read), by source key. */
const losing = new Map<string, number>()

const store: ReplicaStore = {
  position: (source) => {
    const last = kept.get(keyOf(source))?.at(-1)
    return last === undefined ? EMPTY_POSITION : { seq: last.seq, hash: last.hash }
  },
  reset: (source) => void kept.delete(keyOf(source)),
  apply: (source, events) => {
    let log = kept.get(keyOf(source))
    if (log === undefined) kept.set(keyOf(source), (log = []))
    for (const event of events) {
      if (event.seq !== log.length + 1) violations.push(`${keyOf(source)}: seq ${event.seq} after ${log.length}`)
      log.push(event)
    }
  },
}

export default {
  async queue(batch: MessageBatch<unknown>, env: ConsumerEnv): Promise<void> {
    stats.batches++
    if (down) {
      // Handed back with a delay, as a consumer whose store is unreachable would: the messages wait in the queue.
      stats.failedBatches++
      batch.retryAll({ delaySeconds: 1 })
      return
    }
    const messages = batch.messages.filter((message) => {
      const body = parseReplicaMessage(message.body)
      // Every workerd file's actors replicate; only test/workerd/replica.test.ts's (ids "replica…")
      // are kept: the others (an archive test's 250,000 events) would fill this isolate's memory.
      if (body !== undefined && !body.id.startsWith(REPLICA_TEST_IDS)) {
        message.ack()
        return false
      }
      const key = body === undefined ? undefined : keyOf(body)
      const toLose = key === undefined ? 0 : (losing.get(key) ?? 0)
      if (toLose === 0) return true
      losing.set(key!, toLose - 1)
      stats.lost++
      message.ack()
      return false
    })
    const consume = replicaConsumer(store, {
      fetchEvents: actorEventSource(env.EMBERLOG_ACTOR),
      retryDelaySeconds: 0,
      onDiverged,
      onBatch: (report) => {
        stats.applied += report.applied
        stats.duplicates += report.duplicates
        stats.resyncs += report.resyncs
        stats.retried += report.retried
        stats.diverged += report.diverged
      },
    })
    await consume({ messages })
  },
}

export class ReplicaControl extends WorkerEntrypoint {
  kept(tenant: string, kind: string, id: string): Array<WireEvent> {
    return kept.get(keyOf({ tenant, kind, id })) ?? []
  }
  stats() {
    return { ...stats, violations: [...violations] }
  }
  setOnDiverged(value: "fail" | "reset"): void {
    onDiverged = value
  }
  setDown(value: boolean): void {
    down = value
  }
  loseNext(tenant: string, kind: string, id: string, count: number): void {
    losing.set(keyOf({ tenant, kind, id }), count)
  }
}
