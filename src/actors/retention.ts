/**
 * A kind's retention (KindModule.retention, issue 15 §3): how many events its actors keep live
 * before the archiver (archiver.ts) seals the oldest to R2, and how long archives are kept.
 * Checked when the app is built; reported when there is no R2 binding to archive to.
 */

/** How a kind keeps its history (KindModule.retention). */
export interface Retention {
  /** Events kept live in SQLite; older ones are archived to R2 in segments. */
  readonly archiveAfterEvents: number
  /** Archived segments whose last event is older than this are deleted (their hashes stay). */
  readonly deleteArchivedAfterDays?: number
  /** Events per segment at most (10,000 unless set); a segment also ends at SEGMENT_BYTES. */
  readonly segmentEvents?: number
}

/** The R2 binding segments go to. */
export const ARCHIVE_BINDING = "EMBERLOG_ARCHIVE"

/** Checks a kind's retention at `emberlog({...})` time: a clear error, not an archive that never runs. */
export const checkRetention = (kind: string, retention: Retention | undefined): void => {
  if (retention === undefined) return
  const fail = (what: string) => {
    throw new Error(`emberlog: the ${kind} kind's retention: ${what}`)
  }
  if (typeof retention !== "object" || retention === null) fail("must be an object")
  const { archiveAfterEvents, deleteArchivedAfterDays, segmentEvents } = retention
  if (!Number.isSafeInteger(archiveAfterEvents) || archiveAfterEvents < 1)
    fail(`archiveAfterEvents must be a whole number of events, at least 1 (got ${String(archiveAfterEvents)})`)
  if (segmentEvents !== undefined && (!Number.isSafeInteger(segmentEvents) || segmentEvents < 1))
    fail(`segmentEvents must be a whole number of events, at least 1 (got ${String(segmentEvents)})`)
  if (
    deleteArchivedAfterDays !== undefined &&
    (typeof deleteArchivedAfterDays !== "number" ||
      !Number.isFinite(deleteArchivedAfterDays) ||
      deleteArchivedAfterDays <= 0)
  )
    fail(`deleteArchivedAfterDays must be a positive number of days (got ${String(deleteArchivedAfterDays)})`)
}

const warned = new Set<string>()

/**
 * The kinds that have a retention but no R2 binding to archive to (their actors keep every event):
 * for /health and startup checks. Logs a warning once per kind.
 */
export const archiveUnavailable = (
  env: { readonly [ARCHIVE_BINDING]?: R2Bucket },
  kinds: ReadonlyArray<{ readonly kind: string; readonly retention?: Retention }>,
): ReadonlyArray<string> => {
  if (env[ARCHIVE_BINDING] !== undefined) return []
  const lacking = kinds.filter(({ retention }) => retention !== undefined).map(({ kind }) => kind)
  for (const kind of lacking) {
    if (warned.has(kind)) continue
    warned.add(kind)
    console.warn(
      `emberlog: the ${kind} kind has a retention but there is no R2 binding ${ARCHIVE_BINDING}: its actors keep every event`,
    )
  }
  return lacking
}
