// JWT_JWKS_URL: the Worker fetches the key set from a (local) HTTP server and verifies RS256 tokens with it.
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { SignJWT, exportJWK, generateKeyPair } from "jose"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { Unstable_DevWorker } from "wrangler"
import { startWorker } from "./dev-worker.js"

let worker: Unstable_DevWorker
let jwksServer: Server
let keys: Awaited<ReturnType<typeof generateKeyPair>>
let fetches = 0

beforeAll(async () => {
  keys = await generateKeyPair("RS256")
  const jwk = { ...(await exportJWK(keys.publicKey)), kid: "test-key", alg: "RS256", use: "sig" }
  jwksServer = createServer((_request, response) => {
    fetches++
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }))
  })
  await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve))
  const { port } = jwksServer.address() as AddressInfo
  worker = (
    await startWorker({
      AUTH_MODE: "on",
      JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      JWT_ISSUER: "https://issuer.test",
    })
  ).worker
}, 60_000)

afterAll(async () => {
  await worker?.stop()
  jwksServer?.close()
})

it("verifies RS256 tokens against the key set at JWT_JWKS_URL", async () => {
  const sign = (key: CryptoKey, issuer: string) =>
    new SignJWT({ sub: "jwks-user", scope: "read write" })
      .setProtectedHeader({ alg: "RS256", kid: "test-key" })
      .setIssuer(issuer)
      .setExpirationTime("5m")
      .sign(key)
  const get = (token: string) =>
    fetch(`http://${worker.address}:${worker.port}/v1/counter/jwks`, { headers: { Authorization: `Bearer ${token}` } })
  expect((await get(await sign(keys.privateKey, "https://issuer.test"))).status).toBe(200)
  expect(fetches).toBeGreaterThan(0)
  expect((await get(await sign(keys.privateKey, "https://other.test"))).status).toBe(401)
  const stranger = await generateKeyPair("RS256")
  expect((await get(await sign(stranger.privateKey, "https://issuer.test"))).status).toBe(401)
  const metadata = await (
    await fetch(`http://${worker.address}:${worker.port}/.well-known/oauth-protected-resource`)
  ).json()
  expect(metadata).toMatchObject({ authorization_servers: ["https://issuer.test"] })
}, 60_000)
