import fc from "fast-check"
import { contentHash as hashOf } from "../../src/kinds/memory/entity.js"

/** Counter commands as clients send them, including some that must be refused. */
export const counterCommand = fc.oneof(
  { weight: 5, arbitrary: fc.record({ type: fc.constant("Increment"), by: fc.integer({ min: 1, max: 1000 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("Increment"),
      by: fc.integer({ min: 1, max: 1000 }),
      reason: fc.string({ maxLength: 8 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ type: fc.constant("Decrement"), by: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 1, arbitrary: fc.constant({ type: "Reset" }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("Increment"), by: fc.constant(Number.MAX_SAFE_INTEGER) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constantFrom("Increment", "Nope"),
      by: fc.oneof(fc.integer({ min: -5, max: 0 }), fc.double(), fc.string()),
    }),
  },
)

export const legacyIncremented = fc.record({
  type: fc.constant("Incremented"),
  schemaVersion: fc.constant(1),
  data: fc.record({ by: fc.integer({ min: 1, max: 1_000_000 }) }),
})

const text = fc.string({ unit: fc.constantFrom("a", "b", "c", " ", "é", "😀", "\n"), maxLength: 6 })
const op = fc.oneof(
  fc.record({
    op: fc.constant("insert"),
    at: fc.nat({ max: 4 }),
    text: fc.string({ unit: fc.constantFrom("x", "y", "😀"), minLength: 1, maxLength: 3 }),
  }),
  fc.record({ op: fc.constant("delete"), at: fc.nat({ max: 4 }), length: fc.integer({ min: 1, max: 2 }) }),
)

/**
 * Document commands. Positions and versions are small so that most edits land and many
 * are concurrent (based on an older version); some still fall out of range.
 */
export const documentCommand = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("Create"),
      title: fc.string({ minLength: 1, maxLength: 5 }),
      content: fc.string({ minLength: 4, maxLength: 12 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant("Rename"), title: fc.string({ minLength: 0, maxLength: 5 }) }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      type: fc.constant("Edit"),
      baseVersion: fc.integer({ min: 1, max: 5 }),
      ops: fc.array(op, { minLength: 1, maxLength: 2 }),
    }),
  },
)

export { op as textOp, text }

/**
 * Names Object.prototype already has: a record keyed by user input must treat them as any
 * other name (a member called `constructor` must not read an inherited property).
 */
export const prototypeKey = fc.constantFrom("constructor", "__proto__", "toString", "hasOwnProperty", "valueOf")

const member = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("alice", "bob", "carol") },
  { weight: 1, arbitrary: prototypeKey },
)
/** Room commands: members come and go (some leave without having joined) and post JSON payloads. */
export const roomCommand = fc.oneof(
  fc.record({ type: fc.constant("Join"), name: member }),
  fc.record({ type: fc.constant("Leave"), name: member }),
  fc.record({
    type: fc.constant("Post"),
    messageType: fc.constantFrom("chat", "typing"),
    payload: fc.jsonValue({ maxDepth: 2 }),
    sender: member,
  }),
)

/** Names that are also Object.prototype members: records keyed by user input must keep them as plain data. */
export const prototypeName = fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "valueOf")
export const sessionTool = fc.oneof(fc.constantFrom("counter_increment", "read_state", "verify_log"), prototypeName)
const tool = sessionTool
export const sessionConfigKey = fc.oneof(fc.constantFrom("theme", "lang"), prototypeName)
/** Session commands; TTLs of a few seconds against a harness clock that moves a second per command. */
export const sessionCommand = fc.oneof(
  fc.record({
    type: fc.constant("Open"),
    user: fc.constantFrom("alice", "bob"),
    ttlSeconds: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({
    type: fc.constant("Open"),
    ttlSeconds: fc.integer({ min: 1, max: 6 }),
    attributes: fc.dictionary(sessionConfigKey, fc.integer()),
  }),
  fc.constant({ type: "Touch" }),
  fc.record({ type: fc.constant("SetConfig"), key: sessionConfigKey, value: fc.jsonValue({ maxDepth: 1 }) }),
  fc.record({ type: fc.constant("Grant"), tool }),
  fc.record({ type: fc.constant("Revoke"), tool }),
  fc.constant({ type: "Close" }),
  fc.constant({ type: "Expire" }),
)

const attempt = fc.integer({ min: 1, max: 4 })
/** Job commands from users and from the engine, in any order: the state machine must hold. */
export const jobCommand = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("Submit"),
      task: fc.constant("generate"),
      input: fc.record({ description: fc.constantFrom("GET /users", "an API") }),
      maxAttempts: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 4, arbitrary: fc.constant({ type: "Tick" }) },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("Progress"),
      attempt,
      percent: fc.integer({ min: 0, max: 100 }),
      message: fc.constant("working"),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ type: fc.constant("Complete"), attempt, result: fc.jsonValue({ maxDepth: 1 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ type: fc.constant("Fail"), attempt, error: fc.constant("boom"), retryable: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.constant({ type: "Cancel" }) },
)

const memoryText = fc.constantFrom("alpha", "beta", "gamma", "alpha beta", "constructor")
const memoryTag = fc.oneof(fc.constantFrom("a", "b", "c"), prototypeKey)
/** Memory commands over a few contents, so stores repeat and tags/forgets hit real hashes. */
export const memoryCommand = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant("Store"),
      content: memoryText,
      tags: fc.array(memoryTag, { maxLength: 2 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("Tag"),
      hash: memoryText.map(hashOf),
      tags: fc.array(memoryTag, { minLength: 1, maxLength: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("Untag"),
      hash: memoryText.map(hashOf),
      tags: fc.array(memoryTag, { minLength: 1, maxLength: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("Forget"), hash: memoryText.map(hashOf) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("ForgetByTag"), tag: memoryTag }) },
)
