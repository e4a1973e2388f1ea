/**
 * What a kind's own MCP tools are built with: the MCP server hands each served kind a
 * registrar that checks scopes and session grants, addresses the kind's actors in the
 * caller's tenant and shapes results as every other tool's, so a kind's tools are a few
 * schemas and calls (the memory kind's store_memory, retrieve_memory, …).
 */
import { Schema } from "effect"
import type { ActorApi } from "../../actors/durable-actor.js"
import { NAME_PATTERN } from "../../core/names.js"
import { CLIENT_ID } from "../../domain/protocol.js"
import type { Principal, Scope } from "../../infra/tokens.js"

export type ToolResult = {
  content: Array<{ type: "text"; text: string }>
  structuredContent?: Record<string, unknown>
  isError?: boolean
}

/** An actor id, as tool inputs take it. */
export const ActorIdSchema = Schema.String.pipe(Schema.check(Schema.isPattern(NAME_PATTERN)))
/**
 * A tool's `idempotencyKey`: the Idempotency-Key header's rule (1–255 visible ASCII characters).
 * A client re-sending a call after a broken stream (MCP 2026-07-28 leaves re-sends to clients)
 * sends the same key, and the actor applies the command once.
 */
export const IdempotencyKeySchema = Schema.String.pipe(
  Schema.check(Schema.isPattern(CLIENT_ID, { message: "idempotencyKey must be 1–255 visible ASCII characters" })),
).annotate({
  description:
    "Makes a retry safe: a call repeated with the same key (and the same command) applies once and answers replayed: true",
})

/** A count or seq: a non-negative integer. */
export const Count = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))

export const mcpSchema = <S extends Schema.Codec<any, any, never, never>>(schema: S) =>
  Schema.toStandardJSONSchemaV1(Schema.toStandardSchemaV1(schema))

export const success = (value: Record<string, unknown>): ToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value,
})

/** An error result: the error as HTTP answers carry it, and no structured content (the output schema describes successes). */
export const failure = (code: string, message: string, details?: unknown): ToolResult => {
  const error = details === undefined ? { code, message } : { code, message, details }
  return { content: [{ type: "text", text: JSON.stringify({ error }) }], isError: true }
}

type Reply<A> = { ok: true; value: A } | { ok: false; error: { code: string; message: string; details?: unknown } }
export const fromReply = <A extends Record<string, unknown>>(reply: Reply<A>): ToolResult =>
  reply.ok ? success(reply.value) : failure(reply.error.code, reply.error.message, reply.error.details)

export interface ToolDefinition<A> {
  readonly description: string
  /** The arguments, as an Effect Schema (clients see its JSON Schema). */
  readonly input: Schema.Codec<A, any, never, never>
  readonly output?: Schema.Codec<any, any, never, never>
  /** The scope a caller needs (checked before the session's grants). */
  readonly scope: Scope
}

/** What a kind's `tools` receive: one per served kind and MCP server. */
export interface ToolRegistrar {
  readonly kind: string
  readonly principal: Principal
  /** This kind's actor `id` in the caller's tenant; commands sent through it carry the caller. */
  readonly actor: (id: string) => ActorApi
  readonly register: <A>(name: string, definition: ToolDefinition<A>, run: (args: A) => Promise<ToolResult>) => void
}

/** A kind's MCP tools, registered beside the generated command tools and the read/verify tools. */
export type KindTools = (tools: ToolRegistrar) => void
