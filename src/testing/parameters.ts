import type fc from "fast-check"

/**
 * Fixed seed by default, so a failure in CI reproduces exactly; fast-check prints the
 * seed and the shrunk counterexample when a property fails. `FC_SEED` / `FC_RUNS`
 * override both for exploring new cases locally.
 */
export const DEFAULT_SEED = 20261122

const fromEnv = (name: string): number | undefined => {
  const value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name]
  return value === undefined || value === "" ? undefined : Number(value)
}

export const propertyParameters = <T>(
  options: { numRuns?: number | undefined; seed?: number | undefined } = {},
): fc.Parameters<T> => ({
  seed: options.seed ?? fromEnv("FC_SEED") ?? DEFAULT_SEED,
  numRuns: fromEnv("FC_RUNS") ?? options.numRuns ?? 200,
  verbose: 1,
})
