/**
 * A tenant's data, listed and deleted (README, "A tenant's data: listing and deletion"):
 *
 * - `GET /v1/actors?kind=&prefix=&cursor=&limit=` (read): the caller's tenant's actors, every
 *   one appended to at least once, of the kinds the app serves, in (kind, id) order, a page at a time;
 *   `GET /v1/admin/tenants/{tenant}/actors` (operator) the same of any tenant.
 * - `DELETE /v1/tenants/{tenant}` (admin of that tenant, or operator): 202 with the deletion's status;
 *   the deletion runs in a coordinator object outside the tenant (actors/deletion.ts) and resumes after a crash.
 * - `GET /v1/tenants/{tenant}/deletion` (the same): the latest deletion's status, the audit record once done.
 */
import type { Context } from "hono"
import type { DeletionApi, DeletionMethods } from "../actors/deletion.js"
import { deletionName } from "../actors/deletion.js"
import { directoryName, type DirectoryApi, type DirectoryMethods } from "../actors/directory.js"
import { stubOf } from "../actors/stubs.js"
import { NAME_PATTERN } from "../core/names.js"
import { requireScope } from "./auth.js"
import type { App, AppEnv, Env } from "./env.js"
import { HttpError, badRequest, failed } from "./errors.js"
import type { KindRegistry } from "./kind.js"
import * as Params from "./params.js"

export const MAX_ACTORS_PAGE = 1000

const topics = (env: Env) => {
  const namespace = (env as Partial<Env>).EMBERLOG_TOPIC
  if (namespace === undefined)
    throw failed({
      _tag: "Unavailable",
      code: "binding_missing",
      message: "No Durable Object binding EMBERLOG_TOPIC: declare it in wrangler.toml",
    })
  return namespace
}

/** The directory of a tenant (its actors, topics and MCP sessions). */
export const directoryOf = (env: Env, tenant: string): DirectoryApi =>
  stubOf<DirectoryMethods>(topics(env), directoryName(tenant))

/** The coordinator of a tenant's deletions (an object outside the tenant). */
export const deletionOf = (env: Env, tenant: string): DeletionApi =>
  stubOf<DeletionMethods>(topics(env), deletionName(tenant))

/** A page cursor: where the last page ended, opaque to clients. */
const encodeCursor = (at: { readonly kind: string; readonly id: string }) =>
  btoa(JSON.stringify([at.kind, at.id]))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "")

const decodeCursor = (cursor: string): { kind: string; id: string } => {
  const invalid = badRequest("invalid_query", "cursor must be the next value of a previous page")
  try {
    const [kind, id] = JSON.parse(atob(cursor.replaceAll("-", "+").replaceAll("_", "/"))) as unknown[]
    if (typeof kind !== "string" || typeof id !== "string") throw invalid
    return { kind, id }
  } catch {
    throw invalid
  }
}

/** The tenant a route names: the caller's own with admin, or any with operator. */
const tenantParam = (c: Context<AppEnv>): string => {
  const tenant = c.req.param("tenant") ?? ""
  if (tenant.length === 0 || tenant.length > 256) throw badRequest("invalid_tenant", "A tenant is 1–256 characters")
  const principal = c.get("principal")
  if (principal.scopes.has("operator")) return tenant
  if (tenant !== principal.tenant)
    throw new HttpError(
      403,
      "wrong_tenant",
      `Only an operator deletes another tenant than your own (${principal.tenant})`,
    )
  if (!principal.scopes.has("admin"))
    throw new HttpError(403, "insufficient_scope", "Deleting your tenant needs the admin scope", { scope: "admin" })
  return tenant
}

export const tenantRoutes = (app: App, served: KindRegistry) => {
  const listActors = async (c: Context<AppEnv>, tenant: string) => {
    const kind = c.req.query("kind")
    if (kind !== undefined && served.get(kind) === undefined)
      throw new HttpError(
        404,
        "unknown_kind",
        `Unknown kind ${JSON.stringify(kind)}; known kinds: ${served.names.join(", ")}`,
      )
    const prefix = c.req.query("prefix")
    if (prefix !== undefined && prefix !== "" && !NAME_PATTERN.test(prefix))
      throw badRequest("invalid_query", "prefix must be up to 128 characters of A-Z a-z 0-9 . _ : -")
    const cursor = c.req.query("cursor")
    const limit = Params.nonNegativeInt("limit", c.req.query("limit"), 100)
    if (limit < 1 || limit > MAX_ACTORS_PAGE)
      throw badRequest("invalid_query", `limit must be an integer from 1 to ${MAX_ACTORS_PAGE}`)
    const page = await directoryOf(c.env, tenant).listDirectory({
      type: "actor",
      kinds: kind === undefined ? served.names : [kind],
      ...(prefix === undefined || prefix === "" ? {} : { prefix }),
      ...(cursor === undefined ? {} : { after: decodeCursor(cursor) }),
      limit,
    })
    return c.json({
      actors: page.entries.map((entry) => ({
        kind: entry.kind,
        id: entry.id,
        listedAt: new Date(entry.listedAt).toISOString(),
      })),
      next: page.next === null ? null : encodeCursor(page.next),
    })
  }

  app.get("/v1/actors", requireScope("read"), (c) => listActors(c, c.get("principal").tenant))
  // Operators list any tenant's actors (as they read them, under /v1/admin only).
  app.get("/v1/admin/tenants/:tenant/actors", requireScope("operator"), (c) => listActors(c, c.req.param("tenant")))

  app.delete("/v1/tenants/:tenant", async (c) => {
    const tenant = tenantParam(c)
    const principal = c.get("principal")
    // The audit record names who asked, from which tenant, and by which right.
    const deletion = await deletionOf(c.env, tenant).requestDeletion(tenant, {
      sub: principal.sub,
      tenant: principal.tenant,
      as: principal.scopes.has("operator") ? "operator" : "admin",
    })
    const location = `/v1/tenants/${encodeURIComponent(tenant)}/deletion`
    return c.json({ deletion }, 202, { Location: location })
  })

  app.get("/v1/tenants/:tenant/deletion", async (c) => {
    const tenant = tenantParam(c)
    const deletion = await deletionOf(c.env, tenant).deletionStatus()
    if (deletion === undefined)
      throw new HttpError(404, "no_deletion", `Tenant ${JSON.stringify(tenant)} has never been deleted`)
    return c.json({ deletion })
  })
}
