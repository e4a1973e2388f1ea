import { cloudflareTest } from "@cloudflare/vitest-plugin"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: "pure", environment: "node", include: ["test/pure/**/*.test.ts"] },
      },
      {
        // The client as Node users run it, against the Worker served by wrangler.
        test: { name: "node", environment: "node", include: ["test/node/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 60_000 },
      },
      {
        // Auth is off as in local development; test/workerd/auth.test.ts turns it on per request.
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: { AUTH_MODE: "off", MCP_ALLOWED_HOSTS: "emberlog.test", MCP_SESSION_IDLE_MS: "400" } } })],
        test: { name: "workerd", include: ["test/workerd/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 60_000 },
      },
    ],
  },
})
