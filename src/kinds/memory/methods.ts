/**
 * The memory kind's extra RPC methods, as the edge (its routes and tools) calls them through
 * `kindMethods<MemoryMethods>(actor)`: search and one memory by its hash. The capability that
 * answers them is the memory store beside the log.
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
  readonly content: string
  readonly truncated: boolean
  readonly size: number
  readonly tags: ReadonlyArray<string>
  readonly type: string | null
  readonly storedAt: number
  readonly score: number | null
}

export interface MemoryPage {
  readonly items: ReadonlyArray<MemoryHit>
  readonly next: string | null
}

/** A memory as `item` returns it: `blobKey` names its whole content in R2 when SQLite holds only a prefix. */
export interface StoredMemory extends MemoryHit {
  readonly blobKey: string | null
}

export interface MemoryMethods {
  search(
    query: MemoryQuery,
  ): MemoryPage | { readonly error: ActorFailure } | Promise<MemoryPage | { readonly error: ActorFailure }>
  item(hash: string): StoredMemory | undefined
}
