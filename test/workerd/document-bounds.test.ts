// A document's state is one snapshot row (2 MB at most in production) and part of every
// reply: it stays bounded in bytes whatever the edits, and text the transform cannot count
// (unpaired surrogates) is refused at the door instead of failing later edits.
import { env, evictDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { MAX_STATE_BYTES } from "../../src/kinds/document/entity.js"
import { jsonBytes } from "../../src/domain/json-size.js"
import { actorObject, freshId, get, json, send } from "./helpers.js"

const edit = (baseVersion: number, ...ops: Array<Record<string, unknown>>) => ({ type: "Edit", baseVersion, ops })

describe("document bounds", () => {
  it("keeps state and snapshot under the row limit when every edit inserts and deletes 200 KB", async () => {
    const id = freshId("doc-big")
    expect((await send("document", id, { type: "Create", title: "t", content: "hello" })).status).toBe(200)
    const big = "x".repeat(200_000)
    const insertAndDelete = [
      { op: "insert", at: 0, text: big },
      { op: "delete", at: 0, length: big.length },
    ]
    let version = 1
    // 210 edits: a snapshot is written at version 200, and replies carry the state each time.
    for (let i = 0; i < 210; i++) {
      const reply = await json(await send("document", id, edit(version, ...insertAndDelete)))
      expect(reply.status, JSON.stringify(reply.body).slice(0, 300)).toBe(200)
      expect(jsonBytes(reply.body.state)).toBeLessThanOrEqual(MAX_STATE_BYTES)
      version = reply.body.version
    }
    // Edits within the window still merge; a base the window forgot is refused with 422.
    const a = await json(await send("document", id, edit(version, { op: "insert", at: 0, text: ">" })))
    const b = await json(await send("document", id, edit(version, { op: "insert", at: 5, text: "!" })))
    expect([a.status, b.status]).toEqual([200, 200])
    expect(b.body.state.content).toBe(">hello!")
    const old = await json(await send("document", id, edit(version - 20, { op: "insert", at: 0, text: "y" })))
    expect(old).toMatchObject({ status: 422, body: { error: { code: "base_version_too_old" } } })

    // After a restart the state comes back from the snapshot (it was written: it fits a row).
    await evictDurableObject(actorObject("document", id))
    const read = await json(await get(`/v1/document/${id}`))
    expect(read).toMatchObject({ status: 200, body: { version: version + 2, state: { content: ">hello!" } } })
  }, 120_000)

  it("refuses unpaired surrogates with 400 and a path, and concurrent edits keep landing", async () => {
    const id = freshId("doc-sur")
    expect((await send("document", id, { type: "Create", title: "t", content: "ab😀" })).status).toBe(200)
    const lone = await json(await send("document", id, edit(1, { op: "insert", at: 0, text: "\ud83d" })))
    expect(lone.status).toBe(400)
    expect(lone.body.error.code).toBe("invalid_command")
    expect(JSON.stringify(lone.body.error)).toContain("unpaired surrogates")
    expect(lone.body.error.details.issues.map((issue: any) => issue.path)).toContainEqual(["ops", 0, "text"])
    for (const command of [
      { type: "Create", title: "t", content: "x\udc00" },
      { type: "Rename", title: "\ud83d" },
    ]) {
      expect((await send("document", freshId("doc-sur"), command)).status).toBe(400)
    }
    expect((await send("document", id, edit(1, { op: "insert", at: 3, text: "😀" }))).status).toBe(200)
    const concurrent = await json(await send("document", id, edit(1, { op: "insert", at: 0, text: ">" })))
    expect(concurrent).toMatchObject({ status: 200, body: { state: { content: ">ab😀😀" } } })
    expect((await json(await get(`/v1/document/${id}`))).body.version).toBe(3)
  })
})
