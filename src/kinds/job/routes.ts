/**
 * The AI engine's HTTP API, as thin routes over the `job` entity: submit returns at once
 * (the actor's alarm runs the job), status reads the actor, DELETE cancels. A job's actor
 * id is its jobId, so `/v1/job/{jobId}/events` (and `/ws`, `/events/stream`) show its log.
 */
import type { Context } from "hono"
import { MAX_DESCRIPTION } from "./entity.js"
import {
  HttpError,
  Params,
  actorOf,
  badRequest,
  canonicalJson,
  guarded,
  limitBody,
  requireScope,
  unwrap,
  type App,
  type AppEnv,
} from "../../worker.js"
import { InvalidSpec, analyzeOpenApi, type Analysis } from "./openapi.js"

/** Roughly how long the local executor takes, reported to clients as a hint. */
export const ESTIMATED_MS = 2_000

const jobOf = (c: Context<AppEnv>) => actorOf(c, "job", c.req.param("jobId")!)

/**
 * Analyses are cached by the SHA-256 of the spec's canonical JSON (Cache API), per tenant:
 * a hit would otherwise tell one tenant which documents another has analyzed.
 */
const cacheKey = async (tenant: string, spec: unknown) => {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonicalJson(spec)))
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")
  return `https://emberlog.cache/analyze/${encodeURIComponent(tenant)}/${hex}`
}

export const jobRoutes = (app: App) => {
  app.use("/api/*", ...guarded)
  app.post("/api/analyze", requireScope("read"), limitBody, async (c) => {
    const body = (await Params.jsonBody(c)) as { specType?: unknown; spec?: unknown } | undefined
    if (body?.specType !== "openapi")
      throw badRequest("invalid_body", 'specType must be "openapi"', {
        issues: [{ path: ["specType"], message: 'Expected "openapi"' }],
      })
    if (typeof body.spec !== "string" && (typeof body.spec !== "object" || body.spec === null)) {
      throw badRequest("invalid_body", "spec must be the document (JSON or YAML text, or an object)", {
        issues: [{ path: ["spec"], message: "Expected a string or an object" }],
      })
    }
    const key = await cacheKey(c.get("principal").tenant, body.spec)
    const cached = await caches.default.match(key)
    if (cached !== undefined) {
      const response = new Response(cached.body, cached)
      response.headers.set("X-Emberlog-Cache", "hit")
      return response
    }
    let analysis: Analysis
    try {
      analysis = analyzeOpenApi(body.spec)
    } catch (error) {
      if (error instanceof InvalidSpec) throw badRequest("invalid_spec", error.message, { problems: error.problems })
      throw error
    }
    const response = Response.json(analysis, {
      headers: { "Cache-Control": "max-age=86400", "X-Emberlog-Cache": "miss" },
    })
    await caches.default.put(key, response.clone())
    return response
  })

  app.post("/api/generate-from-description", requireScope("write"), limitBody, async (c) => {
    const body = (await Params.jsonBody(c)) as { description?: unknown } | undefined
    if (
      typeof body?.description !== "string" ||
      body.description.length === 0 ||
      body.description.length > MAX_DESCRIPTION
    ) {
      throw badRequest(
        "invalid_body",
        `description must be a non-empty string of at most ${MAX_DESCRIPTION} characters`,
        {
          issues: [{ path: ["description"], message: "Expected a non-empty string" }],
        },
      )
    }
    const jobId = crypto.randomUUID()
    const principal = c.get("principal").sub
    unwrap(
      await actorOf(c, "job", jobId).command({
        command: { type: "Submit", task: "generate", input: { description: body.description } },
        principal,
      }),
    )
    return c.json(
      {
        jobId,
        status: "pending",
        message: `Follow it at /api/jobs/${jobId} or /v1/job/${jobId}/events/stream`,
        estimatedMs: ESTIMATED_MS,
      },
      202,
    )
  })

  app.get("/api/jobs/:jobId", requireScope("read"), async (c) => {
    const job = jobOf(c)
    const { version, state } = unwrap(await job.readState({}))
    if (version === 0) throw new HttpError(404, "unknown_job", `No job ${c.req.param("jobId")}`)
    const { status, progress, result, error, attempts } = state as Record<string, unknown>
    return c.json({
      jobId: c.req.param("jobId"),
      status,
      progress,
      ...(result === undefined ? {} : { result }),
      ...(error === undefined ? {} : { error }),
      attempts,
      events: version,
    })
  })

  app.delete("/api/jobs/:jobId", requireScope("write"), async (c) => {
    const job = jobOf(c)
    if ((await job.head()) === 0) throw new HttpError(404, "unknown_job", `No job ${c.req.param("jobId")}`)
    unwrap(await job.command({ command: { type: "Cancel" }, principal: c.get("principal").sub }))
    return c.json({ jobId: c.req.param("jobId"), status: "cancelled" })
  })
}
