declare namespace Cloudflare {
  interface Env {
    COUNTER: DurableObjectNamespace
    DOCUMENT: DurableObjectNamespace
    TOPIC: DurableObjectNamespace
    COUNTER_TOTALS: DurableObjectNamespace
  }
}
