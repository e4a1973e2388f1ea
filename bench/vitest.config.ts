import { cloudflareTest } from "@cloudflare/vitest-plugin"
import { defineConfig } from "vitest/config"

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./bench/wrangler.toml" },
      // The bench addresses the Worker as http://bench/: a host it serves (auth off refuses others).
      miniflare: { bindings: { AUTH_MODE: "off", MCP_ALLOWED_HOSTS: "bench" } },
    }),
  ],
  // One file at a time: benchmarks running side by side on two cores would time each other.
  test: {
    include: [process.env.BENCH_FILE ?? "bench/**/*.bench.test.ts"],
    exclude: ["bench/peers.bench.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
})
