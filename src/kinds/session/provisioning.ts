/**
 * A user's instance, provisioned at sign-in: the session kind's `signedIn` hook. Every sign-in
 * and refresh through the app's authorization server sends one `SignIn` to `session/{login}`
 * in the user's tenant, carrying the deployment's tool ACL as it applies to that user; the
 * session (re)opens, records it and applies the grants in one transaction (entity.ts).
 *
 * Settings (README, "A user's instance: sign-in, tool ACL, whoami"): `TOOL_ACL`, the ACL's TOML
 * text, or `TOOL_ACL_KEY`, the key of an object in the R2 bucket `CONFIG_BUCKET` (read at every
 * sign-in, so an edited ACL applies at the user's next sign-in or refresh); neither: no ACL,
 * users are bound by their scopes alone. `SESSION_TTL_SECONDS`: how long a session stays open
 * without a sign-in or refresh (30 days, the most, by default).
 */
import { HttpError, unwrap, type Env, type KindModule, type SignIn } from "../../worker.js"
import { aclGrantsFor, InvalidToolAcl, parseToolAcl } from "./acl.js"
import type { AppliedAcl as AppliedAclSchema } from "./entity.js"

type AppliedAcl = typeof AppliedAclSchema.Type

export interface SessionEnv extends Env {
  readonly TOOL_ACL?: string
  readonly TOOL_ACL_KEY?: string
  readonly CONFIG_BUCKET?: R2Bucket
  readonly SESSION_TTL_SECONDS?: string
}

export const MAX_SESSION_TTL_SECONDS = 30 * 24 * 3600

/** Configuration that refuses every sign-in: a 503 naming the setting (the client sees access_denied and this message). */
const misconfigured = (message: string) => new HttpError(503, "sign_in_misconfigured", message)

const sessionTtl = (env: SessionEnv): number => {
  const setting = env.SESSION_TTL_SECONDS
  if (setting === undefined || setting === "") return MAX_SESSION_TTL_SECONDS
  const seconds = /^\d{1,8}$/.test(setting) ? Number(setting) : Number.NaN
  if (!(seconds >= 1 && seconds <= MAX_SESSION_TTL_SECONDS))
    throw misconfigured(`SESSION_TTL_SECONDS must be a whole number of seconds from 1 to ${MAX_SESSION_TTL_SECONDS}`)
  return seconds
}

/** The ACL document and where it came from; undefined when none is configured. */
const aclDocument = async (env: SessionEnv): Promise<{ text: string; source: string } | undefined> => {
  const inline = env.TOOL_ACL !== undefined && env.TOOL_ACL !== ""
  const key = env.TOOL_ACL_KEY !== undefined && env.TOOL_ACL_KEY !== "" ? env.TOOL_ACL_KEY : undefined
  if (inline && key !== undefined)
    throw misconfigured("Both TOOL_ACL and TOOL_ACL_KEY are set: configure the tool ACL in one place")
  if (inline) return { text: env.TOOL_ACL!, source: "TOOL_ACL" }
  if (key === undefined) return undefined
  const source = `CONFIG_BUCKET/${key}`
  if (env.CONFIG_BUCKET === undefined)
    throw misconfigured(`TOOL_ACL_KEY is set but no R2 bucket CONFIG_BUCKET is bound to read ${key} from`)
  const object = await env.CONFIG_BUCKET.get(key)
  if (object === null) throw misconfigured(`The tool ACL ${source} does not exist`)
  return { text: await object.text(), source }
}

/** The deployment's ACL as it applies to `login`, against the tools the app serves. */
export const aclFor = async (env: SessionEnv, login: string, tools: ReadonlyArray<string>): Promise<AppliedAcl> => {
  const document = await aclDocument(env)
  if (document === undefined) return { tools: null, source: "none", section: null, unmatched: [] }
  let grants
  try {
    grants = aclGrantsFor(parseToolAcl(document.text, document.source), login, tools)
  } catch (error) {
    if (error instanceof InvalidToolAcl) throw misconfigured(error.message)
    throw error
  }
  const { tools: granted, section, unmatched, scopes } = grants
  return { tools: granted, source: document.source, section, unmatched, scopes }
}

/**
 * The ACL and TTL a sign-in applies. A misconfiguration refuses a sign-in, but not a refresh: the
 * session keeps the grants it has (no ACL in the command) and the operator's typo does not end
 * every user's grant at their next refresh. It is logged, and the next sign-in refuses it.
 */
const settingsFor = async (env: SessionEnv, signIn: SignIn, tools: ReadonlyArray<string>) => {
  try {
    return { ttlSeconds: sessionTtl(env), acl: await aclFor(env, signIn.login, tools) }
  } catch (error) {
    if (!(error instanceof HttpError) || signIn.event !== "refreshed") throw error
    console.error(`emberlog: ${signIn.login}'s refresh keeps the grants it has: ${error.message}`)
    return { ttlSeconds: MAX_SESSION_TTL_SECONDS }
  }
}

/**
 * The session kind's `signedIn`: a refusal (GitHub id mismatch, an invalid ACL, an ACL that leaves
 * none of the scopes asked) throws an HttpError saying why. It answers the ACL's cap on scopes.
 */
export const provisionSession: NonNullable<KindModule["signedIn"]> = async (actor, signIn, context) => {
  const env = context.env as SessionEnv
  const { login, githubId } = signIn
  // The tenant is the login lowercased: its GitHub user is bound in the session of that spelling.
  if (login !== login.toLowerCase()) {
    const bind = { type: "BindIdentity", login, githubId }
    unwrap(await actor(login.toLowerCase()).command({ command: bind, internal: true, principal: login }))
  }
  const settings = await settingsFor(env, signIn, context.tools)
  const cap = settings.acl?.scopes ?? undefined
  // The log records the scopes the token gets: those asked, within the ACL's cap.
  const scopes = cap === undefined ? [...signIn.scopes] : signIn.scopes.filter((scope) => cap.includes(scope))
  if (scopes.length === 0)
    throw new HttpError(
      403,
      "no_scopes_left",
      `The tool ACL gives ${login} at most the scopes ${cap!.join(", ") || "(none)"}; the client asked for ${signIn.scopes.join(", ")}`,
    )
  const command = {
    type: "SignIn",
    event: signIn.event,
    login: signIn.login,
    githubId: signIn.githubId,
    client: signIn.clientId,
    // A client names itself (dynamic registration): the log keeps a bounded name.
    ...(signIn.clientName === undefined || signIn.clientName === ""
      ? {}
      : { clientName: signIn.clientName.slice(0, 256) }),
    scopes,
    ...settings,
  }
  // Internal: SignIn is emberlog's own command; the log records the user as its principal.
  unwrap(await actor(signIn.login).command({ command, internal: true, principal: signIn.login }))
  return cap === undefined ? {} : { scopes: cap }
}
