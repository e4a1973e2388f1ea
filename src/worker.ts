// `emberlog/worker`: Durable Object hosting and the Hono app (imports `cloudflare:workers`).
export * from "./actors/public.js"
export * from "./edge/public.js"
