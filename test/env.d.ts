declare namespace Cloudflare {
  interface Env {
    COUNTER: DurableObjectNamespace
    DOCUMENT: DurableObjectNamespace
  }
}
