/**
 * Following a resource for MCP change notifications: a WebSocket subscription to the
 * actor a resource URI names, starting at its current head, calling `onChange` for every
 * event after it. If the actor drops the socket (eviction), following resumes from the
 * last seq seen, so no change is missed while the follower is open. It confirms what it
 * has read, as every subscriber must, or the actor would close it as a stalled reader.
 */
import { ACK_EVERY, ackFrame } from "../../domain/protocol.js"
import { AFTER_HEADER, SUBSCRIBE_HEADER } from "../../actors/subscribers.js"
import { parseResourceUri, type ActorDirectory } from "./server.js"

/** Each followed resource holds a socket to its actor: one listen (or 2025-era session) follows at most this many. */
export const MAX_FOLLOWED_RESOURCES = 100

export interface Follower {
  readonly close: () => void
}

export const followResource = async (
  directory: ActorDirectory,
  uri: string,
  onChange: () => void,
): Promise<Follower> => {
  const target = parseResourceUri(uri, directory.kinds)
  if (target === undefined) throw new Error(`Unknown resource ${uri}`)
  const actor = directory.actor(target.kind, target.id)
  let cursor = await actor.head()
  let closed = false
  let socket: WebSocket | null = null

  const open = async (): Promise<void> => {
    const headers = { Upgrade: "websocket", [SUBSCRIBE_HEADER]: "websocket", [AFTER_HEADER]: String(cursor) }
    const opened = (await actor.fetch(new Request("https://actor/ws", { headers }))).webSocket
    if (opened === null) throw new Error(`Could not follow ${uri}`)
    opened.accept()
    // Closed while connecting: nobody is listening any more.
    if (closed) return opened.close(1000, "unsubscribed")
    socket = opened
    let unacknowledged = 0
    opened.addEventListener("message", (event) => {
      const text = event.data as string
      const frame = JSON.parse(text) as { type?: string; event?: { seq: number } }
      if (frame.type !== "event" || frame.event === undefined) return
      cursor = frame.event.seq
      unacknowledged += text.length
      if (unacknowledged >= ACK_EVERY) {
        unacknowledged = 0
        try {
          opened.send(ackFrame(cursor))
        } catch {
          // Closing: the close handler reopens from the cursor.
        }
      }
      onChange()
    })
    opened.addEventListener("close", () => {
      if (!closed) void open().catch(() => undefined)
    })
  }
  await open()
  return {
    close: () => {
      closed = true
      try {
        socket?.close(1000, "unsubscribed")
      } catch {
        // Already closed.
      }
    },
  }
}
