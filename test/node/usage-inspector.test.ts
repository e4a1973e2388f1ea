// The inspector's usage panel in a real browser (Chromium, as test/node/inspector.test.ts runs it),
// against the shared Worker: auth off, so the tenant is the local one every node file shares, and
// counts are at least what this file did.
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, expect, it } from "vitest"
import { launchChromium } from "./chromium.js"
import { sharedWorkerBase } from "./dev-worker.js"

let browser: Browser

beforeAll(async () => {
  browser = await launchChromium()
}, 60_000)

afterAll(async () => {
  await browser?.close()
})

it("shows the tenant's usage by day, with totals, and says why a range is refused", async () => {
  const base = sharedWorkerBase()
  const id = `usage-panel-${Date.now()}`
  for (const by of [1, 2, 3]) {
    const sent = await fetch(`${base}/v1/counter/${id}/commands`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "Increment", by }),
    })
    expect(sent.status).toBe(200)
  }
  const today = new Date().toISOString().slice(0, 10)
  const page = await browser.newPage()
  await page.goto(`${base}/inspect`)
  await page.click("#usage-show")
  await expect.poll(() => page.textContent("#usage-status")).toMatch(/^public, \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}$/)
  const rows = page.locator("#usage-days tr")
  // Today's row first (newest first), the total last.
  const cells = await rows.first().locator("td").allTextContents()
  expect(cells[0]).toBe(today)
  expect(Number(cells[2])).toBeGreaterThanOrEqual(3) // commands
  expect(cells[1]).toMatch(/^\d+ \(.*command \d+/) // requests, by route class
  expect((await rows.last().locator("td").allTextContents())[0]).toBe("total")

  await page.fill("#usage-from", "2026-03-02")
  await page.fill("#usage-to", "2026-03-01")
  await page.click("#usage-show")
  await expect.poll(() => page.textContent("#usage-status")).toBe("invalid_query: from must not be after to")
  expect(await page.getAttribute("#usage-status", "class")).toBe("error")
  await page.close()
}, 30_000)
