// Offline replay: the CLI folds an exported log with the server's own domain code,
// reading every stored schema version and checking the hash chain as the server does.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Readable } from "node:stream"
import { afterAll, describe, expect, it } from "vitest"
import { GENESIS_HASH, chainHash } from "../../src/core/hash-chain.js"
import { EXIT, replayLog } from "../../src/cli/main.js"
import { runCli } from "../cli-runner.js"
import { Counter } from "../../src/kinds/counter/entity.js"

const meta = (n: number) => ({
  at: 1_700_000_000_000 + n,
  causationId: null,
  commandId: `c${n}`,
  correlationId: `c${n}`,
  principal: "auditor",
})

/** A log as `emberlog export` writes it: rows as stored, each linked to the one before. */
const chained = (bodies: ReadonlyArray<{ type: string; schemaVersion: number; data: Record<string, unknown> }>) => {
  let prev = GENESIS_HASH
  return bodies.map((body, i) => {
    const event = { seq: i + 1, ...body, meta: meta(i + 1) }
    prev = chainHash(prev, event)
    return { ...event, hash: prev }
  })
}

describe("replayLog", () => {
  it("folds rows of old schema versions through the entity's upcasts and verifies the chain", () => {
    const log = chained([
      { type: "Incremented", schemaVersion: 1, data: { by: 40 } },
      { type: "Incremented", schemaVersion: 2, data: { by: 2, reason: "audit" } },
      { type: "Decremented", schemaVersion: 1, data: { by: 1 } },
    ])
    expect(replayLog(Counter, log)).toEqual({
      kind: "counter",
      version: 3,
      chain: { ok: true, events: 3, head: log[2]!.hash },
      state: { value: 41 },
    })
  })

  it("reports the first event whose hash does not match, and refuses a log with a gap", () => {
    const log = chained([
      { type: "Incremented", schemaVersion: 2, data: { by: 1, reason: null } },
      { type: "Incremented", schemaVersion: 2, data: { by: 1, reason: null } },
    ])
    const forged = [log[0]!, { ...log[1]!, data: { by: 1000, reason: null } }]
    expect(replayLog(Counter, forged).chain).toMatchObject({ ok: false, firstBadSeq: 2 })
    expect(() => replayLog(Counter, [log[1]!])).toThrow("seq 1 is missing")
  })
})

const fixtures = join(import.meta.dirname, "../fixtures")
const scratch = mkdtempSync(join(tmpdir(), "emberlog-replay-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** `emberlog replay - …` with the log on stdin. */
const replay = (log: ReadonlyArray<unknown>, ...args: Array<string>) => {
  const stdin = Readable.from(log.map((row) => `${JSON.stringify(row)}\n`))
  return runCli(["replay", "-", "--json", ...args], { stdin })
}

describe("emberlog replay --module: a kind of the user's own", () => {
  const tallies = chained([
    { type: "Added", schemaVersion: 1, data: { by: 2 } },
    { type: "Added", schemaVersion: 1, data: { by: 3 } },
  ])

  it("folds the log with the entity the module exports, named by --entity or its only one", async () => {
    const expected = {
      kind: "tally",
      version: 2,
      chain: { ok: true, events: 2, head: tallies[1]!.hash },
      state: { total: 5 },
    }
    const named = await replay(tallies, "--entity", "tally", "--module", join(fixtures, "replay-entities.ts"))
    expect({ ...named, stdout: JSON.parse(named.stdout) }).toEqual({ code: EXIT.ok, stdout: expected, stderr: "" })
    const only = await replay(tallies, "--module", join(fixtures, "replay-tally.ts"))
    expect({ ...only, stdout: JSON.parse(only.stdout) }).toEqual({ code: EXIT.ok, stdout: expected, stderr: "" })
    const notes = chained([{ type: "Written", schemaVersion: 1, data: { text: "hi" } }])
    const note = await replay(notes, "--entity", "note", "--module", join(fixtures, "replay-entities.ts"))
    expect(JSON.parse(note.stdout)).toMatchObject({ kind: "note", state: { text: "hi" } })
  })

  it("is a usage error (exit 2) when the module cannot load, exports no such Entity, or several unnamed", async () => {
    const entities = join(fixtures, "replay-entities.ts")
    const none = join(scratch, "none.mjs")
    writeFileSync(none, "export const answer = 42\n")
    const broken = join(scratch, "broken.mjs")
    writeFileSync(broken, "throw new Error('the module is broken')\n")
    const cases: Array<[Array<string>, string]> = [
      [["--module", entities], "exports several entities (tally, note): pick one with --entity"],
      [["--entity", "todo", "--module", entities], 'exports no entity of kind "todo"; it exports: tally, note'],
      [["--module", none], "exports no Entity"],
      [["--module", join(scratch, "missing.mjs")], "No such module"],
      [["--module", broken], "cannot load the module"],
      [["--entity", "tally"], "For a kind of your own, add --module <path>"],
      [[], "replay needs --entity <kind>"],
    ]
    for (const [args, message] of cases) {
      const result = await replay(tallies, ...args)
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: EXIT.usage, stdout: "" })
      expect(result.stderr).toContain(message)
    }
    expect((await replay(tallies, "--module", broken)).stderr).toContain("the module is broken")
  })

  it("says in its help that --module replays a kind of your own, and that the HTTP commands serve any kind", async () => {
    const help = (await runCli(["replay", "--help"])).stdout
    expect(help).toContain("--module PATH")
    expect(help).toContain("--entity todo --module ./src/todo.ts")
    const main = (await runCli(["--help"])).stdout
    expect(main).toContain("tail, state, verify and export work for any kind the server hosts")
    expect(main).not.toMatch(/^Kinds:/m)
  })
})
