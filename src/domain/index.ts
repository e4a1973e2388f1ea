export * from "./entity.js"
export * from "./caller.js"
export * from "./json-size.js"
export * from "./protocol.js"
