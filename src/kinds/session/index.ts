/** The session kind: the entity alone (its grants are the MCP tools' ACL). */
import { defineKind } from "../../worker.js"
import { Session } from "./entity.js"

export const session = defineKind({ entity: Session })
