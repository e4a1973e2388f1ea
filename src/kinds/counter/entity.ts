/** A counter: the smallest entity, and the one that shows an event upcast (Incremented v1 → v2). */
import { Effect, Schema, SchemaTransformation } from "effect"
import { Entity, PositiveSafeInt, SafeInt, reject, tagged } from "../../index.js"

export const CounterState = Schema.Struct({ value: SafeInt })
export type CounterState = typeof CounterState.Type

export const Increment = tagged("Increment", { by: PositiveSafeInt, reason: Schema.optionalKey(Schema.String) })
export const Decrement = tagged("Decrement", { by: PositiveSafeInt })
export const ResetCounter = tagged("Reset", {})
export const CounterCommand = Schema.Union([Increment, Decrement, ResetCounter])
export type CounterCommand = typeof CounterCommand.Type

export const Incremented = tagged("Incremented", { by: PositiveSafeInt, reason: Schema.NullOr(Schema.String) })
export const Decremented = tagged("Decremented", { by: PositiveSafeInt })
export const WasReset = tagged("Reset", {})
export const CounterEvent = Schema.Union([Incremented, Decremented, WasReset])
export type CounterEvent = typeof CounterEvent.Type

/** Incremented v1 carried only `{by}`; v2 added `reason`, which old rows read as null. */
export const IncrementedV1 = Schema.Struct({ by: PositiveSafeInt })
const IncrementedV2Data = Schema.Struct({ by: PositiveSafeInt, reason: Schema.NullOr(Schema.String) })
export const IncrementedV1ToV2 = IncrementedV1.pipe(
  Schema.decodeTo(
    IncrementedV2Data,
    SchemaTransformation.transform({
      decode: (v1): typeof IncrementedV2Data.Encoded => ({ by: v1.by, reason: null }),
      encode: (v2) => ({ by: v2.by }),
    }),
  ),
)

const outOfRange = (value: number, by: number, op: string) =>
  reject("out_of_range", `${op} ${by} would take the counter from ${value} outside the safe integer range`, {
    value,
    by,
  })

export const Counter = Entity.make({
  kind: "counter",
  state: CounterState,
  initial: { value: 0 },
  commands: CounterCommand,
  events: CounterEvent,
  upcasts: { Incremented: [IncrementedV1ToV2] },
  decide: (state: CounterState, command: CounterCommand) => {
    switch (command.type) {
      case "Increment":
        return Number.isSafeInteger(state.value + command.by)
          ? Effect.succeed([{ type: "Incremented", by: command.by, reason: command.reason ?? null } as const])
          : outOfRange(state.value, command.by, "Increment by")
      case "Decrement":
        return Number.isSafeInteger(state.value - command.by)
          ? Effect.succeed([{ type: "Decremented", by: command.by } as const])
          : outOfRange(state.value, command.by, "Decrement by")
      case "Reset":
        return Effect.succeed([{ type: "Reset" } as const])
      default:
        return command satisfies never
    }
  },
  evolve: (state: CounterState, event: CounterEvent): CounterState => {
    switch (event.type) {
      case "Incremented":
        return { value: state.value + event.by }
      case "Decremented":
        return { value: state.value - event.by }
      case "Reset":
        return { value: 0 }
      default:
        return event satisfies never
    }
  },
})
