// ActorCore.readEventsPageJson (GET …/events' body) splices each event's JSON from its stored canonical text: for any
// payload, page by page, it must be exactly what JSON.stringify of readEvents' page gives.
import { Layer, ManagedRuntime } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ActorCore } from "../../src/actors/actor-core.js"
import { Room } from "../../src/kinds/room/entity.js"
import { sequentialIds } from "../../src/infra/ids.js"
import { MemoryEventStore, makeMemoryEventStore } from "../../src/infra/memory-event-store.js"
import { propertyParameters } from "../../src/testing/index.js"

const roomWith = (payloads: ReadonlyArray<unknown>) => {
  const runtime = ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(makeMemoryEventStore()), sequentialIds("cmd-")))
  const room = new ActorCore(Room, runtime)
  for (const payload of payloads)
    expect(room.command({ command: { type: "Post", messageType: "m", payload, sender: "s" } }).ok).toBe(true)
  return room
}

/** The body GET …/events answers (the object hands the route this text as it is). */
const splicedPage = (room: ActorCore<any>, after: number, limit: number, stored: boolean) => {
  const reply = room.readEventsPageJson(after, limit, stored)
  if (!reply.ok) throw new Error(reply.error.message)
  return reply.value
}

describe("spliced event JSON", () => {
  it("is JSON.stringify of the parsed page for any payload (integer keys, escapes, astral text), stored or not", () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        (payloads, limit, stored) => {
          const room = roomWith(payloads)
          for (let after = 0; after < payloads.length; after += limit) {
            const parsed = room.readEvents(after, limit, stored)
            if (!parsed.ok) throw new Error(parsed.error.message)
            expect(splicedPage(room, after, limit, stored)).toBe(JSON.stringify(parsed.value))
          }
        },
      ),
      propertyParameters({ numRuns: 200 }),
    )
  }, 60_000)
})
