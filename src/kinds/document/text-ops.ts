/**
 * Plain-text edit operations and their operational transform.
 *
 * Our wire ops are `{op:"insert", at, text}` and `{op:"delete", at, length}`, applied in
 * order, each against the text the previous one produced. Positions count Unicode code
 * points, so an emoji is one position whatever its UTF-16 length. The transform itself is
 * ShareDB's `text-unicode` type (ot-text-unicode); we convert at this boundary only.
 */
import { Schema } from "effect"
import { type TextOp, insert, remove, type as textType } from "ot-text-unicode"
import { NonNegativeSafeInt, PositiveSafeInt } from "../../index.js"

/**
 * Text without unpaired surrogates. ot-text-unicode (through unicount) takes any surrogate
 * for the first half of a pair, so a lone one shifts its positions against ours and the
 * transform throws; refusing them at decode keeps every count in agreement.
 */
const wellFormed = Schema.makeFilter(
  (text: string) => !/\p{Cs}/u.test(text) || "Expected text without unpaired surrogates (U+D800–U+DFFF)",
  { expected: "text without unpaired surrogates" },
)
export const WellFormedText = Schema.String.pipe(Schema.check(wellFormed))

export const InsertOp = Schema.Struct({
  op: Schema.Literal("insert"),
  at: NonNegativeSafeInt,
  text: Schema.NonEmptyString,
})
export const DeleteOp = Schema.Struct({ op: Schema.Literal("delete"), at: NonNegativeSafeInt, length: PositiveSafeInt })
export const TextEditOp = Schema.Union([InsertOp, DeleteOp])
export type TextEditOp = typeof TextEditOp.Type
/** An op as a command carries it: inserted text must be well formed (events keep `TextEditOp`). */
export const TextEditOpInput = Schema.Union([
  Schema.Struct({ ...InsertOp.fields, text: Schema.NonEmptyString.pipe(Schema.check(wellFormed)) }),
  DeleteOp,
])

export const codePointLength = (text: string): number => {
  let length = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) i++
    length++
  }
  return length
}

/** Index of the first op that does not fit the text it applies to, or -1 when all fit. */
export const firstOutOfRange = (ops: ReadonlyArray<TextEditOp>, initialLength: number): number => {
  let length = initialLength
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    if (op.op === "insert") {
      if (op.at > length) return i
      length += codePointLength(op.text)
    } else {
      if (op.at + op.length > length) return i
      length -= op.length
    }
  }
  return -1
}

export const lengthDelta = (ops: ReadonlyArray<TextEditOp>): number =>
  ops.reduce((sum, op) => sum + (op.op === "insert" ? codePointLength(op.text) : -op.length), 0)

/** Composes sequential ops into one text-unicode op over the original text. */
export const toTextOp = (ops: ReadonlyArray<TextEditOp>): TextOp =>
  ops.reduce<TextOp>(
    (composed, op) =>
      textType.compose(composed, op.op === "insert" ? insert(op.at, op.text) : remove(op.at, op.length)),
    [],
  )

/** The inverse of `toTextOp`: a text-unicode op as sequential wire ops. */
export const fromTextOp = (textOp: TextOp): Array<TextEditOp> => {
  const ops: Array<TextEditOp> = []
  let at = 0
  for (const component of textOp) {
    if (typeof component === "number") at += component
    else if (typeof component === "string") {
      ops.push({ op: "insert", at, text: component })
      at += codePointLength(component)
    } else {
      const length = typeof component.d === "number" ? component.d : codePointLength(component.d)
      ops.push({ op: "delete", at, length })
    }
  }
  return ops
}

/**
 * Rewrites `incoming` (made against the same text as `applied`) so it applies after
 * `applied`. On the server `applied` landed first, so at an equal position its inserts
 * stay to the left ("right" for the incoming op); a client rebasing a server op over
 * its own pending edit passes "left" to reach the same text.
 */
export const transformAgainst = (
  incoming: ReadonlyArray<TextEditOp>,
  applied: ReadonlyArray<TextEditOp>,
  side: "left" | "right" = "right",
): Array<TextEditOp> => fromTextOp(textType.transform(toTextOp(incoming), toTextOp(applied), side))

const SURROGATE = /[\uD800-\uDFFF]/

/** The UTF-16 index of code point `codePoints` of `text`, scanning from UTF-16 index `from`. */
const utf16Index = (text: string, codePoints: number, from = 0): number => {
  let index = from
  for (let n = 0; n < codePoints && index < text.length; n++) {
    const code = text.charCodeAt(index)
    index += code >= 0xd800 && code <= 0xdbff ? 2 : 1
  }
  return index
}

/**
 * Applies sequential ops with native string slicing. This is `textType.apply(text,
 * toTextOp(ops))` (a property test holds them equal) without counting code points
 * through the whole document on every op: text with no surrogate pairs indexes
 * directly, which keeps replaying a long document's edits fast.
 */
export const applyOps = (text: string, ops: ReadonlyArray<TextEditOp>): string => {
  let plain = !SURROGATE.test(text)
  let result = text
  for (const op of ops) {
    const start = plain ? op.at : utf16Index(result, op.at)
    if (op.op === "insert") {
      result = result.slice(0, start) + op.text + result.slice(start)
      plain &&= !SURROGATE.test(op.text)
    } else {
      const end = plain ? start + op.length : utf16Index(result, op.length, start)
      result = result.slice(0, start) + result.slice(end)
    }
  }
  return result
}

export { textType }
