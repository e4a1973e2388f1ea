export * from "./client.js"
