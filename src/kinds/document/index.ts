/** The document kind: the entity alone (collaborative text by operational transform). */
import { Document } from "../../domain/document.js"
import { defineKind } from "../../worker.js"

export const document = defineKind({
  entity: Document,
  capabilities: [],
})
