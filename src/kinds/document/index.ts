/** The document kind: the entity alone (collaborative text by operational transform). */
import { defineKind } from "../../worker.js"
import { Document } from "./entity.js"

export const document = defineKind({ entity: Document })
