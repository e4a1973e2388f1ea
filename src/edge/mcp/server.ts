/**
 * The MCP server emberlog offers: tools generated from the entity definitions (one per
 * command of each kind, e.g. `counter_increment {id, command: {by}}`, whose Effect Schemas
 * become the JSON Schemas clients see), plus `read_state`, `read_events`, `verify_log` and `whoami`,
 * and resources `emberlog://{kind}/{id}` (state) and `emberlog://{kind}/{id}/events`.
 * A command tool takes the actor's id beside the command's fields, never among them, so a
 * command may have a field of any name (`id` included), and an optional `idempotencyKey`
 * (the actor's Idempotency-Key): a call re-sent with the same key applies once, and its answer
 * says `replayed: true`. `whoami` shows the caller what the server sees of it (../whoami.ts).
 *
 * Error results are `isError: true` with the error (`{"error": {code, message, details?}}`,
 * as HTTP answers) in their text and no `structuredContent`: a tool's output schema
 * describes its successes, and clients check structured content against it.
 *
 * Every call is checked against the token's scopes, then against the grants of the served
 * kinds that limit tools (`KindModule.toolGrants`: the session kind's, when it is served);
 * a principal no kind limits is bound by its scopes alone.
 */
import { McpServer, ProtocolError, ResourceTemplate } from "@modelcontextprotocol/server"
import { Schema } from "effect"
import type { ActorApi } from "../../actors/durable-actor.js"
import { NAME_CHARS } from "../../core/names.js"
import type { Principal, Scope } from "../../infra/tokens.js"
import { commandTools, toolGrantsOf, type KindRegistry } from "../kind.js"
import { Whoami, whoamiOf } from "../whoami.js"
import {
  ActorIdSchema,
  Count,
  IdempotencyKeySchema,
  failure,
  fromReply,
  mcpSchema,
  success,
  type ToolDefinition,
  type ToolRegistrar,
  type ToolResult,
} from "./tools.js"
import pkg from "../../../package.json"

/** Where tools find actors: the caller's tenant, through the Worker's or an object's bindings. */
export interface ActorDirectory {
  readonly principal: Principal
  /** The kinds served: the only ones `actor` addresses. */
  readonly kinds: ReadonlyArray<string>
  readonly actor: (kind: string, id: string) => ActorApi
  /** Told of every tool call and its result, when the app counts usage (edge/usage.ts). */
  readonly usage?: { readonly toolCalled: (tool: string, result: ToolResult) => void }
}

export interface SubscriptionHooks {
  readonly subscribe: (uri: string) => Promise<void>
  readonly unsubscribe: (uri: string) => Promise<void>
}

export const RESOURCE_PREFIX = "emberlog://"

/** tools/list answers every tool in one page up to this many, and pages beyond (MCP's pagination, an opaque cursor). */
export const TOOLS_PAGE = 100

type Listed = { name: string; description: string; inputSchema: any; outputSchema?: any }

const jsonSchema = (schema: any, io: "input" | "output"): { type: "object"; [key: string]: unknown } => {
  const json = schema["~standard"].jsonSchema[io]({ target: "draft-2020-12" }) as Record<string, unknown>
  return { type: "object", ...json }
}

/** One page of tools/list: TOOLS_PAGE tools from the cursor on (the offset, as an opaque string), and the next cursor. */
const listPage = (listed: ReadonlyArray<Listed>, cursor: string | undefined) => {
  const start = cursor === undefined ? 0 : /^(0|[1-9][0-9]{0,8})$/.test(cursor) ? Number(cursor) : Number.NaN
  if (!(start >= 0 && start < listed.length)) throw new ProtocolError(-32602, "Invalid params: unknown cursor")
  const end = Math.min(listed.length, start + TOOLS_PAGE)
  const tools = listed.slice(start, end).map(({ name, description, inputSchema, outputSchema }) => ({
    name,
    description,
    inputSchema: jsonSchema(inputSchema, "input"),
    ...(outputSchema === undefined ? {} : { outputSchema: jsonSchema(outputSchema, "output") }),
  }))
  return end < listed.length ? { tools, nextCursor: String(end) } : { tools }
}

/** The most events `read_events` answers at once. */
export const MCP_EVENTS_PAGE = 1000

/** The tools a principal may call (kind.ts, toolGrantsOf): undefined when no served kind limits them. */
const toolGrants = (directory: ActorDirectory, served: KindRegistry) =>
  toolGrantsOf(served, directory.principal, directory.actor)

/** The MCP server for one caller: tools of the registry's kinds (the app's, or a test's own). */
export const buildMcpServer = (
  directory: ActorDirectory,
  hooks: SubscriptionHooks | undefined,
  served: KindRegistry,
): McpServer => {
  const KindSchema = Schema.Literals(served.names as [string, ...Array<string>])
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

  /** Scope first, then the kinds' grants (the session ACL); a refusal is a tool error result. */
  const allowed = async (tool: string, scope: Scope, run: () => Promise<ToolResult>): Promise<ToolResult> => {
    if (!directory.principal.scopes.has(scope)) return failure("insufficient_scope", `${tool} needs the ${scope} scope`)
    const granted = await (grants ??= toolGrants(directory, served))
    if (granted !== undefined && !granted.has(tool))
      return failure("tool_not_granted", `${tool} is not granted to ${directory.principal.sub}`)
    return run()
  }
  /** Every tool runs through here: the checks above, then usage is told of the call (when the app counts it). */
  const guard = async (tool: string, scope: Scope, run: () => Promise<ToolResult>): Promise<ToolResult> => {
    const result = await allowed(tool, scope, run)
    directory.usage?.toolCalled(tool, result)
    return result
  }

  const OutcomeSchema = (state: Schema.Codec<any, any, never, never>) =>
    mcpSchema(Schema.Struct({ version: Count, events: Schema.Array(Schema.Unknown), state, replayed: Schema.Boolean }))

  /** Every tool registered, in order, as tools/list lists them when it pages (see below). */
  const listed: Array<Listed> = []
  const register = (
    name: string,
    config: { description: string; inputSchema: any; outputSchema?: any },
    handler: (args: any) => Promise<ToolResult>,
  ) => {
    listed.push({ name, ...config })
    mcp.registerTool(name, config, handler as never)
  }

  for (const { entity } of served.modules) {
    const kind = entity.kind
    for (const { name, type } of commandTools(entity)) {
      const { type: _tag, ...fields } = entity.commandSchema(type).fields
      const command = Schema.Struct(fields) as unknown as Schema.Codec<any, any, never, never>
      register(
        name,
        {
          description:
            `Sends ${type} (its fields in \`command\`) to the ${kind} actor with this id (it exists implicitly) ` +
            "and returns its new version, the events appended and the state; " +
            "with an idempotencyKey, a retried call applies once.",
          inputSchema: mcpSchema(
            Schema.Struct({
              id: ActorIdSchema,
              command: Object.keys(fields).length === 0 ? Schema.optionalKey(command) : command,
              idempotencyKey: Schema.optionalKey(IdempotencyKeySchema),
            }),
          ),
          outputSchema: OutcomeSchema(entity.state as Schema.Codec<any, any, never, never>),
        },
        async (args: { id: string; command?: Record<string, unknown>; idempotencyKey?: string }) =>
          guard(name, "write", async () => {
            const { sub, scopes } = directory.principal
            const key = args.idempotencyKey === undefined ? {} : { idempotencyKey: args.idempotencyKey }
            const request = { command: { ...args.command, type }, principal: sub, scopes: [...scopes], ...key }
            const reply = await directory.actor(kind, args.id).command(request)
            if (!reply.ok) return fromReply(reply)
            const { version, events, state, replayed } = reply.value
            return success({ version, events, state, replayed })
          }),
      )
    }
  }

  register(
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

  register(
    "read_events",
    {
      description: `Reads a page of an actor's events after a seq (limit: 1 to ${MCP_EVENTS_PAGE}, default 100); \`next\` is null at the head.`,
      inputSchema: mcpSchema(
        Schema.Struct({
          kind: KindSchema,
          id: ActorIdSchema,
          after: Schema.optionalKey(Count),
          // Not the HTTP route's 10,000: a page goes into a model's context, where 4 MiB is too much.
          limit: Schema.optionalKey(Count.pipe(Schema.check(Schema.isLessThanOrEqualTo(MCP_EVENTS_PAGE)))),
        }),
      ),
    },
    async ({ kind, id, after, limit }) =>
      guard("read_events", "read", async () =>
        fromReply(
          (await directory.actor(kind, id).readEvents(after ?? 0, limit ?? 100)) as Parameters<typeof fromReply>[0],
        ),
      ),
  )

  register(
    "verify_log",
    {
      description: "Verifies an actor's hash chain.",
      inputSchema: mcpSchema(Schema.Struct({ kind: KindSchema, id: ActorIdSchema })),
    },
    async ({ kind, id }) =>
      guard("verify_log", "admin", async () => {
        const report = await directory.actor(kind, id).verifyLog()
        if ("error" in report) return failure(report.error.code, report.error.message)
        return success({ ...report })
      }),
  )

  register(
    "whoami",
    {
      description:
        "Shows what the server sees of you: principal, tenant, scopes, the tools granted to you " +
        "(null: your scopes alone decide) and when your token expires.",
      inputSchema: mcpSchema(Schema.Struct({})),
      outputSchema: mcpSchema(Whoami),
    },
    async () =>
      guard("whoami", "read", async () => {
        const granted = await (grants ??= toolGrants(directory, served))
        return success({ ...whoamiOf(directory.principal, granted, served) })
      }),
  )

  // Each kind's own tools, after the generated ones.
  for (const module of served.modules) {
    if (module.tools === undefined) continue
    const kind = module.entity.kind
    const registrar: ToolRegistrar = {
      kind,
      principal: directory.principal,
      actor: (id) => directory.actor(kind, id),
      register: <A>(name: string, definition: ToolDefinition<A>, run: (args: A) => Promise<ToolResult>) =>
        register(
          name,
          {
            description: definition.description,
            inputSchema: mcpSchema(definition.input),
            ...(definition.output === undefined ? {} : { outputSchema: mcpSchema(definition.output) }),
          },
          async (args: A) => guard(name, definition.scope, () => run(args)),
        ),
    }
    module.tools(registrar)
  }

  // Up to TOOLS_PAGE tools, tools/list is the SDK's own handler: every tool in one page, no cursor.
  // Beyond, this one pages the same definitions (converted as the SDK converts them) by an offset cursor.
  if (listed.length > TOOLS_PAGE)
    mcp.server.setRequestHandler("tools/list", (request) => listPage(listed, request.params?.cursor))

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

/** `emberlog://{kind}/{id}` or `…/events` → its actor, if the URI names one of a served kind. */
export const parseResourceUri = (
  uri: string,
  kinds: ReadonlyArray<string>,
): { kind: string; id: string } | undefined => {
  const match = new RegExp(`^emberlog://([a-z][a-z0-9-]{0,63})/(${NAME_CHARS})(/events)?$`).exec(uri)
  return match === null || !kinds.includes(match[1]!) ? undefined : { kind: match[1]!, id: match[2]! }
}
