// The edge's public surface (part of `emberlog/worker`): the app factory and what kind routes build with.
export { createApp } from "./app.js"
