import { cloudflareTest } from "@cloudflare/vitest-plugin"
import { defineConfig } from "vitest/config"

/** The peer benchmark inside workerd (bench/peers.bench.test.ts), on its own Worker. */
export default defineConfig({
  plugins: [cloudflareTest({ wrangler: { configPath: "./bench/peers.wrangler.toml" } })],
  test: { include: ["bench/peers.bench.test.ts"], testTimeout: 600_000, hookTimeout: 600_000 },
})
