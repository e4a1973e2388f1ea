import { cloudflareTest } from "@cloudflare/vitest-plugin"
import { defineConfig } from "vitest/config"

/**
 * The peer benchmarks inside workerd (bench/peers.bench.test.ts, bench/inobject.bench.test.ts),
 * on their own Worker. BENCH_ROUNDS overrides the rounds of bench/inobject.bench.test.ts.
 */
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./bench/peers.wrangler.toml" },
      miniflare: { bindings: { BENCH_ROUNDS: process.env.BENCH_ROUNDS ?? "" } },
    }),
  ],
  // One file at a time: benchmarks running side by side on two cores would time each other.
  test: {
    include: ["bench/peers.bench.test.ts", "bench/inobject.bench.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
})
