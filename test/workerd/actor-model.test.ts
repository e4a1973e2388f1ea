import { SELF, env } from "cloudflare:test"
import { describe, it } from "vitest"
import { Counter } from "../../src/domain/counter.js"
import { Document } from "../../src/domain/document.js"
import { checkActor } from "../../src/testing/workerd.js"
import { Memory } from "../../src/domain/memory.js"
import { Room } from "../../src/domain/room.js"
import { counterCommand, documentCommand, memoryCommand, roomCommand } from "../pure/arbitraries.js"

describe("model-based runs through the Worker with crashes, retries and stale writes", () => {
  it("counter", () =>
    checkActor({
      entity: Counter,
      fetch: (r) => SELF.fetch(r),
      namespace: env.COUNTER,
      commands: counterCommand,
      numRuns: 15,
    }))
  it("document", () =>
    checkActor({
      entity: Document,
      fetch: (r) => SELF.fetch(r),
      namespace: env.DOCUMENT,
      commands: documentCommand,
      numRuns: 15,
    }))
  it("room", () =>
    checkActor({ entity: Room, fetch: (r) => SELF.fetch(r), namespace: env.ROOM, commands: roomCommand, numRuns: 10 }))
  it("memory", () =>
    checkActor({
      entity: Memory,
      fetch: (r) => SELF.fetch(r),
      namespace: env.MEMORY,
      commands: memoryCommand,
      numRuns: 10,
    }))
})
