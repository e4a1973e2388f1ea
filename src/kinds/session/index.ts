/** The session kind: the entity, and its grants as the MCP tools' ACL. */
import { defineKind } from "../../worker.js"
import { Session, type SessionState } from "./entity.js"

export const session = defineKind({
  entity: Session,
  // session/{sub} is sub's by its id (nobody else can open it), so its grants are sub's ACL:
  // none once it is closed or expired; a principal who never opened one is bound by its scopes alone.
  toolGrants: async (actor, principal) => {
    const reply = await actor(principal.sub).readState({})
    if (!reply.ok || reply.value.version === 0) return undefined
    const state = reply.value.state as SessionState
    return new Set(state.status === "open" ? state.grants : [])
  },
})
