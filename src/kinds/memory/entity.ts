/**
 * A memory store: one actor per namespace. A memory's id is the SHA-256 of its content,
 * so storing the same content twice appends nothing. The content itself stays out of the
 * immutable log: events carry the hash and metadata, and the host keeps the content
 * beside the log, erasing it on Forget, so a forgotten memory cannot be recovered from
 * the log or a replay while the log remains a complete audit of what happened.
 * A memory's own type is `memoryType` (`type` tags commands and events); search calls it `type`.
 */
import { createHash } from "node:crypto"
import { Effect, Schema } from "effect"
import { Entity, NonNegativeSafeInt, own, reject, tagged } from "../../index.js"
import { utf8Length } from "../../index.js"

/**
 * The largest memory, in UTF-8 bytes: its command must fit the 25 MiB request body that
 * `POST /v1/memory/{ns}/commands` accepts, with room for the JSON around it.
 */
export const MAX_MEMORY_BYTES = 24 * 1024 * 1024

/** Metadata travels in the Stored event, so it stays small (a SQLite row holds at most 2 MB). */
export const MAX_METADATA_CHARS = 64 * 1024

export const contentHash = (content: string): string => createHash("sha256").update(content).digest("hex")

const Hash = Schema.String.pipe(Schema.check(Schema.isPattern(/^[0-9a-f]{64}$/)))
const Tag = Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(64)))
/** The most tags a memory carries (and a search may name). */
export const MAX_TAGS = 32
const Tags = Schema.Array(Tag).pipe(Schema.check(Schema.isMaxLength(MAX_TAGS)))

export const MemoryItem = Schema.Struct({
  tags: Schema.Array(Schema.String),
  memoryType: Schema.NullOr(Schema.String),
  size: NonNegativeSafeInt,
})
export const MemoryState = Schema.Struct({ items: Schema.Record(Schema.String, MemoryItem) })
export type MemoryState = typeof MemoryState.Type

export const StoreMemory = tagged("Store", {
  content: Schema.String.pipe(Schema.check(Schema.isMinLength(1))),
  tags: Schema.optionalKey(Tags),
  memoryType: Schema.optionalKey(Tag),
  metadata: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown)),
})
export const TagMemory = tagged("Tag", { hash: Hash, tags: Tags })
export const UntagMemory = tagged("Untag", { hash: Hash, tags: Tags })
export const ForgetMemory = tagged("Forget", { hash: Hash })
export const ForgetByTag = tagged("ForgetByTag", { tag: Tag })
export const MemoryCommand = Schema.Union([StoreMemory, TagMemory, UntagMemory, ForgetMemory, ForgetByTag])
export type MemoryCommand = typeof MemoryCommand.Type

export const MemoryStored = tagged("Stored", {
  hash: Schema.String,
  tags: Schema.Array(Schema.String),
  memoryType: Schema.NullOr(Schema.String),
  metadata: Schema.Record(Schema.String, Schema.Unknown),
  size: NonNegativeSafeInt,
})
export const MemoryTagged = tagged("Tagged", { hash: Schema.String, tags: Schema.Array(Schema.String) })
export const MemoryUntagged = tagged("Untagged", { hash: Schema.String, tags: Schema.Array(Schema.String) })
export const MemoryForgotten = tagged("Forgotten", { hash: Schema.String })
export const MemoryEvent = Schema.Union([MemoryStored, MemoryTagged, MemoryUntagged, MemoryForgotten])
export type MemoryEvent = typeof MemoryEvent.Type

const unique = (tags: ReadonlyArray<string>) => [...new Set(tags)]
const unknown = (hash: string) => reject("unknown_memory", `No memory ${hash} in this namespace`, { hash })

const decide = (state: MemoryState, command: MemoryCommand) => {
  switch (command.type) {
    case "Store": {
      const size = utf8Length(command.content)
      if (size > MAX_MEMORY_BYTES)
        return reject("content_too_large", `Memories are limited to ${MAX_MEMORY_BYTES} bytes (UTF-8)`, { size })
      const metadataChars = JSON.stringify(command.metadata ?? {}).length
      if (metadataChars > MAX_METADATA_CHARS) {
        return reject("metadata_too_large", `Metadata is limited to ${MAX_METADATA_CHARS} characters of JSON`, {
          chars: metadataChars,
        })
      }
      const hash = contentHash(command.content)
      if (own(state.items, hash) !== undefined) return Effect.succeed([])
      return Effect.succeed([
        {
          type: "Stored",
          hash,
          tags: unique(command.tags ?? []),
          memoryType: command.memoryType ?? null,
          metadata: command.metadata ?? {},
          size,
        } as const,
      ])
    }
    case "Tag": {
      const item = own(state.items, command.hash)
      if (item === undefined) return unknown(command.hash)
      const added = unique(command.tags).filter((tag) => !item.tags.includes(tag))
      return Effect.succeed(added.length === 0 ? [] : [{ type: "Tagged", hash: command.hash, tags: added } as const])
    }
    case "Untag": {
      const item = own(state.items, command.hash)
      if (item === undefined) return unknown(command.hash)
      const removed = unique(command.tags).filter((tag) => item.tags.includes(tag))
      return Effect.succeed(
        removed.length === 0 ? [] : [{ type: "Untagged", hash: command.hash, tags: removed } as const],
      )
    }
    case "Forget":
      return own(state.items, command.hash) === undefined
        ? unknown(command.hash)
        : Effect.succeed([{ type: "Forgotten", hash: command.hash } as const])
    case "ForgetByTag":
      return Effect.succeed(
        Object.entries(state.items)
          .filter(([, item]) => item.tags.includes(command.tag))
          .map(([hash]) => ({ type: "Forgotten", hash }) as const),
      )
    default:
      return command satisfies never
  }
}

const evolve = (state: MemoryState, event: MemoryEvent): MemoryState => {
  switch (event.type) {
    case "Stored":
      return {
        items: { ...state.items, [event.hash]: { tags: event.tags, memoryType: event.memoryType, size: event.size } },
      }
    case "Tagged":
    case "Untagged": {
      const item = own(state.items, event.hash)
      if (item === undefined) return state
      const tags =
        event.type === "Tagged" ? [...item.tags, ...event.tags] : item.tags.filter((tag) => !event.tags.includes(tag))
      return { items: { ...state.items, [event.hash]: { ...item, tags } } }
    }
    case "Forgotten": {
      const { [event.hash]: _forgotten, ...items } = state.items
      return { items }
    }
    default:
      return event satisfies never
  }
}

export const Memory = Entity.make({
  kind: "memory",
  state: MemoryState,
  initial: { items: {} },
  commands: MemoryCommand,
  events: MemoryEvent,
  decide,
  evolve,
})
