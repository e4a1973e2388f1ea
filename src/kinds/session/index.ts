/** The session kind: the entity alone (its grants are the MCP tools' ACL). */
import { Session } from "../../domain/session.js"
import { defineKind } from "../../worker.js"

export const session = defineKind({
  entity: Session,
  capabilities: [],
})
