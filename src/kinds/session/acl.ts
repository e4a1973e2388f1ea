/**
 * The deployment's tool ACL: a TOML document (the shape of the b00t seed's `b00t-mcp-acl.toml`)
 *
 * ```toml
 * [default]
 * tools = ["read_*", "whoami"]
 *
 * [users.Alice]          # GitHub logins match case-insensitively
 * tools = ["*"]
 * ```
 *
 * A user listed under `[users.<login>]` gets that section's tools, anyone else `[default]`'s
 * (none without a `[default]`: what the ACL does not grant is refused). A tool pattern is a
 * name with `*` standing for any run of characters, expanded against the tools the app serves.
 * Pure: no Cloudflare import, so node tests parse and expand ACLs directly.
 */
import { parse, TomlError } from "smol-toml"

/** A document that is not an ACL: the sign-in is refused with this message (where, and what is wrong). */
export class InvalidToolAcl extends Error {
  constructor(source: string, problem: string) {
    super(`The tool ACL (${source}) is invalid: ${problem}`)
  }
}

export interface ToolAcl {
  /** `[default] tools`; undefined when the document has no `[default]` section. */
  readonly defaultTools?: ReadonlyArray<string>
  /** `[users.<login>] tools` by login lowercased, with the login as the document spells it. */
  readonly users: ReadonlyMap<string, { readonly login: string; readonly tools: ReadonlyArray<string> }>
}

/** What the ACL grants one user: the tools it names that the app serves, and which section said so. */
export interface AclGrants {
  /** `users.<login>` (as the document spells it) or `default`; null when no section names the user. */
  readonly section: string | null
  /** Served tools the section's patterns match, in the app's registration order. */
  readonly tools: ReadonlyArray<string>
  /** The section's patterns that match no served tool (a typo, or a tool of another deployment). */
  readonly unmatched: ReadonlyArray<string>
}

/** Tool names are snake-case kind and command names; a pattern adds `*`. */
const TOOL_PATTERN = /^[A-Za-z0-9_.:*-]{1,128}$/
const SECTION_KEYS = ["tools"]
const HINT = "an ACL has [default] and [users.<login>] sections, each with tools = [...]"

const isTable = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date)

const toolList = (source: string, where: string, section: unknown): ReadonlyArray<string> => {
  if (!isTable(section)) throw new InvalidToolAcl(source, `[${where}] must be a table (${HINT})`)
  for (const key of Object.keys(section))
    if (!SECTION_KEYS.includes(key))
      throw new InvalidToolAcl(source, `[${where}] has an unknown key ${JSON.stringify(key)} (${HINT})`)
  const tools = section.tools
  if (tools === undefined) throw new InvalidToolAcl(source, `[${where}] has no tools = [...]`)
  if (!Array.isArray(tools)) throw new InvalidToolAcl(source, `[${where}] tools must be an array of tool names`)
  for (const tool of tools)
    if (typeof tool !== "string" || !TOOL_PATTERN.test(tool))
      throw new InvalidToolAcl(
        source,
        `[${where}] tools has ${JSON.stringify(tool)}: a tool name or pattern is 1–128 characters of A-Z a-z 0-9 _ . : - and *`,
      )
  return tools as ReadonlyArray<string>
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
  const defaultTools = document.default === undefined ? undefined : toolList(source, "default", document.default)
  const users = new Map<string, { login: string; tools: ReadonlyArray<string> }>()
  if (document.users !== undefined) {
    if (!isTable(document.users)) throw new InvalidToolAcl(source, `users must be tables [users.<login>] (${HINT})`)
    for (const [login, section] of Object.entries(document.users)) {
      const earlier = users.get(login.toLowerCase())
      // Logins are case-insensitive on GitHub: two sections for one user would leave it to chance which applies.
      if (earlier !== undefined)
        throw new InvalidToolAcl(source, `[users.${earlier.login}] and [users.${login}] name the same user`)
      users.set(login.toLowerCase(), { login, tools: toolList(source, `users.${login}`, section) })
    }
  }
  return defaultTools === undefined ? { users } : { defaultTools, users }
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
  if (own !== undefined) return { section: `users.${own.login}`, ...expandToolPatterns(own.tools, served) }
  if (acl.defaultTools !== undefined) return { section: "default", ...expandToolPatterns(acl.defaultTools, served) }
  return { section: null, tools: [], unmatched: [] }
}
