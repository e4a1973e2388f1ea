// tools/list through the SDK client: every tool in one page up to 100, pages with a cursor beyond.
// The client's listTools() without a cursor follows every page itself, so pages are asked for one by one.
import { Client, InMemoryTransport } from "@modelcontextprotocol/client"
import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { Counter } from "../../src/kinds/counter/entity.js"
import { defineKind, kindRegistry, type KindRegistry } from "../../src/edge/kind.js"
import { TOOLS_PAGE, buildMcpServer, type ActorDirectory } from "../../src/edge/mcp/server.js"
import { success } from "../../src/edge/mcp/tools.js"
import { counter, document, job, memory, room, session } from "../../src/kinds/index.js"

const directory = (kinds: ReadonlyArray<string>): ActorDirectory => ({
  principal: { sub: "tester", tenant: "t", scopes: new Set(["read", "write", "admin"]) } as ActorDirectory["principal"],
  kinds,
  actor: () => {
    throw new Error("listing tools addresses no actor")
  },
})

const connect = async (registry: KindRegistry) => {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  await buildMcpServer(directory(registry.names), undefined, registry).connect(serverSide)
  const client = new Client({ name: "test", version: "1" })
  await client.connect(clientSide)
  return client
}

/** A kind with `count` tools of its own beside its command tools. */
const manyTools = (count: number) =>
  defineKind({
    entity: Counter,
    tools: (tools) => {
      for (let i = 0; i < count; i++)
        tools.register(
          `extra_${i}`,
          { description: `Extra tool ${i}`, input: Schema.Struct({ n: Schema.Number }), scope: "read" },
          async ({ n }) => success({ n, i }),
        )
    },
  })

type Page = { tools: Array<{ name: string; inputSchema: any; outputSchema?: any }>; nextCursor?: string }
const page = (client: Client, cursor?: string) =>
  client.request({ method: "tools/list", params: cursor === undefined ? {} : { cursor } }) as Promise<Page>

describe("MCP tools/list", () => {
  it("lists the built-in kinds' tools in one page, with no cursor", async () => {
    const client = await connect(kindRegistry([counter, document, room, session, job, memory]))
    const only = await page(client)
    expect(only.nextCursor).toBeUndefined()
    expect(only.tools.length).toBe(30)
    expect(only.tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(["counter_increment", "store_memory"]))
  })

  it("still lists exactly 100 tools in one page", async () => {
    // counter's 3 command tools + read_state, read_events, verify_log, whoami + 93 of its own = 100.
    const client = await connect(kindRegistry([manyTools(TOOLS_PAGE - 7)]))
    const only = await page(client)
    expect(only.tools.length).toBe(TOOLS_PAGE)
    expect(only.nextCursor).toBeUndefined()
  })

  it("pages more than 100 tools by cursor, each tool once, in order, as the SDK describes them", async () => {
    const client = await connect(kindRegistry([manyTools(250)]))
    const first = await page(client)
    expect(first.tools.length).toBe(TOOLS_PAGE)
    expect(first.nextCursor).toEqual(expect.any(String))
    const second = await page(client, first.nextCursor)
    expect(second.tools.length).toBe(TOOLS_PAGE)
    const third = await page(client, second.nextCursor)
    expect(third.tools.length).toBe(57)
    expect(third.nextCursor).toBeUndefined()
    const names = [...first.tools, ...second.tools, ...third.tools].map((tool) => tool.name)
    expect(names.length).toBe(257)
    expect(new Set(names).size).toBe(257)
    expect(names.slice(0, 8)).toEqual([
      "counter_increment",
      "counter_decrement",
      "counter_reset",
      "read_state",
      "read_events",
      "verify_log",
      "whoami",
      "extra_0",
    ])
    expect(names.at(-1)).toBe("extra_249")
    // A client that follows the cursor itself sees the same tools.
    expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(names)
    // The first 100 are those of a registry of exactly 100, which the SDK's own handler lists: described alike.
    const sdkListed = await page(await connect(kindRegistry([manyTools(TOOLS_PAGE - 7)])))
    expect(first.tools).toEqual(sdkListed.tools)
    const increment = first.tools.find((tool) => tool.name === "counter_increment")!
    expect(increment.inputSchema).toMatchObject({ type: "object", properties: { id: { type: "string" } } })
    expect(increment.outputSchema).toMatchObject({ type: "object", properties: { version: { type: "integer" } } })
    expect(second.tools[0]).toMatchObject({ name: "extra_93", inputSchema: { type: "object" } })
    // The tools listed on later pages are callable as any other.
    expect((await client.callTool({ name: "extra_249", arguments: { n: 7 } })).structuredContent).toEqual({
      n: 7,
      i: 249,
    })
  })

  it("refuses a cursor it did not give", async () => {
    const client = await connect(kindRegistry([manyTools(150)]))
    for (const cursor of ["nope", "-1", "1e3", "999"]) {
      await expect(page(client, cursor), cursor).rejects.toThrow(/cursor/)
    }
  })
})
