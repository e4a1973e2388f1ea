declare namespace Cloudflare {
  interface Env {
    COUNTER: DurableObjectNamespace
    DOCUMENT: DurableObjectNamespace
    ROOM: DurableObjectNamespace
    SESSION: DurableObjectNamespace
    JOB: DurableObjectNamespace
    MEMORY: DurableObjectNamespace
    TOPIC: DurableObjectNamespace
    MCP_SESSION: DurableObjectNamespace
    COUNTER_TOTALS: DurableObjectNamespace
    MEMORY_BUCKET: R2Bucket
    /** Stand-ins (test/workerd/standins/semantic.js). */
    AI: Ai & { embeddedTexts(): Promise<number> }
    MEMORY_VECTORS: VectorizeIndex & { namespaceSize(namespace: string): Promise<number> }
  }
}
