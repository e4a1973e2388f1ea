/**
 * The typed client: commands, reads and resumable subscriptions, for Node ≥ 22 and
 * browsers (standard `fetch` and `WebSocket`), with Effect Streams for Effect users
 * and async iterators or callbacks for everyone else.
 *
 * ```ts
 * const emberlog = createClient({ baseUrl: "http://127.0.0.1:8787" })
 * const visits = emberlog.actor("counter", "visits")
 * await visits.send({ type: "Increment", by: 1 })        // retried safely: it carries an Idempotency-Key
 * for await (const event of visits.subscribeAsync({ after: 0 })) console.log(event.seq, event.type)
 * ```
 */
import { Stream } from "effect"
import type { ActorListing, DeletionStatus, TopicEntry, WireEvent } from "../core/wire.js"
import { ACTOR_BATCH_TYPE, BATCH_PARAM, HEAD_TYPE, TOPIC_BATCH_TYPE } from "../domain/protocol.js"
import {
  type Positioned,
  type ReconnectOptions,
  type SocketLike,
  SubscriptionRefused,
  backoffDelay,
  resumable,
} from "./subscription.js"

// The server's own definitions, so the client's types cannot drift from what it is sent.
export type { ActorListing, DeletionStatus, TopicEntry, WireEvent } from "../core/wire.js"

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8787 */
  readonly baseUrl: string
  /** Sent as `Authorization: Bearer …` on HTTP requests. */
  readonly token?: string
  readonly fetch?: (input: string, init?: RequestInit) => Promise<Response>
  /** Opens a WebSocket; the default uses the global `WebSocket` (the token as subprotocols `bearer, <token>`) and waits for `open`. */
  readonly connect?: (url: string) => Promise<SocketLike>
  readonly reconnect?: ReconnectOptions
  /** Attempts per command on network errors, 429 and 5xx (same Idempotency-Key each time); default 4. */
  readonly commandAttempts?: number
}

/** An error answer from emberlog: `{"error": {code, message, details?}}` with its status. */
export class EmberlogError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message)
    this.name = "EmberlogError"
  }
}

/** Where a subscription starts, and which event types it receives (`types`; default every one). */
export interface SubscribeOptions {
  readonly after?: number
  /**
   * Only events of these types (the kind's event types; for a topic, those of any kind served).
   * Positions stay those of the full log: the subscription resumes after what it skipped.
   */
  readonly types?: ReadonlyArray<string>
  /**
   * Called with the position a filtered subscription has seen up to when entries it skipped end a
   * stretch (a head frame): the log's head as far as this subscriber knows, though no entry came.
   */
  readonly onHead?: (position: number) => void
}

export interface SendOptions {
  readonly ifMatch?: number
  /** Defaults to a fresh UUID, so a retry after a lost response cannot apply the command twice. */
  readonly idempotencyKey?: string
}

export interface CommandResult<S = unknown> {
  readonly version: number
  readonly events: ReadonlyArray<WireEvent>
  readonly state: S
}

const defaultConnect = (url: string, token?: string): Promise<SocketLike> =>
  new Promise((resolve, reject) => {
    // WebSockets cannot carry an Authorization header from browsers; emberlog reads the token from these subprotocols.
    const socket = token === undefined ? new WebSocket(url) : new WebSocket(url, ["bearer", token])
    socket.addEventListener("open", () => resolve(socket as unknown as SocketLike), { once: true })
    socket.addEventListener("error", () => reject(new Error(`could not connect to ${url}`)), { once: true })
  })

export interface EventsPageQuery {
  readonly after?: number
  readonly limit?: number
  /** Rows exactly as written (not upcast), which is what the hash chain covers. */
  readonly stored?: boolean
}

/** How a subscription reads an entry out of a frame, and the entries out of a batch frame. */
interface FrameReader<T> {
  readonly entryOf: (frame: unknown) => Positioned<T> | undefined
  readonly batchOf: (frame: unknown) => ReadonlyArray<Positioned<T>> | undefined
}

/** A batch frame's entries; a frame without their array is unreadable (the subscription resumes, see `resumable`). */
const batchEntries = <T>(frame: Record<string, unknown>, field: string): Array<T> => {
  const entries = frame[field]
  if (!Array.isArray(entries)) throw new TypeError(`a "${field}" frame without its array of ${field}`)
  return entries as Array<T>
}

const toError = (error: unknown): EmberlogError =>
  error instanceof EmberlogError
    ? error
    : error instanceof SubscriptionRefused
      ? new EmberlogError(
          error.status,
          (error.body as { error?: { code?: string } })?.error?.code ?? "refused",
          error.message,
          error.body,
        )
      : new EmberlogError(0, "network", String(error))

export const createClient = (options: ClientOptions) => {
  const base = options.baseUrl.replace(/\/+$/, "")
  const doFetch = options.fetch ?? ((input: string, init?: RequestInit) => fetch(input, init))
  const connect = options.connect ?? ((url: string) => defaultConnect(url, options.token))
  const authorization: Record<string, string> =
    options.token === undefined ? {} : { Authorization: `Bearer ${options.token}` }

  const request = async <A>(path: string, init: RequestInit = {}): Promise<A> => {
    const response = await doFetch(`${base}${path}`, {
      ...init,
      headers: { ...authorization, ...(init.headers as Record<string, string>) },
    })
    const body = (await response.json().catch(() => undefined)) as
      { error?: { code: string; message: string; details?: unknown } } | undefined
    if (!response.ok) {
      throw new EmberlogError(
        response.status,
        body?.error?.code ?? "http_error",
        body?.error?.message ?? `HTTP ${response.status}`,
        body?.error?.details,
      )
    }
    return body as A
  }

  const query = (params: Record<string, string | number | undefined>) => {
    const entries = Object.entries(params).filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    return entries.length === 0 ? "" : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}`
  }

  const socketUrl = (path: string) => `${base.replace(/^http/, "ws")}${path}`

  /** Async-iterates every entry after `from.after` (of `from.types`), reconnecting as needed; also as an Effect Stream. */
  const subscription = <T>(
    path: string,
    from: SubscribeOptions,
    { entryOf, batchOf }: FrameReader<T>,
    signal?: AbortSignal,
  ) => {
    // `types=` with no type is refused by the server, and reconnecting would not change that.
    if (from.types?.length === 0) throw new RangeError("types must name at least one event type")
    return resumable<T>({
      // The backlog comes in batch frames: one frame per entry is what bounds a catch-up (issue 13).
      open: (cursor) =>
        connect(socketUrl(`${path}${query({ after: cursor, types: from.types?.join(","), [BATCH_PARAM]: 1 })}`)),
      entryOf,
      batchOf,
      headOf: (frame: any) => (frame?.type === HEAD_TYPE ? (frame.seq as number) : undefined),
      ...(from.onHead === undefined ? {} : { onHead: from.onHead }),
      after: from.after ?? 0,
      reconnect: options.reconnect,
      signal,
    })
  }

  const actorEvent = (event: WireEvent) => ({ position: event.seq, value: event })
  const topicItem = (entry: TopicEntry) => ({ position: entry.topicSeq, value: entry })
  const actorEntry: FrameReader<WireEvent> = {
    entryOf: (frame: any) => (frame?.type === "event" ? actorEvent(frame.event) : undefined),
    batchOf: (frame: any) =>
      frame?.type === ACTOR_BATCH_TYPE ? batchEntries<WireEvent>(frame, ACTOR_BATCH_TYPE).map(actorEvent) : undefined,
  }
  const topicEntry: FrameReader<TopicEntry> = {
    entryOf: (frame: any) => (frame?.type === "entry" ? topicItem(frame.entry) : undefined),
    batchOf: (frame: any) =>
      frame?.type === TOPIC_BATCH_TYPE ? batchEntries<TopicEntry>(frame, TOPIC_BATCH_TYPE).map(topicItem) : undefined,
  }

  const listen = <T>(
    iterable: AsyncIterableIterator<T>,
    onValue: (value: T) => void,
    onError?: (error: EmberlogError) => void,
  ) => {
    void (async () => {
      try {
        for await (const value of iterable) onValue(value)
      } catch (error) {
        onError?.(toError(error))
      }
    })()
    return () => void iterable.return?.()
  }

  const actor = <S = unknown>(kind: string, id: string) => {
    const path = `/v1/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`
    /** One page of the log after `after` (`next`: where the following page starts, null at the head). */
    const eventsPage = (page: EventsPageQuery = {}) =>
      request<{ events: Array<WireEvent>; next: number | null }>(
        `${path}/events${query({ after: page.after ?? 0, limit: page.limit, stored: page.stored ? "true" : undefined })}`,
      )
    return {
      /** Sends a command; network errors, 429 and 5xx are retried with the same Idempotency-Key. */
      send: async (
        command: { readonly type: string } & Record<string, unknown>,
        sendOptions: SendOptions = {},
      ): Promise<CommandResult<S>> => {
        const key = sendOptions.idempotencyKey ?? crypto.randomUUID()
        const attempts = options.commandAttempts ?? 4
        for (let attempt = 0; ; attempt++) {
          try {
            return await request<CommandResult<S>>(`${path}/commands`, {
              method: "POST",
              body: JSON.stringify(command),
              headers: {
                "content-type": "application/json",
                "Idempotency-Key": key,
                ...(sendOptions.ifMatch === undefined ? {} : { "If-Match": String(sendOptions.ifMatch) }),
              },
            })
          } catch (error) {
            const retryable = !(error instanceof EmberlogError) || error.status === 429 || error.status >= 500
            if (!retryable || attempt + 1 >= attempts) throw toError(error)
            await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, options.reconnect)))
          }
        }
      },
      state: (at: { readonly at?: number; readonly asOf?: Date | string } = {}) =>
        request<{ kind: string; id: string; version: number; state: S }>(
          `${path}${query({ at: at.at, asOf: at.asOf instanceof Date ? at.asOf.toISOString() : at.asOf })}`,
        ),
      /**
       * Pages through the log from `after`, one request per `limit` events; `stored` reads
       * rows exactly as written (not upcast), which is what the hash chain covers.
       */
      events: async function* (page: EventsPageQuery = {}): AsyncGenerator<WireEvent> {
        for (let after: number | null = page.after ?? 0; after !== null;) {
          const result = await eventsPage({ ...page, after })
          yield* result.events
          after = result.next
        }
      },
      eventsPage,
      verify: () =>
        request<{
          ok: boolean
          events?: number
          head?: string
          snapshots?: number
          firstBadSeq?: number
          reason?: string
          snapshotSeq?: number
        }>(`${path}/verify`),
      subscribeAsync: (from: SubscribeOptions & { readonly signal?: AbortSignal } = {}) =>
        subscription(`${path}/ws`, from, actorEntry, from.signal),
      subscribe: (from: SubscribeOptions = {}): Stream.Stream<WireEvent, EmberlogError> =>
        Stream.fromAsyncIterable(
          { [Symbol.asyncIterator]: () => subscription(`${path}/ws`, from, actorEntry) },
          toError,
        ),
      onEvent: (
        callback: (event: WireEvent) => void,
        from: SubscribeOptions & { readonly onError?: (error: EmberlogError) => void } = {},
      ) => listen(subscription(`${path}/ws`, from, actorEntry), callback, from.onError),
    }
  }

  const topic = (name: string) => {
    const path = `/v1/topics/${encodeURIComponent(name)}`
    return {
      entries: (page: { readonly after?: number; readonly limit?: number } = {}) =>
        request<{ entries: Array<TopicEntry>; next: number | null; head: number }>(
          `${path}/events${query({ after: page.after ?? 0, limit: page.limit })}`,
        ),
      subscribeAsync: (from: SubscribeOptions & { readonly signal?: AbortSignal } = {}) =>
        subscription(`${path}/ws`, from, topicEntry, from.signal),
      subscribe: (from: SubscribeOptions = {}): Stream.Stream<TopicEntry, EmberlogError> =>
        Stream.fromAsyncIterable(
          { [Symbol.asyncIterator]: () => subscription(`${path}/ws`, from, topicEntry) },
          toError,
        ),
    }
  }

  /** A page of the token's tenant's actors (pass `next` back as `cursor`). */
  const actors = (
    page: { readonly kind?: string; readonly prefix?: string; readonly cursor?: string; readonly limit?: number } = {},
  ) => request<ActorListing>(`/v1/actors${query({ ...page })}`)

  /** A tenant's deletion: start it (the tenant's own admin, or an operator), then follow its status. */
  const tenant = (name: string) => {
    const path = `/v1/tenants/${encodeURIComponent(name)}`
    return {
      delete: async () => (await request<{ deletion: DeletionStatus }>(path, { method: "DELETE" })).deletion,
      deletion: async () => (await request<{ deletion: DeletionStatus }>(`${path}/deletion`)).deletion,
    }
  }

  return { actor, topic, actors, tenant }
}

export type EmberlogClient = ReturnType<typeof createClient>
export { SubscriptionRefused, type ReconnectOptions, type SocketLike } from "./subscription.js"
