// The inspector in a real browser: Debian's Chromium driven by playwright-core against the
// Worker served by wrangler. `.ci/run` installs chromium when it is missing.
import { statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SignJWT } from "jose"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { Unstable_DevWorker } from "wrangler"
import { launchChromium } from "./chromium.js"
import { startWorker } from "./dev-worker.js"

const SECRET = `inspector-test-${crypto.randomUUID()}`

let open: Unstable_DevWorker
let secured: Unstable_DevWorker
let browser: Browser

const baseOf = (worker: Unstable_DevWorker) => `http://${worker.address}:${worker.port}`
const send = (base: string, path: string, command: unknown, token?: string) =>
  fetch(`${base}${path}/commands`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(command),
  })
const rows = (page: Page) => page.locator("#events tr")

beforeAll(async () => {
  ;[open, secured, browser] = await Promise.all([
    // Not the shared Worker: the topic tail shows the newest 50 entries, which other files'
    // counters there would push out.
    startWorker().then((started) => started.worker),
    startWorker({ AUTH_MODE: "on", JWT_SECRET: SECRET }).then((started) => started.worker),
    launchChromium(),
  ])
}, 60_000)

afterAll(async () => {
  await Promise.all([browser?.close(), open?.stop(), secured?.stop()])
})

it("shows an actor's state, chain and events, follows new events live, travels in time and diffs", async () => {
  const base = baseOf(open)
  const id = `inspect-${Date.now()}`
  for (const by of [1, 2, 3])
    expect((await send(base, `/v1/counter/${id}`, { type: "Increment", by })).status).toBe(200)
  const page = await browser.newPage()
  await page.goto(`${base}/inspect/counter/${id}`)
  await expect.poll(() => page.textContent("#version")).toBe("3")
  await expect.poll(() => page.textContent("#chain")).toContain("ok")
  await expect.poll(() => rows(page).count()).toBe(3) // the page fills the events after the head and chain
  expect(await rows(page).first().textContent()).toContain("Incremented")
  expect(JSON.parse((await page.textContent("#state"))!)).toEqual({ value: 6 })
  await expect.poll(() => page.textContent("#live")).toBe("live")

  // A command from the page, and one from elsewhere: both arrive over the actor's WebSocket.
  await page.fill("#command", '{"type": "Increment", "by": 10}')
  await page.click("#send")
  await send(base, `/v1/counter/${id}`, { type: "Decrement", by: 4 })
  await expect.poll(() => rows(page).count()).toBe(5)
  await expect.poll(() => page.textContent("#version")).toBe("5")
  expect(await rows(page).first().textContent()).toContain("Decremented")
  await expect.poll(async () => JSON.parse((await page.textContent("#state"))!)).toEqual({ value: 12 })
  // The status says which version the chain was verified at: not the live events since.
  expect(await page.textContent("#chain")).toBe("ok · verified through version 3 · now at version 5")
  await page.click("#verify") // the chain is walked on open and on request, not per event
  await expect.poll(() => page.textContent("#chain")).toBe("ok · verified through version 5")

  // Time travel: the slider shows the state at seq 2, with what changed since seq 0.
  await page.fill("#diff-from", "0")
  await page.$eval("#slider", (slider: any) => {
    slider.value = "2"
    slider.dispatchEvent(new Event("input"))
  })
  await expect.poll(async () => JSON.parse((await page.textContent("#past-state"))!)).toEqual({ value: 3 })
  await expect.poll(() => page.textContent("#diff")).toContain(".value: 0 → 3")
  expect(await page.textContent("#past-label")).toBe("State at seq 2 of 5")

  // Clicking an event shows the state after it.
  await rows(page).last().click()
  await expect.poll(async () => JSON.parse((await page.textContent("#past-state"))!)).toEqual({ value: 1 })

  // The counter topic as a live tail.
  await page.selectOption("#topic", "counter")
  await page.click("#tail")
  await expect.poll(() => page.locator("#topic-entries li", { hasText: id }).count(), { timeout: 10_000 }).toBe(5)

  const screenshot = join(tmpdir(), `emberlog-inspector-${process.pid}.png`)
  await page.screenshot({ path: screenshot, fullPage: true })
  expect(statSync(screenshot).size).toBeGreaterThan(10_000)
  await page.close()
}, 60_000)

it("pages long logs 50 events at a time, newest first", async () => {
  const base = baseOf(open)
  const id = `inspect-long-${Date.now()}`
  for (let i = 0; i < 6; i++)
    await Promise.all(Array.from({ length: 10 }, () => send(base, `/v1/counter/${id}`, { type: "Increment", by: 1 })))
  const page = await browser.newPage()
  await page.goto(`${base}/inspect/counter/${id}`)
  await expect.poll(() => rows(page).count()).toBe(50)
  expect(await rows(page).first().getAttribute("data-seq")).toBe("60")
  await page.click("#older")
  await expect.poll(() => rows(page).count()).toBe(60)
  expect(await rows(page).last().getAttribute("data-seq")).toBe("1")
  expect(await page.isHidden("#older")).toBe(true)
  await page.close()
}, 60_000)

it("fills its pages when the server ends them early because the events are large", async () => {
  const base = baseOf(open)
  const id = `inspect-large-${Date.now()}`
  const reason = "r".repeat(150_000)
  // 50 events of 150 KB are 7.5 MB, more than one page of the API holds: the script follows next.
  for (let i = 0; i < 11; i++) {
    const command = { type: "Increment", by: 1, reason }
    const sent = await Promise.all(Array.from({ length: 10 }, () => send(base, `/v1/counter/${id}`, command)))
    expect(sent.map((response) => response.status)).toEqual(Array(10).fill(200))
  }
  const page = await browser.newPage()
  await page.goto(`${base}/inspect/counter/${id}`)
  await expect.poll(() => rows(page).count()).toBe(50)
  await page.click("#older")
  await expect.poll(() => rows(page).count()).toBe(100)
  const seqs = await rows(page).evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute("data-seq"))))
  expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => 110 - i))
  await page.close()
}, 90_000)

it("with auth on, reads and follows with the token from its token field (session storage)", async () => {
  const base = baseOf(secured)
  const id = `inspect-auth-${Date.now()}`
  const token = await new SignJWT({ sub: "auditor", scope: "read write admin" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(SECRET))
  expect((await send(base, `/v1/counter/${id}`, { type: "Increment", by: 7 }, token)).status).toBe(200)
  const page = await browser.newPage()
  await page.goto(`${base}/inspect/counter/${id}`)
  await expect.poll(() => page.textContent("#status")).toContain("unauthenticated")
  await page.fill("#token", token)
  await page.dispatchEvent("#token", "change")
  expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem("emberlog.token"))).toBe(token)
  await page.click("button[type=submit]")
  await expect.poll(() => page.textContent("#version")).toBe("1")
  await expect.poll(() => page.textContent("#live")).toBe("live")
  await send(base, `/v1/counter/${id}`, { type: "Increment", by: 1 }, token)
  await expect.poll(() => rows(page).count()).toBe(2)
  expect(await rows(page).first().textContent()).toContain("auditor")
  await page.close()
}, 60_000)

it("picks an actor from the tenant's directory instead of typing its id", async () => {
  const base = baseOf(secured)
  const tenant = `picker-${Date.now()}`
  const token = await new SignJWT({ sub: "picker", tenant, scope: "read write" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(SECRET))
  for (const id of ["beta", "alpha", "gamma"])
    expect((await send(base, `/v1/counter/${id}`, { type: "Increment", by: 1 }, token)).status).toBe(200)
  expect((await send(base, "/v1/document/notes", { type: "Create", title: "t", content: "x" }, token)).status).toBe(200)
  const page = await browser.newPage()
  await page.goto(`${base}/inspect`)
  await page.fill("#token", token)
  await page.dispatchEvent("#token", "change")
  // The directory is fed through the outbox, a few ms behind the commits.
  const listed = () => page.locator("#picker a").allTextContents()
  await expect
    .poll(async () => (await page.click("#picker-refresh"), await listed()))
    .toEqual(["alpha", "beta", "gamma"])
  expect(await page.locator("#actor-ids option").evaluateAll((options) => options.map((o: any) => o.value))).toEqual([
    "alpha",
    "beta",
    "gamma",
  ])
  await page.fill("#picker-prefix", "g")
  await expect.poll(listed).toEqual(["gamma"])
  await page.fill("#picker-prefix", "")
  await page.selectOption("#kind", "document")
  await expect.poll(listed).toEqual(["notes"])
  await page.click("#picker a")
  await expect.poll(() => page.textContent("#status")).toBe("Opened document/notes")
  await expect.poll(() => page.textContent("#version")).toBe("1")
  await page.close()
}, 60_000)
