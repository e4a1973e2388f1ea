/** The Worker under benchmark: emberlog's own actors plus the baselines they are compared with. */
import { DurableObject } from "cloudflare:workers"
import { actorClass } from "../src/actors/durable-actor.js"
import { Counter } from "../src/domain/counter.js"

export { default, CounterActor, CounterTotals, DocumentActor, RoomActor, TopicLog } from "../src/edge/worker.js"

/** The same counter with snapshots turned off, to show what they buy. */
export const UnsnapshottedCounter = actorClass({ ...Counter, snapshotEvery: Number.MAX_SAFE_INTEGER })

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
