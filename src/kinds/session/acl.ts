/**
 * The deployment's tool ACL: a TOML document (the shape of the b00t seed's `b00t-mcp-acl.toml`)
 *
 * ```toml
 * [default]
 * tools = ["read_*", "whoami"]
 * scopes = ["read"]      # optional: the most a token may carry, on every route
 *
 * [users.Alice]          # GitHub logins match case-insensitively
 * tools = ["*"]
 * ```
 *
 * A user listed under `[users.<login>]` gets that section's tools, anyone else `[default]`'s
 * (none without a `[default]`: what the ACL does not grant is refused). A tool pattern is a
 * name with `*` standing for any run of characters, expanded against the tools the app serves.
 * Tools are MCP tools; `scopes` caps the OAuth token itself, so it binds the HTTP routes and
 * sockets too (a section without it leaves the scopes the client asked for).
 * Pure: no Cloudflare import, so node tests parse and expand ACLs directly.
 */
import { parse, TomlError } from "smol-toml"

/** A document that is not an ACL: the sign-in is refused with this message (where, and what is wrong). */
export class InvalidToolAcl extends Error {
  constructor(source: string, problem: string) {
    super(`The tool ACL (${source}) is invalid: ${problem}`)
  }
}

/** One section: its tool patterns, and the scopes it caps tokens at (undefined: no cap). */
export interface AclSection {
  readonly tools: ReadonlyArray<string>
  readonly scopes?: ReadonlyArray<string>
}

export interface ToolAcl {
  /** `[default]`; undefined when the document has none. */
  readonly default?: AclSection
  /** `[users.<login>]` by login lowercased, with the login as the document spells it. */
  readonly users: ReadonlyMap<string, AclSection & { readonly login: string }>
}

/** What the ACL grants one user: the tools it names that the app serves, and which section said so. */
export interface AclGrants {
  /** `users.<login>` (as the document spells it) or `default`; null when no section names the user. */
  readonly section: string | null
  /** Served tools the section's patterns match, in the app's registration order. */
  readonly tools: ReadonlyArray<string>
  /** The section's patterns that match no served tool (a typo, or a tool of another deployment). */
  readonly unmatched: ReadonlyArray<string>
  /** The most scopes the user's tokens may carry; null when the section sets no cap. */
  readonly scopes: ReadonlyArray<string> | null
}

/** Tool names are snake-case kind and command names; a pattern adds `*`. */
const TOOL_PATTERN = /^[A-Za-z0-9_.:*-]{1,128}$/
const SECTION_KEYS = ["tools", "scopes"]
/** The scopes a sign-in can give (never operator), so the only ones a cap can name. */
const CAPPABLE_SCOPES = ["read", "write", "admin"]
const HINT = "an ACL has [default] and [users.<login>] sections, each with tools = [...] and optionally scopes = [...]"

const isTable = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date)

const aclSection = (source: string, where: string, section: unknown): AclSection => {
  if (!isTable(section)) throw new InvalidToolAcl(source, `[${where}] must be a table (${HINT})`)
  for (const key of Object.keys(section))
    if (!SECTION_KEYS.includes(key))
      throw new InvalidToolAcl(source, `[${where}] has an unknown key ${JSON.stringify(key)} (${HINT})`)
  const { tools, scopes } = section
  if (tools === undefined) throw new InvalidToolAcl(source, `[${where}] has no tools = [...]`)
  if (!Array.isArray(tools)) throw new InvalidToolAcl(source, `[${where}] tools must be an array of tool names`)
  for (const tool of tools)
    if (typeof tool !== "string" || !TOOL_PATTERN.test(tool))
      throw new InvalidToolAcl(
        source,
        `[${where}] tools has ${JSON.stringify(tool)}: a tool name or pattern is 1–128 characters of A-Z a-z 0-9 _ . : - and *`,
      )
  if (scopes === undefined) return { tools }
  const cappable = CAPPABLE_SCOPES.join(", ")
  if (!Array.isArray(scopes)) throw new InvalidToolAcl(source, `[${where}] scopes must be an array of ${cappable}`)
  for (const scope of scopes)
    if (typeof scope !== "string" || !CAPPABLE_SCOPES.includes(scope))
      throw new InvalidToolAcl(source, `[${where}] scopes has ${JSON.stringify(scope)}: scopes are ${cappable}`)
  return { tools, scopes }
}

/** Parses and checks an ACL document; throws InvalidToolAcl (TOML syntax errors name their line and column). */
export const parseToolAcl = (text: string, source: string): ToolAcl => {
  let document: Record<string, unknown>
  try {
    document = parse(text)
  } catch (error) {
    if (error instanceof TomlError)
      throw new InvalidToolAcl(
        source,
        `not TOML at line ${error.line}, column ${error.column}: ${error.message.split("\n")[0]}`,
      )
    throw new InvalidToolAcl(source, `not TOML: ${String(error)}`)
  }
  // Strict: a misspelt section (`[defualt]`) or key (`tool = …`) would otherwise grant silently less, or more.
  for (const key of Object.keys(document))
    if (key !== "default" && key !== "users")
      throw new InvalidToolAcl(source, `unknown key ${JSON.stringify(key)} (${HINT})`)
  const defaults = document.default === undefined ? undefined : aclSection(source, "default", document.default)
  const users = new Map<string, AclSection & { login: string }>()
  if (document.users !== undefined) {
    if (!isTable(document.users)) throw new InvalidToolAcl(source, `users must be tables [users.<login>] (${HINT})`)
    for (const [login, section] of Object.entries(document.users)) {
      const earlier = users.get(login.toLowerCase())
      // Logins are case-insensitive on GitHub: two sections for one user would leave it to chance which applies.
      if (earlier !== undefined)
        throw new InvalidToolAcl(source, `[users.${earlier.login}] and [users.${login}] name the same user`)
      users.set(login.toLowerCase(), { login, ...aclSection(source, `users.${login}`, section) })
    }
  }
  return defaults === undefined ? { users } : { default: defaults, users }
}

const patternRegExp = (pattern: string) =>
  new RegExp(
    `^${pattern
      .split("*")
      .map((part) => part.replace(/[.^$+?()[\]{}|\\-]/g, "\\$&"))
      .join(".*")}$`,
  )

/** The served tools `patterns` match, in `served`'s order, and the patterns that match none. */
export const expandToolPatterns = (
  patterns: ReadonlyArray<string>,
  served: ReadonlyArray<string>,
): { readonly tools: ReadonlyArray<string>; readonly unmatched: ReadonlyArray<string> } => {
  const matchers = patterns.map((pattern) => ({ pattern, regExp: patternRegExp(pattern) }))
  const tools = served.filter((tool) => matchers.some(({ regExp }) => regExp.test(tool)))
  const unmatched = matchers.filter(({ regExp }) => !served.some((tool) => regExp.test(tool))).map((m) => m.pattern)
  return { tools, unmatched: [...new Set(unmatched)] }
}

/** The grants of `login`: its own section (case-insensitively), else `[default]`, else nothing. */
export const aclGrantsFor = (acl: ToolAcl, login: string, served: ReadonlyArray<string>): AclGrants => {
  const own = acl.users.get(login.toLowerCase())
  const [section, applying] =
    own !== undefined
      ? [`users.${own.login}`, own]
      : acl.default !== undefined
        ? ["default", acl.default]
        : [null, undefined]
  if (applying === undefined) return { section: null, tools: [], unmatched: [], scopes: null }
  return { section, ...expandToolPatterns(applying.tools, served), scopes: applying.scopes ?? null }
}
