declare namespace Cloudflare {
  interface Env {
    EMBERLOG_ACTOR: DurableObjectNamespace
    EMBERLOG_TOPIC: DurableObjectNamespace
    EMBERLOG_MCP_SESSION: DurableObjectNamespace
    LIMITER: RateLimit
    MEMORY_BUCKET: R2Bucket
    EMBERLOG_ARCHIVE: R2Bucket
    /** Stand-ins (test/workerd/standins/semantic.js). */
    AI: Ai & { embeddedTexts(): Promise<number> }
    MEMORY_VECTORS: VectorizeIndex & { namespaceSize(namespace: string): Promise<number> }
    /** The app's replica queue (wrangler.toml) and its local consumer (test/workerd/standins/replica-consumer.ts). */
    EMBERLOG_REPLICA: Queue
    REPLICA_CONSUMER: Service<import("./workerd/standins/replica-consumer.js").ReplicaControl>
  }
}
