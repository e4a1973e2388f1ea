import { describe, it } from "vitest"
import { Counter } from "../../src/kinds/counter/entity.js"
import { Document } from "../../src/kinds/document/entity.js"
import { Room } from "../../src/kinds/room/entity.js"
import { Session } from "../../src/kinds/session/entity.js"
import { Memory } from "../../src/kinds/memory/entity.js"
import { checkEntity } from "../../src/testing/index.js"
import {
  counterCommand,
  documentCommand,
  legacyIncremented,
  memoryCommand,
  roomCommand,
  sessionCommand,
} from "./arbitraries.js"

describe("the resilience harness on our own entities", () => {
  it("counter", () => checkEntity(Counter, { commands: counterCommand, legacyEvents: legacyIncremented, numRuns: 200 }))
  it("document", () => checkEntity(Document, { commands: documentCommand, numRuns: 200 }))
  it("room", () => checkEntity(Room, { commands: roomCommand, numRuns: 200 }))
  it("session", () => checkEntity(Session, { commands: sessionCommand, numRuns: 200 }))
  it("memory", () => checkEntity(Memory, { commands: memoryCommand, numRuns: 200 }))
})
