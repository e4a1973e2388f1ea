import type { Hono } from "hono"
import { bodyLimit } from "hono/body-limit"
import { errorBody } from "./errors.js"
import type { kinds, Kind } from "../actors/kinds.js"

/** The Worker's bindings: one namespace per entity kind, topics and projections (wrangler.toml). */
export type Env = { readonly [K in (typeof kinds)[Kind]["binding"] | "TOPIC" | "COUNTER_TOTALS"]: DurableObjectNamespace }
export type App = Hono<{ Bindings: Env }>

export const MAX_BODY_BYTES = 256 * 1024

/** Bodies over MAX_BODY_BYTES are refused with 413 before anything reads them. */
export const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: (c) => c.json(errorBody("too_large", `Request bodies are limited to ${MAX_BODY_BYTES} bytes`), 413),
})
