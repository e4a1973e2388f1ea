import { Cause, Exit } from "effect"
import fc from "fast-check"
import { describe, it } from "vitest"
import { decideSession } from "./session-decide.js"
import { Forbidden } from "../../src/domain/caller.js"
import { Session, type SessionState } from "../../src/kinds/session/entity.js"
import { propertyParameters } from "../../src/testing/parameters.js"
import { prototypeName, sessionConfigKey, sessionTool } from "./arbitraries.js"

const START = Date.UTC(2026, 0, 1)
const ttl = fc.integer({ min: 1, max: 5 })
const caller = fc.record({ principal: fc.constantFrom("alice", "bob"), admin: fc.boolean() })
const command = fc.oneof(
  fc.record({ type: fc.constant("Open"), ttlSeconds: ttl }),
  fc.record({ type: fc.constant("Open"), user: fc.constantFrom("alice", "bob"), ttlSeconds: ttl }),
  fc.constant({ type: "Touch" }),
  fc.record({ type: fc.constant("SetConfig"), key: sessionConfigKey, value: fc.integer() }),
  fc.record({ type: fc.constant("Grant"), tool: sessionTool }),
  fc.record({ type: fc.constant("Revoke"), tool: sessionTool }),
  fc.constant({ type: "Close" }),
)
const step = fc.record({ caller, command, seconds: fc.integer({ min: 0, max: 3 }) })

/** Runs one request-borne command as the host would: with its caller, the actor's own id and the time. */
type Who = { principal: string; admin: boolean }
const decide = (state: SessionState, input: unknown, who: Who, now: number, id: string) => {
  const scopes = new Set(who.admin ? ["read", "write", "admin"] : ["read", "write"])
  return decideSession(state, input, { principal: who.principal, scopes, internal: false, actorId: id }, now)
}

describe("the session's authority", () => {
  it("only its user changes a session, only admins change its grants, and names never read inherited members", () => {
    fc.assert(
      // The session's id names its user (session/{sub}): whoever sends the first command.
      fc.property(fc.constantFrom("alice", "bob"), fc.array(step, { maxLength: 40 }), (id, steps) => {
        let state = Session.initial
        let now = START
        const config = new Map<string, unknown>()
        const grants = new Set<string>()
        for (const { caller: who, command: input, seconds } of steps) {
          now += seconds * 1000
          const before = state
          const exit = decide(state, input, who, now, id)
          if (Exit.isFailure(exit)) {
            const error = Cause.squash(exit.cause)
            if (!(error instanceof Error) || !("code" in error)) throw new Error(`a defect: ${String(error)}`)
            // Authority refusals are 403s (Forbidden), whatever else the state says.
            const code = (error as { code: string }).code
            if (code === "not_session_owner" && !(error instanceof Forbidden)) throw new Error("not a 403")
            continue
          }
          for (const event of exit.value) state = Session.evolve(state, event)
          if (exit.value.length === 0) continue
          const type = (input as { type: string }).type
          if (type === "Grant" || type === "Revoke") {
            if (!who.admin) throw new Error(`${who.principal} changed grants without admin`)
          } else if (type === "Open") {
            if (state.user !== who.principal) throw new Error(`${who.principal} opened a session for ${state.user}`)
            if (who.principal !== id) throw new Error(`${who.principal} opened session/${id}`)
            if (before.status !== "new" && before.user !== who.principal) {
              throw new Error(`${who.principal} reopened ${before.user}'s session`)
            }
          } else if (before.user !== who.principal || who.principal !== id) {
            throw new Error(`${who.principal} sent ${type} to session/${id} of ${before.user}`)
          }
          if (type === "SetConfig") config.set((input as { key: string }).key, (input as { value: unknown }).value)
          if (type === "Grant") grants.add((input as { tool: string }).tool)
          if (type === "Revoke") grants.delete((input as { tool: string }).tool)
        }
        // Own keys only, and they survive the stored (JSON) form.
        const stored = Session.decodeState(JSON.parse(JSON.stringify(Session.encodeState(state))))
        for (const value of [state, stored]) {
          const keys = JSON.stringify(Object.keys(value.config).sort())
          if (keys !== JSON.stringify([...config.keys()].sort())) throw new Error(`config keys differ: ${keys}`)
          for (const [key, expected] of config) {
            if (!Object.hasOwn(value.config, key) || value.config[key] !== expected) {
              throw new Error(`config ${key} reads ${String(value.config[key])}`)
            }
          }
          const granted = JSON.stringify([...value.grants].sort())
          if (granted !== JSON.stringify([...grants].sort())) throw new Error(`grants differ: ${granted}`)
        }
      }),
      propertyParameters({ numRuns: 300 }),
    )
  })

  it("refuses Open from anyone but the principal the session's id names, whatever the state and scopes (403)", () => {
    const states = fc.array(step, { maxLength: 20 }).map((steps) => {
      let state = Session.initial
      let now = START
      // Histories as the owner "alice" builds them; the intruder then tries to open.
      for (const { caller: who, command: input, seconds } of steps) {
        now += seconds * 1000
        const exit = decide(state, input, { ...who, principal: "alice" }, now, "alice")
        if (Exit.isSuccess(exit)) for (const event of exit.value) state = Session.evolve(state, event)
      }
      return { state, now }
    })
    const users = fc.constantFrom(undefined, "alice", "bob")
    const intruderOpen = fc.record({ type: fc.constant("Open"), ttlSeconds: ttl, user: users })
    const later = fc.integer({ min: 0, max: 10 })
    fc.assert(
      fc.property(states, intruderOpen, fc.boolean(), later, ({ state, now }, open, admin, seconds) => {
        const { user, ...rest } = open
        const input = user === undefined ? rest : open
        const exit = decide(state, input, { principal: "bob", admin }, now + seconds * 1000, "alice")
        if (Exit.isSuccess(exit)) throw new Error(`bob opened alice's session: ${JSON.stringify(exit.value)}`)
        const error = Cause.squash(exit.cause)
        if (!(error instanceof Forbidden) || error.code !== "not_session_owner") {
          throw new Error(`refused as ${String(error)}`)
        }
      }),
      propertyParameters({ numRuns: 200 }),
    )
  })

  it("generates the prototype names it is about", () => {
    const inherited = (name: string) => name in Object.prototype || name === "__proto__"
    fc.assert(fc.property(prototypeName, inherited), propertyParameters({ numRuns: 100 }))
  })
})
