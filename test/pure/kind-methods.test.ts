// A kind's extra RPC methods through `invoke`: the proxy is a set of methods, never a thenable,
// so awaiting it (or returning it from an async function) sends nothing to the actor.
import { describe, expect, it } from "vitest"
import type { ActorApi } from "../../src/actors/durable-actor.js"
import { kindMethods } from "../../src/edge/objects.js"

const recording = () => {
  const invoked: Array<{ method: string; args: ReadonlyArray<unknown> }> = []
  const actor = {
    invoke: async (method: string, args: ReadonlyArray<unknown>) => {
      invoked.push({ method, args })
      return { ok: true, value: `${method}:${args.join(",")}` }
    },
  } as unknown as ActorApi
  return { invoked, actor }
}

describe("kindMethods", () => {
  it("calls a method through invoke and unwraps its reply", async () => {
    const { invoked, actor } = recording()
    const methods = kindMethods<{ search(q: string, limit: number): string }>(actor)
    expect(await methods.search("cat", 3)).toBe("search:cat,3")
    expect(invoked).toEqual([{ method: "search", args: ["cat", 3] }])
  })

  it("is not a thenable: awaiting it invokes nothing", async () => {
    const { invoked, actor } = recording()
    const methods = kindMethods<{ search(q: string): string }>(actor)
    expect((methods as { then?: unknown }).then).toBeUndefined()
    expect(await Promise.resolve(methods)).toBe(methods)
    const fromAsync = async () => methods
    expect(await fromAsync()).toBe(methods)
    expect((methods as Record<symbol, unknown>)[Symbol.toPrimitive]).toBeUndefined()
    expect(invoked).toEqual([])
  })
})
