/**
 * The pure resilience properties for any entity definition, in plain Node:
 *
 * ```ts
 * import { checkEntity } from "emberlog/testing"
 * it("my entity is sound", () => checkEntity(MyEntity, { commands: myCommandArbitrary }))
 * ```
 *
 * - replay determinism: folding the events decide produced equals the live state, and
 *   decide gives the same events for the same state and command;
 * - events survive storage: every event round-trips through its stored JSON form;
 * - snapshot + tail replay equals full replay, from any snapshot point;
 * - evolve is total over every event decide emits (and every legacy row given);
 * - upcasts: legacy rows (older schema versions) read as current events that evolve accepts;
 * - the hosted log: the same commands through the actor runtime (in-memory store), with
 *   retried Idempotency-Keys and stale If-Match writes mixed in, keep the log gapless,
 *   verified, duplicate-free and equal to the pure fold.
 */
import { Cause, Clock, Effect, Exit, Layer, ManagedRuntime } from "effect"
import fc from "fast-check"
import { DomainError, type Entity, type StoredEventBody, type Tagged } from "../domain/entity.js"
import { ActorCore } from "../actors/actor-core.js"
import { canonicalJson } from "../core/hash-chain.js"
import { makeMemoryEventStore, MemoryEventStore } from "../infra/memory-event-store.js"
import { Ids, sequentialIds } from "../infra/ids.js"
import { clockAt } from "./clock.js"
import { propertyParameters } from "./parameters.js"

export interface CheckEntityOptions<C> {
  /** Commands as clients send them; invalid or rejected ones are fine and expected. */
  readonly commands: fc.Arbitrary<C>
  /** Rows written by older versions of the event schemas, to prove upcasts. */
  readonly legacyEvents?: fc.Arbitrary<StoredEventBody>
  readonly maxCommands?: number
  readonly numRuns?: number
  readonly seed?: number
}

const json = <A>(value: A): A => JSON.parse(JSON.stringify(value))

/** Simulated time: each command of a run happens a second after the previous one. */
const START_TIME = Date.UTC(2026, 0, 1)
const STEP_MS = 1000

const decideSync = <S, C extends Tagged, E extends Tagged>(
  entity: Entity<S, C, E, any>,
  state: S,
  command: C,
  now: number,
) =>
  Effect.runSyncExit(
    entity.decide(state, command).pipe(
      Effect.provide(sequentialIds("check-") as Layer.Layer<Ids>),
      Effect.provideService(
        Clock.Clock,
        clockAt(() => now),
      ),
    ) as Effect.Effect<ReadonlyArray<E>, DomainError>,
  )

interface History<S, E> {
  readonly states: ReadonlyArray<S>
  readonly events: ReadonlyArray<E>
}

/** Runs decoded commands live, keeping the state after every event. */
const runLive = <S, C extends Tagged, E extends Tagged>(
  entity: Entity<S, C, E, any>,
  inputs: ReadonlyArray<unknown>,
): History<S, E> => {
  const states: Array<S> = [entity.initial]
  const events: Array<E> = []
  for (const [index, input] of inputs.entries()) {
    const decoded = entity.decodeCommand(input)
    if (!decoded.ok) continue
    const state = states[states.length - 1]!
    const now = START_TIME + index * STEP_MS
    const exit = decideSync(entity, state, decoded.command, now)
    if (Exit.isFailure(exit)) {
      const error = Cause.squash(exit.cause)
      if (error instanceof DomainError) continue
      throw new Error(`decide failed with a defect, not a DomainError, for ${JSON.stringify(input)}: ${String(error)}`)
    }
    const again = decideSync(entity, state, decoded.command, now)
    if (!Exit.isSuccess(again) || canonicalJson(again.value) !== canonicalJson(exit.value)) {
      throw new Error(`decide is not deterministic for ${JSON.stringify(input)}`)
    }
    for (const event of exit.value) {
      try {
        states.push(entity.evolve(states[states.length - 1]!, event))
      } catch (error) {
        throw new Error(`evolve threw on ${JSON.stringify(event)} emitted by decide: ${String(error)}`)
      }
      events.push(event)
    }
  }
  return { states, events }
}

/** States compare as JSON values: key order carries no meaning (stored data is canonical, keys sorted). */
const sameState = <S>(entity: Entity<S>, a: S, b: S) =>
  canonicalJson(entity.encodeState(a)) === canonicalJson(entity.encodeState(b))

export const checkEntity = <S, C extends Tagged, E extends Tagged>(
  entity: Entity<S, C, E, any>,
  options: CheckEntityOptions<unknown>,
): void => {
  const commandLists = fc.array(options.commands, { maxLength: options.maxCommands ?? 40, size: "max" })
  const parameters = propertyParameters({ numRuns: options.numRuns, seed: options.seed })

  fc.assert(
    fc.property(commandLists, (inputs) => {
      const { states, events } = runLive(entity, inputs)
      const stored = events.map((event) => json(entity.encodeEvent(event)))
      const read = stored.map((body) => entity.decodeEvent(body))
      for (let i = 0; i < events.length; i++) {
        if (canonicalJson(entity.encodeEvent(read[i]!)) !== canonicalJson(entity.encodeEvent(events[i]!))) {
          throw new Error(`event does not survive storage: ${JSON.stringify(events[i])}`)
        }
      }
      const replayed = entity.replay(entity.initial, read)
      if (!sameState(entity, replayed, states[states.length - 1]!))
        throw new Error("replaying the log differs from the live state")
    }),
    parameters,
  )

  fc.assert(
    fc.property(commandLists, fc.nat(), (inputs, cut) => {
      const { states, events } = runLive(entity, inputs)
      const at = events.length === 0 ? 0 : cut % (events.length + 1)
      const snapshot = entity.decodeState(json(entity.encodeState(states[at]!)))
      const fromSnapshot = entity.replay(snapshot, events.slice(at))
      if (!sameState(entity, fromSnapshot, states[states.length - 1]!)) {
        throw new Error(`snapshot at ${at} + tail replay differs from full replay`)
      }
    }),
    parameters,
  )

  if (options.legacyEvents !== undefined) {
    fc.assert(
      fc.property(commandLists, options.legacyEvents, (inputs, legacy) => {
        const event = entity.decodeEvent(json(legacy))
        const current = entity.encodeEvent(event)
        if (current.schemaVersion !== entity.currentEventVersion(legacy.type))
          throw new Error("upcast did not reach the current version")
        if (canonicalJson(entity.encodeEvent(entity.decodeEvent(json(current)))) !== canonicalJson(current)) {
          throw new Error(`upcast event does not round-trip: ${JSON.stringify(current)}`)
        }
        const { states } = runLive(entity, inputs)
        entity.evolve(states[states.length - 1]!, event)
      }),
      parameters,
    )
  }

  fc.assert(
    fc.property(hostedSteps(options.commands, options.maxCommands ?? 40), (steps) => checkHostedLog(entity, steps)),
    parameters,
  )
}

type HostedStep =
  | { readonly kind: "send"; readonly command: unknown; readonly key: string | undefined }
  | { readonly kind: "retry" }
  | { readonly kind: "stale"; readonly command: unknown }
  | { readonly kind: "restart" }

const hostedSteps = (commands: fc.Arbitrary<unknown>, maxLength: number): fc.Arbitrary<ReadonlyArray<HostedStep>> =>
  fc.array(
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant("send" as const),
          command: commands,
          key: fc.option(fc.uuid(), { nil: undefined }),
        }),
      },
      { weight: 2, arbitrary: fc.constant({ kind: "retry" as const }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("stale" as const), command: commands }) },
      { weight: 1, arbitrary: fc.constant({ kind: "restart" as const }) },
    ),
    { maxLength, size: "max" },
  )

/** The runtime's log invariants, checked after every step against the pure fold. */
const checkHostedLog = <S>(entity: Entity<S>, steps: ReadonlyArray<HostedStep>) => {
  const store = makeMemoryEventStore()
  const runtime = () => ManagedRuntime.make(Layer.mergeAll(MemoryEventStore(store), sequentialIds("cmd-")))
  let actor = new ActorCore(entity, runtime())
  let lastKeyed: { command: unknown; key: string; version: number } | undefined
  for (const step of steps) {
    const before = store.rows.length
    if (step.kind === "restart") {
      actor = new ActorCore(entity, runtime())
    } else if (step.kind === "retry") {
      if (lastKeyed === undefined) continue
      const reply = actor.command({ command: lastKeyed.command, idempotencyKey: lastKeyed.key, internal: true })
      if (!reply.ok || reply.value.version !== lastKeyed.version)
        throw new Error("a retried Idempotency-Key did not return the first result")
    } else if (step.kind === "stale") {
      if (actor.currentVersion === 0) continue
      const reply = actor.command({ command: step.command, ifMatch: actor.currentVersion - 1, internal: true })
      const valid = entity.decodeCommand(step.command).ok
      if (reply.ok || (valid && reply.error.code !== "version_conflict"))
        throw new Error("a stale If-Match was not refused")
    } else {
      // As the host: internal commands (timers, reactions) are allowed here.
      const reply = actor.command({ command: step.command, idempotencyKey: step.key, internal: true })
      if (reply.ok && step.key !== undefined)
        lastKeyed = { command: step.command, key: step.key, version: reply.value.version }
      if (!reply.ok && store.rows.length !== before)
        throw new Error(`a refused command appended events: ${JSON.stringify(reply.error)}`)
    }
    if (step.kind !== "send" && store.rows.length !== before) throw new Error(`${step.kind} appended events`)
    const rows = store.rows
    rows.forEach((row, i) => {
      if (row.seq !== i + 1) throw new Error(`seq ${row.seq} at position ${i + 1}: the log has a gap`)
    })
    if (actor.currentVersion !== rows.length)
      throw new Error(`version ${actor.currentVersion} but ${rows.length} events`)
    const verified = actor.verify()
    if (!verified.ok) throw new Error(`verify failed: ${verified.reason}`)
    const folded = entity.replay(entity.initial, rows.map(entity.decodeEvent))
    const read = actor.readState()
    if (!read.ok || canonicalJson(read.value.state) !== canonicalJson(entity.encodeState(folded))) {
      throw new Error("the hosted state differs from the fold of its log")
    }
  }
}
