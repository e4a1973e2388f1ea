/**
 * Room presence: sockets opened as room members join, post and leave through the room's
 * commands, and receive the room's compact post frames (through the host's subscriber
 * accounting, so a member that never reads is capped like any socket): every post to everyone,
 * and the direct messages it sent or that are for it, none other. A name with open sockets is
 * held by the principal that opened them (409 `name_taken` for anyone else) until they close.
 *
 * One key per member socket (ctx.storage.kv: prefix + socket id → member name), written in
 * the stretch of its Join and deleted in that of its Leave. On wake it tells which sockets
 * died with the runtime, so their members can leave; and since only the handler that
 * deletes the key commits the Leave, a socket's Leave happens once, even when a wake's
 * reconciliation and the socket's close handler both see it end. Members that joined by a
 * plain command have no socket to lose and are left alone.
 */
import { errorFrame, type WireEvent } from "../../index.js"
import { authorityOf, defineCapability, failureResponse, type Host, type SocketAttachment } from "../../worker.js"
import { Room, postAudience, postFrame } from "./entity.js"
import { MEMBER_HEADER } from "./protocol.js"

export { MEMBER_HEADER }

const MEMBER_SOCKET_PREFIX = "emberlog/room-socket/"
/** Counts per member name, written before sockets had ids; none of those sockets outlives the deploy. */
const LEGACY_ROOM_SOCKETS_KEY = "emberlog/room-sockets"

const join = (name: string) => ({ type: "Join", name })
const leave = (name: string) => ({ type: "Leave", name })

/** Member frames carry no seq: a member closed at its cap is told where the log has what it missed. */
const missedPostsReason = (host: Host, lastSeq: number): string => {
  const reason = `Too much unread: what you missed is in /v1/${host.kind}/${host.id}/events?after=${lastSeq}`
  // A close reason is at most 123 bytes; ids are ASCII, so a long one is left out.
  if (reason.length <= 123) return reason
  return `Too much unread: what you missed is in this room's log, /v1/${host.kind}/{id}/events?after=${lastSeq}`
}

export const presence = defineCapability({
  name: "presence",
  start: (host: Host) => {
    const kv = host.ctx.storage.kv
    /** Whether this call ended the member socket (true once per socket): only then may its Leave be committed. */
    const memberSocketEnded = (socketId: string): boolean => kv.delete(MEMBER_SOCKET_PREFIX + socketId)

    // Sockets that died with the runtime (a crash, a deploy) never ran their close handler, so on
    // wake every member socket opened and no longer listed ends, through the Leave command: the
    // correction is in the log like any other.
    const reconcile = () => {
      const live = new Set<string>()
      for (const socket of host.sockets()) {
        const socketId = (socket.deserializeAttachment() as SocketAttachment | null)?.socketId
        if (socketId !== undefined) live.add(socketId)
      }
      for (const [key, name] of [...kv.list<string>({ prefix: MEMBER_SOCKET_PREFIX })]) {
        const socketId = key.slice(MEMBER_SOCKET_PREFIX.length)
        if (!live.has(socketId) && memberSocketEnded(socketId)) {
          host.commit({ command: leave(name), principal: "system", internal: true })
        }
      }
      const legacy = kv.get<Map<string, number>>(LEGACY_ROOM_SOCKETS_KEY)
      if (legacy !== undefined) {
        kv.delete(LEGACY_ROOM_SOCKETS_KEY)
        for (const [name, count] of legacy) {
          for (let i = 0; i < count; i++) host.commit({ command: leave(name), principal: "system", internal: true })
        }
      }
    }
    reconcile()

    return {
      /** The wake's reconciliation, for a test to run it again at a chosen moment. */
      reconcile,
      fetch: (request: Request) => {
        const member = request.headers.get(MEMBER_HEADER)
        if (member === null) return undefined
        const authority = authorityOf(request)
        // A member's direct messages go to the sockets open under its name, so a name is held by
        // one principal at a time: another cannot open a socket under it and read them.
        const heldByAnother = host.sockets().some((socket) => {
          const held = socket.deserializeAttachment() as SocketAttachment | null
          return held?.name === member && held.principal !== authority.principal
        })
        if (heldByAnother)
          return failureResponse({
            _tag: "Conflict",
            code: "name_taken",
            message: `${member} is in this room already, joined by someone else: join under another name`,
            details: { name: member },
          })
        const joined = host.commit({ command: join(member), principal: authority.principal })
        if (!joined.ok) return failureResponse(joined.error)
        const socketId = crypto.randomUUID()
        kv.put(MEMBER_SOCKET_PREFIX + socketId, member)
        return host.acceptSocket({ name: member, socketId, ...authority })
      },

      committed: (events: ReadonlyArray<WireEvent>) => {
        const frames = events.flatMap((event) => {
          const decoded = Room.decodeEvent(event)
          const frame = postFrame(decoded, event.meta.at)
          if (frame === undefined) return []
          const audience = postAudience(decoded)
          return [{ text: JSON.stringify(frame), seq: event.seq, ...(audience === undefined ? {} : { audience }) }]
        })
        host.sendFrames(frames, (lastSeq) => missedPostsReason(host, lastSeq))
      },

      socketMessage: (socket: WebSocket, message: string) => {
        const attachment = socket.deserializeAttachment() as SocketAttachment
        const member = attachment.name!
        let frame: unknown
        try {
          frame = JSON.parse(message)
        } catch {
          return socket.send(errorFrame(null, "invalid_frame", 'A frame must be JSON: {"type": …, "payload": …}'))
        }
        const { type, payload, to } = (typeof frame === "object" && frame !== null ? frame : {}) as Record<
          string,
          unknown
        >
        if (typeof type !== "string")
          return socket.send(errorFrame(null, "invalid_frame", "A room frame needs a string type"))
        if (to !== undefined && typeof to !== "string")
          return socket.send(errorFrame(null, "invalid_frame", "A room frame's to must be a member's name"))
        const command = {
          type: "Post",
          messageType: type,
          payload,
          sender: member,
          ...(to === undefined ? {} : { to }),
        }
        const reply = host.commit({ command, principal: attachment.principal ?? member })
        if (!reply.ok) socket.send(errorFrame(null, reply.error.code, reply.error.message, reply.error.details))
      },

      // A member socket leaves once, whether it closed, failed, or a wake found it gone first.
      socketClosed: (socket: WebSocket) => {
        const attachment = socket.deserializeAttachment() as SocketAttachment | null
        if (attachment?.socketId === undefined || !memberSocketEnded(attachment.socketId)) return
        host.commit({ command: leave(attachment.name!), principal: attachment.principal ?? attachment.name })
      },
    }
  },
})
