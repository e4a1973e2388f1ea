import { Cause, Effect, Exit } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  Document,
  type DocumentCommand,
  type DocumentEvent,
  type DocumentState,
  EDIT_WINDOW,
  MAX_STATE_BYTES,
} from "../../src/kinds/document/entity.js"
import { jsonBytes } from "../../src/domain/json-size.js"
import type { DomainError } from "../../src/domain/entity.js"
import {
  applyOps,
  codePointLength,
  firstOutOfRange,
  textType,
  toTextOp,
  transformAgainst,
  type TextEditOp,
} from "../../src/kinds/document/text-ops.js"
import { propertyParameters } from "../../src/testing/index.js"
import { text, textOp } from "./arbitraries.js"

/** Given commands, the state they lead to; a refused command throws with its code. */
const givenFrom = (start: DocumentState, ...commands: ReadonlyArray<DocumentCommand>): DocumentState =>
  commands.reduce((state, command) => Document.replay(state, Effect.runSync(Document.decide(state, command))), start)
const given = Object.assign((...commands: ReadonlyArray<DocumentCommand>) => givenFrom(Document.initial, ...commands), {
  from: givenFrom,
})

const refusal = (state: DocumentState, command: DocumentCommand): string | undefined => {
  const exit = Effect.runSyncExit(Document.decide(state, command))
  if (Exit.isSuccess(exit)) return undefined
  const reason = exit.cause.reasons[0]
  return reason && "error" in reason ? (reason.error as DomainError).code : "defect"
}

/** What the actor does with a raw command: decode, then decide; a defect (a 500) throws. */
type Decision =
  { readonly refused: string } | { readonly state: DocumentState; readonly events: ReadonlyArray<DocumentEvent> }
const decision = (state: DocumentState, command: DocumentCommand): Decision => {
  const decoded = Document.decodeCommand(command)
  if (!decoded.ok) return { refused: "invalid_command" }
  const exit = Effect.runSyncExit(Document.decide(state, decoded.command))
  if (Exit.isSuccess(exit)) return { state: Document.replay(state, exit.value), events: exit.value }
  const reason = exit.cause.reasons[0]
  // A defect (a thrown error) is what a 500 is made of: the tests fail on it.
  if (!reason || !("error" in reason)) throw Cause.squash(exit.cause)
  return { refused: (reason.error as DomainError).code }
}

const edit = (baseVersion: number, ...ops: Array<TextEditOp>): DocumentCommand => ({ type: "Edit", baseVersion, ops })
const ins = (at: number, text: string): TextEditOp => ({ op: "insert", at, text })
const del = (at: number, length: number): TextEditOp => ({ op: "delete", at, length })

describe("document", () => {
  it("creates, renames and edits", () => {
    const state = given(
      { type: "Create", title: "t", content: "hello" },
      { type: "Rename", title: "u" },
      edit(2, ins(5, " world"), del(0, 1), ins(0, "H")),
    )
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
      fc.tuple(
        fc.constant(doc),
        fc
          .array(textOp, { minLength: 1, maxLength: 4 })
          .filter((ops) => firstOutOfRange(ops as Array<TextEditOp>, codePointLength(doc)) < 0),
      ),
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
      fc
        .array(textOp, { minLength: 1, maxLength: 3 })
        .filter((ops) => firstOutOfRange(ops as Array<TextEditOp>, codePointLength(doc)) < 0)
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
    const cases = fc.tuple(
      text,
      fc.array(fc.array(textOp, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 4 }),
    )
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

  describe("bounded state", () => {
    const stateBytes = (state: DocumentState) => jsonBytes(Document.encodeState(state))
    it("keeps the state within the row limit when each edit inserts and deletes 200 KB", () => {
      const big = "x".repeat(200_000)
      let state = given({ type: "Create", title: "t", content: "hello" })
      for (let i = 0; i < EDIT_WINDOW + 20; i++) {
        state = given.from(state, edit(state.version, ins(0, big), del(0, big.length)))
        expect(stateBytes(state)).toBeLessThanOrEqual(MAX_STATE_BYTES)
      }
      expect(state.content).toBe("hello")
      // The window dropped the big edits: a base that old is refused, the head still merges.
      expect(refusal(state, edit(state.version - 20, ins(0, "y")))).toBe("base_version_too_old")
      expect(refusal(state, edit(state.version, ins(0, "y")))).toBeUndefined()
    }, 60_000)

    it("still transforms concurrent edits within the window after large edits", () => {
      const big = "z".repeat(100_000)
      let state = given({ type: "Create", title: "t", content: "hello" }, edit(1, ins(5, big), del(5, big.length)))
      const base = state.version
      state = given.from(state, edit(base, ins(0, ">> ")), edit(base, ins(5, "!")), edit(base, del(0, 1)))
      expect(state.content).toBe(">> ello!")
    })

    it("refuses a document whose content cannot fit a row, even under the character cap", () => {
      // 400k NULs are 2.4 MB of JSON: fewer characters than the cap, more bytes than a row holds.
      const nuls = "\u0000".repeat(400_000)
      expect(refusal(Document.initial, { type: "Create", title: "t", content: nuls })).toBe("document_too_large")
      let state = given({ type: "Create", title: "t", content: "" })
      let refused: string | undefined
      for (let i = 0; i < 12 && refused === undefined; i++) {
        refused = refusal(state, edit(state.version, ins(0, "\u0001".repeat(200_000))))
        if (refused === undefined) state = given.from(state, edit(state.version, ins(0, "\u0001".repeat(200_000))))
        expect(stateBytes(state)).toBeLessThanOrEqual(MAX_STATE_BYTES)
      }
      expect(refused).toBe("document_too_large")
    }, 60_000)

    // Texts from a few characters to a few hundred thousand, in the characters whose JSON is
    // largest (escaped controls, quotes, astral pairs, CJK) as well as plain ASCII.
    const unit = fc.constantFrom("a", "\u0000", '"', "😀", "語", "é", "\n")
    const chunk = fc.oneof(
      { weight: 3, arbitrary: fc.string({ unit, minLength: 1, maxLength: 8 }) },
      { weight: 1, arbitrary: fc.tuple(unit, fc.integer({ min: 1_000, max: 240_000 })).map(([c, n]) => c.repeat(n)) },
    )
    const where = { back: fc.nat({ max: 3 }), at: fc.nat({ max: 1 << 20 }) }
    const step = fc.oneof(
      { weight: 4, arbitrary: fc.record({ ...where, text: chunk, deleteToo: fc.boolean() }) },
      { weight: 1, arbitrary: fc.record({ ...where, length: fc.integer({ min: 1, max: 300_000 }) }) },
    )

    it("never lets the encoded state exceed the row limit (random large edits)", () => {
      fc.assert(
        fc.property(chunk, fc.array(step, { minLength: 1, maxLength: 12 }), (content, steps) => {
          const created = decision(Document.initial, { type: "Create", title: "t", content })
          let state = "state" in created ? created.state : given({ type: "Create", title: "t", content: "" })
          for (const s of steps) {
            const length = [...state.content].length
            const at = length === 0 ? 0 : s.at % (length + 1)
            const from = Math.min(at, Math.max(0, length - 1))
            const ops: Array<TextEditOp> =
              "text" in s
                ? [ins(at, s.text), ...(s.deleteToo ? [del(at, [...s.text].length)] : [])]
                : length === 0
                  ? [ins(0, "q")]
                  : [del(from, Math.max(1, Math.min(s.length, length - from)))]
            const outcome = decision(state, edit(Math.max(state.createdAt, state.version - s.back), ...ops))
            if ("state" in outcome) state = outcome.state
            expect(stateBytes(state)).toBeLessThanOrEqual(MAX_STATE_BYTES)
          }
        }),
        propertyParameters({ numRuns: 100 }),
      )
    }, 60_000)
  })

  describe("lone surrogates", () => {
    it("refuses an unpaired surrogate in inserted text, content and title with its path", () => {
      const created = given({ type: "Create", title: "t", content: "ab" })
      for (const [command, path] of [
        [edit(1, ins(0, "\ud83d")), ["ops", 0, "text"]],
        [edit(1, ins(0, "x"), ins(0, "a\ude00b")), ["ops", 1, "text"]],
        [{ type: "Create", title: "t", content: "x\ud83d" }, ["content"]],
        [{ type: "Rename", title: "\udc00" }, ["title"]],
      ] as const) {
        const decoded = Document.decodeCommand(command)
        expect(decoded.ok).toBe(false)
        if (!decoded.ok) expect(decoded.error.issues.map((issue) => issue.path)).toContainEqual(path)
      }
      expect(Document.decodeCommand(edit(1, ins(0, "😀"))).ok).toBe(true)
      expect(refusal(created, edit(1, ins(0, "😀")))).toBeUndefined()
    })

    it("refuses (422), never fails, to merge over an unpaired surrogate logged before the check", () => {
      const created = given({ type: "Create", title: "t", content: "ab" })
      const legacy = Document.replay(created, [{ type: "Edited", baseVersion: 1, ops: [ins(0, "\ud83d")] }])
      expect(decision(legacy, edit(1, ins(1, "c")))).toEqual({ refused: "base_version_too_old" })
      expect(decision(legacy, edit(2, ins(0, "c")))).toMatchObject({ state: { content: "c\ud83dab" } })
    })

    it("never fails and never corrupts content for arbitrary strings, lone surrogates included", () => {
      const unit = fc.oneof(
        fc.constantFrom("\ud83d", "\ude00", "😀", "a", "b"),
        fc.string({ unit: "binary", maxLength: 1 }),
      )
      const anyText = fc.string({ unit, maxLength: 6 })
      const at = fc.nat({ max: 6 })
      const anyOp = fc.oneof(
        fc.record({ op: fc.constant("insert" as const), at, text: anyText.filter((t) => t.length > 0) }),
        fc.record({ op: fc.constant("delete" as const), at, length: fc.integer({ min: 1, max: 3 }) }),
      )
      const oneEdit = fc.record({ back: fc.nat({ max: 3 }), ops: fc.array(anyOp, { minLength: 1, maxLength: 3 }) })
      const edits = fc.array(oneEdit, { maxLength: 8 })
      const cases = fc.tuple(anyText, edits)
      fc.assert(
        fc.property(cases, ([content, edits]) => {
          const created = decision(Document.initial, { type: "Create", title: "t", content })
          if (!("state" in created)) return
          let state = created.state
          const log: Array<ReadonlyArray<TextEditOp>> = []
          for (const { back, ops } of edits) {
            const outcome = decision(state, edit(Math.max(1, state.version - back), ...ops))
            if (!("state" in outcome)) continue
            const event = outcome.events[0]!
            log.push(event.type === "Edited" ? event.ops : [])
            state = outcome.state
          }
          expect(/\p{Cs}/u.test(state.content)).toBe(false)
          expect(log.reduce((text, ops) => applyOps(text, ops), content)).toBe(state.content)
        }),
        propertyParameters({ numRuns: 500 }),
      )
    }, 60_000)
  })
})
