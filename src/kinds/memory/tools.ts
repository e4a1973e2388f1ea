/**
 * The memory kind's MCP tools, in the names MCP memory clients expect: store_memory,
 * retrieve_memory, search_by_tag and delete_memory, over the memory actors' commands and search.
 */
import { Schema } from "effect"
import { contentHash } from "./entity.js"
import {
  ActorIdSchema,
  Count,
  IdempotencyKeySchema,
  failure,
  fromReply,
  kindMethods,
  success,
  type KindTools,
  type ToolRegistrar,
} from "../../worker.js"
import type { MemoryMethods, MemoryQuery } from "./api.js"

const Namespace = ActorIdSchema
const MemoryTags = Schema.Array(Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(64))))

const searchTool = <A extends { readonly namespace: string }>(
  tools: ToolRegistrar,
  name: string,
  description: string,
  input: Schema.Codec<A, any, never, never>,
  toQuery: (args: A) => Omit<MemoryQuery, "offset">,
) =>
  tools.register(name, { description, input, scope: "read" }, async (args) => {
    const page = await kindMethods<MemoryMethods>(tools.actor(args.namespace)).search({ ...toQuery(args), offset: 0 })
    return "error" in page ? failure(page.error.code, page.error.message) : success({ ...page })
  })

export const memoryTools: KindTools = (tools) => {
  tools.register(
    "store_memory",
    {
      description:
        "Stores a memory in a namespace; its id is the SHA-256 of its content, and storing the same content again changes nothing.",
      input: Schema.Struct({
        namespace: Namespace,
        content: Schema.String.pipe(Schema.check(Schema.isMinLength(1))),
        tags: Schema.optionalKey(MemoryTags),
        type: Schema.optionalKey(Schema.String),
        metadata: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
        idempotencyKey: Schema.optionalKey(IdempotencyKeySchema),
      }),
      scope: "write",
    },
    async ({ namespace, content, tags, type, metadata, idempotencyKey }) => {
      const command = {
        type: "Store",
        content,
        ...(tags ? { tags } : {}),
        ...(type ? { memoryType: type } : {}),
        ...(metadata ? { metadata } : {}),
      }
      const key = idempotencyKey === undefined ? {} : { idempotencyKey }
      const reply = await tools.actor(namespace).command({ command, principal: tools.principal.sub, ...key })
      return reply.ok
        ? success({ hash: contentHash(content), stored: reply.value.events.length > 0, replayed: reply.value.replayed })
        : fromReply(reply)
    },
  )
  searchTool(
    tools,
    "retrieve_memory",
    "Finds memories by meaning when semantic search is configured (Workers AI + Vectorize), otherwise by full-text relevance (bm25).",
    Schema.Struct({
      namespace: Namespace,
      query: Schema.String,
      limit: Schema.optionalKey(Count),
      tags: Schema.optionalKey(MemoryTags),
    }),
    ({ query, limit, tags }) => ({ q: query, mode: "auto", limit: Math.min(Math.max(limit ?? 10, 1), 100), tags }),
  )
  searchTool(
    tools,
    "search_by_tag",
    "Lists memories carrying any (or all) of the given tags, newest first.",
    Schema.Struct({
      namespace: Namespace,
      tags: MemoryTags,
      match: Schema.optionalKey(Schema.Literals(["all", "any"])),
      limit: Schema.optionalKey(Count),
    }),
    ({ tags, match, limit }) => ({ tags, match: match ?? "any", limit: Math.min(Math.max(limit ?? 20, 1), 100) }),
  )
  tools.register(
    "delete_memory",
    {
      description: "Forgets a memory: its content is erased; the log keeps only that it was forgotten.",
      input: Schema.Struct({
        namespace: Namespace,
        hash: Schema.String,
        idempotencyKey: Schema.optionalKey(IdempotencyKeySchema),
      }),
      scope: "write",
    },
    async ({ namespace, hash, idempotencyKey }) => {
      // Forgetting twice is refused (the memory is unknown by then): a re-sent call needs the key to answer alike.
      const key = idempotencyKey === undefined ? {} : { idempotencyKey }
      const reply = await tools
        .actor(namespace)
        .command({ command: { type: "Forget", hash }, principal: tools.principal.sub, ...key })
      return reply.ok ? success({ hash, forgotten: true, replayed: reply.value.replayed }) : fromReply(reply)
    },
  )
}
