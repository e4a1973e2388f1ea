// Sign-ins on the session entity, over any history of user commands, admin grants and sign-ins:
// after each accepted one the grants are exactly the ACL's, and the GitHub id never changes hands;
// a refresh never reopens a session (closed by its user, or expired); once the ACL manages the
// session, an admin of the tenant (the user) cannot change its grants.
import { Cause, Exit } from "effect"
import fc from "fast-check"
import { describe, it } from "vitest"
import { decideSession } from "./session-decide.js"
import { Forbidden } from "../../src/domain/caller.js"
import { Session, type SessionState } from "../../src/kinds/session/entity.js"
import { propertyParameters } from "../../src/testing/parameters.js"

const START = Date.UTC(2026, 0, 1)
const LOGIN = "Alice"
const TOOLS = ["counter_increment", "counter_reset", "read_state", "whoami"]

const acl = fc.oneof(
  fc.constant({ tools: null, source: "none", section: null, unmatched: [] }),
  fc
    .subarray(TOOLS)
    .map((tools) => ({ tools, source: "TOOL_ACL", section: "default", unmatched: [] as Array<string> })),
)
// No acl: a refresh while the ACL cannot be read, which keeps the grants as they are.
const signIn = fc.record(
  {
    type: fc.constant("SignIn"),
    event: fc.constantFrom("signed-in", "refreshed"),
    login: fc.constant(LOGIN),
    githubId: fc.constantFrom(1, 1, 1, 2),
    client: fc.constantFrom("client-a", "https://client.example/metadata.json"),
    scopes: fc.constant(["read", "write"]),
    ttlSeconds: fc.integer({ min: 1, max: 5 }),
    acl,
  },
  { requiredKeys: ["type", "event", "login", "githubId", "client", "scopes", "ttlSeconds"] },
)
const userCommand = fc.oneof(
  fc.constant({ type: "Touch" }),
  fc.constant({ type: "Close" }),
  fc.record({ type: fc.constant("Open"), ttlSeconds: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ type: fc.constantFrom("Grant", "Revoke"), tool: fc.constantFrom(...TOOLS) }),
)
const step = fc.record({
  command: fc.oneof(signIn, userCommand),
  seconds: fc.integer({ min: 0, max: 4 }),
})

/** A sign-in comes from emberlog itself (internal); the other commands from the user, an admin. */
const decide = (state: SessionState, input: any, now: number) => {
  const internal = input.type === "SignIn"
  const caller = { principal: LOGIN, scopes: new Set(["read", "write", "admin"]), internal, actorId: LOGIN }
  return decideSession(state, input, caller, now)
}

describe("sign-ins on a session", () => {
  it("leave the session open with exactly the ACL's grants, and refuse another GitHub id once one is bound", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        let state = Session.initial
        let now = START
        for (const { command, seconds } of steps) {
          now += seconds * 1000
          const before = state
          const wasOpen = before.status === "open" && now < before.expiresAt
          const refresh = command.type === "SignIn" && command.event === "refreshed"
          const exit = decide(state, command, now)
          if (Exit.isFailure(exit)) {
            const error = Cause.squash(exit.cause)
            const mismatch = error instanceof Forbidden && error.code === "github_id_mismatch"
            if (command.type === "SignIn" && !mismatch && !(refresh && !wasOpen))
              throw new Error(`a sign-in was refused as ${String(error)}`)
            continue
          }
          if (refresh && !wasOpen) throw new Error(`a refresh reopened a ${before.status} session`)
          const grant = command.type === "Grant" || command.type === "Revoke"
          if (grant && before.scopesOnly === false && exit.value.length > 0)
            throw new Error(`an admin's ${command.type} changed grants the ACL manages`)
          for (const event of exit.value) state = Session.evolve(state, event)
          if (command.type !== "SignIn") continue
          const { githubId, acl: given } = command as { githubId: number; acl?: { tools: Array<string> | null } }
          // Without an ACL the grants stay as they were.
          const applied = given ?? { tools: before.scopesOnly === true ? null : [...before.grants] }
          if (before.githubId !== undefined && before.githubId !== githubId)
            throw new Error(`GitHub user ${githubId} signed in to ${before.githubId}'s session`)
          if (state.status !== "open" || now >= state.expiresAt) throw new Error("a sign-in left the session closed")
          if (state.githubId !== githubId) throw new Error("the sign-in's GitHub id is not recorded")
          if (applied.tools === null) {
            if (state.scopesOnly !== true) throw new Error("no ACL configured, yet grants limit the user")
            if (given === undefined && JSON.stringify(state.grants) !== JSON.stringify(before.grants))
              throw new Error("a refresh without an ACL changed the grants")
          } else {
            if (state.scopesOnly === true) throw new Error("an ACL applied, yet the user is left to its scopes")
            const grants = JSON.stringify([...state.grants].sort())
            if (grants !== JSON.stringify([...applied.tools].sort())) throw new Error(`grants ${grants} ≠ the ACL's`)
          }
          const types = exit.value.map((event) => event.type)
          const recorded = command.event === "signed-in" ? "SignedIn" : "Refreshed"
          if (types.filter((type) => type === recorded).length !== 1) throw new Error(`no single ${recorded}`)
        }
      }),
      propertyParameters({ numRuns: 300 }),
    )
  })
})
