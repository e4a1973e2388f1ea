/**
 * The classic "WebSocket broadcast server" routes, as thin layers over the room entity:
 * `GET /ws?room=<name>&name=<member>` joins a room (default `lobby`), and
 * `POST /broadcast {room?, type, payload, to?}` posts to it from outside (`to`: to that member only). Every message is
 * also an event in the room's log (`/v1/room/{name}/…`).
 */
import type { Context } from "hono"
import {
  HttpError,
  Params,
  actorOf,
  badRequest,
  clientHeaders,
  guarded,
  limitBody,
  limitKey,
  requireScope,
  setAuthority,
  unwrap,
  type App,
  type AppEnv,
} from "../../worker.js"
import { BROADCAST_SENDER } from "./entity.js"
import { MEMBER_HEADER } from "./protocol.js"

export const DEFAULT_ROOM = "lobby"
const MEMBER_NAME = /^[\x20-\x7e]{1,64}$/

/** A room by name: room names are checked as such (400 `invalid_room`), then addressed as the room kind's actors. */
const roomOf = (c: Context<AppEnv>, name: string | undefined) =>
  actorOf(c, "room", Params.logName("room", name ?? DEFAULT_ROOM))

export const roomRoutes = (app: App) => {
  for (const path of ["/ws", "/broadcast"]) app.use(path, ...guarded)
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
      to,
    } = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>
    if (roomName !== undefined && typeof roomName !== "string")
      throw badRequest("invalid_body", "room must be a string")
    if (typeof type !== "string")
      throw badRequest("invalid_body", "type must be a string", {
        issues: [{ path: ["type"], message: "Expected a string" }],
      })
    if (to !== undefined && typeof to !== "string")
      throw badRequest("invalid_body", "to must be the name of a member", {
        issues: [{ path: ["to"], message: "Expected a string" }],
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
        command: {
          type: "Post",
          messageType: type,
          payload: payload ?? null,
          sender: BROADCAST_SENDER,
          ...(to === undefined ? {} : { to }),
        },
      }),
    )
    return c.json({ room: roomName ?? DEFAULT_ROOM, version: outcome.version })
  })
}
