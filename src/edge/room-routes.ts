/**
 * The classic "WebSocket broadcast server" routes, as thin layers over the room entity:
 * `GET /ws?room=<name>&name=<member>` joins a room (default `lobby`), and
 * `POST /broadcast {room?, type, payload}` posts to it from outside. Every message is
 * also an event in the room's log (`/v1/room/{name}/…`).
 */
import { MEMBER_HEADER } from "../kinds/room/protocol.js"
import { HttpError, badRequest, unwrap } from "./errors.js"
import type { Context } from "hono"
import { clientHeaders, setAuthority } from "../actors/subscribers.js"
import { requireScope } from "./auth.js"
import { limitBody, type App, type AppEnv } from "./env.js"
import { actorStub } from "./objects.js"
import * as Params from "./params.js"
import { limitKey } from "./rate-limit.js"

export const DEFAULT_ROOM = "lobby"
const MEMBER_NAME = /^[\x20-\x7e]{1,64}$/
const BROADCAST_SENDER = "broadcast"

const roomOf = (c: Context<AppEnv>, name: string | undefined) =>
  actorStub(c.env, c.get("principal").tenant, "room", Params.logName("room", name ?? DEFAULT_ROOM))!

export const roomRoutes = (app: App) => {
  app.get("/ws", requireScope("write"), async (c) => {
    const room = roomOf(c, c.req.query("room"))
    const member = c.req.query("name") ?? `guest-${crypto.randomUUID().slice(0, 8)}`
    if (!MEMBER_NAME.test(member)) throw badRequest("invalid_query", "name must be 1–64 printable ASCII characters")
    Params.requireWebSocketUpgrade(c.req.raw)
    const headers = clientHeaders(c.req.raw)
    headers.set(MEMBER_HEADER, member)
    const principal = c.get("principal")
    const { sub, scopes, expiresAt } = principal
    setAuthority(headers, { principal: sub, scopes, expiresAt, limitKey: limitKey(principal) })
    return room.fetch(new Request(c.req.url, { method: "GET", headers }))
  })

  app.post("/broadcast", requireScope("write"), limitBody, async (c) => {
    const example = '{"room":"lobby","type":"chat","payload":"hi"}'
    const notJson = badRequest("invalid_json", `The body must be JSON such as ${example}`)
    const body = await Params.jsonBody(c, notJson)
    const {
      room: roomName,
      type,
      payload,
    } = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>
    if (roomName !== undefined && typeof roomName !== "string")
      throw badRequest("invalid_body", "room must be a string")
    if (typeof type !== "string")
      throw badRequest("invalid_body", "type must be a string", {
        issues: [{ path: ["type"], message: "Expected a string" }],
      })
    const room = roomOf(c, roomName)
    if ((await room.head()) === 0)
      throw new HttpError(
        404,
        "unknown_room",
        `No one has ever joined room ${JSON.stringify(roomName ?? DEFAULT_ROOM)}`,
      )
    const outcome = unwrap(
      await room.command({
        command: { type: "Post", messageType: type, payload: payload ?? null, sender: BROADCAST_SENDER },
      }),
    )
    return c.json({ room: roomName ?? DEFAULT_ROOM, version: outcome.version })
  })
}
