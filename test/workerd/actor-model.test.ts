import { SELF, env } from "cloudflare:test"
import { describe, it } from "vitest"
import { Counter } from "../../src/kinds/counter/entity.js"
import { Document } from "../../src/kinds/document/entity.js"
import { checkActor } from "../../src/testing/workerd.js"
import { Memory } from "../../src/kinds/memory/entity.js"
import { Room } from "../../src/kinds/room/entity.js"
import { counterCommand, documentCommand, memoryCommand, roomCommand } from "../pure/arbitraries.js"

describe("model-based runs through the Worker with crashes, retries and stale writes", () => {
  it("counter", () =>
    checkActor({
      entity: Counter,
      fetch: (r) => SELF.fetch(r),
      namespace: env.EMBERLOG_ACTOR,
      commands: counterCommand,
      numRuns: 15,
    }))
  it("document", () =>
    checkActor({
      entity: Document,
      fetch: (r) => SELF.fetch(r),
      namespace: env.EMBERLOG_ACTOR,
      commands: documentCommand,
      numRuns: 15,
    }))
  it("room", () =>
    checkActor({
      entity: Room,
      fetch: (r) => SELF.fetch(r),
      namespace: env.EMBERLOG_ACTOR,
      commands: roomCommand,
      numRuns: 10,
    }))
  it("memory", () =>
    checkActor({
      entity: Memory,
      fetch: (r) => SELF.fetch(r),
      namespace: env.EMBERLOG_ACTOR,
      commands: memoryCommand,
      numRuns: 10,
    }))
})
