declare namespace Cloudflare {
  interface Env {
    COUNTER: DurableObjectNamespace
    DOCUMENT: DurableObjectNamespace
    ROOM: DurableObjectNamespace
    TOPIC: DurableObjectNamespace
    COUNTER_TOTALS: DurableObjectNamespace
  }
}
