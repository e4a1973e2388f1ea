// Command tools built for a kind of the test's own, whose command has a field named `id`:
// the actor's address and the command's fields must not collide.
import { Client, InMemoryTransport } from "@modelcontextprotocol/client"
import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { Entity, reject, tagged } from "../../src/domain/index.js"
import { kindRegistry, type KindModule } from "../../src/edge/kind.js"
import { buildMcpServer, type ActorDirectory } from "../../src/edge/mcp/server.js"

const Label = tagged("Label", { id: Schema.NonEmptyString, label: Schema.String })
const Clear = tagged("Clear", {})
const Labelled = tagged("Labelled", { id: Schema.String, label: Schema.String })
const Cleared = tagged("Cleared", {})
const Labels = Entity.make({
  kind: "labels",
  state: Schema.Struct({ labels: Schema.Record(Schema.String, Schema.String) }),
  initial: { labels: {} },
  commands: Schema.Union([Label, Clear]),
  events: Schema.Union([Labelled, Cleared]),
  decide: (_state, command) =>
    command.type === "Clear"
      ? Effect.succeed([{ type: "Cleared" } as const])
      : command.label === ""
        ? reject("empty_label", "A label is not empty", { id: command.id })
        : Effect.succeed([{ type: "Labelled", id: command.id, label: command.label } as const]),
  evolve: (state, event) =>
    event.type === "Labelled" ? { labels: { ...state.labels, [event.id]: event.label } } : { labels: {} },
})

/** An actor directory that records what each tool sent where and answers with the entity's own fold. */
const recording = (kinds: ReadonlyArray<string> = ["labels"], stored = { version: 0, state: {} as unknown }) => {
  const sent: Array<{ kind: string; id: string; command: any }> = []
  const directory: ActorDirectory = {
    principal: { sub: "tester", tenant: "t", scopes: new Set(["read", "write"]) } as ActorDirectory["principal"],
    kinds,
    actor: (kind, id) =>
      ({
        readState: async () => ({ ok: true, value: stored }),
        command: async ({ command }: { command: any }) => {
          sent.push({ kind, id, command })
          const decide = Labels.decide(Labels.initial, command) as Effect.Effect<ReadonlyArray<any>, any>
          const decided = Effect.runSync(Effect.result(decide))
          if (decided._tag === "Failure") return { ok: false, error: decided.failure }
          const events = decided.success
          const state = events.reduce((s, e) => Labels.evolve(s, e), Labels.initial)
          return { ok: true, value: { version: events.length, events, state, replayed: false } }
        },
      }) as never,
  }
  return { sent, directory }
}

const connect = async (directory: ActorDirectory, kinds: ReadonlyArray<Entity | KindModule> = [Labels]) => {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  await buildMcpServer(directory, undefined, kindRegistry(kinds)).connect(serverSide)
  const client = new Client({ name: "test", version: "1" })
  await client.connect(clientSide)
  return client
}

describe("MCP command tools", () => {
  it("keep the actor id apart from a command field named id", async () => {
    const { sent, directory } = recording()
    const client = await connect(directory)
    const { tools } = await client.listTools()
    const label = tools.find((tool) => tool.name === "labels_label")!
    expect(label.inputSchema).toMatchObject({
      type: "object",
      properties: {
        id: { type: "string" },
        command: { type: "object", properties: { id: { type: "string" }, label: { type: "string" } } },
      },
      required: expect.arrayContaining(["id", "command"]),
    })
    const labelled = { id: "shelf-1", command: { id: "item-7", label: "red" } }
    const result = await client.callTool({ name: "labels_label", arguments: labelled })
    expect(result.isError).toBeFalsy()
    expect(result.structuredContent).toMatchObject({ version: 1, state: { labels: { "item-7": "red" } } })
    expect(sent).toEqual([{ kind: "labels", id: "shelf-1", command: { type: "Label", id: "item-7", label: "red" } }])
  })

  it("take no command object when the command has no fields, and validate the address and fields apart", async () => {
    const { sent, directory } = recording()
    const client = await connect(directory)
    expect((await client.callTool({ name: "labels_clear", arguments: { id: "shelf-1" } })).isError).toBeFalsy()
    expect(sent).toEqual([{ kind: "labels", id: "shelf-1", command: { type: "Clear" } }])
    const missing = await client.callTool({ name: "labels_label", arguments: { id: "shelf-1", label: "red" } })
    expect(missing.isError).toBe(true)
    const misaddressed = { id: "no spaces", command: { id: "x", label: "y" } }
    const badAddress = await client.callTool({ name: "labels_label", arguments: misaddressed })
    expect(badAddress.isError).toBe(true)
    expect(sent).toHaveLength(1)
  })

  it("answer a domain rejection with isError and the error in the text, without structured content", async () => {
    const { directory } = recording()
    const client = await connect(directory)
    const empty = { id: "shelf-1", command: { id: "item-7", label: "" } }
    const result = await client.callTool({ name: "labels_label", arguments: empty })
    expect(result).toMatchObject({ isError: true })
    expect(result.structuredContent).toBeUndefined()
    expect(JSON.parse((result.content as Array<{ text: string }>)[0]!.text)).toEqual({
      error: { code: "empty_label", message: "A label is not empty", details: { id: "item-7" } },
    })
  })

  it("apply no ACL for an app's own kind named session (only a kind's toolGrants limit tools)", async () => {
    // A user's entity that happens to be called `session`: its actors hold labels, not grants.
    const own = { ...Labels, kind: "session" } as unknown as Entity
    const { sent, directory } = recording(["session"], { version: 3, state: { labels: { a: "b" } } })
    const client = await connect(directory, [own])
    const result = await client.callTool({ name: "session_clear", arguments: { id: "shelf-1" } })
    expect(result.isError).toBeFalsy()
    expect(sent).toEqual([{ kind: "session", id: "shelf-1", command: { type: "Clear" } }])
  })

  it("refuse a tool a kind's toolGrants leaves out, and allow the ones it grants", async () => {
    const { directory } = recording()
    const asked: Array<string> = []
    const gate: KindModule = {
      entity: Labels,
      toolGrants: async (actor, principal) => {
        asked.push(principal.sub)
        await actor(principal.sub).readState({})
        return new Set(["labels_clear"])
      },
    }
    const client = await connect(directory, [gate])
    expect((await client.callTool({ name: "labels_clear", arguments: { id: "shelf-1" } })).isError).toBeFalsy()
    const refused = await client.callTool({
      name: "labels_label",
      arguments: { id: "s", command: { id: "x", label: "y" } },
    })
    expect(refused.isError).toBe(true)
    expect(JSON.parse((refused.content as Array<{ text: string }>)[0]!.text).error.code).toBe("tool_not_granted")
    expect(asked).toEqual(["tester"])
  })
})
