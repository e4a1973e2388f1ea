// ../src/actors/hash-chain.ts
var canonicalJson = (value) => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    let out2 = "[";
    for (let i = 0; i < value.length; i++) out2 += (i === 0 ? "" : ",") + canonicalJson(value[i] ?? null);
    return out2 + "]";
  }
  const record = value;
  const keys = Object.keys(record).sort();
  let out = "{";
  for (const key of keys) {
    const field = record[key];
    if (field === void 0) continue;
    out += (out.length === 1 ? "" : ",") + JSON.stringify(key) + ":" + canonicalJson(field);
  }
  return out + "}";
};

// cj.ts
var body = { seq: 1, type: "Incremented", schemaVersion: 2, data: { by: 1, reason: null }, meta: { at: 1795353884088, commandId: "c7d6d63d-a511-4f92-af30-577596c8a489", correlationId: "c7d6d63d-a511-4f92-af30-577596c8a489", causationId: null, principal: "anonymous" } };
for (let r = 0; r < 3; r++) {
  let t = performance.now();
  for (let i = 0; i < 1e5; i++) canonicalJson(body);
  console.log("canonical", (performance.now() - t) / 1e5 * 1e3, "us");
  t = performance.now();
  for (let i = 0; i < 1e5; i++) JSON.stringify(body);
  console.log("stringify", (performance.now() - t) / 1e5 * 1e3, "us");
}
