/** Every entity kind emberlog ships, by kind name (node-safe): what the CLI replays offline. */
import { Counter } from "./counter/entity.js"
import { Document } from "./document/entity.js"
import { Job } from "./job/entity.js"
import { Memory } from "./memory/entity.js"
import { Room } from "./room/entity.js"
import { Session } from "./session/entity.js"
import { DurableStream } from "./stream/entity.js"

export const entities = {
  counter: Counter,
  document: Document,
  room: Room,
  session: Session,
  job: Job,
  memory: Memory,
  "durable-stream": DurableStream,
} as const
