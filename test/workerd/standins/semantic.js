// Stand-ins for the Workers AI and Vectorize bindings, which have no local simulation:
// the memory actor calls them over RPC exactly as it calls the real bindings. The
// "model" embeds a bag of words (with a few synonyms folded together, so that a
// semantic query can find a memory sharing no word with it); the "index" keeps vectors
// in this isolate's memory and ranks by cosine similarity.
import { WorkerEntrypoint } from "cloudflare:workers"

const DIMENSIONS = 64
const SYNONYMS = {
  feline: "cat",
  kitten: "cat",
  kitty: "cat",
  automobile: "car",
  vehicle: "car",
  puppy: "dog",
  canine: "dog",
}
let embeddedTexts = 0

const embed = (text) => {
  const vector = new Array(DIMENSIONS).fill(0)
  for (const raw of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    const word = Object.hasOwn(SYNONYMS, raw) ? SYNONYMS[raw] : raw
    let h = 0
    for (const ch of word) h = (h * 31 + ch.charCodeAt(0)) >>> 0
    vector[h % DIMENSIONS] += 1
  }
  const norm = Math.hypot(...vector) || 1
  return vector.map((x) => x / norm)
}

export class StandInAi extends WorkerEntrypoint {
  async run(model, input) {
    if (typeof model !== "string" || !Array.isArray(input?.text))
      throw new Error("expected run(model, { text: string[] })")
    embeddedTexts += input.text.length
    return { shape: [input.text.length, DIMENSIONS], data: input.text.map(embed) }
  }
  async embeddedTexts() {
    return embeddedTexts
  }
}

const vectors = new Map()

export class StandInVectorize extends WorkerEntrypoint {
  async upsert(list) {
    for (const vector of list) vectors.set(vector.id, vector)
    return { ids: list.map((v) => v.id), count: list.length }
  }
  async deleteByIds(ids) {
    if (ids.length > 1000) throw new Error("deleteByIds takes at most 1000 ids")
    for (const id of ids) vectors.delete(id)
    return { ids, count: ids.length }
  }
  async getByIds(ids) {
    return ids.flatMap((id) => (vectors.has(id) ? [vectors.get(id)] : []))
  }
  async query(vector, options = {}) {
    // Vectorize's limits: topK at most 100, or 20 when values or metadata are returned.
    const returnsMore =
      options.returnValues === true ||
      (options.returnMetadata !== undefined && options.returnMetadata !== "none" && options.returnMetadata !== false)
    if ((options.topK ?? 5) > (returnsMore ? 20 : 100))
      throw new Error(`topK ${options.topK} is over Vectorize's limit`)
    const matches = [...vectors.values()]
      .filter((v) => v.namespace === options.namespace)
      .map((v) => ({
        id: v.id,
        namespace: v.namespace,
        metadata: v.metadata,
        score: v.values.reduce((sum, x, i) => sum + x * vector[i], 0),
      }))
      .sort((a, b) => b.score - a.score)
      .slice(0, options.topK ?? 5)
    return { matches, count: matches.length }
  }
  async namespaceSize(namespace) {
    return [...vectors.values()].filter((v) => v.namespace === namespace).length
  }
}

export default { fetch: () => new Response("stand-ins for AI and Vectorize") }
