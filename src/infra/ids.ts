import { Context, Effect, Layer } from "effect"
import { sync } from "../core/sync-effect.js"

/** Where fresh ids come from, so tests can make them predictable. */
export interface IdsShape {
  readonly next: Effect.Effect<string>
}

export class Ids extends Context.Service<Ids, IdsShape>()("emberlog/Ids") {}

export const RandomIds = Layer.succeed(Ids, { next: sync(() => crypto.randomUUID()) })

export const sequentialIds = (prefix = "id-") => {
  let n = 0
  return Layer.succeed(Ids, { next: Effect.sync(() => `${prefix}${++n}`) })
}
