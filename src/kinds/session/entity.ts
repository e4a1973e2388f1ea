/**
 * A user session: opened for a user with a time to live, touched to stay alive, carrying
 * configuration and the per-user tool grants (the ACL the MCP server enforces). When
 * the TTL passes without a touch, the actor's alarm sends `Expire`, which appends one
 * `Expired` (a second run finds the session already expired and appends nothing).
 * Time comes from Effect's Clock, so tests move it by hand.
 *
 * Authority (from the Caller the host provides): a session belongs to the principal its
 * id names (`session/{sub}`), whoever sends the first command, so nobody can claim another
 * user's session by opening it first. Only that principal may open, touch, configure,
 * close or reopen it (once closed or expired, keeping its grants). Grants are the tool ACL
 * an admin sets, so Grant and Revoke need the `admin` scope, whoever the session's user is;
 * once the deployment's tool ACL manages the session (below), they need `operator`: a user who
 * signed in with `admin` in their own tenant must not grant themselves what the ACL withholds.
 *
 * Sign-ins through the app's authorization server (the session kind's `signedIn`, index.ts) send
 * `SignIn`, a command of emberlog's own that no client can send: one transaction that (re)opens
 * the session (a sign-in does; a refresh of a closed or expired session is refused, so a session
 * its user closed stays closed until they sign in again), records the sign-in or refresh (who, when, which client, which scopes: the access
 * audit trail is this log) and applies the deployment's tool ACL (Granted/Revoked for the
 * difference, then `AclApplied`). The first sign-in records the GitHub user id; a later one
 * under the same login with another id (a renamed or re-registered account) is refused.
 * Logins are case-insensitive on GitHub and the tenant is the login lowercased, so the id is
 * bound to the tenant too: `BindIdentity`, sent to `session/{login lowercased}` first when the
 * login has capitals (a session whose id is the lowercased login holds that binding either way).
 */
import { Clock, Effect, Schema } from "effect"
import { Caller, forbid } from "../../index.js"
import { Entity, NonNegativeSafeInt, reject, tagged } from "../../index.js"

const Name = Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(256)))
const Ttl = Schema.Number.pipe(
  Schema.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(30 * 24 * 3600)),
)
const Json = Schema.Unknown

export const SessionState = Schema.Struct({
  status: Schema.Literals(["new", "open", "closed", "expired"]),
  user: Schema.String,
  ttlSeconds: NonNegativeSafeInt,
  attributes: Schema.Record(Schema.String, Json),
  config: Schema.Record(Schema.String, Json),
  grants: Schema.Array(Schema.String),
  /** ms epoch after which the session expires unless touched. */
  expiresAt: NonNegativeSafeInt,
  /** GitHub's id of the user, from the first sign-in (absent for sessions opened over HTTP). */
  githubId: Schema.optionalKey(NonNegativeSafeInt),
  /**
   * True when the last ACL applied said none is configured: the user is bound by its scopes
   * alone and the grants limit nothing. Absent (sessions opened over HTTP) or false: grants limit.
   */
  scopesOnly: Schema.optionalKey(Schema.Boolean),
})
export type SessionState = typeof SessionState.Type

/** `user` defaults to the caller and, when given, must be the caller. */
export const OpenSession = tagged("Open", {
  user: Schema.optionalKey(Name),
  ttlSeconds: Ttl,
  attributes: Schema.optionalKey(Schema.Record(Schema.String, Json)),
})
export const TouchSession = tagged("Touch", {})
export const SetSessionConfig = tagged("SetConfig", { key: Name, value: Json })
export const GrantTool = tagged("Grant", { tool: Name })
export const RevokeTool = tagged("Revoke", { tool: Name })
export const CloseSession = tagged("Close", {})
/** Sent by the actor's alarm; appends `Expired` only when the TTL has really passed. */
export const ExpireSession = tagged("Expire", {})
/** The ACL as it applies to this user: resolved at the edge, where the deployment's ACL and tools are known. */
export const AppliedAcl = Schema.Struct({
  /** The tools granted; null when no ACL is configured (scopes alone). */
  tools: Schema.NullOr(Schema.Array(Schema.String)),
  /** Where the ACL came from: `TOOL_ACL`, `CONFIG_BUCKET/<key>`, or `none`. */
  source: Schema.String,
  /** The section that applied (`users.<login>`, `default`); null when none names the user or no ACL is configured. */
  section: Schema.NullOr(Schema.String),
  /** The section's patterns that matched no tool the app serves. */
  unmatched: Schema.Array(Schema.String),
  /** The most scopes the user's tokens carry (the section's `scopes`); absent or null: no cap. */
  scopes: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
})
/** Sent by the session kind's `signedIn` (emberlog's own, never a client's): see the module comment. */
export const RecordSignIn = tagged("SignIn", {
  event: Schema.Literals(["signed-in", "refreshed"]),
  login: Name,
  githubId: NonNegativeSafeInt,
  /** The OAuth client id: a registered id, or a URL (a Client ID Metadata Document). */
  client: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(2048))),
  clientName: Schema.optionalKey(Name),
  scopes: Schema.Array(Schema.String),
  /** The TTL when the sign-in (re)opens the session. */
  ttlSeconds: Ttl,
  /** Absent: a refresh while the ACL cannot be read (provisioning.ts): the grants stay as they are. */
  acl: Schema.optionalKey(AppliedAcl),
})
/** Binds the GitHub id to the tenant (this session's id is the login lowercased); emberlog's own, as SignIn. */
export const BindIdentity = tagged("BindIdentity", { login: Name, githubId: NonNegativeSafeInt })
export const SessionCommand = Schema.Union([
  OpenSession,
  TouchSession,
  SetSessionConfig,
  GrantTool,
  RevokeTool,
  CloseSession,
  ExpireSession,
  RecordSignIn,
  BindIdentity,
])
export type SessionCommand = typeof SessionCommand.Type

export const SessionOpened = tagged("Opened", {
  user: Schema.String,
  ttlSeconds: NonNegativeSafeInt,
  attributes: Schema.Record(Schema.String, Json),
  at: NonNegativeSafeInt,
})
export const SessionTouched = tagged("Touched", { at: NonNegativeSafeInt })
export const SessionConfigSet = tagged("ConfigSet", { key: Schema.String, value: Json })
export const ToolGranted = tagged("Granted", { tool: Schema.String })
export const ToolRevoked = tagged("Revoked", { tool: Schema.String })
export const SessionClosed = tagged("Closed", {})
export const SessionExpired = tagged("Expired", { at: NonNegativeSafeInt })
const signInFields = {
  client: Schema.String,
  clientName: Schema.optionalKey(Schema.String),
  scopes: Schema.Array(Schema.String),
  githubId: NonNegativeSafeInt,
  at: NonNegativeSafeInt,
}
/** A sign-in through the authorization server; it touches the session too. */
export const SignedIn = tagged("SignedIn", signInFields)
/** A token refresh through the authorization server; it touches the session too. */
export const Refreshed = tagged("Refreshed", signInFields)
export const AclApplied = tagged("AclApplied", { ...AppliedAcl.fields, at: NonNegativeSafeInt })
/** The tenant's GitHub user, bound at its first sign-in under a login with capitals. */
export const IdentityBound = tagged("IdentityBound", {
  login: Schema.String,
  githubId: NonNegativeSafeInt,
  at: NonNegativeSafeInt,
})
export const SessionEvent = Schema.Union([
  SessionOpened,
  SessionTouched,
  SessionConfigSet,
  ToolGranted,
  ToolRevoked,
  SessionClosed,
  SessionExpired,
  SignedIn,
  Refreshed,
  AclApplied,
  IdentityBound,
])
export type SessionEvent = typeof SessionEvent.Type

export const initialSession: SessionState = {
  status: "new",
  user: "",
  ttlSeconds: 0,
  attributes: {},
  config: {},
  grants: [],
  expiresAt: 0,
}

const notOwner = (user: string) =>
  forbid("not_session_owner", `This session belongs to ${JSON.stringify(user)}; only its user may do that`)

type SignInCommand = typeof RecordSignIn.Type

const githubIdMismatch = (login: string, bound: number, githubId: number) =>
  forbid(
    "github_id_mismatch",
    `The login ${login} belongs to GitHub user ${bound} here; GitHub user ${githubId} now has that ` +
      "login (a renamed or re-registered account), so this user's instance is not theirs",
    { login, githubId: bound },
  )

const bindIdentity = (state: SessionState, command: typeof BindIdentity.Type, now: number, actorId: string) =>
  Effect.gen(function* () {
    const { login, githubId } = command
    if (login.toLowerCase() !== actorId) return yield* notOwner(actorId)
    if (state.githubId === undefined) return [{ type: "IdentityBound", login, githubId, at: now } as const]
    if (state.githubId !== githubId) return yield* githubIdMismatch(login, state.githubId, githubId)
    return []
  })

/**
 * A sign-in or refresh: (re)open unless open, record it, and apply the ACL. `AclApplied` is
 * recorded on every sign-in and whenever the ACL changes something (a refresh usually changes
 * nothing, and then records only `Refreshed`).
 */
const signIn = (state: SessionState, command: SignInCommand, now: number, actorId: string) =>
  Effect.gen(function* () {
    const { login, githubId } = command
    if (login !== actorId) return yield* notOwner(actorId)
    if (state.status !== "new" && state.user !== login) return yield* notOwner(state.user)
    if (state.githubId !== undefined && state.githubId !== githubId)
      return yield* githubIdMismatch(login, state.githubId, githubId)
    const events: Array<SessionEvent> = []
    const open = state.status === "open" && now < state.expiresAt
    if (!open && command.event === "refreshed") {
      const status = state.status === "open" ? "expired" : state.status
      return yield* reject(`session_${status}`, `The session is ${status}: sign in again`)
    }
    if (!open)
      events.push({
        type: "Opened",
        user: login,
        ttlSeconds: command.ttlSeconds,
        attributes: state.attributes,
        at: now,
      })
    const { client, clientName, scopes } = command
    const record = { client, ...(clientName === undefined ? {} : { clientName }), scopes, githubId, at: now }
    events.push({ type: command.event === "signed-in" ? "SignedIn" : "Refreshed", ...record })
    const { acl } = command
    if (acl === undefined) return events
    const changes: Array<SessionEvent> = []
    if (acl.tools !== null) {
      const granted = new Set(acl.tools)
      for (const tool of acl.tools) if (!state.grants.includes(tool)) changes.push({ type: "Granted", tool })
      for (const tool of state.grants) if (!granted.has(tool)) changes.push({ type: "Revoked", tool })
    }
    const modeChanges = (state.scopesOnly === true) !== (acl.tools === null)
    if (command.event === "signed-in" || !open || changes.length > 0 || modeChanges)
      events.push(...changes, { type: "AclApplied", ...acl, at: now })
    return events
  })

const decide = (state: SessionState, command: SessionCommand) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const caller = yield* Caller
    if (command.type === "Expire") {
      return state.status === "open" && now >= state.expiresAt ? [{ type: "Expired", at: now } as const] : []
    }
    // Internal (the host refuses it from clients); the login it names must be the session's id all the same.
    if (command.type === "SignIn") return yield* signIn(state, command, now, caller.actorId)
    if (command.type === "BindIdentity") return yield* bindIdentity(state, command, now, caller.actorId)
    // Authority before state: a refusal tells an intruder nothing about the session.
    const grant = command.type === "Grant" || command.type === "Revoke"
    if (!caller.internal && !grant && caller.principal !== caller.actorId) return yield* notOwner(caller.actorId)
    if (command.type === "Open") {
      const user = command.user ?? caller.principal
      if (!caller.internal && user !== caller.principal) return yield* notOwner(user)
      // A session whose TTL has passed is expired even before its alarm says so.
      if (state.status === "open" && now < state.expiresAt) {
        return yield* reject("already_opened", "The session is already open")
      }
      // The host's own commands are not bound to the id's owner: the user recorded first keeps the session.
      if (caller.internal && state.status !== "new" && user !== state.user) return yield* notOwner(state.user)
      const { ttlSeconds, attributes = {} } = command
      return [{ type: "Opened", user, ttlSeconds, attributes, at: now } as const]
    }
    if (state.status === "new") return yield* reject("not_opened", "The session has not been opened")
    if (!caller.internal && grant && !caller.scopes.has("admin")) {
      return yield* forbid("insufficient_scope", `${command.type} needs the admin scope`, { scope: "admin" })
    }
    if (!caller.internal && grant && state.scopesOnly === false && !caller.scopes.has("operator")) {
      const message = `This session's tools are the deployment's tool ACL: ${command.type} needs the operator scope (or change the ACL)`
      return yield* forbid("acl_managed", message, { scope: "operator" })
    }
    if (state.status !== "open") return yield* reject(`session_${state.status}`, `The session is ${state.status}`)
    if (now >= state.expiresAt) return yield* reject("session_expired", "The session's time to live has passed")
    switch (command.type) {
      case "Touch":
        return [{ type: "Touched", at: now } as const]
      case "SetConfig":
        return [{ type: "ConfigSet", key: command.key, value: command.value } as const]
      case "Grant":
        return state.grants.includes(command.tool) ? [] : [{ type: "Granted", tool: command.tool } as const]
      case "Revoke":
        return state.grants.includes(command.tool) ? [{ type: "Revoked", tool: command.tool } as const] : []
      case "Close":
        return [{ type: "Closed" } as const]
      default:
        return command satisfies never
    }
  })

const evolve = (state: SessionState, event: SessionEvent): SessionState => {
  switch (event.type) {
    case "Opened":
      return {
        ...state,
        status: "open",
        user: event.user,
        ttlSeconds: event.ttlSeconds,
        attributes: event.attributes,
        expiresAt: event.at + event.ttlSeconds * 1000,
      }
    case "Touched":
      return { ...state, expiresAt: event.at + state.ttlSeconds * 1000 }
    case "ConfigSet":
      return { ...state, config: { ...state.config, [event.key]: event.value } }
    case "Granted":
      return { ...state, grants: [...state.grants, event.tool] }
    case "Revoked":
      return { ...state, grants: state.grants.filter((tool) => tool !== event.tool) }
    case "Closed":
      return { ...state, status: "closed" }
    case "Expired":
      return { ...state, status: "expired" }
    case "SignedIn":
    case "Refreshed":
      return { ...state, githubId: event.githubId, expiresAt: event.at + state.ttlSeconds * 1000 }
    case "AclApplied":
      return { ...state, scopesOnly: event.tools === null }
    case "IdentityBound":
      return { ...state, githubId: event.githubId }
    default:
      return event satisfies never
  }
}

export const Session = Entity.make({
  kind: "session",
  state: SessionState,
  initial: initialSession,
  commands: SessionCommand,
  events: SessionEvent,
  decide,
  evolve,
  timer: {
    dueAt: (state: SessionState) => (state.status === "open" ? state.expiresAt : undefined),
    command: { type: "Expire" },
  },
  internalCommands: ["Expire", "SignIn", "BindIdentity"],
})
