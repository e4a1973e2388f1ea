/** The room kind: the entity, presence (the host's side) and the classic /ws and /broadcast routes. */
import { defineKind } from "../../worker.js"
import { Room } from "./entity.js"
import { presence } from "./presence.js"
import { roomRoutes } from "./routes.js"

export const room = defineKind({
  entity: Room,
  capabilities: [presence],
  routes: roomRoutes,
})
