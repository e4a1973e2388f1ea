/** The Worker under benchmark: emberlog's own actors plus the baselines they are compared with. */
import { DurableObject } from "cloudflare:workers"
import { actorHostClass } from "../src/actors/durable-actor.js"
import { Counter } from "../src/kinds/counter/entity.js"

import app from "../src/app.js"

export { EmberlogActor, EmberlogMcpSession, EmberlogTopic } from "../src/app.js"

/** emberlog's routes, plus /fanout/{name} upgrading to the bare fan-out baseline. */
export default {
  fetch(request: Request, env: Record<string, DurableObjectNamespace>, ctx: ExecutionContext) {
    const path = new URL(request.url).pathname
    if (path.startsWith("/fanout/")) return env.BARE_FANOUT!.getByName(path.slice("/fanout/".length)).fetch(request)
    return app.fetch(request, env as never, ctx)
  },
}

/** The same counter with snapshots turned off, to show what they buy. */
export const UnsnapshottedCounter = actorHostClass([{ entity: { ...Counter, snapshotEvery: Number.MAX_SAFE_INTEGER } }])

/** The baseline: a Durable Object that only inserts one row per call. */
export class BareCounter extends DurableObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never)
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, data TEXT NOT NULL)")
  }

  insert(data: unknown): { seq: number } {
    const row = this.ctx.storage.sql.exec("INSERT INTO log (data) VALUES (?) RETURNING seq", JSON.stringify(data)).one()
    return { seq: row.seq as number }
  }
}

/** The fan-out baseline: a Durable Object that accepts sockets and loops `ws.send` over them. */
export class BareFanout extends DurableObject {
  override async fetch(): Promise<Response> {
    const { 0: client, 1: server } = new WebSocketPair()
    this.ctx.acceptWebSocket(server)
    return new Response(null, { status: 101, webSocket: client })
  }

  broadcast(message: string): number {
    const sockets = this.ctx.getWebSockets()
    for (const socket of sockets) socket.send(message)
    return sockets.length
  }
}
