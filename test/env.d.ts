declare namespace Cloudflare {
  interface Env {
    COUNTER: DurableObjectNamespace
    DOCUMENT: DurableObjectNamespace
    ROOM: DurableObjectNamespace
    SESSION: DurableObjectNamespace
    TOPIC: DurableObjectNamespace
    COUNTER_TOTALS: DurableObjectNamespace
  }
}
