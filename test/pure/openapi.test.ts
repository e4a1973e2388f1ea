import { readFileSync } from "node:fs"
import { join } from "node:path"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { localExecutor } from "../../src/kinds/job/executors.js"
import { InvalidSpec, analyzeOpenApi } from "../../src/kinds/job/openapi.js"

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "../fixtures", name), "utf8")

describe("OpenAPI analysis", () => {
  it("reads an OpenAPI 3.0 YAML document: endpoints, auth schemes, no problems", () => {
    const analysis = analyzeOpenApi(fixture("bookshop-openapi-3.0.yaml"))
    expect(analysis).toMatchObject({ title: "Bookshop", version: "1.2.0", specVersion: "3.0.3", problems: [] })
    expect(analysis.endpoints).toEqual([
      { method: "GET", path: "/books", summary: "List books", operationId: "listBooks" },
      { method: "POST", path: "/books", summary: "Add a book", operationId: "createBook" },
      { method: "GET", path: "/books/{bookId}", summary: "Read one book", operationId: "showBookById" },
      { method: "DELETE", path: "/books/{bookId}", summary: "Remove a book", operationId: "deleteBook" },
    ])
    expect(analysis.authSchemes).toEqual([
      { name: "bearerAuth", type: "http", scheme: "bearer" },
      { name: "apiKey", type: "apiKey", in: "header", parameter: "X-API-Key" },
    ])
  })

  it("reads a Swagger 2.0 JSON document and names its problems", () => {
    const analysis = analyzeOpenApi(JSON.parse(fixture("bookshop-swagger-2.0.json")))
    expect(analysis).toMatchObject({ title: "Bookshop (Swagger 2)", version: "0.9", specVersion: "2.0" })
    expect(analysis.endpoints.map((e) => `${e.method} ${e.path}`)).toEqual([
      "GET /books",
      "POST /books",
      "GET /books/{bookId}",
      "PUT /books/{bookId}",
    ])
    expect(analysis.problems).toEqual([
      "POST /books requires security scheme oauth, which is not defined",
      "GET /books/{bookId} has no operationId",
      "GET /books/{bookId} does not declare path parameter bookId",
      "PUT /books/{bookId} reuses operationId listBooks (also GET /books)",
    ])
  })

  it("refuses what is not an API description, saying why", () => {
    const problems = (spec: unknown) => {
      try {
        analyzeOpenApi(spec)
        return []
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidSpec)
        return (error as InvalidSpec).problems
      }
    }
    expect(problems("key: [unclosed")[0]).toMatch(/neither JSON nor YAML/)
    expect(problems("[1, 2]")).toEqual(["the spec must be an object (a JSON or YAML mapping)"])
    expect(problems({ openapi: "3.0.0" })).toEqual(["info is missing", "paths is missing or not an object"])
    expect(problems({ openapi: "4.0", info: { title: "x", version: "1" }, paths: {} })).toEqual([
      'the document declares neither "openapi: 3.x" nor "swagger: 2.0"',
    ])
  })

  it("runs as the local executor's analyze task; an invalid spec fails without retry", () => {
    const ok = Effect.runSyncExit(
      localExecutor.run(
        "analyze",
        { specType: "openapi", spec: fixture("bookshop-openapi-3.0.yaml") },
        () => undefined,
      ),
    )
    expect(Exit.isSuccess(ok) && (ok.value as { endpoints: Array<unknown> }).endpoints).toHaveLength(4)
    const bad = Effect.runSyncExit(localExecutor.run("analyze", { specType: "openapi", spec: "{}" }, () => undefined))
    expect(Exit.isFailure(bad)).toBe(true)
  })
})
