/**
 * `?types=A,B` on every subscription route (WebSocket, SSE, `/log`): the event types a
 * subscription is filtered to, checked against those the log can hold (issue 14). The objects
 * apply the filter (actors/type-filters.ts); positions stay those of the full log.
 */
import { HEAD_TYPE } from "../domain/protocol.js"
import { badRequest } from "./errors.js"
import type { KindRegistry } from "./kind.js"
import * as Params from "./params.js"

/** The event types a subscription may be filtered to, and how the error names where they come from. */
export interface KnownTypes {
  readonly types: ReadonlyArray<string>
  /** e.g. "kind counter", "the kinds this app serves". */
  readonly of: string
}

/**
 * `?types=A,B` (or `types=A&types=B`): the event types a subscription is filtered to (undefined:
 * every event). A name that is no event type would filter everything away in silence, so it is
 * refused, naming those there are. `head` is refused too: a filtered SSE stream names its head
 * messages so, and an event of that name could not be told from them.
 */
export const subscriptionTypes = (
  values: ReadonlyArray<string> | undefined,
  known: KnownTypes,
): ReadonlyArray<string> | undefined => {
  if (values === undefined) return undefined
  const types = [...new Set(values.flatMap((value) => Params.commaList(value)))]
  if (types.length === 0) throw badRequest("invalid_query", "types must name at least one event type (types=A,B)")
  if (types.includes(HEAD_TYPE))
    throw badRequest(
      "reserved_event_type",
      `"${HEAD_TYPE}" cannot be filtered for: a filtered stream's ${HEAD_TYPE} messages say how far it has seen`,
    )
  const unknown = types.filter((type) => !known.types.includes(type))
  if (unknown.length > 0)
    throw badRequest(
      "unknown_event_type",
      `Unknown event type${unknown.length > 1 ? "s" : ""} ${unknown.map((type) => JSON.stringify(type)).join(", ")}; the event types of ${known.of}: ${known.types.join(", ")}`,
      { unknown, eventTypes: known.types },
    )
  return types
}

/** A topic's entries carry the events of every kind the app serves. */
export const topicEventTypes = (served: KindRegistry): KnownTypes => ({
  types: [...new Set(served.modules.flatMap(({ entity }) => entity.eventTypes))],
  of: "the kinds this app serves",
})

export const actorEventTypes = (served: KindRegistry, kind: string): KnownTypes => ({
  types: served.get(kind)?.entity.eventTypes ?? [],
  of: `kind ${kind}`,
})
