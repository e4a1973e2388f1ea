export * from "./entity.js"
export * from "./counter.js"
export * from "./document.js"
export * as TextOps from "./text-ops.js"
