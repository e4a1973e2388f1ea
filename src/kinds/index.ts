// `emberlog/kinds`: the built-in kinds, each one module (entity, capabilities, routes, tools).
export { counter, counterTotals } from "./counter/index.js"
export { document } from "./document/index.js"
export { room } from "./room/index.js"
export { session } from "./session/index.js"
export { job } from "./job/index.js"
export { memory } from "./memory/index.js"
export { durableStream } from "./stream/index.js"
