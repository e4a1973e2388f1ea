// The tool ACL document (TOML) and its patterns, as the session kind reads them at sign-in.
import { describe, expect, it } from "vitest"
import { aclGrantsFor, expandToolPatterns, InvalidToolAcl, parseToolAcl } from "../../src/kinds/session/acl.js"

const SERVED = ["counter_increment", "counter_reset", "document_edit", "read_state", "read_events", "whoami"]

const ACL = `
[default]
tools = ["read_*", "whoami"]

[users.Alice]
tools = ["*"]
scopes = ["read", "write"]

[users.bob]
tools = ["counter_*", "no_such_tool", "jobs_*"]
`

const refusal = (text: string) => {
  try {
    parseToolAcl(text, "TOOL_ACL")
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidToolAcl)
    return (error as Error).message
  }
  throw new Error("the ACL was accepted")
}

describe("the tool ACL", () => {
  it("gives a listed user its own section, case-insensitively, and everyone else [default]", () => {
    const acl = parseToolAcl(ACL, "TOOL_ACL")
    expect(aclGrantsFor(acl, "alice", SERVED)).toEqual({
      section: "users.Alice",
      tools: SERVED,
      unmatched: [],
      scopes: ["read", "write"],
    })
    expect(aclGrantsFor(acl, "ALICE", SERVED).section).toBe("users.Alice")
    expect(aclGrantsFor(acl, "carol", SERVED)).toEqual({
      section: "default",
      tools: ["read_state", "read_events", "whoami"],
      unmatched: [],
      scopes: null,
    })
  })

  it("expands patterns against the served tools in their order and reports the patterns that match none", () => {
    const acl = parseToolAcl(ACL, "TOOL_ACL")
    expect(aclGrantsFor(acl, "Bob", SERVED)).toEqual({
      section: "users.bob",
      tools: ["counter_increment", "counter_reset"],
      unmatched: ["no_such_tool", "jobs_*"],
      scopes: null,
    })
    // `*` is the only wildcard: a dot or a dash is itself.
    expect(expandToolPatterns(["read.state", "counter-*", "*_reset"], SERVED)).toEqual({
      tools: ["counter_reset"],
      unmatched: ["read.state", "counter-*"],
    })
  })

  it("grants nothing to an unlisted user when there is no [default]", () => {
    const acl = parseToolAcl(`[users.alice]\ntools = ["whoami"]`, "TOOL_ACL")
    expect(aclGrantsFor(acl, "mallory", SERVED)).toEqual({ section: null, tools: [], unmatched: [], scopes: null })
    expect(aclGrantsFor(parseToolAcl("", "TOOL_ACL"), "alice", SERVED).tools).toEqual([])
  })

  it("refuses documents that are not an ACL, saying where and what", () => {
    expect(refusal(`[default]\ntools = ["a"`)).toMatch(
      /^The tool ACL \(TOOL_ACL\) is invalid: not TOML at line 2, column/,
    )
    expect(refusal(`[defualt]\ntools = ["*"]`)).toMatch(/unknown key "defualt"/)
    expect(refusal(`[default]\ntool = ["*"]`)).toMatch(/\[default\] has an unknown key "tool"/)
    expect(refusal(`[default]\n`)).toMatch(/\[default\] has no tools/)
    expect(refusal(`[default]\ntools = "*"`)).toMatch(/tools must be an array/)
    expect(refusal(`[default]\ntools = [1]`)).toMatch(/tools has 1: a tool name or pattern/)
    expect(refusal(`[default]\ntools = ["read state"]`)).toMatch(/tools has "read state"/)
    expect(refusal(`users = ["alice"]`)).toMatch(/users must be tables/)
    expect(refusal(`[default]\ntools = []\nscopes = "read"`)).toMatch(/scopes must be an array/)
    expect(refusal(`[default]\ntools = []\nscopes = ["operator"]`)).toMatch(/scopes has "operator"/)
    expect(refusal(`[users.alice]\ntools = []\n[users.Alice]\ntools = ["*"]`)).toMatch(
      /\[users\.alice\] and \[users\.Alice\] name the same user/,
    )
  })
})
