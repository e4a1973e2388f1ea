// One Durable Object class hosts every kind (issue 11): an object learns tenant, kind and id from
// its name, two kinds' actors with one id share nothing, and a name whose kind is not hosted
// answers every call with `unknown_kind` and creates nothing.
import { env, runInDurableObject } from "cloudflare:test"
import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { defineCapability } from "../../src/actors/capability.js"
import { actorHostClass, type ActorApi, type ActorEnv } from "../../src/actors/durable-actor.js"
import { Entity, tagged } from "../../src/domain/index.js"
import { actorApi, actorObject, actorObjectId, freshId, get, json, send } from "./helpers.js"

const storageOf = (stub: DurableObjectStub) =>
  runInDurableObject(stub, async (_instance: unknown, state: DurableObjectState) => ({
    tables: state.storage.sql
      .exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
      .toArray()
      .map((row) => row.name),
    alarm: await state.storage.getAlarm(),
  }))

describe("the one actor class", () => {
  it("hosts two kinds with the same id as two objects that share no state", async () => {
    const id = freshId("same")
    expect((await send("counter", id, { type: "Increment", by: 2 })).status).toBe(200)
    expect((await send("room", id, { type: "Join", name: "alice" })).status).toBe(200)
    expect((await send("room", id, { type: "Join", name: "bob" })).status).toBe(200)
    expect((await json(await get(`/v1/counter/${id}`))).body).toMatchObject({ version: 1, state: { value: 2 } })
    const room = (await json(await get(`/v1/room/${id}`))).body
    expect(room).toMatchObject({ version: 2, state: { members: { alice: 1, bob: 1 } } })
    const counterEvents = (await json(await get(`/v1/counter/${id}/events`))).body.events
    expect(counterEvents.map((event: { type: string }) => event.type)).toEqual(["Incremented"])
    expect(actorObjectId("counter", id).equals(actorObjectId("room", id))).toBe(false)
    // Each object knows its own kind and id (the entity's id is the object's, from its name).
    const kindAndId = (kind: string) =>
      runInDurableObject(actorObject(kind, id), (instance: unknown) => {
        const served = (instance as { served: { kind: { entity: { kind: string } }; id: string; tenant: string } })
          .served
        return { kind: served.kind.entity.kind, id: served.id, tenant: served.tenant }
      })
    expect(await kindAndId("counter")).toEqual({ kind: "counter", id, tenant: "public" })
    expect(await kindAndId("room")).toEqual({ kind: "room", id, tenant: "public" })
  })

  it("answers every call on an object of a kind it does not host with unknown_kind, creating nothing", async () => {
    const id = freshId("unknown")
    const actor = actorApi("not-a-kind", id)
    const unknown = { ok: false, error: { _tag: "InvalidInput", code: "unknown_kind" } }
    expect(await actor.command({ command: { type: "Increment", by: 1 } })).toMatchObject(unknown)
    expect(await actor.readState({})).toMatchObject(unknown)
    expect(await actor.readEvents(0, 10)).toMatchObject(unknown)
    expect(await actor.invoke("search", [{ limit: 1, offset: 0 }])).toMatchObject(unknown)
    const thrown = async (call: () => Promise<unknown>) => {
      try {
        await call()
        return undefined
      } catch (error) {
        return (error as Error).message
      }
    }
    expect(await thrown(() => actor.head())).toMatch(/not-a-kind/)
    expect(await thrown(() => actor.verifyLog())).toMatch(/not-a-kind/)
    const refused = await json(
      await actor.fetch(new Request("https://actor/ws", { headers: { Upgrade: "websocket" } })),
    )
    expect(refused).toMatchObject({ status: 400, body: { error: { code: "unknown_kind" } } })
    expect(await storageOf(actorObject("not-a-kind", id))).toEqual({ tables: [], alarm: null })
    // A name that is not tenant/kind/id at all is refused the same way.
    const unnamed = env.EMBERLOG_ACTOR.getByName(`no-kind-${id}`)
    expect(await (unnamed as unknown as ActorApi).command({ command: {} })).toMatchObject(unknown)
    expect(await storageOf(unnamed)).toEqual({ tables: [], alarm: null })
  })

  it("dispatches invoke to a capability's methods, and refuses a method no capability has", async () => {
    const id = freshId("invoke")
    expect(await actorApi("counter", id).invoke("search", [])).toMatchObject({
      ok: false,
      error: { _tag: "InvalidInput", code: "unknown_method" },
    })
    expect(await actorApi("memory", id).invoke("item", ["0".repeat(64)])).toEqual({ ok: true, value: undefined })
    expect(await actorApi("memory", id).invoke("toString")).toMatchObject({
      ok: false,
      error: { code: "unknown_method" },
    })
    expect(await storageOf(actorObject("memory", id))).toEqual({ tables: [], alarm: null })
  })

  it("hands commits made while capabilities start to every capability's committed hook, the committing one's too", async () => {
    const Note = tagged("Note", { text: Schema.String })
    const Noted = tagged("Noted", { text: Schema.String })
    const Notes = Entity.make({
      kind: "notes",
      state: Schema.Struct({ notes: Schema.Number }),
      initial: { notes: 0 },
      commands: Note,
      events: Noted,
      decide: (_state, command) => Effect.succeed([{ type: "Noted", text: command.text } as const]),
      evolve: (state) => ({ notes: state.notes + 1 }),
      topics: () => [],
    })
    const heard: Array<string> = []
    const hearing = (name: string) => (events: ReadonlyArray<{ data: unknown }>) => {
      for (const event of events) heard.push(`${name}: ${(event.data as { text: string }).text}`)
    }
    // The first commits while it starts (as presence's reconcile commits Leave), before the second has started.
    const reconciling = defineCapability({
      name: "reconciling",
      start: (host) => {
        host.commit({ command: { type: "Note", text: "reconciled" }, principal: "system", internal: true })
        return { committed: hearing("reconciling") }
      },
    })
    const later = defineCapability({ name: "later", start: () => ({ committed: hearing("later") }) })
    const Actor = actorHostClass([{ entity: Notes, capabilities: [reconciling, later] }])
    const id = freshId("notes")
    const version = await runInDurableObject(
      actorObject("notes", id),
      async (_instance: unknown, state: DurableObjectState) => {
        const actor = new Actor(state, env as unknown as ActorEnv)
        // Recovery and the capabilities' start run in the constructor's blockConcurrencyWhile: wait for it.
        await state.blockConcurrencyWhile(async () => undefined)
        expect(heard).toEqual(["reconciling: reconciled", "later: reconciled"])
        // Once started, commits reach both at once, as before.
        actor.commit({ command: { type: "Note", text: "after" } })
        return actor.head()
      },
    )
    expect(version).toBe(2)
    expect(heard).toEqual(["reconciling: reconciled", "later: reconciled", "reconciling: after", "later: after"])
  })
})
