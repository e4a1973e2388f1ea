import { createServer } from "node:net"
import { inject } from "vitest"
import { unstable_dev, type Unstable_DevWorker } from "wrangler"

/**
 * The Worker as `wrangler dev` serves it, with the given vars. AUTH_MODE is always set:
 * a developer's local .dev.vars (AUTH_MODE=off) must not decide what a test runs with.
 */
export const startWorker = async (
  vars: Record<string, string> = {},
): Promise<{ worker: Unstable_DevWorker; base: string }> => {
  const worker = await unstable_dev("src/app.ts", {
    config: "wrangler.toml",
    ip: "127.0.0.1",
    persist: false,
    logLevel: "none",
    vars: { AUTH_MODE: "off", ...vars },
    experimental: { disableExperimentalWarning: true },
  })
  return { worker, base: `http://${worker.address}:${worker.port}` }
}

/** The base URL of the Worker every node test file shares (test/node/global-setup.ts): default settings, auth off. */
export const sharedWorkerBase = (): string => inject("sharedWorkerBase")

/** A TCP port nothing listens on now (for a server a test starts itself). */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
