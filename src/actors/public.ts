// The host's public surface (part of `emberlog/worker`): the one actor class and the one topic
// class, and what kind authors build capabilities and projections with.
export type { Capability, CapabilityHooks, Host, Projection } from "./capability.js"
export { defineCapability } from "./capability.js"
export {
  actorHostClass,
  actorRuntime,
  type ActorApi,
  type ActorClass,
  type ActorEnv,
  type ActorObject,
  type ActorOptions,
  type HostedKind,
} from "./durable-actor.js"
export {
  defineProjection,
  topicClass,
  type TopicClassOptions,
  type EmberlogTopicObject,
  type TopicApi,
  type TopicClass,
  type TopicProjection,
} from "./topic.js"
export { authorityOf, type OutgoingFrame, type SocketAttachment } from "./subscribers.js"
export { STATUS_BY_FAILURE, errorBody, failureResponse } from "./failures.js"
export { MAX_ROW_BYTES } from "./limits.js"
export { ARCHIVE_BINDING, archiveUnavailable, type Retention } from "./retention.js"
export { stubOf, type ObjectStub } from "./stubs.js"
export type { DeletionStatus, DeletionStep, ErasedCounts, TenantEraser } from "./deletion.js"
export type { DirectoryEntry, DirectoryEntryType } from "./directory.js"
// Durable Streams reads over any log in its object (the stream kind, actors' events, topics' entries).
export {
  DEFAULT_STREAM_READS,
  NO_STORE,
  PRIVATE_CACHE,
  SECURITY_HEADERS,
  STREAM_CLOSED,
  STREAM_CURSOR,
  STREAM_NEXT_OFFSET,
  STREAM_REQUEST_HEADERS,
  STREAM_RESPONSE_HEADERS,
  STREAM_UP_TO_DATE,
  StreamReads,
  TAIL_CACHE,
  encodeOffset,
  fromBase64,
  rangeEtag,
  toBase64,
  parseOffset,
  parseReadRequest,
  readPage,
  renderBody,
  streamError,
  streamReadsSettings,
  type ParsedOffset,
  type ReadItem,
  type ReadOptions,
  type ReadPage,
  type ReadSource,
  type Rendering,
  type SourceStatus,
  type StreamReadsSettings,
} from "./stream-reads.js"
