/** Every entity kind emberlog ships, by kind name (node-safe): served by this repository's app, replayed offline by the CLI. */
import type { Entity } from "../index.js"
import { Counter } from "./counter/entity.js"
import { Document } from "./document/entity.js"
import { Job } from "./job/entity.js"
import { Memory } from "./memory/entity.js"
import { Room } from "./room/entity.js"
import { Session } from "./session/entity.js"

export const entities = {
  counter: Counter,
  document: Document,
  room: Room,
  session: Session,
  job: Job,
  memory: Memory,
} as const

/** The built-in kinds by name, as the edge lists them (inspector, MCP tools, addressing) until the factory's registry. */
export const kinds = {
  counter: { entity: Counter },
  document: { entity: Document },
  room: { entity: Room },
  session: { entity: Session },
  job: { entity: Job },
  memory: { entity: Memory },
} as const satisfies Record<string, { entity: Entity }>

export type Kind = keyof typeof kinds
