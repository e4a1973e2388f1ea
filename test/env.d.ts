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
  }
}
