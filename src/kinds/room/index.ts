/** The room kind: the entity, presence (the host's side) and the classic /ws and /broadcast routes. */
import { Room } from "../../domain/room.js"
import { defineKind } from "../../worker.js"
import { roomRoutes } from "./routes.js"

export const room = defineKind({
  entity: Room,
  capabilities: [],
  routes: roomRoutes,
})
