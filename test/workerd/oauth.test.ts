// Sign in with GitHub: the OAuth server's documents, challenges and refusals, and the whole
// flow (registration → consent → GitHub → code → token → API → refresh) driven as a browser
// and a client would, against a stand-in GitHub answered inside this file.
import { createExecutionContext, env } from "cloudflare:test"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import worker from "../../src/app.js"
import { counter } from "../../src/kinds/index.js"
import { emberlog, githubOAuth, type SignIn } from "../../src/worker.js"
import { freshId } from "./helpers.js"

const ORIGIN = "https://emberlog.test"
const GITHUB = "https://github.standin.test"
const GITHUB_API = "https://api.github.standin.test"
const CLIENT_REDIRECT = "http://127.0.0.1:8976/callback"
const CONFIGURED = {
  AUTH_MODE: undefined,
  GITHUB_CLIENT_ID: "gh-client-id",
  GITHUB_CLIENT_SECRET: "gh-client-secret",
  GITHUB_OAUTH_URL: GITHUB,
  GITHUB_API_URL: GITHUB_API,
}

// ── A stand-in GitHub: the authorize page signs in whoever the test chooses; codes are single
// use and bound to the PKCE challenge; /user answers for the token it handed out. ──
interface StandInUser {
  readonly login: string
  readonly id: number
}
const issuedCodes = new Map<string, { user: StandInUser; challenge: string; redirectUri: string }>()
const issuedTokens = new Map<string, StandInUser>()
const githubCalls: Array<string> = []

const s256 = async (verifier: string) =>
  btoa(
    String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)))),
  )
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "")

const standInGithub = async (request: Request): Promise<Response> => {
  const url = new URL(request.url)
  githubCalls.push(`${request.method} ${url.origin}${url.pathname}`)
  if (url.origin === GITHUB && url.pathname === "/login/oauth/access_token") {
    expect(request.headers.get("Accept")).toBe("application/json")
    const form = new URLSearchParams([...(await request.formData())].map(([k, v]) => [k, String(v)]))
    const issued = issuedCodes.get(form.get("code") ?? "")
    issuedCodes.delete(form.get("code") ?? "")
    if (
      form.get("client_id") !== CONFIGURED.GITHUB_CLIENT_ID ||
      form.get("client_secret") !== CONFIGURED.GITHUB_CLIENT_SECRET
    )
      return Response.json({ error: "incorrect_client_credentials" })
    if (
      issued === undefined ||
      issued.redirectUri !== form.get("redirect_uri") ||
      issued.challenge !== (await s256(form.get("code_verifier") ?? ""))
    )
      return Response.json({ error: "bad_verification_code", error_description: "The code is wrong or used" })
    const token = `gho_${crypto.randomUUID()}`
    issuedTokens.set(token, issued.user)
    return Response.json({ access_token: token, token_type: "bearer", scope: "" })
  }
  if (url.origin === GITHUB_API && url.pathname === "/user") {
    expect(request.headers.get("User-Agent")).toBe("emberlog")
    const user = issuedTokens.get(request.headers.get("Authorization")?.replace(/^Bearer /, "") ?? "")
    if (user === undefined) return Response.json({ message: "Bad credentials" }, { status: 401 })
    return Response.json({ login: user.login, id: user.id, name: null, email: null })
  }
  return new Response("no such stand-in route", { status: 404 })
}

/** The browser at GitHub's authorize page: the stand-in signs `user` in and sends it back with a code. */
const githubAuthorize = (location: string, user: StandInUser) => {
  const url = new URL(location)
  expect(url.origin + url.pathname).toBe(`${GITHUB}/login/oauth/authorize`)
  expect(url.searchParams.get("client_id")).toBe(CONFIGURED.GITHUB_CLIENT_ID)
  expect(url.searchParams.get("code_challenge_method")).toBe("S256")
  const code = `code-${crypto.randomUUID()}`
  const redirectUri = url.searchParams.get("redirect_uri")!
  issuedCodes.set(code, { user, challenge: url.searchParams.get("code_challenge")!, redirectUri })
  const back = new URL(redirectUri)
  back.searchParams.set("code", code)
  back.searchParams.set("state", url.searchParams.get("state")!)
  return back.toString()
}

const realFetch = globalThis.fetch
beforeAll(() => {
  // The Worker's calls to GitHub go to the stand-in; nothing else in this file fetches out.
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init)
    const origin = new URL(request.url).origin
    return origin === GITHUB || origin === GITHUB_API ? standInGithub(request) : realFetch(request)
  }) as typeof fetch
})
afterAll(() => {
  globalThis.fetch = realFetch
})

// ── The Worker, as a browser and a client reach it ──
type Handler = { fetch: (request: Request, env: never, ctx: ExecutionContext) => Promise<Response> }
const callWith =
  (handler: Handler) =>
  (url: string, init: RequestInit = {}, settings: Record<string, unknown> = CONFIGURED): Promise<Response> =>
    handler.fetch(
      new Request(new URL(url, ORIGIN), { redirect: "manual", ...init }),
      { ...env, ...settings } as never,
      createExecutionContext(),
    )
const call = callWith(worker)

/** What a browser keeps between requests: the `__Host-` cookies the OAuth server sets. */
class CookieJar {
  readonly #cookies = new Map<string, string>()
  keep(response: Response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";")
      const at = pair!.indexOf("=")
      const [name, value] = [pair!.slice(0, at).trim(), pair!.slice(at + 1).trim()]
      if (/max-age=0/i.test(line) || value === "") this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
    return response
  }
  get header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ")
  }
}

const register = async (
  metadata: Record<string, unknown> = {},
  via = call,
): Promise<{ client_id: string; client_secret?: string }> => {
  const response = await via("/oauth/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "Test client",
      redirect_uris: [CLIENT_REDIRECT],
      token_endpoint_auth_method: "none",
      ...metadata,
    }),
  })
  expect(response.status).toBe(201)
  return (await response.json()) as never
}

const authorizeQuery = (clientId: string, challenge: string, extra: Record<string, string> = {}) =>
  new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: CLIENT_REDIRECT,
    state: "client-state-1",
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  })

const handleOf = (page: string) => /name="consent_handle" value="([^"]+)"/.exec(page)?.[1]

/** Consent shown and approved, GitHub signs `user` in: the redirect back to the client. */
const signIn = async (options: {
  user: StandInUser
  clientId: string
  verifier?: string
  query?: Record<string, string>
  via?: typeof call
}) => {
  const via = options.via ?? call
  const jar = new CookieJar()
  const verifier = options.verifier ?? `verifier-${crypto.randomUUID()}-${crypto.randomUUID()}`
  const query = authorizeQuery(options.clientId, await s256(verifier), options.query)
  const consent = jar.keep(await via(`/authorize?${query}`, { headers: { accept: "text/html" } }))
  expect(consent.status).toBe(200)
  const page = await consent.text()
  const approved = jar.keep(
    await via("/authorize", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header },
      body: new URLSearchParams({ consent_handle: handleOf(page)!, decision: "approve" }),
    }),
  )
  expect(approved.status).toBe(302)
  const back = githubAuthorize(approved.headers.get("Location")!, options.user)
  const finished = jar.keep(await via(back, { headers: { cookie: jar.header } }))
  return { page, finished, verifier, jar, location: finished.headers.get("Location") }
}

const exchange = async (
  clientId: string,
  code: string,
  verifier: string,
  extra: Record<string, string> = {},
  via = call,
) => {
  const response = await via("/oauth/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      client_id: clientId,
      redirect_uri: CLIENT_REDIRECT,
      code_verifier: verifier,
      ...extra,
    }),
  })
  return { status: response.status, body: (await response.json()) as any }
}

const refresh = async (clientId: string, refreshToken: string, via = call) => {
  const response = await via("/oauth/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: clientId }),
  })
  return { status: response.status, body: (await response.json()) as any }
}

/** The whole flow for a public client: tokens for `user`. */
const tokensFor = async (user: StandInUser, query: Record<string, string> = {}, via = call) => {
  const client = await register({}, via)
  const { location, verifier } = await signIn({ user, clientId: client.client_id, query, via })
  const code = new URL(location!).searchParams.get("code")!
  const tokens = await exchange(
    client.client_id,
    code,
    verifier,
    query.resource ? { resource: query.resource } : {},
    via,
  )
  expect(tokens.status).toBe(200)
  return { client, ...(tokens.body as { access_token: string; refresh_token: string; scope: string }) }
}

const bearer = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } })
const json = async (response: Response) => ({ status: response.status, body: (await response.json()) as any })
let userIds = 1000
const freshUser = (login = `Octo-${freshId("u").slice(-8)}`): StandInUser => ({ login, id: ++userIds })

describe("OAuth metadata and challenges", () => {
  it("publishes the authorization server and the /mcp resource on the request's origin", async () => {
    const metadata = await json(await call("/.well-known/oauth-authorization-server"))
    expect(metadata.status).toBe(200)
    expect(metadata.body).toMatchObject({
      issuer: ORIGIN,
      authorization_endpoint: `${ORIGIN}/authorize`,
      token_endpoint: `${ORIGIN}/oauth/token`,
      registration_endpoint: `${ORIGIN}/oauth/register`,
      scopes_supported: ["read", "write", "admin"],
      code_challenge_methods_supported: ["S256"],
      client_id_metadata_document_supported: true,
    })
    const mcp = await json(await call("/.well-known/oauth-protected-resource/mcp"))
    expect(mcp.body).toMatchObject({ resource: `${ORIGIN}/mcp`, authorization_servers: [ORIGIN] })
    const root = await json(await call("/.well-known/oauth-protected-resource"))
    expect(root.body).toMatchObject({ resource: ORIGIN, authorization_servers: [ORIGIN] })
    const other = await json(await call("http://127.0.0.1:8787/.well-known/oauth-authorization-server"))
    expect(other.body.issuer).toBe("http://127.0.0.1:8787")
  })

  it("401s point /mcp clients at the /mcp resource document and ask for read write", async () => {
    const mcp = await call("/mcp", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: "{}",
    })
    expect(mcp.status).toBe(401)
    expect(mcp.headers.get("WWW-Authenticate")).toBe(
      `Bearer realm="emberlog", resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource/mcp", scope="read write"`,
    )
    const v1 = await call("/v1/counter/a")
    expect(v1.status).toBe(401)
    expect(v1.headers.get("WWW-Authenticate")).toContain(
      `resource_metadata="${ORIGIN}/.well-known/oauth-protected-resource"`,
    )
    expect((await v1.json()) as any).toMatchObject({ error: { code: "unauthenticated" } })
  })

  it("without GitHub settings the OAuth routes say so and auth stays as it was", async () => {
    const unset = { AUTH_MODE: undefined }
    const metadata = await json(await call("/.well-known/oauth-authorization-server", {}, unset))
    expect([metadata.status, metadata.body.error.code]).toEqual([404, "oauth_not_configured"])
    expect(metadata.body.error.message).toMatch(/GITHUB_CLIENT_ID.*GITHUB_CLIENT_SECRET.*OAUTH_KV/)
    for (const [path, method] of [
      ["/authorize", "GET"],
      ["/oauth/token", "POST"],
      ["/oauth/register", "POST"],
      ["/oauth/github/callback?state=x&code=y", "GET"],
    ] as const) {
      const answer = await json(await call(path, { method }, unset))
      expect([path, answer.status, answer.body.error.code]).toEqual([path, 503, "oauth_not_configured"])
    }
    const root = await json(await call("/.well-known/oauth-protected-resource", {}, unset))
    expect(root.body.authorization_servers).toEqual([])
    const v1 = await json(await call("/v1/counter/a", {}, unset))
    expect([v1.status, v1.body.error.code]).toEqual([401, "auth_not_configured"])
    const noKv = await json(
      await call("/.well-known/oauth-authorization-server", {}, { ...CONFIGURED, OAUTH_KV: undefined }),
    )
    expect(noKv.status).toBe(404)
  })
})

describe("signing in with GitHub", () => {
  it("runs the whole flow: consent, GitHub, code, token, the API as the user, refresh", async () => {
    const user = freshUser()
    const client = await register({ client_name: `<script>alert(1)</script> Inspector` })
    const { page, location, verifier } = await signIn({ user, clientId: client.client_id })
    // The consent page names the client (escaped), where the access goes, and the scopes.
    expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt; Inspector")
    expect(page).not.toContain("<script>alert(1)")
    expect(page).toContain("127.0.0.1")
    expect(page).toContain("an app on your computer")
    expect(page).toMatch(/<code>read<\/code>[\s\S]*<code>write<\/code>/)
    const back = new URL(location!)
    expect(back.origin + back.pathname).toBe(CLIENT_REDIRECT)
    expect(back.searchParams.get("state")).toBe("client-state-1")
    expect(back.searchParams.get("iss")).toBe(ORIGIN)
    const tokens = await exchange(client.client_id, back.searchParams.get("code")!, verifier)
    expect(tokens.status).toBe(200)
    expect(tokens.body).toMatchObject({ token_type: "bearer", scope: "read write", expires_in: 3600 })
    const access = tokens.body.access_token as string
    // The API as the user, in the user's tenant (the login lowercased).
    const id = freshId("oauth")
    const sent = await call(`/v1/counter/${id}/commands`, {
      method: "POST",
      headers: { Authorization: `Bearer ${access}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "Increment", by: 2 }),
    })
    expect(sent.status).toBe(200)
    const events = await json(await call(`/v1/counter/${id}/events`, bearer(access)))
    expect(events.body.events[0].meta.principal).toBe(user.login)
    const operatorRead = await call(`/v1/admin/tenants/${user.login.toLowerCase()}/counter/${id}`, bearer(access))
    expect(operatorRead.status).toBe(403)
    const unscoped = await json(await call(`/v1/counter/${id}/verify`, bearer(access)))
    expect([unscoped.status, unscoped.body.error.code]).toEqual([403, "insufficient_scope"])
    // Refresh rotates the refresh token and the new access token works.
    const refreshed = await refresh(client.client_id, tokens.body.refresh_token)
    expect(refreshed.status).toBe(200)
    expect(refreshed.body.refresh_token).not.toBe(tokens.body.refresh_token)
    const read = await json(await call(`/v1/counter/${id}`, bearer(refreshed.body.access_token)))
    expect([read.status, read.body.state]).toEqual([200, { value: 2 }])
    // GitHub's token was used for /user only: no call after the sign-in.
    expect(githubCalls.filter((c) => c.endsWith("/user")).length).toBeGreaterThan(0)
  })
})
