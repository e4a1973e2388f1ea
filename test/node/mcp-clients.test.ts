// Real MCP clients against the Worker served by wrangler: the v1 SDK (2025-11-25, sessions)
// and the v2 client (2026-07-28, stateless). Auth is off here; test/workerd/mcp.test.ts covers auth.
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { spawn } from "node:child_process"
import { describe, expect, it } from "vitest"
import { sharedWorkerBase } from "./dev-worker.js"

const base = sharedWorkerBase()

/** The error an error result carries in its text, as HTTP answers carry it. */
const errorOf = (result: any) => JSON.parse(result.content[0].text).error

const until = async (condition: () => boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out")
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe("MCP with real clients", () => {
  it("v1 SDK (2025-11-25): tools, a call, a resource, a change notification, then end the session", async () => {
    const client = new Client({ name: "emberlog-test-v1", version: "1.0.0" })
    const updates: Array<string> = []
    client.setNotificationHandler(
      ResourceUpdatedNotificationSchema,
      (notification) => void updates.push(notification.params.uri),
    )
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`))
    await client.connect(transport)
    expect(transport.sessionId).toMatch(/^[0-9a-f-]{36}$/)

    // Every tool in one page: well under the 100 a page may hold, so no cursor to follow.
    const first = await client.listTools()
    expect(first.nextCursor).toBeUndefined()
    const all = first.tools.map((t) => t.name)
    expect(all).toContain("counter_increment")
    // 22 command tools (every kind's commands but the engine's internal ones), read_state, read_events,
    // verify_log, whoami, and the memory tools store_memory, retrieve_memory, search_by_tag, delete_memory
    expect(new Set(all).size).toBe(30)
    expect(all).toEqual(
      expect.arrayContaining([
        "read_state",
        "read_events",
        "verify_log",
        "document_edit",
        "session_grant",
        "job_submit",
        "job_cancel",
      ]),
    )
    expect(all).not.toContain("job_complete")
    const increment = first.tools.find((t) => t.name === "counter_increment")!
    expect(increment.inputSchema).toMatchObject({
      type: "object",
      properties: {
        id: { type: "string" },
        command: { type: "object", properties: { by: { type: "integer" } }, required: ["by"] },
      },
      required: expect.arrayContaining(["id", "command"]),
    })

    const id = `mcp-v1-${Date.now()}`
    const result = await client.callTool({ name: "counter_increment", arguments: { id, command: { by: 4 } } })
    expect(result.isError).toBeFalsy()
    expect(result.structuredContent).toMatchObject({ version: 1, state: { value: 4 } })
    expect(JSON.parse((result.content as Array<{ text: string }>)[0]!.text)).toMatchObject({ version: 1 })

    const tooFar = { id, command: { by: Number.MAX_SAFE_INTEGER } }
    const rejected = await client.callTool({ name: "counter_increment", arguments: tooFar })
    expect(rejected).toMatchObject({ isError: true })
    expect(errorOf(rejected).code).toBe("out_of_range")
    const invalid = await client.callTool({ name: "counter_increment", arguments: { id, command: { by: "two" } } })
    expect(invalid.isError).toBe(true)
    await expect(client.callTool({ name: "no_such_tool", arguments: {} })).rejects.toMatchObject({ code: -32602 })

    const resource = await client.readResource({ uri: `emberlog://counter/${id}` })
    expect(JSON.parse((resource.contents[0] as { text: string }).text)).toMatchObject({
      kind: "counter",
      id,
      version: 1,
      state: { value: 4 },
    })
    const templates = await client.listResourceTemplates()
    expect(templates.resourceTemplates.map((t) => t.uriTemplate)).toEqual([
      "emberlog://{kind}/{id}",
      "emberlog://{kind}/{id}/events",
    ])

    await client.subscribeResource({ uri: `emberlog://counter/${id}` })
    await fetch(`${base}/v1/counter/${id}/commands`, {
      method: "POST",
      body: JSON.stringify({ type: "Increment", by: 1 }),
    })
    await until(() => updates.length > 0)
    expect(updates[0]).toBe(`emberlog://counter/${id}`)

    await client.ping()
    await transport.terminateSession()
    await client.close()
    const gone = await fetch(`${base}/mcp`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": transport.sessionId ?? "x",
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
    })
    expect(gone.status).toBe(404)
  }, 60_000)

  it("v2 client (2026-07-28): discover, list, call, read and listen for changes", async () => {
    const client = new ClientV2(
      { name: "emberlog-test-v2", version: "1.0.0" },
      { versionNegotiation: { mode: "auto" } },
    )
    await client.connect(new TransportV2(new URL(`${base}/mcp`)))
    expect(client.getNegotiatedProtocolVersion()).toBe("2026-07-28")
    const { tools } = await client.listTools()
    expect(tools.length).toBe(30)
    const ns = `mcp-memories-${Date.now()}`
    const stored = await client.callTool({
      name: "store_memory",
      arguments: { namespace: ns, content: "MCP clients remember things", tags: ["mcp"], type: "fact" },
    })
    const { hash } = stored.structuredContent as { hash: string }
    expect(stored.structuredContent).toMatchObject({ stored: true })
    expect(
      (await client.callTool({ name: "retrieve_memory", arguments: { namespace: ns, query: "remember" } }))
        .structuredContent,
    ).toMatchObject({ items: [{ hash, type: "fact" }] })
    expect(
      (await client.callTool({ name: "search_by_tag", arguments: { namespace: ns, tags: ["mcp"] } })).structuredContent,
    ).toMatchObject({ items: [{ hash }] })
    expect(
      (await client.callTool({ name: "delete_memory", arguments: { namespace: ns, hash } })).structuredContent,
    ).toMatchObject({ forgotten: true })
    expect(
      (await client.callTool({ name: "retrieve_memory", arguments: { namespace: ns, query: "remember" } }))
        .structuredContent,
    ).toMatchObject({ items: [] })
    const id = `mcp-v2-${Date.now()}`
    const create = { id, command: { title: "Notes", content: "hello" } }
    const result = await client.callTool({ name: "document_create", arguments: create })
    expect(result.structuredContent).toMatchObject({ version: 1, state: { created: true, content: "hello" } })
    const state = await client.callTool({ name: "read_state", arguments: { kind: "document", id, at: 0 } })
    expect(state.structuredContent).toMatchObject({ version: 0, state: { created: false } })
    const verified = await client.callTool({ name: "verify_log", arguments: { kind: "document", id } })
    expect(verified.structuredContent).toMatchObject({ ok: true, events: 1 })
    const events = await client.readResource({ uri: `emberlog://document/${id}/events` })
    expect(JSON.parse((events.contents[0] as { text: string }).text).events).toHaveLength(1)

    const updates: Array<string> = []
    client.setNotificationHandler(
      "notifications/resources/updated",
      (notification) => void updates.push(notification.params.uri),
    )
    const subscription = await client.listen({ resourceSubscriptions: [`emberlog://document/${id}`] })
    expect(subscription.honoredFilter.resourceSubscriptions).toEqual([`emberlog://document/${id}`])
    await client.callTool({ name: "document_rename", arguments: { id, command: { title: "Renamed" } } })
    await until(() => updates.length > 0)
    expect(updates[0]).toBe(`emberlog://document/${id}`)
    await subscription.close()
    await client.close()
  }, 60_000)
})

describe("MCP conformance", () => {
  it("passes the official suite except the fixture-only scenarios in conformance/expected-failures.yml", async () => {
    const run = spawn(
      "node_modules/.bin/conformance",
      [
        "server",
        "--url",
        `${base}/mcp`,
        "--expected-failures",
        "conformance/expected-failures.yml",
        "-o",
        ".conformance-results",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    )
    let output = ""
    run.stdout.on("data", (chunk) => (output += chunk))
    run.stderr.on("data", (chunk) => (output += chunk))
    const code = await new Promise((resolve) => run.on("exit", resolve))
    expect(output).toContain("Baseline check passed")
    expect(code, output.slice(-3000)).toBe(0)
  }, 120_000)
})
