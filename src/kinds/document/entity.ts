/**
 * A collaboratively edited plain-text document.
 *
 * `Edit {baseVersion, ops}` may be based on an older version: its ops are transformed
 * against every edit appended since `baseVersion`, so concurrent editors all land and
 * every replica converges. The state keeps the last `EDIT_WINDOW` edits for that, and no
 * more than `EDIT_WINDOW_BYTES` of them; an edit based on anything older is refused (422
 * `base_version_too_old`), and the client rebases on a fresh read.
 *
 * The whole state is one snapshot row, and production caps a row at 2 MB, so every part
 * of it is bounded in bytes of JSON (UTF-8), not only in characters: 500k characters
 * alone can be 3 MB of JSON (a control character is escaped as 6 bytes, `\u0000`).
 * Worst case, in bytes: content ≤ MAX_CONTENT_BYTES (1,400,000) + window ≤
 * EDIT_WINDOW_BYTES (524,288, each edit counted with its JSON and a comma) + title ≤ 500
 * UTF-16 units × 6 (3,000) + the other fields and keys (< 200) = 1,927,488 <
 * MAX_STATE_BYTES (2,000,000, the row limit read as decimal megabytes).
 */
import { Effect, Schema } from "effect"
import { Entity, NonNegativeSafeInt, reject, tagged } from "../../index.js"
import { jsonBytes } from "../../index.js"
import {
  TextEditOp,
  TextEditOpInput,
  WellFormedText,
  applyOps,
  codePointLength,
  firstOutOfRange,
  lengthDelta,
  transformAgainst,
} from "./text-ops.js"

export const MAX_CONTENT_LENGTH = 500_000
/** Bytes of the content's JSON (UTF-8, with its quotes and escapes). */
export const MAX_CONTENT_BYTES = 1_400_000
export const MAX_TITLE_LENGTH = 500
export const MAX_OPS_PER_EDIT = 1_000
export const EDIT_WINDOW = 200
/** Bytes of JSON the edit window may hold, whatever the number of edits in it. */
export const EDIT_WINDOW_BYTES = 512 * 1024
/** What the encoded state never exceeds (see the sum above): it fits one production row. */
export const MAX_STATE_BYTES = 2_000_000

const Title = WellFormedText.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_TITLE_LENGTH)))
const Ops = Schema.Array(TextEditOp)

export const AppliedEdit = Schema.Struct({ version: NonNegativeSafeInt, ops: Ops })
export const DocumentState = Schema.Struct({
  created: Schema.Boolean,
  title: Schema.String,
  content: Schema.String,
  /** Events applied so far: the actor's version, counted here so edits can name versions. */
  version: NonNegativeSafeInt,
  createdAt: NonNegativeSafeInt,
  recentEdits: Schema.Array(AppliedEdit),
  /** Highest version of an edit that fell out of `recentEdits`; older bases cannot be transformed. */
  forgottenThrough: NonNegativeSafeInt,
})
export type DocumentState = typeof DocumentState.Type
type AppliedEdit = typeof AppliedEdit.Type

export const CreateDocument = tagged("Create", { title: Title, content: WellFormedText })
export const RenameDocument = tagged("Rename", { title: Title })
export const EditDocument = tagged("Edit", {
  baseVersion: NonNegativeSafeInt,
  // Commands refuse lone surrogates; events and states keep the plain schema so that logs
  // written before that check still replay.
  ops: Schema.Array(TextEditOpInput).pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_OPS_PER_EDIT))),
})
export const DocumentCommand = Schema.Union([CreateDocument, RenameDocument, EditDocument])
export type DocumentCommand = typeof DocumentCommand.Type

export const DocumentCreated = tagged("Created", { title: Schema.String, content: Schema.String })
export const DocumentRenamed = tagged("Renamed", { title: Schema.String })
/** `ops` are already transformed to apply to the version before this event. */
export const DocumentEdited = tagged("Edited", { baseVersion: NonNegativeSafeInt, ops: Ops })
export const DocumentEvent = Schema.Union([DocumentCreated, DocumentRenamed, DocumentEdited])
export type DocumentEvent = typeof DocumentEvent.Type

export const initialDocument: DocumentState = {
  created: false,
  title: "",
  content: "",
  version: 0,
  createdAt: 0,
  recentEdits: [],
  forgottenThrough: 0,
}

const tooLarge = (length: number) =>
  reject("document_too_large", `The document would have ${length} characters; the limit is ${MAX_CONTENT_LENGTH}`, {
    length,
    limit: MAX_CONTENT_LENGTH,
  })

const tooManyBytes = (bytes: number) =>
  reject("document_too_large", `The document would take ${bytes} bytes of JSON; the limit is ${MAX_CONTENT_BYTES}`, {
    bytes,
    limit: MAX_CONTENT_BYTES,
  })

/** Every UTF-16 unit is at most 6 bytes of JSON, so shorter text needs no measuring. */
const mayExceedBytes = (units: number) => units * 6 + 2 > MAX_CONTENT_BYTES

const windowBytes = new WeakMap<AppliedEdit, number>()
/** An edit's share of the encoded window, memoized: the window is summed on every edit. */
const editBytes = (edit: AppliedEdit): number => {
  let bytes = windowBytes.get(edit)
  if (bytes === undefined) {
    bytes = jsonBytes(edit) + 1
    windowBytes.set(edit, bytes)
  }
  return bytes
}

/** Drops the oldest edits until the window holds at most EDIT_WINDOW edits and EDIT_WINDOW_BYTES. */
const trimWindow = (edits: Array<AppliedEdit>): Array<AppliedEdit> => {
  let bytes = edits.reduce((sum, edit) => sum + editBytes(edit), 0)
  let drop = 0
  while (drop < edits.length && (edits.length - drop > EDIT_WINDOW || bytes > EDIT_WINDOW_BYTES)) {
    bytes -= editBytes(edits[drop++]!)
  }
  return edits.splice(0, drop)
}

const decideEdit = (state: DocumentState, command: typeof EditDocument.Type) => {
  const { baseVersion, ops } = command
  if (!state.created) return reject("not_created", "Edit before Create: the document does not exist yet")
  if (baseVersion > state.version) {
    return reject(
      "invalid_base_version",
      `baseVersion ${baseVersion} is ahead of the document (version ${state.version})`,
      {
        version: state.version,
      },
    )
  }
  if (baseVersion < state.createdAt) {
    return reject(
      "invalid_base_version",
      `baseVersion ${baseVersion} is before the document was created (version ${state.createdAt})`,
    )
  }
  if (baseVersion < state.forgottenThrough) {
    const kept = `the edits kept for merging (the last ${EDIT_WINDOW}, at most ${EDIT_WINDOW_BYTES} bytes)`
    const message = `baseVersion ${baseVersion} is older than ${kept}; read the document and rebase`
    return reject("base_version_too_old", message, {
      version: state.version,
      oldestBaseVersion: state.forgottenThrough,
    })
  }
  const concurrent = state.recentEdits.filter((edit) => edit.version > baseVersion)
  const baseLength = codePointLength(state.content) - concurrent.reduce((sum, edit) => sum + lengthDelta(edit.ops), 0)
  const bad = firstOutOfRange(ops, baseLength)
  if (bad >= 0) {
    return reject(
      "op_out_of_range",
      `ops[${bad}] does not fit a document of ${baseLength} characters at version ${baseVersion}`,
      {
        index: bad,
        length: baseLength,
      },
    )
  }
  let transformed: ReadonlyArray<TextEditOp>
  try {
    transformed = concurrent.reduce<ReadonlyArray<TextEditOp>>((pending, e) => transformAgainst(pending, e.ops), ops)
  } catch {
    // Only edits logged before text was checked (an unpaired surrogate) fail to transform;
    // an edit based on the head needs no transform.
    const message = `The edits since baseVersion ${baseVersion} cannot be merged; read the document and rebase`
    return reject("base_version_too_old", message, {
      version: state.version,
      oldestBaseVersion: state.version,
    })
  }
  const resultLength = codePointLength(state.content) + lengthDelta(transformed)
  if (resultLength > MAX_CONTENT_LENGTH) return tooLarge(resultLength)
  const inserted = transformed.reduce((sum, op) => sum + (op.op === "insert" ? op.text.length : 0), 0)
  if (mayExceedBytes(state.content.length + inserted)) {
    const bytes = jsonBytes(applyOps(state.content, transformed))
    if (bytes > MAX_CONTENT_BYTES) return tooManyBytes(bytes)
  }
  return Effect.succeed([{ type: "Edited", baseVersion, ops: transformed } as const])
}

const decide = (state: DocumentState, command: DocumentCommand) => {
  switch (command.type) {
    case "Create": {
      if (state.created) return reject("already_created", "The document already exists")
      const length = codePointLength(command.content)
      if (length > MAX_CONTENT_LENGTH) return tooLarge(length)
      const bytes = mayExceedBytes(command.content.length) ? jsonBytes(command.content) : 0
      if (bytes > MAX_CONTENT_BYTES) return tooManyBytes(bytes)
      return Effect.succeed([{ type: "Created", title: command.title, content: command.content } as const])
    }
    case "Rename":
      if (!state.created) return reject("not_created", "Rename before Create: the document does not exist yet")
      return Effect.succeed([{ type: "Renamed", title: command.title } as const])
    case "Edit":
      return decideEdit(state, command)
    default:
      return command satisfies never
  }
}

const evolve = (state: DocumentState, event: DocumentEvent): DocumentState => {
  const version = state.version + 1
  switch (event.type) {
    case "Created":
      return { ...state, version, created: true, createdAt: version, title: event.title, content: event.content }
    case "Renamed":
      return { ...state, version, title: event.title }
    case "Edited": {
      const recentEdits = [...state.recentEdits, { version, ops: event.ops }]
      const forgotten = trimWindow(recentEdits)
      return {
        ...state,
        version,
        content: applyOps(state.content, event.ops),
        recentEdits,
        forgottenThrough: forgotten.length > 0 ? forgotten[forgotten.length - 1]!.version : state.forgottenThrough,
      }
    }
    default:
      return event satisfies never
  }
}

export const Document = Entity.make({
  kind: "document",
  state: DocumentState,
  initial: initialDocument,
  commands: DocumentCommand,
  events: DocumentEvent,
  decide,
  evolve,
  // A 100 KB document replays ~50k edits/s here (bench/RESULTS.md), so 200 events keep the
  // worst-case recovery tail near 4 ms (20 ms at the 500 K-character cap) while a snapshot
  // (~2 ms for 100 KB) costs ~10 µs per command amortized.
  snapshotEvery: 200,
})
