/**
 * OpenAPI analysis for `analyze` jobs and `/api/analyze`: parses an OpenAPI 3.x or
 * Swagger 2.0 document (JSON or YAML) and reports its endpoints, auth schemes and the
 * problems a connector author would trip over. A document that is not an API
 * description at all is refused with the reasons (InvalidSpec); smaller defects are
 * listed in `problems` beside the analysis.
 */
import { parse as parseYaml } from "yaml"

export interface Endpoint {
  readonly method: string
  readonly path: string
  readonly summary: string | null
  readonly operationId: string | null
}

export interface AuthScheme {
  readonly name: string
  readonly type: string
  readonly scheme?: string
  readonly in?: string
  readonly parameter?: string
}

export interface Analysis {
  readonly title: string
  readonly version: string
  readonly specVersion: string
  readonly endpoints: ReadonlyArray<Endpoint>
  readonly authSchemes: ReadonlyArray<AuthScheme>
  readonly problems: ReadonlyArray<string>
}

export class InvalidSpec extends Error {
  constructor(readonly problems: ReadonlyArray<string>) {
    super(`Not a valid OpenAPI document: ${problems.join("; ")}`)
  }
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const

type Json = Record<string, unknown>
const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value)

/** JSON or YAML text, or an already parsed document. */
export const parseSpec = (spec: unknown): Json => {
  let document: unknown = spec
  if (typeof spec === "string") {
    try {
      document = spec.trimStart().startsWith("{") ? JSON.parse(spec) : parseYaml(spec)
    } catch (error) {
      throw new InvalidSpec([
        `the spec is neither JSON nor YAML: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`,
      ])
    }
  }
  if (!isObject(document)) throw new InvalidSpec(["the spec must be an object (a JSON or YAML mapping)"])
  return document
}

const authSchemes = (document: Json, openapi3: boolean): Array<AuthScheme> => {
  const schemes = openapi3
    ? isObject(document.components)
      ? document.components.securitySchemes
      : undefined
    : document.securityDefinitions
  if (!isObject(schemes)) return []
  return Object.entries(schemes).flatMap(([name, definition]) => {
    if (!isObject(definition)) return []
    const scheme: AuthScheme = {
      name,
      type: String(definition.type ?? "unknown"),
      ...(typeof definition.scheme === "string" ? { scheme: definition.scheme } : {}),
      ...(typeof definition.in === "string" ? { in: definition.in } : {}),
      ...(typeof definition.name === "string" ? { parameter: definition.name } : {}),
    }
    return [scheme]
  })
}

export const analyzeOpenApi = (spec: unknown): Analysis => {
  const document = parseSpec(spec)
  const fatal: Array<string> = []
  const openapi3 = typeof document.openapi === "string" && /^3\.\d+(\.\d+)?$/.test(document.openapi)
  const swagger2 = document.swagger === "2.0"
  if (!openapi3 && !swagger2) fatal.push('the document declares neither "openapi: 3.x" nor "swagger: 2.0"')
  const info = isObject(document.info) ? document.info : undefined
  if (info === undefined) fatal.push("info is missing")
  else {
    if (typeof info.title !== "string" || info.title.length === 0) fatal.push("info.title is missing")
    if (typeof info.version !== "string" && typeof info.version !== "number") fatal.push("info.version is missing")
  }
  if (!isObject(document.paths)) fatal.push("paths is missing or not an object")
  if (fatal.length > 0) throw new InvalidSpec(fatal)

  const problems: Array<string> = []
  const endpoints: Array<Endpoint> = []
  const operationIds = new Map<string, string>()
  const schemes = authSchemes(document, openapi3)
  const schemeNames = new Set(schemes.map((s) => s.name))
  const checkSecurity = (security: unknown, where: string) => {
    if (!Array.isArray(security)) return
    for (const requirement of security) {
      if (!isObject(requirement)) continue
      for (const name of Object.keys(requirement))
        if (!schemeNames.has(name)) problems.push(`${where} requires security scheme ${name}, which is not defined`)
    }
  }
  checkSecurity(document.security, "the document")

  for (const [path, item] of Object.entries(document.paths as Json)) {
    if (!path.startsWith("/")) problems.push(`path ${path} does not start with "/"`)
    if (!isObject(item)) {
      problems.push(`path ${path} is not an object`)
      continue
    }
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => name!)
    const shared = Array.isArray(item.parameters) ? item.parameters : []
    for (const method of METHODS) {
      const operation = item[method]
      if (operation === undefined) continue
      const where = `${method.toUpperCase()} ${path}`
      if (!isObject(operation)) {
        problems.push(`${where} is not an object`)
        continue
      }
      const operationId = typeof operation.operationId === "string" ? operation.operationId : null
      if (operationId === null) problems.push(`${where} has no operationId`)
      else if (operationIds.has(operationId))
        problems.push(`${where} reuses operationId ${operationId} (also ${operationIds.get(operationId)})`)
      else operationIds.set(operationId, where)
      if (!isObject(operation.responses)) problems.push(`${where} declares no responses`)
      const declared = new Set(
        [...shared, ...(Array.isArray(operation.parameters) ? operation.parameters : [])]
          .filter((p): p is Json => isObject(p) && p.in === "path")
          .map((p) => String(p.name)),
      )
      for (const name of templated)
        if (!declared.has(name)) problems.push(`${where} does not declare path parameter ${name}`)
      checkSecurity(operation.security, where)
      endpoints.push({
        method: method.toUpperCase(),
        path,
        summary: typeof operation.summary === "string" ? operation.summary : null,
        operationId,
      })
    }
  }
  if (endpoints.length === 0) problems.push("the document declares no operations")
  return {
    title: String(info!.title),
    version: String(info!.version),
    specVersion: openapi3 ? String(document.openapi) : "2.0",
    endpoints,
    authSchemes: schemes,
    problems,
  }
}
