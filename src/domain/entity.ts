/**
 * The entity contract: an entity is data plus two pure functions.
 *
 * ```ts
 * export const Counter = Entity.make({
 *   kind: "counter",
 *   state: CounterState, initial: { value: 0 },
 *   commands: CounterCommand,   // Schema.Union of structs tagged by `type`
 *   events: CounterEvent,       // Schema.Union of structs tagged by `type`
 *   upcasts: { Incremented: [IncrementedV1ToV2] },
 *   decide: (state, command) => Effect.succeed([...]),
 *   evolve: (state, event) => ...,
 * })
 * ```
 *
 * Event versions: an event type's current schema version is 1 + the number of its
 * upcasts. `upcasts[T][i]` is a Schema whose encoded side is version i+1 of T's data
 * and whose decoded side is version i+2 of that data, so a row written long ago is
 * read through the chain up to today's shape and never rewritten in storage.
 */
import { Cause, Effect, Exit, Schema, SchemaAST, SchemaIssue } from "effect"

export type Tagged = { readonly type: string }

/** A command refused by a domain rule (HTTP 422). */
export class DomainError extends Schema.TaggedError<DomainError>()("DomainError", {
  code: Schema.String,
  message: Schema.String,
  details: Schema.optionalKey(Schema.Unknown),
}) {}

export const reject = (code: string, message: string, details?: unknown): Effect.Effect<never, DomainError> =>
  Effect.fail(new DomainError(details === undefined ? { code, message } : { code, message, details }))

/** A schema-level problem with input, with the path of each issue (HTTP 400). */
export interface InvalidInput {
  readonly message: string
  readonly issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey>; readonly message: string }>
}

type AnySchema = Schema.Codec<any, any>

export interface EntityConfig<S, C extends Tagged, E extends Tagged, R> {
  readonly kind: string
  readonly state: Schema.Codec<S, any>
  /** Bump when the state schema changes incompatibly: older snapshots are then ignored and replaced. */
  readonly stateVersion?: number
  readonly initial: S
  readonly commands: Schema.Codec<C, any>
  readonly events: Schema.Codec<E, any>
  readonly upcasts?: { readonly [T in E["type"]]?: ReadonlyArray<AnySchema> }
  readonly decide: (state: S, command: C) => Effect.Effect<ReadonlyArray<E>, DomainError, R>
  readonly evolve: (state: S, event: E) => S
  /** Snapshot every N events (see bench/RESULTS.md for how the default was chosen). */
  readonly snapshotEvery?: number
  /** The topics an event is published to; by default the entity's kind. */
  readonly topics?: (event: E) => ReadonlyArray<string>
  /**
   * A timer the host keeps: when `dueAt(state)` (ms epoch) passes, the actor's alarm sends
   * `command` through the ordinary command path. Alarms may run twice or early, so the
   * command's decide must check the time itself and be idempotent.
   */
  readonly timer?: { readonly dueAt: (state: S) => number | undefined; readonly command: C }
  /** Commands only the host sends (its timer and reactions); outside callers get 400. */
  readonly internalCommands?: ReadonlyArray<C["type"]>
}

/** An event as stored: its type, the schema version of its data, and the data without `type`. */
export interface StoredEventBody {
  readonly type: string
  readonly schemaVersion: number
  readonly data: Record<string, unknown>
}

export interface Entity<S = any, C extends Tagged = any, E extends Tagged = any, R = any> extends EntityConfig<
  S,
  C,
  E,
  R
> {
  readonly topics: (event: E) => ReadonlyArray<string>
  readonly stateVersion: number
  readonly snapshotEvery: number
  readonly commandTypes: ReadonlyArray<string>
  /** The struct schema of one command type (its fields, `type` included). */
  readonly commandSchema: (type: string) => Schema.Struct<Schema.Struct.Fields>
  readonly eventTypes: ReadonlyArray<string>
  readonly currentEventVersion: (type: string) => number
  /** Decodes untrusted input into a command; never throws. */
  readonly decodeCommand: (
    input: unknown,
  ) => { readonly ok: true; readonly command: C } | { readonly ok: false; readonly error: InvalidInput }
  readonly encodeEvent: (event: E) => StoredEventBody
  /** Reads a stored event of any known version as today's event; throws on a row it cannot read. */
  readonly decodeEvent: (stored: StoredEventBody) => E
  /** The stored row's data upcast to the current version, in encoded (JSON) form. */
  readonly upcastData: (stored: StoredEventBody) => Record<string, unknown>
  readonly encodeState: (state: S) => unknown
  readonly decodeState: (json: unknown) => S
  readonly replay: (state: S, events: Iterable<E>) => S
}

export type StateOf<T> = T extends Entity<infer S, any, any, any> ? S : never
export type CommandOf<T> = T extends Entity<any, infer C, any, any> ? C : never
export type EventOf<T> = T extends Entity<any, any, infer E, any> ? E : never

const parseOptions = { errors: "all", onExcessProperty: "error" } as const
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

const toInvalidInput = (error: unknown): InvalidInput => {
  const issue = (error as { issue?: SchemaIssue.Issue }).issue
  if (issue === undefined) return { message: String(error), issues: [] }
  const issues = formatIssue(issue).issues.map((i) => ({
    path: (i.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? p.key : p)) as PropertyKey[],
    message: i.message,
  }))
  return { message: issues.map((i) => `${i.message} at ${JSON.stringify(i.path)}`).join("; "), issues }
}

/** Members of a union of structs tagged by `type`, keyed by their tag. */
const membersByType = (label: string, union: AnySchema): Map<string, AnySchema> => {
  const members = (union as unknown as { members?: ReadonlyArray<AnySchema> }).members ?? [union]
  const byType = new Map<string, AnySchema>()
  for (const member of members) {
    const tag = (member as unknown as { fields?: { type?: { literal?: unknown } } }).fields?.type?.literal
    if (typeof tag !== "string")
      throw new Error(`${label} must be a Schema.Union of Schema.Struct with a literal "type" field`)
    byType.set(tag, member)
  }
  return byType
}

const make = <S, C extends Tagged, E extends Tagged, R = never>(
  config: EntityConfig<S, C, E, R>,
): Entity<S, C, E, R> => {
  const commandSchemas = membersByType(`${config.kind}.commands`, config.commands)
  const eventSchemas = membersByType(`${config.kind}.events`, config.events)
  const upcasts = (config.upcasts ?? {}) as Record<string, ReadonlyArray<AnySchema> | undefined>
  for (const type of Object.keys(upcasts)) {
    if (!eventSchemas.has(type)) throw new Error(`${config.kind}.upcasts names unknown event type ${type}`)
  }
  const commandDecoders = new Map(
    [...commandSchemas].map(([type, schema]) => [type, Schema.decodeUnknownExit(schema, parseOptions)]),
  )
  const eventDecoders = new Map(
    [...eventSchemas].map(([type, schema]) => [type, Schema.decodeUnknownSync(schema, parseOptions)]),
  )
  const eventEncoders = new Map([...eventSchemas].map(([type, schema]) => [type, Schema.encodeSync(schema)]))
  const upcastDecoders = new Map(
    Object.entries(upcasts).map(([type, chain]) => [
      type,
      (chain ?? []).map((step) => Schema.decodeUnknownSync(step, parseOptions)),
    ]),
  )
  // Stored rows (and offline replays of exported files) name the type: own keys only.
  const currentEventVersion = (type: string) => 1 + (own(upcasts, type)?.length ?? 0)
  const decodeStateSync = Schema.decodeUnknownSync(config.state)
  const encodeStateSync = Schema.encodeSync(config.state)

  const decodeCommand: Entity<S, C, E, R>["decodeCommand"] = (input) => {
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      return {
        ok: false,
        error: { message: "A command must be a JSON object", issues: [{ path: [], message: "Expected an object" }] },
      }
    }
    const type = (input as { type?: unknown }).type
    const decoder = typeof type === "string" ? commandDecoders.get(type) : undefined
    if (decoder === undefined) {
      const message = `Unknown command type ${JSON.stringify(type)}; expected one of ${[...commandSchemas.keys()].join(", ")}`
      return { ok: false, error: { message, issues: [{ path: ["type"], message }] } }
    }
    const exit = decoder(input)
    return Exit.isSuccess(exit)
      ? { ok: true, command: exit.value as C }
      : { ok: false, error: toInvalidInput(Cause.squash(exit.cause)) }
  }

  const upcastData = (stored: StoredEventBody): Record<string, unknown> => {
    const current = currentEventVersion(stored.type)
    if (!eventSchemas.has(stored.type)) throw new Error(`Unknown event type ${stored.type} in ${config.kind} log`)
    if (!Number.isInteger(stored.schemaVersion) || stored.schemaVersion < 1 || stored.schemaVersion > current) {
      throw new Error(`Event ${stored.type} has schema version ${stored.schemaVersion}; this code reads 1..${current}`)
    }
    const chain = upcastDecoders.get(stored.type) ?? []
    let data: unknown = stored.data
    for (let version = stored.schemaVersion; version < current; version++) data = chain[version - 1]!(data)
    return data as Record<string, unknown>
  }

  // Replay speed: data at the current version whose schema is plain JSON (no transformation,
  // so encoded and decoded forms are the same) was validated when appended and is covered by
  // the hash chain, so it is read as it is. Older versions and transformed schemas decode fully.
  const plainJsonTypes = new Set(
    [...eventSchemas].filter(([, schema]) => SchemaAST.toEncoded(schema.ast) === schema.ast).map(([type]) => type),
  )
  const decodeEvent = (stored: StoredEventBody): E =>
    stored.schemaVersion === currentEventVersion(stored.type) && plainJsonTypes.has(stored.type)
      ? ({ ...stored.data, type: stored.type } as unknown as E)
      : (eventDecoders.get(stored.type)!({ ...upcastData(stored), type: stored.type }) as E)

  const encodeEvent = (event: E): StoredEventBody => {
    const encoder = eventEncoders.get(event.type)
    if (encoder === undefined) throw new Error(`${config.kind}.decide emitted unknown event type ${event.type}`)
    const { type, ...data } = encoder(event) as Tagged & Record<string, unknown>
    return { type, schemaVersion: currentEventVersion(type), data }
  }

  return {
    ...config,
    stateVersion: config.stateVersion ?? 1,
    topics: config.topics ?? (() => [config.kind]),
    // Small states replay at ~450k events/s here, so 500 events bound the recovery tail near
    // 1 ms; entities with large states pick their own (see bench/RESULTS.md).
    snapshotEvery: config.snapshotEvery ?? 500,
    commandTypes: [...commandSchemas.keys()],
    commandSchema: (type) => commandSchemas.get(type) as unknown as Schema.Struct<Schema.Struct.Fields>,
    eventTypes: [...eventSchemas.keys()],
    currentEventVersion,
    decodeCommand,
    encodeEvent,
    decodeEvent,
    upcastData,
    encodeState: (state) => encodeStateSync(state),
    decodeState: (json) => decodeStateSync(json) as S,
    replay: (state, events) => {
      let current = state
      for (const event of events) current = config.evolve(current, event)
      return current
    },
  }
}

export const Entity = { make }

/** A `type`-tagged struct: the shape of every command and event. */
export const tagged = <const T extends string, const F extends Schema.Struct.Fields>(type: T, fields: F) =>
  Schema.Struct({ type: Schema.Literal(type), ...fields })

/**
 * A record's own value for a key that came from input, or undefined. A plain `record[key]`
 * finds Object.prototype's members, so a room member called `constructor` would read a
 * function; every lookup keyed by user input goes through here (or uses a Map).
 */
export const own = <V>(record: { readonly [key: string]: V }, key: string): V | undefined =>
  Object.hasOwn(record, key) ? record[key] : undefined

export const SafeInt = Schema.Number.pipe(
  Schema.check(
    Schema.isInt(),
    Schema.isGreaterThanOrEqualTo(Number.MIN_SAFE_INTEGER),
    Schema.isLessThanOrEqualTo(Number.MAX_SAFE_INTEGER),
  ),
)
export const PositiveSafeInt = Schema.Number.pipe(
  Schema.check(Schema.isInt(), Schema.isGreaterThan(0), Schema.isLessThanOrEqualTo(Number.MAX_SAFE_INTEGER)),
)
export const NonNegativeSafeInt = Schema.Number.pipe(
  Schema.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(Number.MAX_SAFE_INTEGER)),
)
