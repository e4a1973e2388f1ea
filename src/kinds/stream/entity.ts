/**
 * A Durable Stream (durable-streams PROTOCOL.md) as an emberlog actor: every create, append,
 * close and delete is an event, hash-chained like any other, so a stream's whole history is
 * auditable and replayable. The rules the protocol states over a stream's state live here, in
 * `decide`: idempotent create, content types, `Stream-Seq` ordering, idempotent producers
 * (§5.2.1, epoch and seq per producer, kept in the state and so surviving restarts), closing,
 * and deletion with forks (a source with live forks is soft-deleted until the last one goes).
 *
 * Items are what a read returns one by one: a byte stream's item is one append's bytes
 * (base64 in the event), a JSON stream's item one message of the flattened POST (its JSON
 * text). Positions are numbered on across the stream's life: a stream re-created after a
 * delete starts after the old one's tail (`start`), so no offset is ever given twice; a fork
 * starts where its source did and inherits the source's positions up to the fork point, so a
 * fork is refused (409) at a path whose deleted stream gave out offsets past that start.
 */
import { Effect, Schema } from "effect"
import { Entity, NonNegativeSafeInt, own, reject, tagged } from "../../index.js"

const ProducerState = Schema.Struct({ epoch: NonNegativeSafeInt, seq: NonNegativeSafeInt })
const ProducerClaim = Schema.Struct({ id: Schema.String, epoch: NonNegativeSafeInt, seq: NonNegativeSafeInt })
export type ProducerClaim = typeof ProducerClaim.Type
const ForkOrigin = Schema.Struct({ id: Schema.String, offset: NonNegativeSafeInt, subOffset: NonNegativeSafeInt })

export const StreamState = Schema.Struct({
  /** absent: never created or deleted; gone: deleted while forks of it live (410 until they go). */
  status: Schema.Literals(["absent", "open", "closed", "gone"]),
  generation: NonNegativeSafeInt,
  contentType: Schema.String,
  ttlSeconds: Schema.NullOr(NonNegativeSafeInt),
  expiresAt: Schema.NullOr(Schema.String),
  /** ms epoch of the create. */
  createdAt: Schema.Number,
  /** Reads from `-1` start after this position; the last item's position is `tail`. */
  start: NonNegativeSafeInt,
  tail: NonNegativeSafeInt,
  producers: Schema.Record(Schema.String, ProducerState),
  streamSeq: Schema.NullOr(Schema.String),
  forkedFrom: Schema.NullOr(ForkOrigin),
  /** Forks that have not been deleted. */
  forks: NonNegativeSafeInt,
})
export type StreamState = typeof StreamState.Type

export const initialStream: StreamState = {
  status: "absent",
  generation: 0,
  contentType: "application/octet-stream",
  ttlSeconds: null,
  expiresAt: null,
  createdAt: 0,
  start: 0,
  tail: 0,
  producers: {},
  streamSeq: null,
  forkedFrom: null,
  forks: 0,
}

/** One item's payload: base64 bytes (byte streams) or one JSON message's text (JSON streams). */
const Items = Schema.Array(Schema.String)

export const CreateStream = tagged("Create", {
  contentType: Schema.String,
  ttlSeconds: Schema.NullOr(NonNegativeSafeInt),
  expiresAt: Schema.NullOr(Schema.String),
  closed: Schema.Boolean,
  /** Inherited from the source first (a fork), then the body's. */
  inherited: Items,
  items: Items,
  forkedFrom: Schema.NullOr(ForkOrigin),
  /** A fork's first position is its source's (`start` of the source). */
  forkStart: Schema.NullOr(NonNegativeSafeInt),
  at: Schema.Number,
})
export const AppendToStream = tagged("Append", {
  contentType: Schema.NullOr(Schema.String),
  items: Items,
  producer: Schema.NullOr(ProducerClaim),
  streamSeq: Schema.NullOr(Schema.String),
  close: Schema.Boolean,
})
export const DeleteStream = tagged("Delete", { reason: Schema.Literals(["deleted", "expired"]) })
export const AddFork = tagged("AddFork", {})
export const ReleaseFork = tagged("ReleaseFork", {})
export const StreamCommand = Schema.Union([CreateStream, AppendToStream, DeleteStream, AddFork, ReleaseFork])
export type StreamCommand = typeof StreamCommand.Type

export const StreamCreated = tagged("Created", {
  generation: NonNegativeSafeInt,
  contentType: Schema.String,
  ttlSeconds: Schema.NullOr(NonNegativeSafeInt),
  expiresAt: Schema.NullOr(Schema.String),
  createdAt: Schema.Number,
  start: NonNegativeSafeInt,
  /** The first item is at start + 1. */
  items: Items,
  /** How many of `items` came from the source: the fork's own begin after them. */
  inherited: NonNegativeSafeInt,
  closed: Schema.Boolean,
  forkedFrom: Schema.NullOr(ForkOrigin),
})
export const StreamAppended = tagged("Appended", {
  /** The first item's position. */
  from: NonNegativeSafeInt,
  items: Items,
  producer: Schema.NullOr(ProducerClaim),
  streamSeq: Schema.NullOr(Schema.String),
})
export const StreamClosed = tagged("Closed", { producer: Schema.NullOr(ProducerClaim) })
export const StreamDeleted = tagged("Deleted", {
  reason: Schema.Literals(["deleted", "expired"]),
  /** Forks still live: the stream is gone (410) until the last is deleted. */
  soft: Schema.Boolean,
})
export const ForkAdded = tagged("ForkAdded", {})
export const ForkReleased = tagged("ForkReleased", {})
export const StreamEvent = Schema.Union([
  StreamCreated,
  StreamAppended,
  StreamClosed,
  StreamDeleted,
  ForkAdded,
  ForkReleased,
])
export type StreamEvent = typeof StreamEvent.Type

/** Media types compare without case and without parameters' spacing (§5.2, conformance: case-insensitive). */
export const normalizeContentType = (contentType: string): string =>
  contentType
    .split(";")
    .map((part) => part.trim().toLowerCase())
    .filter((part) => part.length > 0)
    .join("; ")

/** The media type alone: what an append's Content-Type must match. */
export const mediaType = (contentType: string): string => normalizeContentType(contentType).split(";")[0]!

export const isJsonStream = (contentType: string): boolean => mediaType(contentType) === "application/json"

export const exists = (state: StreamState) => state.status === "open" || state.status === "closed"

const missing = (state: StreamState) =>
  state.status === "gone"
    ? reject("stream_gone", "This stream was deleted; forks of it still live")
    : reject("stream_not_found", "No stream here")

/**
 * §5.2.1's validation, in its order: stale epoch 403, a new epoch must start at 0, a seq at or
 * below the last is a duplicate (answered, not appended), a gap 409; else the claim is accepted.
 */
type ProducerCheck = { readonly verdict: "accept" } | { readonly verdict: "duplicate" }
const checkProducer = (state: StreamState, claim: ProducerClaim) => {
  const known = own(state.producers, claim.id)
  if (known !== undefined && claim.epoch < known.epoch)
    return reject(
      "stale_producer_epoch",
      `Producer epoch ${claim.epoch} is stale; the current epoch is ${known.epoch}`,
      {
        epoch: known.epoch,
      },
    )
  if (known === undefined || claim.epoch > known.epoch) {
    if (claim.seq !== 0)
      return known === undefined
        ? reject("producer_sequence_gap", `Producer seq ${claim.seq} skips ahead; expected 0`, {
            expected: 0,
            received: claim.seq,
          })
        : reject("invalid_producer_seq", `A new producer epoch must start at seq 0, not ${claim.seq}`)
    return Effect.succeed<ProducerCheck>({ verdict: "accept" })
  }
  if (claim.seq <= known.seq) return Effect.succeed<ProducerCheck>({ verdict: "duplicate" })
  if (claim.seq > known.seq + 1)
    return reject("producer_sequence_gap", `Producer seq ${claim.seq} skips ahead; expected ${known.seq + 1}`, {
      expected: known.seq + 1,
      received: claim.seq,
    })
  return Effect.succeed<ProducerCheck>({ verdict: "accept" })
}

const sameConfig = (state: StreamState, command: typeof CreateStream.Type): boolean =>
  normalizeContentType(state.contentType) === normalizeContentType(command.contentType) &&
  state.ttlSeconds === command.ttlSeconds &&
  state.expiresAt === command.expiresAt &&
  (state.status === "closed") === command.closed &&
  JSON.stringify(state.forkedFrom) === JSON.stringify(command.forkedFrom)

const decideCreate = (state: StreamState, command: typeof CreateStream.Type) => {
  if (state.status === "gone")
    return reject("stream_gone", "A stream deleted while forks of it live cannot be created again until they go")
  if (exists(state))
    return sameConfig(state, command)
      ? Effect.succeed([])
      : reject("stream_exists", "A stream exists here with another content type, TTL, expiry, closure or fork origin")
  // A fork starts where its source did; any other stream after every position this object ever gave.
  const start = command.forkStart ?? state.tail
  // A fork's positions are its source's: where a deleted stream gave out offsets past the fork's
  // start, they would name other data than they did (and caches may still hold the old).
  if (command.forkStart !== null && command.forkStart < state.tail)
    return reject(
      "path_offsets_taken",
      `A stream here gave out offsets up to ${state.tail}, past the fork's start (${command.forkStart}): fork to another path`,
    )
  return Effect.succeed([
    {
      type: "Created",
      generation: state.generation + 1,
      contentType: command.contentType,
      ttlSeconds: command.ttlSeconds,
      expiresAt: command.expiresAt,
      createdAt: command.at,
      start,
      items: [...command.inherited, ...command.items],
      inherited: command.inherited.length,
      closed: command.closed,
      forkedFrom: command.forkedFrom,
    } as const,
  ])
}

const decideAppend = (state: StreamState, command: typeof AppendToStream.Type) =>
  Effect.gen(function* () {
    if (!exists(state)) return yield* missing(state)
    // A producer's retry is recognised before anything else: it was accepted, closed stream or not.
    const check = command.producer === null ? undefined : yield* checkProducer(state, command.producer)
    if (check?.verdict === "duplicate") return []
    if (state.status === "closed") {
      // Closing a closed stream again, with nothing to append, changes nothing (§ close: idempotent).
      if (command.items.length === 0 && command.close && command.producer === null) return []
      return yield* reject("stream_closed", "This stream is closed: nothing more can be appended")
    }
    if (command.items.length > 0) {
      if (command.contentType === null) return yield* reject("content_type_required", "An append needs a Content-Type")
      if (mediaType(command.contentType) !== mediaType(state.contentType))
        return yield* reject(
          "content_type_mismatch",
          `This stream's content type is ${state.contentType}, not ${command.contentType}`,
        )
    }
    if (command.streamSeq !== null && state.streamSeq !== null && command.streamSeq <= state.streamSeq)
      return yield* reject(
        "stream_seq_regression",
        `Stream-Seq ${JSON.stringify(command.streamSeq)} is not after ${JSON.stringify(state.streamSeq)}`,
      )
    const events: Array<StreamEvent> = []
    if (command.items.length > 0)
      events.push({
        type: "Appended",
        from: state.tail + 1,
        items: command.items,
        producer: command.producer,
        streamSeq: command.streamSeq,
      })
    if (command.close) events.push({ type: "Closed", producer: events.length === 0 ? command.producer : null })
    return events
  })

export const DurableStream = Entity.make({
  kind: "durable-stream",
  state: StreamState,
  initial: initialStream,
  commands: StreamCommand,
  events: StreamEvent,
  // Every command comes from the Durable Streams routes (or the stream's own alarm): the generic
  // commands route cannot skip the protocol's checks.
  internalCommands: ["Create", "Append", "Delete", "AddFork", "ReleaseFork"],
  // Items are the stream's data: they stay in the stream's own log, not copied to a topic.
  topics: () => [],
  // States are small (producers aside), events large: snapshots are cheap, replays are not.
  snapshotEvery: 100,
  decide: (state: StreamState, command: StreamCommand) => {
    switch (command.type) {
      case "Create":
        return decideCreate(state, command)
      case "Append":
        return decideAppend(state, command)
      case "Delete":
        if (!exists(state)) return missing(state)
        return Effect.succeed([{ type: "Deleted", reason: command.reason, soft: state.forks > 0 } as const])
      case "AddFork":
        if (state.status === "gone") return reject("stream_gone", "This stream was deleted; it cannot be forked")
        if (!exists(state)) return reject("stream_not_found", "No stream to fork here")
        return Effect.succeed([{ type: "ForkAdded" } as const])
      case "ReleaseFork": {
        if (state.forks === 0) return Effect.succeed([])
        const released = { type: "ForkReleased" } as const
        // The last fork of a deleted source takes the source with it.
        return Effect.succeed(
          state.status === "gone" && state.forks === 1
            ? [released, { type: "Deleted", reason: "deleted", soft: false } as const]
            : [released],
        )
      }
      default:
        return command satisfies never
    }
  },
  evolve: (state: StreamState, event: StreamEvent): StreamState => {
    switch (event.type) {
      case "Created":
        return {
          ...initialStream,
          status: event.closed ? "closed" : "open",
          generation: event.generation,
          contentType: event.contentType,
          ttlSeconds: event.ttlSeconds,
          expiresAt: event.expiresAt,
          createdAt: event.createdAt,
          start: event.start,
          tail: event.start + event.items.length,
          forkedFrom: event.forkedFrom,
        }
      case "Appended": {
        const producers =
          event.producer === null
            ? state.producers
            : { ...state.producers, [event.producer.id]: { epoch: event.producer.epoch, seq: event.producer.seq } }
        return {
          ...state,
          tail: event.from + event.items.length - 1,
          producers,
          streamSeq: event.streamSeq ?? state.streamSeq,
        }
      }
      case "Closed": {
        const producers =
          event.producer === null
            ? state.producers
            : { ...state.producers, [event.producer.id]: { epoch: event.producer.epoch, seq: event.producer.seq } }
        return { ...state, status: "closed", producers }
      }
      case "Deleted":
        // The tail stays: positions go on counting from it if the stream is created again.
        return event.soft
          ? { ...state, status: "gone" }
          : { ...initialStream, generation: state.generation, tail: state.tail, forks: state.forks }
      case "ForkAdded":
        return { ...state, forks: state.forks + 1 }
      case "ForkReleased":
        return { ...state, forks: Math.max(0, state.forks - 1) }
      default:
        return event satisfies never
    }
  },
})
