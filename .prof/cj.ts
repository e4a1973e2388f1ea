import { canonicalJson } from "/work/main/src/actors/hash-chain.js"
const body = { seq: 1, type: "Incremented", schemaVersion: 2, data: { by: 1, reason: null }, meta: { at: 1795353884088, commandId: "c7d6d63d-a511-4f92-af30-577596c8a489", correlationId: "c7d6d63d-a511-4f92-af30-577596c8a489", causationId: null, principal: "anonymous" } }
for (let r = 0; r < 3; r++) {
let t = performance.now()
for (let i = 0; i < 100000; i++) canonicalJson(body)
console.log("canonical", (performance.now() - t) / 100000 * 1000, "us")
t = performance.now()
for (let i = 0; i < 100000; i++) JSON.stringify(body)
console.log("stringify", (performance.now() - t) / 100000 * 1000, "us")
}
