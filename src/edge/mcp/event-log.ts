/**
 * The session's record of what it sent on each SSE stream, so a client reconnecting with
 * `Last-Event-ID` gets every message after that id again (2025-11-25 resumability). It
 * lives as long as the session's object, like the session itself, and keeps the last
 * MAX_EVENTS_PER_STREAM messages of each stream.
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server"

export const MAX_EVENTS_PER_STREAM = 1000

export class SessionEventLog implements EventStore {
  private readonly streams = new Map<string, Array<{ id: string; message: JSONRPCMessage }>>()
  private next = 0

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}:${++this.next}`
    const events = this.streams.get(streamId) ?? []
    events.push({ id, message })
    if (events.length > MAX_EVENTS_PER_STREAM) events.splice(0, events.length - MAX_EVENTS_PER_STREAM)
    this.streams.set(streamId, events)
    return id
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const streamId = eventId.slice(0, eventId.lastIndexOf(":"))
    return this.streams.has(streamId) ? streamId : undefined
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const streamId = (await this.getStreamIdForEventId(lastEventId)) ?? ""
    const events = this.streams.get(streamId) ?? []
    const after = Number(lastEventId.slice(lastEventId.lastIndexOf(":") + 1))
    for (const event of events)
      if (Number(event.id.slice(event.id.lastIndexOf(":") + 1)) > after) await send(event.id, event.message)
    return streamId
  }
}
