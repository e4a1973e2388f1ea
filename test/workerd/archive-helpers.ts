import { env, runInDurableObject } from "cloudflare:test"
import { Archiver } from "../../src/actors/archiver.js"
import type { ActorObject } from "../../src/actors/durable-actor.js"
import type { Retention } from "../../src/actors/retention.js"
import { actorObject } from "./helpers.js"

/**
 * Runs `body` in counter `id`'s object with an archiver of `retention` instead of the kind's (again
 * after a restart: `swapped` remembers the archivers already given), sharing the object's segment
 * index: tests cut segments of a few events where the kind cuts ten thousand.
 */
export const withRetention = <A>(
  id: string,
  retention: Retention,
  swapped: WeakSet<Archiver>,
  body: (instance: ActorObject, state: DurableObjectState) => Promise<A> | A,
): Promise<A> =>
  runInDurableObject(actorObject("counter", id), (instance: ActorObject, state) => {
    // An object refusing requests (503 history_unavailable) has no core to build an archiver for.
    if (instance.core !== undefined && !swapped.has(instance.archiver)) {
      const archiver: Archiver = new Archiver(state.storage, env.EMBERLOG_ARCHIVE, retention, instance.archiver.index, {
        name: state.id.name!,
        entity: instance.core.entity,
        head: () => instance.core.currentVersion,
        encodedStateAt: (seq) =>
          archiver.readThrough(() => {
            const reply = instance.core.readState({ at: seq })
            if (!reply.ok) throw new Error(reply.error.message)
            return reply.value.state
          }),
      })
      swapped.add(archiver)
      ;(instance as { archiver: Archiver }).archiver = archiver
    }
    return body(instance, state)
  })
