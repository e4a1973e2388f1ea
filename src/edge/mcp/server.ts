/**
 * The MCP server emberlog offers: tools generated from the entity definitions (one per
 * command of each kind, e.g. `counter_increment {id, command: {by}}`, whose Effect Schemas
 * become the JSON Schemas clients see), plus `read_state`, `read_events` and `verify_log`,
 * and resources `emberlog://{kind}/{id}` (state) and `emberlog://{kind}/{id}/events`.
 * A command tool takes the actor's id beside the command's fields, never among them, so a
 * command may have a field of any name (`id` included).
 *
 * Error results are `isError: true` with the error (`{"error": {code, message, details?}}`,
 * as HTTP answers) in their text and no `structuredContent`: a tool's output schema
 * describes its successes, and clients check structured content against it.
 *
 * Every call is checked against the token's scopes and the caller's session grants: when
 * the principal's `session` actor (`/v1/session/{sub}`) has been opened by it, only the tools
 * it granted may be called, and none once it is closed or expired; a principal without a
 * session is bound by its scopes alone.
 */
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/server"
import { Schema } from "effect"
import type { ActorApi } from "../../actors/durable-actor.js"
import { kinds } from "../../kinds/entities.js"
import type { MemoryMethods, MemoryQuery } from "../../kinds/memory/api.js"
import { kindMethods } from "../objects.js"
import { NAME_CHARS, NAME_PATTERN } from "../../core/names.js"
import type { Entity } from "../../domain/entity.js"
import { contentHash } from "../../kinds/memory/entity.js"
import type { Principal, Scope } from "../../infra/tokens.js"
import pkg from "../../../package.json"

/** Where tools find actors: the caller's tenant, through the Worker's or an object's bindings. */
export interface ActorDirectory {
  readonly principal: Principal
  readonly actor: (kind: string, id: string) => ActorApi
}

export interface SubscriptionHooks {
  readonly subscribe: (uri: string) => Promise<void>
  readonly unsubscribe: (uri: string) => Promise<void>
}

export const RESOURCE_PREFIX = "emberlog://"

const ActorIdSchema = Schema.String.pipe(Schema.check(Schema.isPattern(NAME_PATTERN)))
const Count = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))

const mcpSchema = <S extends Schema.Codec<any, any, never, never>>(schema: S) =>
  Schema.toStandardJSONSchemaV1(Schema.toStandardSchemaV1(schema))

const snake = (type: string) => type.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase()
export const toolName = (kind: string, commandType: string) => `${kind}_${snake(commandType)}`

type ToolResult = {
  content: Array<{ type: "text"; text: string }>
  structuredContent?: Record<string, unknown>
  isError?: boolean
}

const success = (value: Record<string, unknown>): ToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value,
})
const failure = (code: string, message: string, details?: unknown): ToolResult => {
  const error = details === undefined ? { code, message } : { code, message, details }
  return { content: [{ type: "text", text: JSON.stringify({ error }) }], isError: true }
}

type Reply<A> = { ok: true; value: A } | { ok: false; error: { code: string; message: string; details?: unknown } }
const fromReply = <A extends Record<string, unknown>>(reply: Reply<A>): ToolResult =>
  reply.ok ? success(reply.value) : failure(reply.error.code, reply.error.message, reply.error.details)

/** The tools a principal may call: undefined when no session ACL applies. */
const sessionGrants = async (directory: ActorDirectory): Promise<ReadonlySet<string> | undefined> => {
  const reply = await directory.actor("session", directory.principal.sub).readState({})
  if (!reply.ok || reply.value.version === 0) return undefined
  // session/{sub} is sub's by its id (nobody else can open it), so its grants are sub's ACL.
  const state = reply.value.state as { status: string; grants: ReadonlyArray<string> }
  return new Set(state.status === "open" ? state.grants : [])
}

/** The kinds whose commands become tools: the app's, or a test's own. */
export type ServedKinds = Readonly<Record<string, { readonly entity: Entity }>>

export const buildMcpServer = (
  directory: ActorDirectory,
  hooks?: SubscriptionHooks,
  served: ServedKinds = kinds,
): McpServer => {
  const KindSchema = Schema.Literals(Object.keys(served) as [string, ...Array<string>])
  const mcp = new McpServer(
    { name: "emberlog", version: pkg.version },
    {
      capabilities: {
        tools: { listChanged: false },
        resources: { subscribe: hooks !== undefined, listChanged: false },
        logging: {},
      },
      instructions:
        "Event-sourced actors: send commands with the <kind>_<command> tools, read state, history and verify logs.",
    },
  )
  let grants: Promise<ReadonlySet<string> | undefined> | undefined

  /** Scope first, then the session ACL; a refusal is a tool error result. */
  const guard = async (tool: string, scope: Scope, run: () => Promise<ToolResult>): Promise<ToolResult> => {
    if (!directory.principal.scopes.has(scope)) return failure("insufficient_scope", `${tool} needs the ${scope} scope`)
    const granted = await (grants ??= sessionGrants(directory))
    if (granted !== undefined && !granted.has(tool))
      return failure("tool_not_granted", `${tool} is not granted to ${directory.principal.sub}'s session`)
    return run()
  }

  const OutcomeSchema = (state: Schema.Codec<any, any, never, never>) =>
    mcpSchema(Schema.Struct({ version: Count, events: Schema.Array(Schema.Unknown), state }))

  for (const [kind, { entity }] of Object.entries(served)) {
    const internal: ReadonlyArray<string> = entity.internalCommands ?? []
    for (const type of entity.commandTypes.filter((type) => !internal.includes(type))) {
      const { type: _tag, ...fields } = entity.commandSchema(type).fields
      const name = toolName(kind, type)
      const command = Schema.Struct(fields) as unknown as Schema.Codec<any, any, never, never>
      mcp.registerTool(
        name,
        {
          description:
            `Sends ${type} (its fields in \`command\`) to the ${kind} actor with this id (it exists implicitly) ` +
            "and returns its new version, the events appended and the state.",
          inputSchema: mcpSchema(
            Schema.Struct({
              id: ActorIdSchema,
              command: Object.keys(fields).length === 0 ? Schema.optionalKey(command) : command,
            }),
          ),
          outputSchema: OutcomeSchema(entity.state as Schema.Codec<any, any, never, never>),
        },
        async (args: { id: string; command?: Record<string, unknown> }) =>
          guard(name, "write", async () => {
            const request = { command: { ...args.command, type }, principal: directory.principal.sub }
            const reply = await directory.actor(kind, args.id).command(request)
            if (!reply.ok) return fromReply(reply)
            const { version, events, state } = reply.value
            return success({ version, events, state })
          }),
      )
    }
  }

  mcp.registerTool(
    "read_state",
    {
      description: "Reads an actor's state: now, at a version (`at`), or as of an ISO-8601 time (`asOf`).",
      inputSchema: mcpSchema(
        Schema.Struct({
          kind: KindSchema,
          id: ActorIdSchema,
          at: Schema.optionalKey(Count),
          asOf: Schema.optionalKey(Schema.String),
        }),
      ),
    },
    async ({ kind, id, at, asOf }) =>
      guard("read_state", "read", async () => {
        const asOfMs = asOf === undefined ? undefined : Date.parse(asOf)
        if (asOfMs !== undefined && Number.isNaN(asOfMs))
          return failure("invalid_query", "asOf must be an ISO-8601 time")
        const reply = await directory
          .actor(kind, id)
          .readState(at !== undefined ? { at } : asOfMs !== undefined ? { asOf: asOfMs } : {})
        return reply.ok ? success({ kind, id, ...reply.value }) : fromReply(reply)
      }),
  )

  mcp.registerTool(
    "read_events",
    {
      description: "Reads a page of an actor's events after a seq; `next` is null at the head.",
      inputSchema: mcpSchema(
        Schema.Struct({
          kind: KindSchema,
          id: ActorIdSchema,
          after: Schema.optionalKey(Count),
          limit: Schema.optionalKey(Count),
        }),
      ),
    },
    async ({ kind, id, after, limit }) =>
      guard("read_events", "read", async () =>
        fromReply((await directory.actor(kind, id).readEvents(after ?? 0, limit ?? 100)) as Reply<any>),
      ),
  )

  mcp.registerTool(
    "verify_log",
    {
      description: "Verifies an actor's hash chain.",
      inputSchema: mcpSchema(Schema.Struct({ kind: KindSchema, id: ActorIdSchema })),
    },
    async ({ kind, id }) =>
      guard("verify_log", "admin", async () => success({ ...(await directory.actor(kind, id).verifyLog()) })),
  )

  // The memory service's tools, in the names MCP memory clients expect.
  // The memory store capability's methods (search, item) are called through the actor's `invoke`.
  const memoryOf = (namespace: string) => directory.actor("memory", namespace)
  const Namespace = ActorIdSchema
  const MemoryTags = Schema.Array(Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(64))))
  mcp.registerTool(
    "store_memory",
    {
      description:
        "Stores a memory in a namespace; its id is the SHA-256 of its content, and storing the same content again changes nothing.",
      inputSchema: mcpSchema(
        Schema.Struct({
          namespace: Namespace,
          content: Schema.String.pipe(Schema.check(Schema.isMinLength(1))),
          tags: Schema.optionalKey(MemoryTags),
          type: Schema.optionalKey(Schema.String),
          metadata: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
        }),
      ),
    },
    async ({ namespace, content, tags, type, metadata }) =>
      guard("store_memory", "write", async () => {
        const command = {
          type: "Store",
          content,
          ...(tags ? { tags } : {}),
          ...(type ? { memoryType: type } : {}),
          ...(metadata ? { metadata } : {}),
        }
        const reply = await memoryOf(namespace).command({ command, principal: directory.principal.sub })
        return reply.ok
          ? success({ hash: contentHash(content), stored: reply.value.events.length > 0 })
          : fromReply(reply)
      }),
  )
  const searchTool = (
    name: string,
    description: string,
    input: Schema.Struct<Schema.Struct.Fields>,
    toQuery: (args: any) => Omit<MemoryQuery, "offset">,
  ) =>
    mcp.registerTool(
      name,
      { description, inputSchema: mcpSchema(input as unknown as Schema.Codec<any, any, never, never>) },
      async (args: any) =>
        guard(name, "read", async () => {
          const page = await kindMethods<MemoryMethods>(memoryOf(args.namespace)).search({
            ...toQuery(args),
            offset: 0,
          })
          return "error" in page ? failure(page.error.code, page.error.message) : success({ ...page })
        }),
    )
  searchTool(
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
  mcp.registerTool(
    "delete_memory",
    {
      description: "Forgets a memory: its content is erased; the log keeps only that it was forgotten.",
      inputSchema: mcpSchema(Schema.Struct({ namespace: Namespace, hash: Schema.String })),
    },
    async ({ namespace, hash }) =>
      guard("delete_memory", "write", async () => {
        const reply = await memoryOf(namespace).command({
          command: { type: "Forget", hash },
          principal: directory.principal.sub,
        })
        return reply.ok ? success({ hash, forgotten: true }) : fromReply(reply)
      }),
  )

  // tools/list is the SDK's own handler: every tool in one page, no cursor. Paging its
  // answer would mean reaching into the SDK's private handler table.

  const readResource = async (uri: URL, kind: string, id: string, events: boolean) => {
    if (!directory.principal.scopes.has("read")) throw new Error("Reading resources needs the read scope")
    const actor = directory.actor(kind, id)
    const reply = events ? await actor.readEvents(0, 1000) : await actor.readState({})
    if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`)
    const value = events ? reply.value : { kind, id, ...reply.value }
    return { contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(value) }] }
  }
  mcp.registerResource(
    "actor-state",
    new ResourceTemplate(`${RESOURCE_PREFIX}{kind}/{id}`, { list: undefined }),
    { mimeType: "application/json", description: "An actor's current state and version" },
    async (uri, variables) => readResource(uri, String(variables.kind), String(variables.id), false),
  )
  mcp.registerResource(
    "actor-events",
    new ResourceTemplate(`${RESOURCE_PREFIX}{kind}/{id}/events`, { list: undefined }),
    { mimeType: "application/json", description: "The first page (up to 1000) of an actor's events" },
    async (uri, variables) => readResource(uri, String(variables.kind), String(variables.id), true),
  )

  if (hooks !== undefined) {
    mcp.server.setRequestHandler("resources/subscribe", async (request) => {
      await hooks.subscribe(request.params.uri)
      return {}
    })
    mcp.server.setRequestHandler("resources/unsubscribe", async (request) => {
      await hooks.unsubscribe(request.params.uri)
      return {}
    })
  }
  return mcp
}

/** `emberlog://{kind}/{id}` or `…/events` → its actor, if the URI names one. */
export const parseResourceUri = (uri: string): { kind: string; id: string } | undefined => {
  const match = new RegExp(`^emberlog://([a-z]+)/(${NAME_CHARS})(/events)?$`).exec(uri)
  return match === null || !Object.hasOwn(kinds, match[1]!) ? undefined : { kind: match[1]!, id: match[2]! }
}
