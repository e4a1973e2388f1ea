import { SELF } from "cloudflare:test"

export const BASE = "http://emberlog.test"

let n = 0
/** A fresh actor id per test, so tests never share state. */
export const freshId = (prefix = "t") => `${prefix}-${Date.now()}-${++n}`

export const send = (kind: string, id: string, command: unknown, headers: Record<string, string> = {}) =>
  SELF.fetch(`${BASE}/v1/${kind}/${id}/commands`, {
    method: "POST",
    body: typeof command === "string" ? command : JSON.stringify(command),
    headers: { "content-type": "application/json", ...headers },
  })

export const get = (path: string) => SELF.fetch(`${BASE}${path}`)

export const json = async (response: Response) => ({ status: response.status, body: (await response.json()) as any })
