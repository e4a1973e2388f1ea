/** Every entity kind emberlog ships, by kind name: hosted by src/actors/kinds.ts, replayed offline by the CLI. */
import { Counter } from "./counter.js"
import { Document } from "./document.js"
import { Job } from "./job.js"
import { Memory } from "./memory.js"
import { Room } from "./room.js"
import { Session } from "./session.js"

export const entities = {
  counter: Counter,
  document: Document,
  room: Room,
  session: Session,
  job: Job,
  memory: Memory,
} as const
