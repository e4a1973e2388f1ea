import { Effect, Exit } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Document, type DocumentCommand, type DocumentState, EDIT_WINDOW } from "../../src/domain/document.js"
import type { DomainError } from "../../src/domain/entity.js"
import { applyOps, codePointLength, firstOutOfRange, textType, toTextOp, transformAgainst, type TextEditOp } from "../../src/domain/text-ops.js"
import { propertyParameters } from "../../src/testing/index.js"
import { text, textOp } from "./arbitraries.js"

/** Given commands, the state they lead to; a refused command throws with its code. */
const given = (...commands: ReadonlyArray<DocumentCommand>): DocumentState =>
  commands.reduce((state, command) => Document.replay(state, Effect.runSync(Document.decide(state, command))), Document.initial)

const refusal = (state: DocumentState, command: DocumentCommand): string | undefined => {
  const exit = Effect.runSyncExit(Document.decide(state, command))
  if (Exit.isSuccess(exit)) return undefined
  const reason = exit.cause.reasons[0]
  return reason && "error" in reason ? (reason.error as DomainError).code : "defect"
}

const edit = (baseVersion: number, ...ops: Array<TextEditOp>): DocumentCommand => ({ type: "Edit", baseVersion, ops })
const ins = (at: number, text: string): TextEditOp => ({ op: "insert", at, text })
const del = (at: number, length: number): TextEditOp => ({ op: "delete", at, length })

describe("document", () => {
  it("creates, renames and edits", () => {
    const state = given({ type: "Create", title: "t", content: "hello" }, { type: "Rename", title: "u" }, edit(2, ins(5, " world"), del(0, 1), ins(0, "H")))
    expect(state).toMatchObject({ title: "u", content: "Hello world", version: 3 })
  })

  it("refuses create twice, edits and renames before create, and ops out of range", () => {
    const created = given({ type: "Create", title: "t", content: "abc" })
    expect(refusal(created, { type: "Create", title: "t", content: "" })).toBe("already_created")
    expect(refusal(Document.initial, edit(0, ins(0, "x")))).toBe("not_created")
    expect(refusal(Document.initial, { type: "Rename", title: "x" })).toBe("not_created")
    expect(refusal(created, edit(1, ins(4, "x")))).toBe("op_out_of_range")
    expect(refusal(created, edit(1, del(2, 2)))).toBe("op_out_of_range")
    expect(refusal(created, edit(1, del(0, 3), ins(1, "x")))).toBe("op_out_of_range")
    expect(refusal(created, edit(2, ins(0, "x")))).toBe("invalid_base_version")
    expect(refusal(created, edit(0, ins(0, "x")))).toBe("invalid_base_version")
  })

  it("counts positions in code points", () => {
    const state = given({ type: "Create", title: "t", content: "😀b" }, edit(1, ins(1, "a")))
    expect(state.content).toBe("😀ab")
    expect(codePointLength("😀ab")).toBe(3)
  })

  it("lands two edits made concurrently on the same version, and both replicas converge", () => {
    const base = given({ type: "Create", title: "t", content: "hello" })
    const a = [ins(0, ">> ")]
    const b = [del(1, 4), ins(1, "ey")]
    const server = given({ type: "Create", title: "t", content: "hello" }, edit(1, ...a), edit(1, ...b))
    expect(server.content).toBe(">> hey")
    // Client B applied its own edit first, then receives A rebased over it.
    const clientB = applyOps(applyOps(base.content, b), transformAgainst(a, b, "left"))
    expect(clientB).toBe(server.content)
  })

  it("refuses an edit based on a version older than the edit window", () => {
    const edits = Array.from({ length: EDIT_WINDOW + 1 }, (_, i) => edit(i + 1, ins(0, "x")))
    const state = given({ type: "Create", title: "t", content: "" }, ...edits)
    expect(refusal(state, edit(1, ins(0, "y")))).toBe("base_version_too_old")
    expect(refusal(state, edit(2, ins(0, "y")))).toBeUndefined()
  })

  it("applies ops exactly as the text-unicode type does", () => {
    const cases = text.chain((doc) =>
      fc.tuple(fc.constant(doc), fc.array(textOp, { minLength: 1, maxLength: 4 }).filter((ops) => firstOutOfRange(ops as Array<TextEditOp>, codePointLength(doc)) < 0)),
    )
    fc.assert(
      fc.property(cases, ([doc, ops]) => {
        expect(applyOps(doc, ops as Array<TextEditOp>)).toBe(textType.apply(doc, toTextOp(ops as Array<TextEditOp>)))
      }),
      propertyParameters({ numRuns: 1000 }),
    )
  })

  it("converges: applying a then b' equals applying b then a' (random ops)", () => {
    const validOps = (doc: string) =>
      fc.array(textOp, { minLength: 1, maxLength: 3 }).filter((ops) => firstOutOfRange(ops as Array<TextEditOp>, codePointLength(doc)) < 0)
    const cases = text.chain((doc) => fc.tuple(fc.constant(doc), validOps(doc), validOps(doc)))
    fc.assert(
      fc.property(cases, ([doc, a, b]) => {
        const aThenB = applyOps(applyOps(doc, a), transformAgainst(b, a, "right"))
        const bThenA = applyOps(applyOps(doc, b), transformAgainst(a, b, "left"))
        expect(aThenB).toBe(bThenA)
      }),
      propertyParameters({ numRuns: 1000 }),
    )
  })

  it("converges through the entity for concurrent edits on one base version", () => {
    const cases = fc.tuple(text, fc.array(fc.array(textOp, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 4 }))
    fc.assert(
      fc.property(cases, ([doc, edits]) => {
        let state = given({ type: "Create", title: "t", content: doc })
        const landed: Array<ReadonlyArray<TextEditOp>> = []
        for (const ops of edits) {
          const exit = Effect.runSyncExit(Document.decide(state, edit(1, ...(ops as Array<TextEditOp>))))
          if (Exit.isFailure(exit)) continue
          landed.push(exit.value[0]!.type === "Edited" ? exit.value[0]!.ops : [])
          state = Document.replay(state, exit.value)
        }
        // The log's ops, applied in order to the original text, give the state's content.
        expect(landed.reduce((content, ops) => applyOps(content, ops), doc)).toBe(state.content)
      }),
      propertyParameters({ numRuns: 500 }),
    )
  })
})
