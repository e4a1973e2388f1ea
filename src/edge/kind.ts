/**
 * A kind module: an entity and whatever its kind adds, on the host's side (capabilities)
 * and the edge's (routes, MCP tools, a /health part, topics worth tailing, a larger command
 * body). An app lists its kinds, as plain entities or kind modules; the registry built from
 * that list is all the edge knows of kinds: what it serves, routes, lists and generates tools for.
 */
import type { Capability } from "../actors/capability.js"
import { checkRetention, type Retention } from "../actors/retention.js"
import type { ActorApi } from "../actors/durable-actor.js"
import { KIND_PATTERN, NAME_PATTERN } from "../core/names.js"
import type { Entity } from "../domain/entity.js"
import type { Principal } from "../infra/tokens.js"
import type { App, Env } from "./env.js"
import type { KindTools, ToolRegistrar } from "./mcp/tools.js"

/** How /health reports one thing the app depends on ("not_configured": not bound, degrading nothing). */
export interface Dependency {
  readonly status: "ok" | "degraded" | "not_configured"
  readonly [field: string]: unknown
}

/** A kind's part of /health: whether what it depends on answers, and what to report of it. */
export interface HealthPart {
  readonly healthy: boolean
  /** Fields of the /health body (e.g. `executor: {name, healthy, latencyMs}`). */
  readonly report: Readonly<Record<string, unknown>>
  /**
   * /health `dependencies` entries with a status each (`"not_configured"` degrades nothing), beside
   * those made of `report`'s fields (which take `healthy` as their status).
   */
  readonly dependencies?: Readonly<Record<string, Dependency>>
}

/** A sign-in (or a token refresh) through the app's authorization server, as kinds record it. */
export interface SignIn {
  readonly event: "signed-in" | "refreshed"
  /** The principal (the GitHub login, as GitHub spells it). */
  readonly login: string
  /** The login lowercased: the user's namespace. */
  readonly tenant: string
  /** GitHub's numeric user id: stable across renames. */
  readonly githubId: number
  readonly clientId: string
  readonly clientName?: string
  readonly scopes: ReadonlyArray<string>
  /** ms epoch. */
  readonly at: number
}

/** What a kind's `signedIn` may answer: `scopes`, the most the user's token may carry (the tool ACL's cap). */
export interface SignInLimits {
  readonly scopes?: ReadonlyArray<string>
}

/** What a kind's `signedIn` gets beside the sign-in. */
export interface SignInContext {
  readonly env: Env
  /** Every MCP tool the app serves, in registration order (for expanding an ACL's patterns). */
  readonly tools: ReadonlyArray<string>
}

export interface KindModule<E extends Entity = Entity> {
  readonly entity: E
  readonly capabilities?: ReadonlyArray<Capability>
  /**
   * History beyond one object (README, "History beyond one object"): past `archiveAfterEvents`
   * live events the oldest are sealed into segments in R2 (binding EMBERLOG_ARCHIVE), and
   * segments older than `deleteArchivedAfterDays` are deleted. Reads and verify are unchanged.
   */
  readonly retention?: Retention
  /** Routes of the kind's own, mounted before the generic `/v1/{kind}/{id}` routes. */
  readonly routes?: (app: App) => void
  readonly tools?: KindTools
  /**
   * The MCP tools a principal may call, as this kind decides it (the session kind's grants):
   * undefined when it sets no limit. `actor` addresses this kind's actors in the caller's tenant.
   * Asked once per MCP server; a tool must be in every set the served kinds answer.
   */
  readonly toolGrants?: (
    actor: (id: string) => ActorApi,
    principal: Principal,
  ) => Promise<ReadonlySet<string> | undefined>
  /**
   * Called on every sign-in and refresh through the app's authorization server, before the
   * client gets its code or token (the session kind records it and applies the tool ACL).
   * `actor` addresses this kind's actors in the user's tenant. A throw refuses the sign-in (an
   * HttpError below 500) or fails it for now (anything else); an answer may cap the token's scopes.
   */
  readonly signedIn?: (
    actor: (id: string) => ActorApi,
    signIn: SignIn,
    context: SignInContext,
  ) => Promise<SignInLimits | void>
  readonly health?: (env: Env) => Promise<HealthPart>
  /** Topics the kind's events go to beside its own (the inspector offers them to tail). */
  readonly topics?: ReadonlyArray<string>
  /** The largest `POST /v1/{kind}/{id}/commands` body, in bytes (256 KiB unless set). */
  readonly commandBodyBytes?: number
  /**
   * Words under /v1 the kind's own routes hold beside its name (the stream kind's `stream`):
   * no listed kind may be named one (the registry throws at startup), and `/v1/{word}/…` is
   * never read as a kind.
   */
  readonly claims?: ReadonlyArray<string>
  /** Headers on every response under `/v1/{claim}/`, the shared guard's refusals (401, 403, 413, 429) included. */
  readonly claimHeaders?: Readonly<Record<string, string>>
}

export const defineKind = <E extends Entity>(module: KindModule<E>): KindModule<E> => module

/** Words under /v1 that are routes of their own, never kinds. */
export const RESERVED_KINDS: ReadonlyArray<string> = ["topics", "projections", "admin", "actors", "tenants"]

export interface KindRegistry {
  /** The served kinds' names, in the order the app listed them. */
  readonly names: ReadonlyArray<string>
  readonly modules: ReadonlyArray<KindModule>
  readonly get: (kind: string) => KindModule | undefined
  /** Every topic worth tailing: one per kind, then the kinds' extra topics. */
  readonly topics: ReadonlyArray<string>
  /** Every MCP tool name, in the order the server registers them. */
  readonly tools: ReadonlyArray<string>
  /** The words kinds claim under /v1 (KindModule.claims), each with the module claiming it. */
  readonly claims: ReadonlyMap<string, KindModule>
}

const isModule = (kind: Entity | KindModule): kind is KindModule => "entity" in kind

const snake = (type: string) => type.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase()
const toolName = (kind: string, commandType: string) => `${kind}_${snake(commandType)}`

/** The command tools generated for an entity: one per command a request may send. */
export const commandTools = (entity: Entity): ReadonlyArray<{ readonly name: string; readonly type: string }> => {
  const internal: ReadonlyArray<string> = entity.internalCommands ?? []
  return entity.commandTypes
    .filter((type) => !internal.includes(type))
    .map((type) => ({ name: toolName(entity.kind, type), type }))
}

/** The tools every MCP server offers beside the kinds' (mcp/server.ts registers them). */
const READ_TOOLS: ReadonlyArray<string> = ["read_state", "read_events", "verify_log", "whoami"]

/**
 * Granted whatever the kinds' grants say: whoami shows callers only their own authority, and a
 * user locked out by an ACL (or a closed session) most needs to see why.
 */
export const ALWAYS_GRANTED: ReadonlyArray<string> = ["whoami"]

/**
 * The tools a principal may call, by every served kind that limits them (a tool must be in every
 * set; ALWAYS_GRANTED is in all): undefined when none does. `actor` addresses the principal's tenant.
 */
export const toolGrantsOf = async (
  served: KindRegistry,
  principal: Principal,
  actor: (kind: string, id: string) => ActorApi,
): Promise<ReadonlySet<string> | undefined> => {
  const answers = await Promise.all(
    served.modules.map(({ entity, toolGrants }) => toolGrants?.((id) => actor(entity.kind, id), principal)),
  )
  const limits = answers.filter((granted) => granted !== undefined)
  if (limits.length === 0) return undefined
  const [first, ...rest] = limits
  const granted = [...first!].filter((tool) => rest.every((limit) => limit.has(tool)))
  return new Set([...granted, ...ALWAYS_GRANTED])
}

const NOBODY = { sub: "", tenant: "", scopes: new Set<string>() } as Principal

/**
 * Every MCP tool name the kinds give, in the order the server registers them (generated, the
 * read tools, each kind's own): a name given twice throws here, at startup, naming both
 * sources, rather than in the MCP SDK at the first request.
 */
const checkToolNames = (modules: ReadonlyArray<KindModule>): ReadonlyArray<string> => {
  const sources = new Map<string, string>()
  const add = (name: string, source: string) => {
    const earlier = sources.get(name)
    if (earlier !== undefined)
      throw new Error(`emberlog: MCP tool ${JSON.stringify(name)} is given twice: by ${earlier} and by ${source}`)
    sources.set(name, source)
  }
  for (const { entity } of modules)
    for (const { name, type } of commandTools(entity)) add(name, `the ${entity.kind} kind's command ${type}`)
  for (const name of READ_TOOLS) add(name, "emberlog's own read tools")
  for (const { entity, tools } of modules) {
    if (tools === undefined) continue
    // Registration only names the tools: nothing here is called.
    const recorder: ToolRegistrar = {
      kind: entity.kind,
      principal: NOBODY,
      actor: () => {
        throw new Error("emberlog: a kind's tools address actors when called, not when registered")
      },
      register: (name) => add(name, `the ${entity.kind} kind's own tools`),
    }
    tools(recorder)
  }
  return [...sources.keys()]
}

/**
 * The registry of an app's kinds; throws at startup on a name outside KIND_PATTERN, a reserved
 * word, a word another kind claims or a duplicate, and on an MCP tool name two sources give.
 */
export const kindRegistry = (kinds: ReadonlyArray<Entity | KindModule>): KindRegistry => {
  const byName = new Map<string, KindModule>()
  for (const listed of kinds) {
    const module = isModule(listed) ? listed : { entity: listed }
    const name = module.entity.kind
    if (typeof name !== "string" || !KIND_PATTERN.test(name))
      throw new Error(
        `emberlog: kind ${JSON.stringify(name)} is not a kind name (1–64 characters of a-z 0-9 -, starting with a letter)`,
      )
    if (RESERVED_KINDS.includes(name))
      throw new Error(`emberlog: kind ${JSON.stringify(name)} is reserved (/v1/${name} is a route of its own)`)
    if (byName.has(name)) throw new Error(`emberlog: kind ${JSON.stringify(name)} is listed twice`)
    checkRetention(name, module.retention)
    byName.set(name, module)
  }
  const claims = new Map<string, KindModule>()
  for (const module of byName.values())
    for (const word of module.claims ?? []) {
      const claimer = `the ${module.entity.kind} kind`
      if (byName.has(word))
        throw new Error(`emberlog: kind ${JSON.stringify(word)} collides with /v1/${word}, claimed by ${claimer}`)
      if (RESERVED_KINDS.includes(word) || claims.has(word) || !KIND_PATTERN.test(word))
        throw new Error(`emberlog: ${claimer} claims /v1/${word}, which is reserved, claimed twice or not a kind name`)
      claims.set(word, module)
    }
  const names = [...byName.keys()]
  const modules = [...byName.values()]
  const tools = checkToolNames(modules)
  const extra = modules.flatMap((module) => module.topics ?? []).filter((topic) => !byName.has(topic))
  for (const topic of extra)
    if (typeof topic !== "string" || !NAME_PATTERN.test(topic))
      throw new Error(
        `emberlog: topic ${JSON.stringify(topic)} is not a topic name (1–128 characters of A-Z a-z 0-9 . _ : -)`,
      )
  return {
    names,
    modules,
    get: (kind) => byName.get(kind),
    topics: [...names, ...new Set(extra)],
    tools,
    claims,
  }
}
