/** The session kind: the entity, its grants as the MCP tools' ACL, and the user's instance provisioned at sign-in. */
import { defineKind } from "../../worker.js"
import { Session, type SessionState } from "./entity.js"
import { provisionSession } from "./provisioning.js"

export const session = defineKind({
  entity: Session,
  // session/{sub} is sub's by its id (nobody else can open it), so its grants are sub's ACL:
  // none once it is closed or expired; a principal who never opened one is bound by its scopes alone,
  // and so is one whose last sign-in found no ACL configured (scopesOnly).
  toolGrants: async (actor, principal) => {
    const reply = await actor(principal.sub).readState({})
    if (!reply.ok || reply.value.version === 0) return undefined
    const state = reply.value.state as SessionState
    // Never opened (it only binds a tenant's GitHub id): scopes alone, as without a session.
    if (state.status === "new") return undefined
    if (state.status !== "open") return new Set()
    return state.scopesOnly === true ? undefined : new Set(state.grants)
  },
  signedIn: provisionSession,
})
