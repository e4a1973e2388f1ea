import { SELF, env } from "cloudflare:test"
import { describe, it } from "vitest"
import { Counter } from "../../src/domain/counter.js"
import { Document } from "../../src/domain/document.js"
import { checkActor } from "../../src/testing/workerd.js"
import { counterCommand, documentCommand } from "../pure/arbitraries.js"

describe("model-based runs through the Worker with crashes, retries and stale writes", () => {
  it("counter", () => checkActor({ entity: Counter, fetch: (r) => SELF.fetch(r), namespace: env.COUNTER, commands: counterCommand, numRuns: 15 }))
  it("document", () => checkActor({ entity: Document, fetch: (r) => SELF.fetch(r), namespace: env.DOCUMENT, commands: documentCommand, numRuns: 15 }))
})
