/**
 * What the memory store answers over RPC (its capability's methods, through the actor's
 * `invoke`): types only, so the routes and tools that call it load nothing of the store.
 */
import type { ActorFailure } from "../../index.js"

export interface MemoryQuery {
  readonly q?: string
  /** text: FTS5 (the default); semantic: nearest embeddings (needs AI + MEMORY_VECTORS); auto: semantic when available. */
  readonly mode?: "text" | "semantic" | "auto"
  readonly tags?: ReadonlyArray<string>
  readonly match?: "all" | "any"
  readonly type?: string
  /** ms epoch bounds on when a memory was stored. */
  readonly from?: number
  readonly to?: number
  readonly limit: number
  readonly offset: number
}

export interface MemoryHit {
  readonly hash: string
  /** The whole content, or its first INLINE_CONTENT_BYTES when `truncated` (the rest is in R2). */
  readonly content: string
  readonly truncated: boolean
  /** The content's length in UTF-8 bytes. */
  readonly size: number
  readonly tags: ReadonlyArray<string>
  readonly type: string | null
  readonly storedAt: number
  /** bm25 relevance (higher is better), or null without a text query. */
  readonly score: number | null
}

/** A memory as `item` returns it: where its whole content is when SQLite holds only a prefix. */
export interface StoredMemory extends MemoryHit {
  readonly blobKey: string | null
}

export interface MemoryPage {
  readonly items: ReadonlyArray<MemoryHit>
  readonly next: string | null
}

/** Refused as every actor failure is, so the edge maps it to a status by the one table. */
export interface SearchRefused {
  readonly error: ActorFailure
}

/** The memory store's extra RPC methods, as the edge calls them (through `invoke`). */
export type MemoryMethods = {
  readonly search: (query: MemoryQuery) => Promise<MemoryPage | SearchRefused>
  readonly item: (hash: string) => StoredMemory | undefined
  readonly rebuildProjection: () => void
}
