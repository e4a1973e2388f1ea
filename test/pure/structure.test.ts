// The folder tree is the architecture (DESIGN.md, "Layers"): imports point inward and form no
// cycles. This reads every import of src/**/*.ts (type-only ones too: a cycle of types is still
// two modules that cannot be understood or moved apart) and checks the layer rules.
import { readFileSync, readdirSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { describe, expect, it } from "vitest"

const root = resolve(import.meta.dirname, "../..")
const src = join(root, "src")

interface Import {
  /** A repository path (src/…/x.ts) for a relative import, else the specifier (`cloudflare:workers`). */
  readonly target: string
  /** `import type` / `export type`: erased at build time, so it cannot load anything. */
  readonly typeOnly: boolean
}

const sources = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : []
  })

// `import … from "x"`, `export … from "x"` (over several lines) and bare `import "x"`. An import
// clause holds no `=`, `(` or `:`, so a match never runs on from a declaration into the next import.
const IMPORT = /^\s*(import|export)\s+(type\s+)?([^;'"=():]*?\sfrom\s+)?["']([^"']+)["']/gm

const importsOf = (file: string): Array<Import> =>
  [...readFileSync(file, "utf8").matchAll(IMPORT)].flatMap(([, , typeOnly, , specifier]) => {
    if (specifier === undefined) return []
    if (!specifier.startsWith(".")) return [{ target: specifier, typeOnly: typeOnly !== undefined }]
    const path = resolve(dirname(file), specifier).replace(/\.js$/, ".ts")
    if (!path.startsWith(src)) return [] // package.json: data, not a module of ours
    return [{ target: relative(root, path), typeOnly: typeOnly !== undefined }]
  })

const graph = new Map(sources(src).map((file) => [relative(root, file), importsOf(file)]))
const local = (imports: ReadonlyArray<Import>) => imports.filter(({ target }) => graph.has(target))

/** Every cycle of the import graph, as the strongly connected components with more than one module (Tarjan). */
const cycles = (): Array<Array<string>> => {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const found: Array<Array<string>> = []
  const visit = (module: string) => {
    index.set(module, index.size)
    low.set(module, index.get(module)!)
    stack.push(module)
    onStack.add(module)
    for (const { target } of local(graph.get(module)!)) {
      if (!index.has(target)) {
        visit(target)
        low.set(module, Math.min(low.get(module)!, low.get(target)!))
      } else if (onStack.has(target)) low.set(module, Math.min(low.get(module)!, index.get(target)!))
    }
    if (low.get(module) !== index.get(module)) return
    const component: Array<string> = []
    let member: string
    do {
      member = stack.pop()!
      onStack.delete(member)
      component.push(member)
    } while (member !== module)
    const selfImport = local(graph.get(module)!).some(({ target }) => target === module)
    if (component.length > 1 || selfImport) found.push(component.sort())
  }
  for (const module of graph.keys()) if (!index.has(module)) visit(module)
  return found
}

/** The modules a module loads at run time, transitively (type-only imports load nothing). */
const loads = (module: string, seen = new Set<string>()): Set<string> => {
  for (const { target, typeOnly } of graph.get(module) ?? []) {
    if (typeOnly || seen.has(target)) continue
    seen.add(target)
    loads(target, seen)
  }
  return seen
}

/** Imports from a folder of src into others it must not reach, as "importer -> imported". */
const outward = (from: string, forbidden: ReadonlyArray<string>) =>
  [...graph]
    .filter(([module]) => module.startsWith(`src/${from}/`))
    .flatMap(([module, imports]) =>
      imports
        .filter(({ target }) => forbidden.some((layer) => target.startsWith(`src/${layer}/`)))
        .map(({ target }) => `${module} -> ${target}`),
    )

/** The Durable Object host: modules that load `cloudflare:workers`, directly or through another. */
const hostModules = [...graph.keys()].filter((module) => loads(module).has("cloudflare:workers"))

/** The entry points a kind folder may import: what a kind outside this repository imports. */
const PUBLIC_ENTRY_POINTS = ["src/index.ts", "src/worker.ts", "src/client/index.ts"]

/** A kind folder's file may import the entry points and files of its own folder; the lists of kinds, any kind folder. */
const kindImportAllowed = (module: string, target: string) => {
  if (PUBLIC_ENTRY_POINTS.includes(target)) return true
  if (module === "src/kinds/index.ts" || module === "src/kinds/entities.ts") return target.startsWith("src/kinds/")
  const folder = /^src\/kinds\/[^/]+\//.exec(module)?.[0]
  return folder !== undefined && target.startsWith(folder)
}

describe("the module structure", () => {
  it("reads the imports it checks", () => {
    // A parser that found nothing would pass every rule below.
    expect(graph.size).toBeGreaterThan(50)
    expect(local(graph.get("src/edge/app.ts")!).length).toBeGreaterThan(10)
    expect(hostModules).toContain("src/actors/durable-actor.ts")
    expect(hostModules).toContain("src/app.ts")
  })

  it("has no import cycles", () => {
    expect(cycles()).toEqual([])
  })

  it("keeps the core and the entity contract free of the host, adapters, edge, client and CLI", () => {
    expect(outward("domain", ["core", "actors", "infra", "edge", "client", "cli", "testing"])).toEqual([])
    expect(outward("core", ["actors", "infra", "edge", "client", "cli", "testing"])).toEqual([])
  })

  it("keeps adapters and the host from reaching outward", () => {
    expect(outward("infra", ["actors", "edge", "client", "cli", "testing"])).toEqual([])
    expect(outward("actors", ["edge", "client", "cli", "testing"])).toEqual([])
    expect(outward("edge", ["client", "cli", "testing"])).toEqual([])
  })

  it("lets the client and the CLI reach pure code through the core, never through the host or the edge", () => {
    expect(outward("client", ["actors", "infra", "edge", "cli", "testing"])).toEqual([])
    expect(outward("cli", ["actors", "infra", "edge", "testing"])).toEqual([])
    const reached = [...graph.keys()]
      .filter((module) => module.startsWith("src/client/") || module.startsWith("src/cli/"))
      .flatMap((module) =>
        [...loads(module)].filter((target) => hostModules.includes(target)).map((target) => `${module} -> ${target}`),
      )
    expect(reached).toEqual([])
  })

  it("addresses every object through one typed helper (actors/stubs.ts), with no stub cast", () => {
    const addressing = [...graph.keys()].filter((module) => {
      const text = readFileSync(join(root, module), "utf8")
      // The workerd harness hands the platform's own stubs to cloudflare:test (evictDurableObject).
      // The replica consumer runs in the user's Worker, outside the host layer: its namespace is typed structurally.
      const allowed =
        module === "src/actors/stubs.ts" || module === "src/testing/workerd.ts" || module === "src/replica/index.ts"
      const getsByName = !allowed && /\.getByName\(/.test(text)
      return getsByName || /as unknown as \w*(Api|Stub)\b/.test(text)
    })
    expect(addressing).toEqual([])
  })

  it("builds kind folders on the public entry points and their own files only", () => {
    const kindModules = [...graph.keys()].filter((module) => module.startsWith("src/kinds/"))
    // The rule reads the kinds' imports: a parser that found none would pass it.
    expect(kindModules).toContain("src/kinds/memory/routes.ts")
    expect(local(graph.get("src/kinds/memory/routes.ts")!).map(({ target }) => target)).toContain("src/worker.ts")
    const deeper = kindModules.flatMap((module) =>
      local(graph.get(module)!)
        .filter(({ target }) => !kindImportAllowed(module, target))
        .map(({ target }) => `${module} -> ${target}`),
    )
    expect(deeper).toEqual([])
  })

  it("keeps every layer but the kinds and the app from importing kinds or kind modules", () => {
    const reaching = ["actors", "core", "domain", "infra", "edge", "client", "testing"].flatMap((layer) =>
      [...graph]
        .filter(([module]) => module.startsWith(`src/${layer}/`))
        .flatMap(([module, imports]) =>
          imports
            .filter(
              ({ target }) => target.startsWith("src/kinds/") || (layer !== "edge" && target === "src/edge/kind.ts"),
            )
            .map(({ target }) => `${module} -> ${target}`),
        ),
    )
    expect(reaching).toEqual([])
  })

  it("keeps emberlog/replica (a consumer in the user's Worker) free of the host, adapters and edge, types included", () => {
    const reached = new Set<string>()
    const walk = (module: string) => {
      for (const { target } of graph.get(module) ?? []) {
        if (reached.has(target)) continue
        reached.add(target)
        walk(target)
      }
    }
    walk("src/replica/index.ts")
    expect([...reached].filter((target) => /^src\/(actors|infra|edge)\//.test(target))).toEqual([])
  })

  it("loads no Cloudflare module from the entry points that run in plain Node", () => {
    for (const entry of [
      "src/index.ts",
      "src/client/index.ts",
      "src/testing/index.ts",
      "src/cli/main.ts",
      "src/replica/index.ts",
    ]) {
      expect(
        [...loads(entry)].filter((target) => target.startsWith("cloudflare:")),
        entry,
      ).toEqual([])
    }
  })
})
