/**
 * Races and limits of a tenant's deletion (the review of issue 12, section 4): each test here
 * reproduces one defect and fails without its fix.
 */
import { env, runInDurableObject } from "cloudflare:test"
import { afterEach, describe, expect, it, vi } from "vitest"
import { DeletionCoordinator, deletionFaults, deletionLimits, deletionName } from "../../src/actors/deletion.js"
import { directoryName, TenantDirectory } from "../../src/actors/directory.js"
import { drainOutbox } from "../../src/actors/outbox.js"
import type { ActorCore } from "../../src/actors/actor-core.js"
import { actorName, scopedName } from "../../src/core/names.js"
import { defineKind, kindRegistry } from "../../src/edge/kind.js"
import { counter } from "../../src/kinds/index.js"
import { encodePrincipal, NEW_SESSION_HEADER, PRINCIPAL_JSON_HEADER } from "../../src/edge/mcp/session-object.js"
import { freshId } from "./helpers.js"

const tenantNamed = (name: string) => freshId(name).toLowerCase()
const eventually = <T>(read: () => Promise<T> | T) => expect.poll(read, { timeout: 10_000 })
const directoryOf = (tenant: string): any => env.EMBERLOG_TOPIC.getByName(directoryName(tenant))
const actorOf = (tenant: string, kind: string, id: string): any =>
  env.EMBERLOG_ACTOR.getByName(actorName(tenant, kind, id))
const increment = (actor: any, tenant: string, by: number) =>
  actor.command({ command: { type: "Increment", by }, principal: tenant })
const event = (seq: number) => ({
  seq,
  type: "Incremented",
  data: { by: seq },
  meta: { at: Date.now() },
  schemaVersion: 1,
  hash: "h",
})

afterEach(() => {
  deletionLimits.page = 50
  deletionLimits.pagesPerAlarm = 10
  deletionFaults.failErasures.length = 0
})

describe("the directory during a deletion", () => {
  it("keeps an actor or topic written between its erase and its removal (finding 1)", async () => {
    const tenant = tenantNamed("gen")
    const x = actorOf(tenant, "counter", "x")
    const directory = directoryOf(tenant)
    await increment(x, tenant, 1)
    const topic: any = env.EMBERLOG_TOPIC.getByName(scopedName(tenant, "t1"))
    await topic.deliver({ kind: "counter", id: "y" }, [event(1)])
    await eventually(async () => (await directory.countDirectory()).actor).toBe(1)
    // The coordinator's page: read, erase ... (the tenant writes to both) ... remove what it read.
    const actors = (await directory.listDirectory({ type: "actor", limit: 50 })).entries
    // The counter topic (the actor's events) is listed too; t1 is the one written to again.
    const topics = (await directory.listDirectory({ type: "topic", limit: 50 })).entries.filter(
      (entry: any) => entry.id === "t1",
    )
    expect(topics).toHaveLength(1)
    await x.eraseAll()
    await topic.eraseAll()
    await increment(x, tenant, 1)
    await topic.deliver({ kind: "counter", id: "y" }, [event(1)])
    await eventually(() =>
      runInDurableObject(
        x as DurableObjectStub,
        (_i, s) => s.storage.sql.exec("SELECT count(*) AS n FROM outbox").one().n as number,
      ),
    ).toBe(0)
    expect(await directory.removeFromDirectory([...actors, ...topics])).toBe(0)
    expect(await directory.countDirectory()).toMatchObject({ actor: 1, topic: 2 })
    // Read again, at their new generation, they go.
    const again = (await directory.listDirectory({ type: "actor", limit: 50 })).entries
    expect(await directory.removeFromDirectory(again)).toBe(1)
  })

  it("lists again a topic erased while its registration was on its way (finding 1)", async () => {
    const tenant = tenantNamed("inflight")
    const topic = env.EMBERLOG_TOPIC.getByName(scopedName(tenant, "t1")) as DurableObjectStub
    await runInDurableObject(topic, async (object: unknown) => {
      const instance = object as any
      // The first delivery awaits its registration; the deletion's page read it and erases the topic meanwhile.
      const delivering = instance.deliver({ kind: "counter", id: "y" }, [event(1)])
      await instance.eraseAll()
      await delivering
    })
    // Registered again after the erase: a generation the page did not read, so its removal keeps the row.
    const entries = (await directoryOf(tenant).listDirectory({ type: "topic", limit: 5 })).entries
    expect(entries.map((entry: any) => [entry.id, entry.gen])).toEqual([["t1", 1]])
  })

  it("gives a directory written before generations its column at wake", async () => {
    const tenant = tenantNamed("upgrade")
    const object = env.EMBERLOG_TOPIC.getByName(directoryName(tenant)) as DurableObjectStub
    const rows = await runInDurableObject(object, (_i: unknown, state: DurableObjectState) => {
      state.storage.sql.exec(`CREATE TABLE directory (
        type TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, listed_at INTEGER NOT NULL,
        PRIMARY KEY (type, kind, id)) WITHOUT ROWID`)
      state.storage.sql.exec("INSERT INTO directory VALUES ('actor', 'counter', 'old', 1)")
      const directory = new TenantDirectory(state.storage)
      directory.registerInDirectory([{ type: "actor", kind: "counter", id: "old" }])
      return directory.listDirectory({ type: "actor", limit: 5 }).entries
    })
    expect(rows).toEqual([{ type: "actor", kind: "counter", id: "old", listedAt: 1, gen: 1 }])
  })

  it("checks and erases in one call: a directory with entries is kept, an empty one erased (finding 2)", async () => {
    const tenant = tenantNamed("empty")
    const directory = directoryOf(tenant)
    await directory.registerInDirectory([{ type: "actor", kind: "counter", id: "a" }])
    expect(await directory.eraseIfEmpty()).toEqual({ counts: { actor: 1, topic: 0, "mcp-session": 0 }, erased: false })
    expect((await directory.listDirectory({ type: "actor", limit: 5 })).entries).toHaveLength(1)
    await directory.removeFromDirectory([{ type: "actor", kind: "counter", id: "a" }])
    expect((await directory.eraseIfEmpty()).erased).toBe(true)
    expect(
      await runInDurableObject(directory as DurableObjectStub, (_i, s) =>
        s.storage.sql.exec("SELECT count(*) AS n FROM sqlite_master WHERE name = 'directory'").one(),
      ),
    ).toEqual({ n: 0 })
  })
})

describe("an actor erased while it works", () => {
  it("an outbox drain in flight acknowledges nothing of the fresh log (finding 5)", async () => {
    const tenant = tenantNamed("drain")
    const x = actorOf(tenant, "counter", "x")
    await x.head()
    let restore = () => {}
    const delivered: Array<number> = []
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    await runInDurableObject(x as DurableObjectStub, (object: unknown) => {
      const instance = object as any
      const ns = instance.env.EMBERLOG_TOPIC
      const real = ns.getByName.bind(ns)
      // The test's env is the objects' env: put back below.
      restore = () => (ns.getByName = real)
      ns.getByName = (name: string) => {
        const stub = real(name)
        if (!name.endsWith("/counter")) return stub
        return {
          deliver: async (source: unknown, events: Array<any>) => {
            await gate
            for (const event of events) delivered.push(event.data.by)
            return stub.deliver(source, events)
          },
        }
      }
    })
    try {
      await increment(x, tenant, 1)
      await new Promise((resolve) => setTimeout(resolve, 150)) // the drain waits on the topic
      await x.eraseAll()
      await increment(x, tenant, 5)
      release()
      // The fresh log's event is delivered: the old drain (its alarm ran on) acknowledged nothing of the
      // fresh outbox. (The topic keeps the erased seq 1 until the deletion's topics step erases it.)
      await eventually(() => delivered).toContain(5)
      await eventually(() =>
        runInDurableObject(
          x as DurableObjectStub,
          (_i, s) => s.storage.sql.exec("SELECT count(*) AS n FROM outbox").one().n as number,
        ),
      ).toBe(0)
      await eventually(async () => (await directoryOf(tenant).countDirectory()).actor).toBe(1)
      expect(await x.head()).toBe(1)
    } finally {
      restore()
    }
  })

  it("a command whose capability wrapper awaited across the erase is refused, not committed to the fresh log (finding 5)", async () => {
    const tenant = tenantNamed("base")
    const x = actorOf(tenant, "counter", "x")
    await x.head()
    const outcome = await runInDurableObject(x as DurableObjectStub, async (object: unknown) => {
      const instance = object as any
      // The command path as a wrapper holds it while it awaits I/O (a memory's upload).
      const held = instance.commandPath
      await instance.eraseAll()
      return held({ command: { type: "Increment", by: 1 }, principal: tenant })
    })
    expect(outcome.ok ? "committed" : outcome.error.code).toBe("actor_erased")
    expect(await x.head()).toBe(0)
  })
})

it("a topic's alarm is set again after its erase (finding 6)", async () => {
  const tenant = tenantNamed("alarm")
  const topic = env.EMBERLOG_TOPIC.getByName(scopedName(tenant, "t1")) as DurableObjectStub
  await (topic as any).deliver({ kind: "counter", id: "x" }, [event(1)])
  const stored = await runInDurableObject(
    topic,
    async (object: unknown, state: DurableObjectState): Promise<number | null> => {
      const instance = object as any
      await instance.alarms.wakeAt(Date.now() + 60_000)
      await instance.eraseAll()
      await instance.deliver({ kind: "counter", id: "y" }, [event(1)])
      const at = Date.now() + 120_000
      await instance.alarms.wakeAt(at)
      const stored = await state.storage.getAlarm()
      await state.storage.deleteAlarm()
      return stored === null ? null : stored - at
    },
  )
  expect(stored).toBe(0)
})

describe("the coordinator", () => {
  it("does a bounded share per alarm and goes on at once; a stalled deletion is re-armed by asking (finding 7)", async () => {
    const tenant = tenantNamed("pages")
    for (const id of ["a", "b", "c"]) await increment(actorOf(tenant, "counter", id), tenant, 1)
    await eventually(async () => (await directoryOf(tenant).countDirectory()).actor).toBe(3)
    deletionLimits.page = 1
    // One (empty) page of sessions, then one of actors: an alarm.
    deletionLimits.pagesPerAlarm = 2
    const object = env.EMBERLOG_TOPIC.getByName(deletionName(tenant)) as DurableObjectStub
    const run = await runInDurableObject(object, async (_i: unknown, state: DurableObjectState) => {
      const coordinator = new DeletionCoordinator(state.storage, env, tenant, [])
      await coordinator.requestDeletion(tenant, "ops")
      await state.storage.deleteAlarm()
      await coordinator.run()
      const first = { status: (await coordinator.deletionStatus())!, alarm: await state.storage.getAlarm() }
      // The platform gave up its retries: no alarm. Asking again (DELETE or GET) re-arms it.
      await state.storage.deleteAlarm()
      await coordinator.requestDeletion(tenant, "ops")
      const byRequest = await state.storage.getAlarm()
      await state.storage.deleteAlarm()
      await coordinator.deletionStatus()
      const byStatus = await state.storage.getAlarm()
      let alarms = 1
      for (; (await coordinator.deletionStatus())!.status !== "done" && alarms < 30; alarms++) {
        await state.storage.deleteAlarm()
        await coordinator.run()
      }
      await state.storage.deleteAlarm()
      return { first, byRequest, byStatus, alarms, done: (await coordinator.deletionStatus())! }
    })
    expect(run.first.status).toMatchObject({ status: "in-progress", step: "actors" })
    expect(run.first.status.steps.find((step) => step.name === "actors")!.erased).toEqual({ actors: 1, events: 1 })
    expect(run.first.alarm).not.toBeNull()
    expect(run.byRequest).not.toBeNull()
    expect(run.byStatus).not.toBeNull()
    expect(run.done.status).toBe("done")
    expect(run.done.steps.find((step) => step.name === "actors")!.erased).toEqual({ actors: 3, events: 3 })
    expect(run.alarms).toBeGreaterThan(3)
  })

  it("counts and removes the objects erased when another of the page fails (finding 8)", async () => {
    const tenant = tenantNamed("settled")
    for (const id of ["c1", "c2"]) await increment(actorOf(tenant, "counter", id), tenant, 1)
    await eventually(async () => (await directoryOf(tenant).countDirectory()).actor).toBe(2)
    deletionFaults.failErasures.push("actor counter/c2")
    const object = env.EMBERLOG_TOPIC.getByName(deletionName(tenant)) as DurableObjectStub
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined)
    const run = await runInDurableObject(object, async (_i: unknown, state: DurableObjectState) => {
      const coordinator = new DeletionCoordinator(state.storage, env, tenant, [])
      await coordinator.requestDeletion(tenant, "ops")
      await state.storage.deleteAlarm()
      await coordinator.run()
      const failed = (await coordinator.deletionStatus())!
      await state.storage.deleteAlarm()
      await coordinator.run()
      await state.storage.deleteAlarm()
      return { failed, done: (await coordinator.deletionStatus())! }
    }).finally(() => warn.mockRestore())
    expect(run.failed.failure!.message).toContain("1 of 2 erasures failed")
    expect(run.failed.steps.find((step) => step.name === "actors")!.erased).toEqual({ actors: 1, events: 1 })
    expect(run.done).toMatchObject({ status: "done", failure: null })
    expect(run.done.steps.find((step) => step.name === "actors")!.erased).toEqual({ actors: 2, events: 2 })
  })
})

it("an MCP session erased while a request awaits answers 'not found', and nothing of it is left (finding 10)", async () => {
  const tenant = tenantNamed("mcp")
  const id = crypto.randomUUID()
  const session = env.EMBERLOG_MCP_SESSION.getByName(scopedName(tenant, id)) as DurableObjectStub
  const principal = encodePrincipal({ sub: tenant, tenant, scopes: new Set(["read", "write"]) } as never)
  const request = (init: Record<string, string>, body: unknown) =>
    new Request("https://emberlog.test/mcp", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        [PRINCIPAL_JSON_HEADER]: principal,
        ...init,
      },
      body: JSON.stringify(body),
    })
  const initialize = {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
  }
  const result = await runInDurableObject(session, async (object: unknown, state: DurableObjectState) => {
    const instance = object as any
    // A new session erased while it registers in the directory.
    const starting = instance.fetch(request({ [NEW_SESSION_HEADER]: id }, initialize))
    await instance.eraseAll()
    const first = (await starting).status
    // A started session erased while a request awaits.
    const started = (await instance.fetch(request({ [NEW_SESSION_HEADER]: id }, initialize))).status
    const ping = instance.fetch(
      request(
        { "mcp-session-id": id, "mcp-protocol-version": "2025-11-25" },
        { jsonrpc: "2.0", id: 2, method: "ping" },
      ),
    )
    await instance.eraseAll()
    const second = await ping.then(
      (response: Response) => response.status,
      (error: unknown) => String(error),
    )
    return { first, started, second, alarm: await state.storage.getAlarm(), keys: (await state.storage.list()).size }
  })
  expect(result).toEqual({ first: 404, started: 200, second: 404, alarm: null, keys: 0 })
})

describe("topic names an entity returns (finding 12)", () => {
  it("are refused at registration when static", () => {
    expect(() => kindRegistry([defineKind({ ...counter, topics: ["~usage"] })])).toThrow(/not a topic name/)
  })

  it("are refused at delivery when computed: never delivered, dropped from the outbox", async () => {
    const delivered: Array<string> = []
    const acknowledged: Array<string> = []
    const core = {
      pendingDeliveries: () => [
        { topic: "~usage", events: [event(1)] },
        { topic: "#deletions/x", events: [event(1)] },
        { topic: "fine", events: [event(1)] },
      ],
      acknowledge: (topic: string) => void acknowledged.push(topic),
    } as unknown as ActorCore
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined)
    try {
      await drainOutbox(core, { kind: "counter", id: "x" }, (topic) => ({
        deliver: async () => {
          delivered.push(topic)
          return { accepted: 1, duplicates: 0 }
        },
      }))
      expect(error.mock.calls.map((call) => String(call[0]))).toEqual([
        expect.stringContaining('"~usage", which is not a topic name'),
        expect.stringContaining('"#deletions/x", which is not a topic name'),
      ])
    } finally {
      error.mockRestore()
    }
    expect(delivered).toEqual(["fine"])
    expect(acknowledged).toEqual(["~usage", "#deletions/x", "fine"])
  })
})
