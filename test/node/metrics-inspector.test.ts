// The inspector's metrics panel in a real browser (Chromium, as test/node/inspector.test.ts runs it),
// against the shared Worker (auth off: every scope, so the operator's GET /v1/admin/metrics answers).
// The counts are at least what this file sent: other files share the Worker.
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

it("polls GET /v1/admin/metrics and draws requests/s and p95 over the last minutes", async () => {
  const base = sharedWorkerBase()
  const id = `metrics-panel-${Date.now()}`
  for (const by of [1, 2, 3]) {
    const sent = await fetch(`${base}/v1/counter/${id}/commands`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ type: "Increment", by }),
    })
    expect(sent.status).toBe(200)
  }
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
