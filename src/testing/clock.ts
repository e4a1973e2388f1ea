import { Clock, Effect } from "effect"

/**
 * A Clock that reads the time from `now()`: fixed for a harness step, or moved by hand
 * in a test. Provide it with `Layer.succeed(Clock.Clock, clockAt(...))`.
 */
export const clockAt = (now: () => number): Clock.Clock => {
  const nanos = () => BigInt(now()) * 1_000_000n
  return {
    currentTimeMillisUnsafe: now,
    currentTimeMillis: Effect.sync(now),
    currentTimeNanosUnsafe: nanos,
    currentTimeNanos: Effect.sync(nanos),
    monotonicTimeNanosUnsafe: nanos,
    monotonicTimeNanos: Effect.sync(nanos),
    sleep: () => Effect.void,
  }
}
