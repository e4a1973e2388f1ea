/**
 * Effects whose whole work is one synchronous body (a SQLite statement, a fresh id), marked so
 * that the command path can call the body where it stands instead of starting a fiber to run
 * it: in workerd a fiber costs about 0.8 µs, and one command runs several of these (issue 13,
 * bench/RESULTS.md "What binds a busy actor"). Anywhere else they are ordinary effects.
 */
import { Effect } from "effect"

const directBodyKey = Symbol.for("emberlog/directBody")

/** `Effect.try` whose body may also be called directly: it throws what `onError` makes of a throw. */
export const trySync = <A, E>(body: () => A, onError: (cause: unknown) => E): Effect.Effect<A, E> => {
  const direct = () => {
    try {
      return body()
    } catch (cause) {
      throw onError(cause)
    }
  }
  return Object.assign(Effect.try({ try: body, catch: onError }), { [directBodyKey]: direct })
}

/** `Effect.sync` whose body may also be called directly. */
export const sync = <A>(body: () => A): Effect.Effect<A> => Object.assign(Effect.sync(body), { [directBodyKey]: body })

/** The body of an effect made by `trySync` or `sync` (running it is running the effect), else undefined. */
export const directBody = <A>(effect: Effect.Effect<A, unknown, unknown>): (() => A) | undefined =>
  (effect as { readonly [directBodyKey]?: () => A })[directBodyKey]
