/**
 * Benchmarks inside workerd, side by side in one run. Each measurement is repeated
 * ROUNDS times; bench/run.mjs takes the medians and writes bench/RESULTS.md.
 */
import { env, runInDurableObject as runInObject } from "cloudflare:test"
import { it } from "vitest"
import { ActorCore } from "../src/actors/actor-core.js"
import { actorRuntime, type ActorApi } from "../src/actors/durable-actor.js"
import { Counter } from "../src/kinds/counter/entity.js"
import { Document } from "../src/kinds/document/entity.js"
import { DEV_TENANT, actorName } from "../src/core/names.js"

const ROUNDS = 5
const COMMANDS = 2000
const WARMUP = 1000
const BATCH = 100

const report = (name: string, values: Record<string, number>) =>
  console.log(`BENCH ${JSON.stringify({ name, ...values })}`)

const time = async (run: () => Promise<unknown> | unknown) => {
  const start = performance.now()
  await run()
  return performance.now() - start
}

// The plugin's generic signature is too deep for tsc here; these calls only need the untyped shape.
const runInDurableObject = runInObject as unknown as <R>(
  stub: DurableObjectStub,
  run: (instance: any, state: DurableObjectState) => R,
) => Promise<R>

const bindings = env as unknown as Record<"EMBERLOG_ACTOR" | "UNSNAPSHOTTED" | "BARE", DurableObjectNamespace>
/** One kind's actors of a namespace hosting every kind: addressed by id, named tenant/kind/id. */
const kindOf = (namespace: DurableObjectNamespace, kind: string) =>
  ({ getByName: (id: string) => namespace.getByName(actorName(DEV_TENANT, kind, id)) }) as DurableObjectNamespace
const benchEnv = {
  COUNTER: kindOf(bindings.EMBERLOG_ACTOR, "counter"),
  DOCUMENT: kindOf(bindings.EMBERLOG_ACTOR, "document"),
  UNSNAPSHOTTED: kindOf(bindings.UNSNAPSHOTTED, "counter"),
  BARE: bindings.BARE,
}

it("commands/s: emberlog counter vs a bare DO inserting one row per call", async () => {
  // Steady state: both code paths are JIT-warmed on throwaway objects first.
  const warmActor = benchEnv.COUNTER.getByName("throughput-warmup") as unknown as ActorApi
  const warmBare = benchEnv.BARE.getByName("throughput-warmup") as unknown as {
    insert(data: unknown): Promise<{ seq: number }>
  }
  for (let i = 0; i < WARMUP; i++) {
    await warmActor.command({ command: { type: "Increment", by: 1 } })
    await warmBare.insert({ type: "Increment", by: 1 })
  }
  for (let round = 0; round < ROUNDS; round++) {
    const actor = benchEnv.COUNTER.getByName(`throughput-${round}`) as unknown as ActorApi
    const bare = benchEnv.BARE.getByName(`throughput-${round}`) as unknown as {
      insert(data: unknown): Promise<{ seq: number }>
    }
    // Warm both objects so start-up is not counted, then alternate batches so drift hits both alike.
    await actor.command({ command: { type: "Increment", by: 1 } })
    await bare.insert({ type: "Increment", by: 1 })
    let bareMs = 0
    let emberMs = 0
    for (let batch = 0; batch < COMMANDS / BATCH; batch++) {
      bareMs += await time(async () => {
        for (let i = 0; i < BATCH; i++) await bare.insert({ type: "Increment", by: 1 })
      })
      emberMs += await time(async () => {
        for (let i = 0; i < BATCH; i++) await actor.command({ command: { type: "Increment", by: 1 } })
      })
    }
    report("throughput", {
      round,
      bareOpsPerSec: (COMMANDS / bareMs) * 1000,
      emberlogOpsPerSec: (COMMANDS / emberMs) * 1000,
      ratio: emberMs / bareMs,
    })
  }
})

/** Appends `count` events through the real command path, inside the object (no RPC per event). */
const seed = (namespace: DurableObjectNamespace, name: string, count: number): Promise<void> =>
  runInDurableObject(namespace.getByName(name), (instance) => {
    const core: ActorCore = instance.core
    for (let i = 0; i < count; i++) {
      const reply = core.command({ command: { type: "Increment", by: 1 } })
      if (!reply.ok) throw new Error(JSON.stringify(reply.error))
    }
  })

/** Recovery exactly as the constructor runs it: a fresh runtime and core over the stored log. */
const recoveryMs = (namespace: DurableObjectNamespace, name: string, entity: typeof Counter) =>
  runInDurableObject(namespace.getByName(name), (_instance, state) => {
    const start = performance.now()
    const core = new ActorCore(entity, actorRuntime(state.storage))
    const ms = performance.now() - start
    return { ms, version: core.currentVersion }
  })

it("recovery and replay: 10k and 100k events, with and without snapshots", async () => {
  const unsnapshotted = { ...Counter, snapshotEvery: Number.MAX_SAFE_INTEGER }
  for (const events of [10_000, 100_000]) {
    // The worst case for snapshots: the longest tail (snapshotEvery - 1 events) after the last one.
    const total = events + Counter.snapshotEvery - 1
    await seed(benchEnv.COUNTER, `recovery-${events}`, total)
    await seed(benchEnv.UNSNAPSHOTTED, `recovery-${events}`, events)
    for (let round = 0; round < ROUNDS; round++) {
      const withSnapshots = await recoveryMs(benchEnv.COUNTER, `recovery-${events}`, Counter)
      const without = await recoveryMs(benchEnv.UNSNAPSHOTTED, `recovery-${events}`, unsnapshotted)
      if (without.version !== events || withSnapshots.version !== total)
        throw new Error("seeded the wrong number of events")
      const floorMs = await runInDurableObject(
        benchEnv.UNSNAPSHOTTED.getByName(`recovery-${events}`),
        (_instance, state) => {
          const start = performance.now()
          let sum = 0
          for (const row of state.storage.sql.exec("SELECT type, schema_version, data FROM events ORDER BY seq").raw())
            sum += JSON.parse(row[2] as string).by
          if (sum !== events) throw new Error(`read ${sum} of ${events} events`)
          return performance.now() - start
        },
      )
      report("recovery", {
        round,
        events,
        withSnapshotsMs: withSnapshots.ms,
        tailEvents: Counter.snapshotEvery - 1,
        withoutSnapshotsMs: without.ms,
        replayEventsPerSec: (events / without.ms) * 1000,
        // The same rows read and parsed with nothing else: what replay costs at the least here.
        readFloorEventsPerSec: (events / floorMs) * 1000,
      })
    }
  }
})

it("snapshot interval: document edit replay rate and the cost of writing a 100 KB snapshot", async () => {
  const edits = 2_000
  await runInDurableObject(benchEnv.DOCUMENT.getByName("interval"), (instance) => {
    const core: ActorCore = instance.core
    const create = core.command({ command: { type: "Create", title: "bench", content: "lorem ipsum ".repeat(8_534) } })
    if (!create.ok) throw new Error(JSON.stringify(create.error))
    for (let i = 0; i < edits; i++) {
      const reply = core.command({
        command: {
          type: "Edit",
          baseVersion: core.currentVersion,
          ops: [{ op: "insert", at: (i * 37) % 100_000, text: "edit " }],
        },
      })
      if (!reply.ok) throw new Error(JSON.stringify(reply.error))
    }
  })
  for (let round = 0; round < ROUNDS; round++) {
    const result = await runInDurableObject(benchEnv.DOCUMENT.getByName("interval"), (_instance, state) => {
      // A state version no snapshot was written with: recovery replays every event from the start.
      const replayStart = performance.now()
      const unsnapshotted = new ActorCore({ ...Document, stateVersion: 999 }, actorRuntime(state.storage))
      const replayMs = performance.now() - replayStart
      const read = unsnapshotted.readState()
      if (!read.ok || read.value.version !== edits + 1) throw new Error("replayed the wrong number of events")
      const snapshotStart = performance.now()
      const json = JSON.stringify(Document.encodeState(Document.decodeState(read.value.state)))
      state.storage.sql.exec(
        "INSERT OR REPLACE INTO snapshots (seq, state_version, state) VALUES (?, ?, ?)",
        1e12,
        999,
        json,
      )
      const snapshotMs = performance.now() - snapshotStart
      state.storage.sql.exec("DELETE FROM snapshots WHERE seq = ?", 1e12)
      return { replayMs, snapshotMs, snapshotKb: json.length / 1024 }
    })
    report("interval", {
      round,
      documentEventsPerSec: ((edits + 1) / result.replayMs) * 1000,
      snapshotWriteMs: result.snapshotMs,
      snapshotKb: result.snapshotKb,
    })
  }
})
