import { SELF } from "cloudflare:test"
import { expect, it } from "vitest"

it("serves health", async () => {
  const res = await SELF.fetch("http://x/health")
  expect(await res.json()).toMatchObject({ status: "ok" })
})
