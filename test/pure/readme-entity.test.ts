// The entity and the harness call shown in the README, kept compiling and passing.
import { Effect, Schema } from "effect"
import fc from "fast-check"
import { expect, it } from "vitest"
import { Entity, reject, tagged } from "../../src/domain/index.js"
import { checkEntity } from "../../src/testing/index.js"

const Add = tagged("Add", { item: Schema.NonEmptyString })
const Added = tagged("Added", { item: Schema.String })
export const Cart = Entity.make({
  kind: "cart",
  state: Schema.Struct({ items: Schema.Array(Schema.String) }),
  initial: { items: [] },
  commands: Schema.Union([Add]),
  events: Schema.Union([Added]),
  decide: (state, command) =>
    state.items.length >= 100
      ? reject("cart_full", "A cart holds 100 items")
      : Effect.succeed([{ type: "Added", item: command.item } as const]),
  evolve: (state, event) => ({ items: [...state.items, event.item] }),
})

const commands = fc.record({ type: fc.constant("Add"), item: fc.string() })

it("cart is sound", () => checkEntity(Cart, { commands }))

it("cart refuses the 101st item", () => {
  const full = { items: Array.from({ length: 100 }, (_, i) => `item ${i}`) }
  expect(Effect.runSyncExit(Cart.decide(full, { type: "Add", item: "one more" }))._tag).toBe("Failure")
})
