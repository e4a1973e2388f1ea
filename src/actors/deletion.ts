/**
 * Deleting a tenant (`DELETE /v1/tenants/{tenant}`): a coordinator object outside the
 * tenant, `#deletions/{tenant}` in EMBERLOG_TOPIC ("#" is never in an encoded tenant, so no
 * tenant's objects can take the name), persists the plan and how far it got, and its alarm
 * runs the steps. Every step is idempotent and records its progress as it goes, so a crash
 * anywhere is finished by the next alarm; a failing step is retried with backoff, never given
 * up on, and the status names it (never a silently half-deleted tenant). The finished row
 * stays: it is the audit record of who deleted the tenant, when, and what was erased.
 *
 * The steps, in order: erasers that stop new access (the authorization server's grants), the
 * tenant's MCP sessions, actors and topics (found in its directory, actors/directory.ts, each
 * removed from it once erased, at the generation read, so the directory itself is the work list
 * and an object written to meanwhile stays on it), the other pluggable erasers (usage), the
 * directory (erased only if empty, in one call), and last the "before" erasers once more (a
 * sign-in during the deletion). If anything was listed again while the deletion ran (the tenant
 * kept writing), every step runs again, erasers too: another pass. An alarm erases at most
 * `deletionLimits.pagesPerAlarm` pages, then the next alarm goes on at once; a deletion whose
 * alarm the platform gave up on is re-armed by the next DELETE or status read.
 */
import { actorName, scopedName } from "../core/names.js"
import type { DeletionRequester, DeletionStatus, ErasedCounts } from "../core/wire.js"

export type { DeletionRequester, DeletionStatus, DeletionStep, ErasedCounts } from "../core/wire.js"
import {
  directoryName,
  type DirectoryApi,
  type DirectoryEntryType,
  type DirectoryKey,
  type DirectoryMethods,
} from "./directory.js"
import { stubOf, type ObjectStub } from "./stubs.js"

/** A pluggable step: erases what a tenant has outside its objects (usage rows, OAuth grants); returns how many it erased. */
export interface TenantEraser {
  readonly name: string
  readonly erase: (env: any, tenant: string) => Promise<number | void>
  /** "before": runs before the tenant's objects are erased (to stop new access); else after them. */
  readonly when?: "before" | "after"
}

/** The RPC method each object of a tenant has for its deletion. */
export interface Erasable {
  eraseAll(): ErasedCounts | Promise<ErasedCounts>
}

export interface DeletionMethods {
  requestDeletion(tenant: string, requestedBy: string | DeletionRequester): Promise<DeletionStatus>
  deletionStatus(): Promise<DeletionStatus | undefined>
}

export type DeletionApi = ObjectStub<DeletionMethods>

/** The coordinator of `tenant`'s deletions: outside every tenant's namespace. */
export const deletionName = (tenant: string): string => `#deletions/${encodeURIComponent(tenant)}`

/** The tenant a coordinator's name is for; undefined for any other name. */
export const deletionTenant = (name: string): string | undefined =>
  name.startsWith("#deletions/") ? decodeURIComponent(name.slice("#deletions/".length)) : undefined

/**
 * Faults to inject in tests: `failSteps` steps (by name) throw once each when they are about to
 * run; `failErasures` objects (`type kind/id`, e.g. "actor counter/c2") fail their erasure once each.
 * Kept on globalThis so a test in the same isolate reaches the objects' copy of this module.
 */
export const deletionFaults: { failSteps: Array<string>; failErasures: Array<string> } = ((
  globalThis as Record<symbol, unknown>
)[Symbol.for("emberlog.deletionFaults")] ??= { failSteps: [], failErasures: [] }) as {
  failSteps: Array<string>
  failErasures: Array<string>
}

/**
 * How much one alarm does: objects erased per page of the directory, and pages per alarm (then the
 * next alarm goes on at once), so a large tenant stays within one invocation's subrequest and time
 * limits. On globalThis, as deletionFaults, so tests can make them small.
 */
export const deletionLimits: { page: number; pagesPerAlarm: number } = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("emberlog.deletionLimits")
] ??= { page: 50, pagesPerAlarm: 10 }) as { page: number; pagesPerAlarm: number }

export const DELETION_RETRY_BASE_MS = 1_000
export const DELETION_RETRY_MAX_MS = 5 * 60_000

const OBJECT_STEPS: ReadonlyArray<{ readonly name: string; readonly type: DirectoryEntryType }> = [
  { name: "mcp-sessions", type: "mcp-session" },
  { name: "actors", type: "actor" },
  { name: "topics", type: "topic" },
]

const TABLE = `CREATE TABLE IF NOT EXISTS deletions (
  id TEXT PRIMARY KEY, requested_by TEXT NOT NULL, requested_at INTEGER NOT NULL, finished_at INTEGER,
  passes INTEGER NOT NULL, steps TEXT NOT NULL, failure TEXT, requester TEXT)`

interface Row {
  id: string
  requestedBy: string
  requester: DeletionRequester | null
  requestedAt: number
  finishedAt: number | null
  passes: number
  steps: Array<{ name: string; status: "pending" | "done"; erased: Record<string, number> }>
  failure: { step: string; message: string; attempts: number; at: number } | null
}

export interface DeletionBindings {
  readonly EMBERLOG_ACTOR?: DurableObjectNamespace
  readonly EMBERLOG_TOPIC?: DurableObjectNamespace
  readonly EMBERLOG_MCP_SESSION?: DurableObjectNamespace
}

const add = (into: Record<string, number>, counts: ErasedCounts) => {
  for (const [what, n] of Object.entries(counts)) if (n !== 0) into[what] = (into[what] ?? 0) + n
}

/** One coordinator object's deletions of its tenant (the latest may be in progress; the rest are the audit trail). */
export class DeletionCoordinator implements DeletionMethods {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly env: DeletionBindings,
    private readonly tenant: string,
    private readonly erasers: ReadonlyArray<TenantEraser>,
  ) {}

  private get created(): boolean {
    return (
      this.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deletions'").toArray()
        .length > 0
    )
  }

  private latest(): Row | undefined {
    if (!this.created) return undefined
    const row = this.storage.sql
      .exec("SELECT * FROM deletions ORDER BY requested_at DESC, id DESC LIMIT 1")
      .toArray()[0]
    if (row === undefined) return undefined
    return {
      id: row.id as string,
      requestedBy: row.requested_by as string,
      requester: row.requester === null || row.requester === undefined ? null : JSON.parse(row.requester as string),
      requestedAt: row.requested_at as number,
      finishedAt: row.finished_at as number | null,
      passes: row.passes as number,
      steps: JSON.parse(row.steps as string),
      failure: row.failure === null ? null : JSON.parse(row.failure as string),
    }
  }

  private save(row: Row): void {
    this.storage.sql.exec(
      "UPDATE deletions SET finished_at = ?, passes = ?, steps = ?, failure = ? WHERE id = ?",
      row.finishedAt,
      row.passes,
      JSON.stringify(row.steps),
      row.failure === null ? null : JSON.stringify(row.failure),
      row.id,
    )
  }

  private statusOf(row: Row): DeletionStatus {
    const running = row.steps.find((step) => step.status === "pending")
    return {
      id: row.id,
      tenant: this.tenant,
      status: row.finishedAt === null ? "in-progress" : "done",
      requestedBy: row.requestedBy,
      requester: row.requester,
      requestedAt: new Date(row.requestedAt).toISOString(),
      finishedAt: row.finishedAt === null ? null : new Date(row.finishedAt).toISOString(),
      step: running?.name ?? null,
      steps: row.steps,
      passes: row.passes,
      failure: row.failure === null ? null : { ...row.failure, at: new Date(row.failure.at).toISOString() },
    }
  }

  /** Starts a deletion, or answers the one in progress (a repeated DELETE starts nothing new, but re-arms a stalled one). */
  async requestDeletion(tenant: string, requestedBy: string | DeletionRequester): Promise<DeletionStatus> {
    if (tenant !== this.tenant)
      throw new Error(`emberlog: the coordinator of ${this.tenant} was asked to delete ${tenant}`)
    const current = this.latest()
    if (current !== undefined && current.finishedAt === null) {
      await this.rearm()
      return this.statusOf(current)
    }
    const requester = typeof requestedBy === "string" ? null : requestedBy
    const sub = typeof requestedBy === "string" ? requestedBy : requestedBy.sub
    const steps = [
      ...this.eraserSteps("before"),
      ...OBJECT_STEPS.map((step) => step.name),
      ...this.eraserSteps("after"),
      "directory",
      // Once more at the end: a sign-in during the deletion left no grant behind.
      ...this.eraserSteps("before"),
    ].map((name) => ({ name, status: "pending" as const, erased: {} }))
    const row: Row = {
      id: crypto.randomUUID(),
      requestedBy: sub,
      requester,
      requestedAt: Date.now(),
      finishedAt: null,
      passes: 1,
      steps,
      failure: null,
    }
    this.storage.transactionSync(() => {
      this.storage.sql.exec(TABLE)
      // A table from before requesters were recorded.
      if (
        !this.storage.sql
          .exec("SELECT name FROM pragma_table_info('deletions')")
          .toArray()
          .some((column) => column.name === "requester")
      )
        this.storage.sql.exec("ALTER TABLE deletions ADD COLUMN requester TEXT")
      this.storage.sql.exec(
        "INSERT INTO deletions (id, requested_by, requested_at, finished_at, passes, steps, failure, requester) VALUES (?, ?, ?, NULL, 1, ?, NULL, ?)",
        row.id,
        sub,
        row.requestedAt,
        JSON.stringify(steps),
        requester === null ? null : JSON.stringify(requester),
      )
    })
    const who = requester === null ? sub : `${requester.sub} (${requester.as} of ${requester.tenant})`
    console.info(`emberlog: deletion ${row.id} of tenant ${JSON.stringify(this.tenant)} requested by ${who}`)
    await this.storage.setAlarm(Date.now())
    return this.statusOf(row)
  }

  async deletionStatus(): Promise<DeletionStatus | undefined> {
    const row = this.latest()
    if (row === undefined) return undefined
    if (row.finishedAt === null) await this.rearm()
    return this.statusOf(row)
  }

  /** A deletion in progress always has an alarm: after the platform gave up its retries, asking again re-arms it. */
  private async rearm(): Promise<void> {
    if ((await this.storage.getAlarm()) === null) await this.storage.setAlarm(Date.now())
  }

  private eraserSteps(when: "before" | "after"): Array<string> {
    return this.erasers
      .filter((eraser) => (eraser.when === "before") === (when === "before"))
      .map((eraser) => eraser.name)
  }

  /** The alarm: runs the pending steps in order; a failure is recorded and retried with backoff. */
  async run(): Promise<void> {
    const row = this.latest()
    if (row === undefined || row.finishedAt !== null) return
    const budget = { pages: deletionLimits.pagesPerAlarm }
    for (let step = row.steps.find((s) => s.status === "pending"); step !== undefined;) {
      try {
        const fault = deletionFaults.failSteps.indexOf(step.name)
        if (fault >= 0) {
          deletionFaults.failSteps.splice(fault, 1)
          throw new Error(`injected failure of the ${step.name} step`)
        }
        const outcome = await this.runStep(row, step, budget)
        if (outcome === "again") {
          // Another pass on the next alarm: a tenant that keeps writing does not hold one alarm forever.
          await this.storage.setAlarm(Date.now() + DELETION_RETRY_BASE_MS)
          return
        }
        if (outcome === "later") {
          // This alarm did its share: the next one goes on at once (progress is saved page by page).
          row.failure = null
          this.save(row)
          await this.storage.setAlarm(Date.now())
          return
        }
      } catch (error) {
        const attempts = row.failure?.step === step.name ? row.failure.attempts + 1 : 1
        row.failure = {
          step: step.name,
          message: error instanceof Error ? error.message : String(error),
          attempts,
          at: Date.now(),
        }
        this.save(row)
        const delay = Math.min(DELETION_RETRY_MAX_MS, DELETION_RETRY_BASE_MS * 2 ** (attempts - 1))
        console.warn(
          `emberlog: deletion ${row.id}: the ${step.name} step failed (attempt ${attempts}); retrying in ${delay} ms`,
          error,
        )
        await this.storage.setAlarm(Date.now() + delay)
        return
      }
      row.failure = null
      step = row.steps.find((s) => s.status === "pending")
      if (step === undefined) row.finishedAt = Date.now()
      this.save(row)
    }
    const counts = row.steps.map((step) => `${step.name} ${JSON.stringify(step.erased)}`).join(", ")
    console.info(`emberlog: deletion ${row.id} of tenant ${JSON.stringify(this.tenant)} done: ${counts}`)
  }

  private get directory(): DirectoryApi & ObjectStub<Erasable> {
    return stubOf<DirectoryMethods & Erasable>(this.bindings("EMBERLOG_TOPIC"), directoryName(this.tenant))
  }

  private bindings(name: keyof DeletionBindings): DurableObjectNamespace {
    const namespace = this.env[name]
    if (namespace === undefined) throw new Error(`No Durable Object binding ${name}`)
    return namespace
  }

  private objectOf(key: DirectoryKey): ObjectStub<Erasable> {
    switch (key.type) {
      case "actor":
        return stubOf(this.bindings("EMBERLOG_ACTOR"), actorName(this.tenant, key.kind, key.id))
      case "topic":
        return stubOf(this.bindings("EMBERLOG_TOPIC"), scopedName(this.tenant, key.id))
      case "mcp-session":
        return stubOf(this.bindings("EMBERLOG_MCP_SESSION"), scopedName(this.tenant, key.id))
    }
  }

  private async erase(entry: DirectoryKey): Promise<ErasedCounts> {
    const fault = deletionFaults.failErasures.indexOf(`${entry.type} ${entry.kind}/${entry.id}`)
    if (fault >= 0) {
      deletionFaults.failErasures.splice(fault, 1)
      throw new Error(`injected failure erasing ${entry.type} ${entry.kind}/${entry.id}`)
    }
    return this.objectOf(entry).eraseAll()
  }

  /**
   * Runs one step to its end, saving its progress after every page (marks it done; the caller saves
   * that), or until the alarm's budget of pages is spent ("later").
   */
  private async runStep(
    row: Row,
    step: Row["steps"][number],
    budget: { pages: number },
  ): Promise<"done" | "again" | "later"> {
    const objects = OBJECT_STEPS.find((candidate) => candidate.name === step.name)
    if (objects !== undefined) {
      for (;;) {
        if (budget.pages <= 0) return "later"
        budget.pages--
        const { entries } = await this.directory.listDirectory({ type: objects.type, limit: deletionLimits.page })
        if (entries.length === 0) break
        // Every object's outcome: one failing loses none of the others' counts.
        const settled = await Promise.allSettled(entries.map((entry) => this.erase(entry)))
        const erased = entries.filter((_, i) => settled[i]!.status === "fulfilled")
        // Only at the generation read: an entry registered again since (the tenant wrote) stays listed.
        const removed = await this.directory.removeFromDirectory(
          erased.map(({ type, kind, id, gen }) => ({ type, kind, id, gen })),
        )
        add(step.erased, { [objects.type === "mcp-session" ? "sessions" : `${objects.type}s`]: removed })
        for (const outcome of settled) if (outcome.status === "fulfilled") add(step.erased, outcome.value)
        this.save(row)
        const failed = settled.flatMap((outcome, i) =>
          outcome.status === "rejected" ? [{ entry: entries[i]!, reason: outcome.reason }] : [],
        )
        if (failed.length > 0) {
          const { entry, reason } = failed[0]!
          const message = reason instanceof Error ? reason.message : String(reason)
          throw new Error(
            `${failed.length} of ${entries.length} erasures failed (first: ${entry.type} ${entry.kind}/${entry.id}: ${message})`,
          )
        }
      }
    } else if (step.name === "directory") {
      // The check and the erase in one call: a first commit listed in between is never wiped.
      const { erased } = await this.directory.eraseIfEmpty()
      if (!erased) {
        // Listed while the deletion ran: every step before this one runs again (erasers too).
        row.passes++
        for (const again of row.steps) again.status = "pending"
        row.failure = null
        this.save(row)
        return "again"
      }
    } else {
      const eraser = this.erasers.find((candidate) => candidate.name === step.name)
      if (eraser === undefined) throw new Error(`No eraser ${step.name} is configured (any more)`)
      const n = await eraser.erase(this.env, this.tenant)
      if (typeof n === "number") add(step.erased, { [step.name]: n })
    }
    step.status = "done"
    return "done"
  }
}
