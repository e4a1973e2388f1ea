/**
 * Semantic search for memory stores, offered when a Workers AI binding (`AI`) and a
 * Vectorize index (`MEMORY_VECTORS`) are both bound: content is embedded with a text
 * embedding model and kept in the index, one Vectorize namespace per memory actor.
 * Without them, memory search is full text only (SQLite FTS5).
 */
import { createHash } from "node:crypto"

export const DEFAULT_EMBEDDING_MODEL = "@cf/baai/bge-base-en-v1.5"
/** Vectorize returns at most this many matches per query (without values). */
export const MAX_SEMANTIC_CANDIDATES = 100

export type SemanticBindings = {
  readonly AI?: Ai
  readonly MEMORY_VECTORS?: VectorizeIndex
  /** A Workers AI text embedding model whose dimensions match the index; bge-base (768) by default. */
  readonly EMBEDDING_MODEL?: string
}

export interface SemanticMatch {
  readonly id: string
  /** Similarity as the index measures it (cosine: higher is closer). */
  readonly score: number
}

export interface SemanticIndex {
  readonly embed: (texts: ReadonlyArray<string>) => Promise<Array<Array<number>>>
  readonly upsert: (
    namespace: string,
    vectors: ReadonlyArray<{ readonly id: string; readonly values: ReadonlyArray<number> }>,
  ) => Promise<void>
  /** The nearest vectors' ids (no metadata: Vectorize returns at most 20 matches with it, 100 without). */
  readonly query: (namespace: string, vector: ReadonlyArray<number>, topK: number) => Promise<Array<SemanticMatch>>
  readonly remove: (ids: ReadonlyArray<string>) => Promise<void>
}

/** Vector ids are unique per index, not per namespace, and at most 64 bytes: a digest of both. */
export const vectorId = (namespace: string, hash: string) =>
  createHash("sha256").update(`${namespace}/${hash}`).digest("hex")

/** Vectorize takes at most this many ids per delete (and R2 this many keys). */
export const MAX_IDS_PER_DELETE = 1000

interface EmbeddingModel {
  run(model: string, input: { text: Array<string> }): Promise<{ data?: Array<Array<number>> }>
}

/** The semantic index over the bound AI model and Vectorize index; undefined unless both are bound. */
export const semanticIndexFrom = (env: SemanticBindings): SemanticIndex | undefined => {
  const { AI: ai, MEMORY_VECTORS: index } = env
  if (ai === undefined || index === undefined) return undefined
  const model = env.EMBEDDING_MODEL || DEFAULT_EMBEDDING_MODEL
  return {
    embed: async (texts) => {
      const { data } = await (ai as unknown as EmbeddingModel).run(model, { text: [...texts] })
      if (!Array.isArray(data) || data.length !== texts.length)
        throw new Error(`${model} returned ${data?.length ?? "no"} embeddings for ${texts.length} texts`)
      return data
    },
    upsert: async (namespace, vectors) => {
      if (vectors.length === 0) return
      await index.upsert(vectors.map(({ id, values }) => ({ id, namespace, values: [...values] })))
    },
    query: async (namespace, vector, topK) => {
      const { matches } = await index.query([...vector], {
        topK: Math.min(topK, MAX_SEMANTIC_CANDIDATES),
        namespace,
        returnMetadata: "none",
        returnValues: false,
      })
      return matches.map((match) => ({ id: match.id, score: match.score }))
    },
    remove: async (ids) => {
      for (let at = 0; at < ids.length; at += MAX_IDS_PER_DELETE)
        await index.deleteByIds(ids.slice(at, at + MAX_IDS_PER_DELETE))
    },
  }
}
