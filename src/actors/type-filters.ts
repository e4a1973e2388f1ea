/**
 * Subscriptions filtered by event type (`types=A,B`, issue 14): which entries of a stretch a
 * filtered subscriber is sent, and where it has seen up to when the stretch ends with entries it
 * skipped. Positions stay those of the full log, so a filtered subscriber resumes after what it
 * skipped and never sees a gap it cannot explain.
 */

/** What a filter looks at in an entry: its position in the full log and its name (the event type). */
export interface FilteredEntry {
  readonly position: number
  readonly name: string
}

/** The entry names (event types) a filtered subscriber is sent; `key` groups subscribers that share one. */
export interface TypeFilter {
  readonly types: ReadonlySet<string>
  readonly key: string
}

export const typeFilter = (types: ReadonlyArray<string> | undefined): TypeFilter | undefined =>
  types === undefined ? undefined : { types: new Set(types), key: [...new Set(types)].sort().join(",") }

/**
 * What a filtered subscriber gets of a contiguous stretch of entries: those it asked for and,
 * when the stretch ends with entries it skipped, the position of the last (it has seen up to there).
 */
export const selectEntries = <E extends FilteredEntry>(
  entries: ReadonlyArray<E>,
  filter: TypeFilter | undefined,
): { readonly visible: ReadonlyArray<E>; readonly skippedThrough: number | undefined } => {
  if (filter === undefined || entries.length === 0) return { visible: entries, skippedThrough: undefined }
  const visible = entries.filter((entry) => filter.types.has(entry.name))
  const last = entries[entries.length - 1]!
  return { visible, skippedThrough: visible[visible.length - 1] === last ? undefined : last.position }
}

/** Subscribers grouped by their filter, so a stretch is framed once per filter, not once per subscriber. */
export const groupByFilter = <S>(
  subscribers: Iterable<S>,
  filterOf: (subscriber: S) => TypeFilter | undefined,
): Iterable<{ readonly filter: TypeFilter | undefined; readonly members: Array<S> }> => {
  const groups = new Map<string | undefined, { filter: TypeFilter | undefined; members: Array<S> }>()
  for (const subscriber of subscribers) {
    const filter = filterOf(subscriber)
    const group = groups.get(filter?.key)
    if (group === undefined) groups.set(filter?.key, { filter, members: [subscriber] })
    else group.members.push(subscriber)
  }
  return groups.values()
}

/** The event types a forwarded subscription is filtered to (the edge's TYPES_HEADER; null: every entry). */
export const typesOf = (header: string | null): ReadonlyArray<string> | undefined =>
  header === null ? undefined : header.split(",").filter((type) => type.length > 0)
