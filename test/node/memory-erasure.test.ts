// Forget erases a memory's content from the object's files on disk, not only from its rows. The Worker
// runs under wrangler with storage persisted to a temporary directory, whose files are searched byte by byte.
import { randomBytes } from "node:crypto"
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { afterAll, describe, expect, it } from "vitest"
import { unstable_dev, type Unstable_DevWorker } from "wrangler"

const persistTo = mkdtempSync(join(tmpdir(), "emberlog-erasure-"))
const scratch = mkdtempSync(join(tmpdir(), "emberlog-erasure-copy-"))
let worker: Unstable_DevWorker | undefined
let base = ""

const start = async () => {
  worker = await unstable_dev("src/app.ts", {
    config: "wrangler.toml",
    ip: "127.0.0.1",
    persistTo,
    logLevel: "none",
    vars: { AUTH_MODE: "off" },
    experimental: { disableExperimentalWarning: true },
  })
  base = `http://${worker.address}:${worker.port}`
}
const stop = async () => {
  await worker?.stop()
  worker = undefined
}

afterAll(async () => {
  await stop()
  rmSync(persistTo, { recursive: true, force: true })
  rmSync(scratch, { recursive: true, force: true })
})

const files = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : [path]
  })

const offsets = (bytes: Buffer, needle: string) => {
  const found: Array<number> = []
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1)) found.push(at)
  return found
}

/** The stored files (relative paths) holding `needle`. */
const holding = (needle: string) =>
  files(persistTo)
    .filter((path) => offsets(readFileSync(path), needle).length > 0)
    .map((path) => path.slice(persistTo.length + 1))

/**
 * The memory object's database as SQLite's next checkpoint leaves it: a copy of the file and its WAL,
 * opened and closed by Node's SQLite, which copies every page's latest version into the file.
 */
const checkpointed = () => {
  const [file, ...others] = files(persistTo).filter((path) => /EmberlogActor\/[0-9a-f]{64}\.sqlite$/.test(path))
  expect(others).toEqual([])
  const copy = join(scratch, `${Date.now()}.sqlite`)
  copyFileSync(file!, copy)
  if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`)
  const db = new DatabaseSync(copy)
  db.prepare("SELECT count(*) FROM sqlite_schema").get()
  db.close()
  expect(existsSync(`${copy}-wal`)).toBe(false)
  return copy
}

const post = async (ns: string, command: unknown) => {
  const response = await fetch(`${base}/v1/memory/${ns}/commands`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(command),
  })
  return { status: response.status, body: (await response.json()) as any }
}

describe("Forget on disk", () => {
  it("leaves no copy of a forgotten memory's text in the database, R2 or any other file but the WAL", async () => {
    const ns = `erase-${Date.now()}`
    const token = `qz${randomBytes(8).toString("hex")}`
    const word = `zb${randomBytes(8).toString("hex")}`
    const phrase = `remember ${token} for later`
    await start()
    const small = await post(ns, { type: "Store", content: phrase, tags: ["secret"] })
    expect(small.status).toBe(200)
    // Over 1 MiB: the whole text goes to R2, its first MiB to SQLite.
    const large = await post(ns, { type: "Store", content: `${word} `.repeat(70_000) })
    expect(large.status).toBe(200)
    await stop()
    // The search can see what it must later not find.
    expect(offsets(readFileSync(checkpointed()), phrase).length).toBeGreaterThan(0)
    expect(holding(`${word} ${word}`).some((path) => path.startsWith("v3/r2/"))).toBe(true)

    await start()
    for (const stored of [small, large]) {
      expect((await post(ns, { type: "Forget", hash: stored.body.events[0].data.hash })).status).toBe(200)
    }
    await stop()
    await start()
    const state = (await (await fetch(`${base}/v1/memory/${ns}`)).json()) as any
    expect(state).toMatchObject({ version: 4, state: { items: {} } })
    // Not the token itself: wrangler's local trace store keeps request URLs.
    expect(((await (await fetch(`${base}/v1/memory/${ns}/search?q=remember`)).json()) as any).items).toEqual([])
    await stop()

    // What the platform keeps is the WAL's frames written before the Forget (README, "Memory stores").
    for (const needle of [token, word]) {
      expect(holding(needle).filter((path) => !/EmberlogActor\/[0-9a-f]{64}\.sqlite-wal$/.test(path))).toEqual([])
    }
    const copy = checkpointed()
    const bytes = readFileSync(copy)
    // The text is nowhere: neither in a row nor in freed pages or free space.
    expect(offsets(bytes, phrase)).toEqual([])
    expect(offsets(bytes, `${word} ${word}`)).toEqual([])
    const db = new DatabaseSync(copy)
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>
    for (const { name } of tables) {
      const rows = JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all(), (_, v) =>
        v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : typeof v === "bigint" ? String(v) : v,
      )
      expect(rows.includes(token) || rows.includes(word), name).toBe(false)
    }
    // Only fragments of the full-text index's pages, outside any row, may still hold a word.
    const pages = new Map(
      (db.prepare("SELECT name, pageno FROM dbstat").all() as Array<{ name: string; pageno: number }>).map((row) => [
        row.pageno,
        row.name,
      ]),
    )
    db.close()
    const pageSize = 4096
    for (const needle of [token, word]) {
      const where = new Set(offsets(bytes, needle).map((at) => pages.get(Math.floor(at / pageSize) + 1) ?? "free page"))
      expect([...where].filter((name) => name !== "memory_fts_data")).toEqual([])
    }
  })
})
