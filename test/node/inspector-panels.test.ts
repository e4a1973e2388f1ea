// The inspector's usage and metrics panels in a real browser (Chromium, as test/node/inspector.test.ts
// runs it), against the shared Worker: auth off, so the tenant is the local one every node file shares
// (and every scope: the operator's GET /v1/admin/metrics answers); counts are at least what this file did.
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

/** Three increments of a fresh counter, so the panels have this file's commands to show. */
const incrementThrice = async (base: string, prefix: string): Promise<string> => {
  const id = `${prefix}-${Date.now()}`
  for (const by of [1, 2, 3]) {
    const sent = await fetch(`${base}/v1/counter/${id}/commands`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "Increment", by }),
    })
    expect(sent.status).toBe(200)
  }
  return id
}

it("shows the tenant's usage by day, with totals, and says why a range is refused", async () => {
  const base = sharedWorkerBase()
  await incrementThrice(base, "usage-panel")
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

it("polls GET /v1/admin/metrics and draws requests/s and p95 over the last minutes", async () => {
  const base = sharedWorkerBase()
  const id = await incrementThrice(base, "metrics-panel")
  const metrics = (await (await fetch(`${base}/v1/admin/metrics`)).json()) as {
    recent: { slots: Array<unknown> }
    outboxLag: { reportedAt: string | null }
  }
  // Under wrangler dev the actors share the Worker's isolate: their outbox reports reach its metrics.
  expect(metrics.outboxLag.reportedAt).toMatch(/^\d{4}-\d\d-\d\dT/)
  const page = await browser.newPage()
  await page.goto(`${base}/inspect`)
  await page.click("#metrics-watch")
  await expect.poll(() => page.textContent("#metrics-status")).toMatch(/^updated /)
  expect(Number(await page.getAttribute("#metrics-summary", "data-requests"))).toBeGreaterThanOrEqual(4)
  expect(await page.textContent("#metrics-summary")).toMatch(/commands \d+ \(\d+ events\)/)
  expect(await page.locator("#metrics-latency tr td:first-child").allTextContents()).toContain("command")
  // One point per slot of the last minutes, the newest (with this file's requests) above the baseline.
  const points = ((await page.getAttribute("#metrics-rate polyline", "points")) ?? "").split(" ")
  expect(points.length).toBeGreaterThanOrEqual(metrics.recent.slots.length)
  expect(Number(points[points.length - 1]!.split(",")[1])).toBeLessThan(96)
  // One line a run of slots with requests (the page's polls leave none empty since it opened).
  expect(await page.locator("#metrics-p95 polyline").count()).toBeGreaterThanOrEqual(1)
  expect(await page.textContent("#metrics-rate text")).toMatch(/^max [\d.]+ req\/s$/)
  // The panel polls: its count goes on without another click.
  const before = Number(await page.getAttribute("#metrics-summary", "data-requests"))
  await fetch(`${base}/v1/counter/${id}`)
  await expect
    .poll(async () => Number(await page.getAttribute("#metrics-summary", "data-requests")))
    .toBeGreaterThan(before + 1)
  // Stopped, it polls no more; a slot without requests (no p95) breaks the line there.
  await page.click("#metrics-watch")
  expect(await page.textContent("#metrics-watch")).toBe("Watch metrics")
  // The page's own drawChart (a global of its script), run in the page: this file has no DOM types.
  const drawn = await page.evaluate(`(() => {
    const svg = document.getElementById("metrics-p95")
    drawChart(svg, [1, null, 2, 3], 4, "ms")
    return { lines: svg.querySelectorAll("polyline").length, dots: svg.querySelectorAll("circle").length }
  })()`)
  expect(drawn).toEqual({ lines: 2, dots: 3 })
  const stopped = Number(await page.getAttribute("#metrics-summary", "data-requests"))
  await new Promise((resolve) => setTimeout(resolve, 2_500))
  expect(Number(await page.getAttribute("#metrics-summary", "data-requests"))).toBe(stopped)
  await page.close()
}, 30_000)
