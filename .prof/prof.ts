import { Layer, ManagedRuntime } from "effect"
import { Counter } from "/work/main/src/domain/counter.js"
import { ActorCore } from "/work/main/src/actors/actor-core.js"
import { MemoryEventStore } from "/work/main/src/infra/memory-event-store.js"
import { RandomIds } from "/work/main/src/infra/ids.js"
const rt = ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(), RandomIds))
const core = new ActorCore(Counter, rt)
let t = performance.now()
for (let i = 0; i < 20000; i++) core.command({ command: { type: "Increment", by: 1 } })
console.log("core.command", (performance.now() - t) / 20000 * 1000, "us")
