// The kind registry an app is built from: what it serves, in order, and what it refuses at startup.
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { Counter } from "../../src/kinds/counter/entity.js"
import { Document } from "../../src/kinds/document/entity.js"
import { Job } from "../../src/kinds/job/entity.js"
import type { Entity } from "../../src/domain/entity.js"
import { KIND_PATTERN } from "../../src/core/names.js"
import { defineKind, kindRegistry, RESERVED_KINDS } from "../../src/edge/kind.js"

const renamed = (entity: Entity, kind: string): Entity => ({ ...entity, kind })

describe("the kind registry", () => {
  it("serves plain entities and kind modules alike, in the order listed", () => {
    const job = defineKind({ entity: Job, topics: ["jobs", "counter"] })
    const registry = kindRegistry([Document, job, Counter])
    expect(registry.names).toEqual(["document", "job", "counter"])
    expect(registry.get("job")).toBe(job)
    expect(registry.get("document")).toEqual({ entity: Document })
    expect(registry.get("memory")).toBeUndefined()
    // One topic per kind, then the kinds' extra topics (a kind's own name not twice).
    expect(registry.topics).toEqual(["document", "job", "counter", "jobs"])
  })

  it("refuses a kind name outside KIND_PATTERN", () => {
    for (const bad of ["", "Counter", "9lives", "to do", "a_b", "x".repeat(65), "todo/", "é"]) {
      expect(KIND_PATTERN.test(bad)).toBe(false)
      expect(() => kindRegistry([renamed(Counter, bad)]), bad).toThrow(/is not a kind name/)
    }
    for (const good of ["a", "todo", "shopping-cart", "v2", "x".repeat(64)]) {
      expect(kindRegistry([renamed(Counter, good)]).names).toEqual([good])
    }
  })

  it("refuses a duplicate kind, as an entity or a module", () => {
    expect(() => kindRegistry([Counter, Counter])).toThrow(/"counter" is listed twice/)
    expect(() => kindRegistry([Counter, defineKind({ entity: Counter })])).toThrow(/listed twice/)
  })

  it("refuses a kind named after a word another kind claims (the stream kind's /v1/stream), in either order", () => {
    const streams = defineKind({ entity: renamed(Document, "durable-stream"), claims: ["stream"] })
    expect(kindRegistry([streams, Counter]).claims.get("stream")).toBe(streams)
    for (const kinds of [
      [streams, renamed(Counter, "stream")],
      [renamed(Counter, "stream"), streams],
    ])
      expect(() => kindRegistry(kinds)).toThrow(
        /"stream" collides with \/v1\/stream, claimed by the durable-stream kind/,
      )
    const again = defineKind({ entity: Job, claims: ["stream"] })
    expect(() => kindRegistry([streams, again])).toThrow(/claimed twice/)
    expect(() => kindRegistry([defineKind({ entity: Job, claims: ["topics"] })])).toThrow(/reserved/)
  })

  it("refuses the words that are routes under /v1", () => {
    expect(RESERVED_KINDS).toEqual(["topics", "projections", "admin", "actors", "tenants"])
    for (const word of RESERVED_KINDS) {
      expect(() => kindRegistry([renamed(Counter, word)])).toThrow(/is reserved/)
    }
  })

  it("refuses at startup an MCP tool name two sources give, naming both", () => {
    // A kind `read` with a command State generates read_state, one of emberlog's own tools.
    const read = renamed(Counter, "read")
    const withState = { ...read, commandTypes: [...read.commandTypes, "State"] } as Entity
    expect(() => kindRegistry([withState])).toThrow(
      "emberlog: MCP tool \"read_state\" is given twice: by the read kind's command State and by emberlog's own read tools",
    )
    // A kind's own tool clashing with a command tool generated for another kind.
    const clashing = defineKind({
      entity: Document,
      tools: (tools) =>
        tools.register("counter_increment", { description: "", input: Schema.Struct({}), scope: "read" }, async () => {
          throw new Error("not called")
        }),
    })
    expect(() => kindRegistry([Counter, clashing])).toThrow(
      "emberlog: MCP tool \"counter_increment\" is given twice: by the counter kind's command Increment and by the document kind's own tools",
    )
    // The built-in kinds' tools do not clash.
    expect(kindRegistry([Counter, Document, Job]).names).toEqual(["counter", "document", "job"])
  })
})
