// Room presence after a restart: members whose sockets died with the runtime leave, through the log.
import { abortAllDurableObjects, env, evictDurableObject, runInDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { actorObject, freshId, get, json, openSocket, send } from "./helpers.js"

const roomState = async (room: string) => (await json(await get(`/v1/room/${room}`))).body
const roomEvents = async (room: string) => (await json(await get(`/v1/room/${room}/events`))).body.events as Array<any>

describe("room presence across restarts", () => {
  it("makes members whose sockets were closed by an eviction leave, as Left events in the log", async () => {
    const room = freshId("presence")
    const alice = await openSocket(`/ws?room=${room}&name=alice`)
    await openSocket(`/ws?room=${room}&name=alice`)
    await openSocket(`/ws?room=${room}&name=bob`)
    expect((await roomState(room)).state.members).toEqual({ alice: 2, bob: 1 })
    await evictDurableObject(actorObject("room", room), { webSockets: "close" })
    await alice.closed
    expect((await roomState(room)).state.members).toEqual({})
    const left = (await roomEvents(room)).filter((e) => e.type === "Left")
    expect(left.map((e) => e.data.name).sort()).toEqual(["alice", "alice", "bob"])
    expect(left.every((e) => e.meta.principal === "system")).toBe(true)
  })

  it("keeps members whose sockets survived hibernation, and they still leave once", async () => {
    const room = freshId("presence")
    const carol = await openSocket(`/ws?room=${room}&name=carol`)
    await evictDurableObject(actorObject("room", room), { webSockets: "hibernate" })
    expect((await roomState(room)).state.members).toEqual({ carol: 1 })
    carol.ws.close(1000)
    await carol.closed
    for (let i = 0; i < 50 && Object.keys((await roomState(room)).state.members).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 20))
    }
    expect((await roomState(room)).state.members).toEqual({})
    expect((await roomEvents(room)).filter((e) => e.type === "Left")).toHaveLength(1)
  })

  it("leaves members that joined by a plain command alone: they had no socket to lose", async () => {
    const room = freshId("presence")
    expect((await send("room", room, { type: "Join", name: "api" })).status).toBe(200)
    await openSocket(`/ws?room=${room}&name=web`)
    await evictDurableObject(actorObject("room", room), { webSockets: "close" })
    expect((await roomState(room)).state.members).toEqual({ api: 1 })
  })

  it("after the runtime aborts, the next member counts as the only one", async () => {
    const room = freshId("presence")
    await openSocket(`/ws?room=${room}&name=dora`)
    await abortAllDurableObjects()
    const erin = await openSocket(`/ws?room=${room}&name=erin`)
    expect((await roomState(room)).state.members).toEqual({ erin: 1 })
    erin.ws.close(1000)
  })

  it("one of a member's two sockets closing while the room hibernates: one Left, the member stays", async () => {
    const room = freshId("presence")
    const first = await openSocket(`/ws?room=${room}&name=bea`)
    await openSocket(`/ws?room=${room}&name=bea`)
    await evictDurableObject(actorObject("room", room), { webSockets: "hibernate" })
    first.ws.close(1000)
    await first.closed
    for (let i = 0; i < 50 && (await roomEvents(room)).every((e) => e.type !== "Left"); i++) {
      await new Promise((r) => setTimeout(r, 20))
    }
    expect((await roomState(room)).state.members).toEqual({ bea: 1 })
    expect((await roomEvents(room)).filter((e) => e.type === "Left")).toHaveLength(1)
  })

  it("a socket whose close wakes its room, unlisted by getWebSockets, leaves once (its twin stays)", async () => {
    const room = freshId("presence")
    await openSocket(`/ws?room=${room}&name=alice`)
    await openSocket(`/ws?room=${room}&name=alice`)
    const stub = actorObject("room", room) as DurableObjectStub
    await evictDurableObject(stub, { webSockets: "hibernate" })
    // The wake as it runs when the platform no longer lists the closing socket: the
    // reconciliation sees it gone, then its close handler runs as well.
    await runInDurableObject(stub, async (object: unknown, state: DurableObjectState) => {
      const instance = object as {
        hooks: Map<string, { reconcile(): void }>
        webSocketClose(socket: WebSocket, code: number, reason: string): Promise<void>
      }
      const closing = state.getWebSockets("presence")[0]!
      const listed = state.getWebSockets.bind(state)
      state.getWebSockets = (tag?: string) => listed(tag).filter((socket) => socket !== closing)
      try {
        expect(state.getWebSockets("presence")).toHaveLength(1)
        instance.hooks.get("presence")!.reconcile()
        await instance.webSocketClose(closing, 1000, "bye")
      } finally {
        state.getWebSockets = listed
      }
    })
    expect((await roomState(room)).state.members).toEqual({ alice: 1 })
    expect((await roomEvents(room)).filter((e) => e.type === "Left")).toHaveLength(1)
  })
})
