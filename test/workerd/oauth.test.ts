// Sign in with GitHub: the OAuth server's documents, challenges and refusals, and the whole
// flow (registration → consent → GitHub → code → token → API → refresh) driven as a browser
// and a client would, against a stand-in GitHub answered inside this file.
import { createExecutionContext, env } from "cloudflare:test"
import { SignJWT } from "jose"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import worker from "../../src/app.js"
import { counter } from "../../src/kinds/index.js"
import { HttpError, emberlog, githubOAuth, type SignIn } from "../../src/worker.js"
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
    // Browser clients' discovery is preflighted (they send MCP-Protocol-Version).
    for (const path of [
      "/.well-known/oauth-authorization-server",
      "/.well-known/oauth-protected-resource/mcp",
      "/.well-known/oauth-protected-resource",
    ]) {
      const preflight = await call(path, {
        method: "OPTIONS",
        headers: {
          Origin: "https://inspector.example",
          "Access-Control-Request-Method": "GET",
          "Access-Control-Request-Headers": "mcp-protocol-version",
        },
      })
      expect([path, preflight.status < 300, preflight.headers.get("Access-Control-Allow-Origin")]).toEqual([
        path,
        true,
        expect.stringMatching(/^(\*|https:\/\/inspector\.example)$/),
      ])
    }
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

describe("refusals, each with nothing granted", () => {
  it("/authorize: no PKCE or only unknown scopes go back to the client; an unknown client or redirect URI stays here", async () => {
    const client = await register()
    const noPkce = authorizeQuery(client.client_id, "x")
    noPkce.delete("code_challenge")
    noPkce.delete("code_challenge_method")
    const refused = await call(`/authorize?${noPkce}`)
    expect(refused.status).toBe(302)
    const back = new URL(refused.headers.get("Location")!)
    expect(back.origin + back.pathname).toBe(CLIENT_REDIRECT)
    expect([back.searchParams.get("error"), back.searchParams.get("state")]).toEqual([
      "invalid_request",
      "client-state-1",
    ])
    // The library requires PKCE of public clients only; emberlog of confidential ones too.
    const confidential = await register({ token_endpoint_auth_method: "client_secret_basic" })
    expect(confidential.client_secret).toBeDefined()
    const noPkceQuery = authorizeQuery(confidential.client_id, "x")
    noPkceQuery.delete("code_challenge")
    noPkceQuery.delete("code_challenge_method")
    const refusedConfidential = new URL((await call(`/authorize?${noPkceQuery}`)).headers.get("Location")!)
    expect(refusedConfidential.searchParams.get("error")).toBe("invalid_request")
    expect(refusedConfidential.searchParams.get("error_description")).toMatch(/PKCE is required/)
    const operator = await call(
      `/authorize?${authorizeQuery(client.client_id, await s256("v".repeat(43)), { scope: "operator" })}`,
    )
    expect(new URL(operator.headers.get("Location")!).searchParams.get("error")).toBe("invalid_scope")
    const mismatched = await json(
      await call(
        `/authorize?${authorizeQuery(client.client_id, "c", { redirect_uri: "http://127.0.0.1:8976/elsewhere" })}`,
      ),
    )
    expect([mismatched.status, mismatched.body.error.code]).toEqual([400, "invalid_request"])
    const unknown = await call(`/authorize?${authorizeQuery("no-such-client", "c")}`, {
      headers: { accept: "text/html" },
    })
    expect(unknown.status).toBe(400)
    expect(unknown.headers.get("Content-Type")).toMatch(/text\/html/)
    expect(unknown.headers.get("Location")).toBeNull()
  })

  it("consent: denied goes back as access_denied; a post without the browser's cookie or with a used handle is refused here", async () => {
    const client = await register()
    const jar = new CookieJar()
    const query = authorizeQuery(client.client_id, await s256("w".repeat(43)))
    const page = await jar.keep(await call(`/authorize?${query}`)).text()
    const handle = handleOf(page)!
    const form = (decision: string) => ({
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header },
      body: new URLSearchParams({ consent_handle: handle, decision }),
    })
    const forged = await json(
      await call("/authorize", {
        ...form("approve"),
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }),
    )
    expect([forged.status, forged.body.error.code]).toEqual([400, "invalid_request"])
    const denied = await call("/authorize", form("deny"))
    expect(denied.status).toBe(302)
    const back = new URL(denied.headers.get("Location")!)
    expect([back.searchParams.get("error"), back.searchParams.get("state")]).toEqual([
      "access_denied",
      "client-state-1",
    ])
    expect(back.searchParams.has("code")).toBe(false)
    const again = await json(await call("/authorize", form("approve")))
    expect([again.status, again.body.error.code]).toEqual([400, "invalid_request"])
  })

  it("callback: a forged state stays here; GitHub's error or a refused code goes back as access_denied", async () => {
    const forged = await json(await call("/oauth/github/callback?code=x&state=forged"))
    expect([forged.status, forged.body.error.code]).toEqual([400, "invalid_request"])
    const client = await register()
    const toGithub = async () => {
      const jar = new CookieJar()
      const page = await jar
        .keep(await call(`/authorize?${authorizeQuery(client.client_id, await s256("z".repeat(43)))}`))
        .text()
      const approved = jar.keep(
        await call("/authorize", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", cookie: jar.header },
          body: new URLSearchParams({ consent_handle: handleOf(page)!, decision: "approve" }),
        }),
      )
      const github = new URL(approved.headers.get("Location")!)
      return { jar, state: github.searchParams.get("state")!, callback: github.searchParams.get("redirect_uri")! }
    }
    const declined = await toGithub()
    const atGithub = await call(`${declined.callback}?error=access_denied&state=${declined.state}`, {
      headers: { cookie: declined.jar.header },
    })
    expect(new URL(atGithub.headers.get("Location")!).searchParams.get("error")).toBe("access_denied")
    const badCode = await toGithub()
    const refused = await call(`${badCode.callback}?code=never-issued&state=${badCode.state}`, {
      headers: { cookie: badCode.jar.header },
    })
    const back = new URL(refused.headers.get("Location")!)
    expect([back.searchParams.get("error"), back.searchParams.get("state")]).toEqual([
      "access_denied",
      "client-state-1",
    ])
    expect(back.searchParams.get("error_description")).toMatch(/bad_verification_code/)
    // An Enterprise Managed User's login (`_`) names no tenant: refused, saying so, not "GitHub unreachable".
    const managed = await signIn({ user: freshUser("octo_acme"), clientId: client.client_id })
    const managedBack = new URL(managed.location!)
    expect(managedBack.searchParams.get("error")).toBe("access_denied")
    expect(managedBack.searchParams.get("error_description")).toContain("octo_acme")
  })

  it("token: a wrong PKCE verifier and a code used twice are invalid_grant", async () => {
    const user = freshUser()
    const client = await register()
    const first = await signIn({ user, clientId: client.client_id })
    const code = new URL(first.location!).searchParams.get("code")!
    const wrong = await exchange(client.client_id, code, "not-the-verifier-" + "x".repeat(40))
    expect([wrong.status, wrong.body.error]).toEqual([400, "invalid_grant"])
    const second = await signIn({ user, clientId: client.client_id })
    const code2 = new URL(second.location!).searchParams.get("code")!
    expect((await exchange(client.client_id, code2, second.verifier)).status).toBe(200)
    const replayed = await exchange(client.client_id, code2, second.verifier)
    expect([replayed.status, replayed.body.error]).toEqual([400, "invalid_grant"])
  })

  it("rate-limits the sign-in endpoints by client IP", async () => {
    const limiter = { limit: async ({ key }: { key: string }) => ({ success: key !== "oauth-ip:203.0.113.9" }) }
    const limited = await call(
      "/oauth/register",
      { method: "POST", headers: { "CF-Connecting-IP": "203.0.113.9" } },
      { ...CONFIGURED, LIMITER: limiter },
    )
    expect([limited.status, limited.headers.get("Retry-After")]).toEqual([429, "60"])
    const other = await call(
      "/authorize",
      { headers: { "CF-Connecting-IP": "203.0.113.10" } },
      { ...CONFIGURED, LIMITER: limiter },
    )
    expect(other.status).toBe(400)
  })
})

describe("which tokens reach which resource", () => {
  it("a token for /mcp does not reach /v1; one for the whole origin reaches /mcp; another origin's reaches neither", async () => {
    const user = freshUser()
    const mcpOnly = await tokensFor(user, { resource: `${ORIGIN}/mcp` })
    const onV1 = await json(await call("/v1/counter/a", bearer(mcpOnly.access_token)))
    expect([onV1.status, onV1.body.error.code]).toEqual([403, "wrong_resource"])
    expect(onV1.body.error.message).toContain(`${ORIGIN}/mcp`)
    // A tool call as MCP clients of the 2026-07-28 revision send it (test/workerd/mcp-auth.test.ts).
    const mcpCall = (token: string) =>
      call("/mcp", {
        method: "POST",
        headers: {
          Authorization: `Bearer ${token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2026-07-28",
          "mcp-method": "tools/call",
          "mcp-name": "read_state",
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "tools/call",
          params: {
            name: "read_state",
            arguments: { kind: "counter", id: "never-written" },
            _meta: {
              "io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
              "io.modelcontextprotocol/clientCapabilities": {},
            },
          },
        }),
      })
    expect((await mcpCall(mcpOnly.access_token)).status).toBe(200)
    const whole = await tokensFor(user)
    expect((await mcpCall(whole.access_token)).status).toBe(200)
    const local = json(await call("http://127.0.0.1:8787/v1/counter/a", bearer(whole.access_token)))
    expect([(await local).status, (await local).body.error.code]).toEqual([403, "wrong_resource"])
  })

  it("401 invalid_token for an unknown, revoked or expired token", async () => {
    const unknown = await call("/v1/counter/a", bearer("someone:somegrant:somesecret"))
    expect(unknown.status).toBe(401)
    expect(unknown.headers.get("WWW-Authenticate")).toContain('error="invalid_token"')
    expect(((await unknown.json()) as any).error.code).toBe("invalid_token")
    const user = freshUser()
    const revoked = await tokensFor(user)
    const revocation = await call("/oauth/token/revoke", { method: "POST" })
    expect(revocation.status).not.toBe(500)
    const revoke = await call("/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: revoked.access_token, client_id: revoked.client.client_id }),
    })
    expect(revoke.status).toBe(200)
    const afterRevoke = await json(await call("/v1/counter/a", bearer(revoked.access_token)))
    expect([afterRevoke.status, afterRevoke.body.error.code]).toEqual([401, "invalid_token"])
    const expiring = await tokensFor(freshUser())
    vi.useFakeTimers({ toFake: ["Date"] })
    try {
      vi.setSystemTime(Date.now() + 3601_000)
      const expired = await json(await call("/v1/counter/a", bearer(expiring.access_token)))
      // No `token_expired`: KV drops an expired token's record, so it cannot be told from a revoked one.
      expect([expired.status, expired.body.error.code]).toEqual([401, "invalid_token"])
      expect(expired.body.error.message).toContain("expired")
    } finally {
      vi.useRealTimers()
    }
  })

  it("on {login}.{BASE_DOMAIN}: only that user signs in, and another user's token is 403 wrong_tenant", async () => {
    const onDomain = { ...CONFIGURED, BASE_DOMAIN: "emberlog.test" }
    const via = (url: string, init: RequestInit = {}) =>
      call(new URL(url, "https://ada.emberlog.test").toString(), init, onDomain)
    const ada = await tokensFor({ login: "Ada", id: 77 }, {}, via)
    const own = await via("/v1/counter/mine", bearer(ada.access_token))
    expect(own.status).toBe(200)
    const atBob = await json(await call("https://bob.emberlog.test/v1/counter/a", bearer(ada.access_token), onDomain))
    expect([atBob.status, atBob.body.error.code]).toEqual([403, "wrong_tenant"])
    const bobSite = (url: string, init: RequestInit = {}) =>
      call(new URL(url, "https://bob.emberlog.test").toString(), init, onDomain)
    const client = await register({}, bobSite)
    const { location } = await signIn({ user: { login: "Ada", id: 77 }, clientId: client.client_id, via: bobSite })
    const back = new URL(location!)
    expect(back.searchParams.get("error")).toBe("access_denied")
    expect(back.searchParams.get("error_description")).toMatch(/belongs to bob/)
  })

  it("browsers' WebSockets carry the token as bearer, b64u.<base64url(token)>", async () => {
    const { access_token } = await tokensFor(freshUser())
    const encoded = btoa(access_token).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")
    const opened = await call(`/v1/counter/${freshId("ws")}/ws`, {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": `bearer, b64u.${encoded}` },
    })
    expect([opened.status, opened.headers.get("Sec-WebSocket-Protocol")]).toEqual([101, "bearer"])
    opened.webSocket!.accept()
    opened.webSocket!.close(1000)
    const garbled = await call(`/v1/counter/a/ws`, {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "bearer, b64u.%%%" },
    })
    expect(garbled.status).toBe(401)
  })
})

describe("the kinds' signedIn hook and tenant erasure", () => {
  const seen: Array<SignIn> = []
  /** What the kind throws: a refusal (an HttpError below 500) or a failure that may pass. */
  let refuseWith: string | undefined
  let failWith: string | undefined
  let capScopesAt: ReadonlyArray<string> | undefined
  const provider = githubOAuth()
  const app = emberlog({
    kinds: [
      {
        ...counter,
        signedIn: async (_actor, signIn, context) => {
          expect(context.tools).toContain("counter_increment")
          if (refuseWith !== undefined) throw new HttpError(403, "github_id_mismatch", refuseWith)
          if (failWith !== undefined) throw new Error(failWith)
          seen.push(signIn)
          return capScopesAt === undefined ? undefined : { scopes: capScopesAt }
        },
      },
    ],
    auth: provider,
  })
  const via = callWith(app.handler as Handler)

  it("records every sign-in and refresh; a refusal ends the sign-in (or the grant) with the kind's reason", async () => {
    const user = freshUser()
    const tokens = await tokensFor(user, {}, via)
    expect(seen.at(-1)).toMatchObject({
      event: "signed-in",
      login: user.login,
      tenant: user.login.toLowerCase(),
      githubId: user.id,
      clientId: tokens.client.client_id,
      clientName: "Test client",
      scopes: ["read", "write"],
    })
    expect((await refresh(tokens.client.client_id, tokens.refresh_token, via)).status).toBe(200)
    expect(seen.at(-1)).toMatchObject({ event: "refreshed", login: user.login, githubId: user.id })
    // A failure that may pass (an object or bucket not answering) is temporary: the grant stays.
    failWith = "the session did not answer"
    try {
      const client = await register({}, via)
      const { location } = await signIn({ user, clientId: client.client_id, via })
      const back = new URL(location!)
      expect(back.searchParams.get("error")).toBe("temporarily_unavailable")
      expect(back.searchParams.has("code")).toBe(false)
      const failed = await refresh(tokens.client.client_id, tokens.refresh_token, via)
      expect([failed.status, failed.body.error]).toEqual([503, "temporarily_unavailable"])
    } finally {
      failWith = undefined
    }
    expect((await refresh(tokens.client.client_id, tokens.refresh_token, via)).status).toBe(200)
    refuseWith = "this GitHub account is not the one that first signed in"
    try {
      const client = await register({}, via)
      const { location } = await signIn({ user, clientId: client.client_id, via })
      const back = new URL(location!)
      expect(back.searchParams.get("error")).toBe("access_denied")
      expect(back.searchParams.get("error_description")).toContain(refuseWith)
      expect(back.searchParams.has("code")).toBe(false)
      const latest = await refresh(tokens.client.client_id, tokens.refresh_token, via)
      expect([latest.status, latest.body.error]).toEqual([400, "invalid_grant"])
      refuseWith = undefined
      // A refusal ends the grant: its refresh token is gone for good.
      const after = await refresh(tokens.client.client_id, tokens.refresh_token, via)
      expect(after.body.error).toBe("invalid_grant")
    } finally {
      refuseWith = undefined
    }
  })

  it("a kind's cap on scopes binds the token at sign-in and at every refresh, on every route", async () => {
    capScopesAt = ["read"]
    try {
      const user = freshUser()
      const tokens = await tokensFor(user, { scope: "read write" }, via)
      expect(tokens.scope).toBe("read")
      const write = { method: "POST", body: '{"type":"Increment","by":1}', ...bearer(tokens.access_token) }
      const refused = await json(await via("/v1/counter/capped/commands", write))
      expect([refused.status, refused.body.error.code]).toEqual([403, "insufficient_scope"])
      expect((await via("/v1/counter/capped", bearer(tokens.access_token))).status).toBe(200)
      const refreshed = await refresh(tokens.client.client_id, tokens.refresh_token, via)
      expect([refreshed.status, refreshed.body.scope]).toEqual([200, "read"])
      // A cap tightened since sign-in applies at the next refresh; nothing left ends the grant.
      capScopesAt = []
      const none = await refresh(tokens.client.client_id, refreshed.body.refresh_token, via)
      expect([none.status, none.body.error]).toEqual([400, "invalid_grant"])
    } finally {
      capScopesAt = undefined
    }
  })

  it("eraseTenant revokes every grant of the tenant, and its tokens with them", async () => {
    const user = freshUser()
    const first = await tokensFor(user, {}, via)
    const second = await tokensFor(user, { resource: `${ORIGIN}/mcp` }, via)
    const other = await tokensFor(freshUser(), {}, via)
    expect(await provider.eraseTenant({ ...env, ...CONFIGURED } as never, user.login.toLowerCase())).toBe(2)
    for (const token of [first.access_token, second.access_token])
      expect((await via("/v1/counter/a", bearer(token))).status).toBe(401)
    expect((await refresh(first.client.client_id, first.refresh_token, via)).body.error).toBe("invalid_grant")
    expect((await via("/v1/counter/a", bearer(other.access_token))).status).toBe(200)
  })
})

describe("other clients beside registered ones", () => {
  it("a Client ID Metadata Document client signs in without registering, and the page names its domain", async () => {
    const clientId = "https://client.standin.test/oauth/client.json"
    const documents = new Map([
      [
        clientId,
        {
          client_id: clientId,
          client_name: "Metadata client",
          redirect_uris: [CLIENT_REDIRECT],
          token_endpoint_auth_method: "none",
        },
      ],
    ])
    const previous = globalThis.fetch
    globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new Request(input, init).url
      const document = documents.get(url)
      return document === undefined ? previous(input, init) : Response.json(document)
    }) as typeof fetch
    try {
      const user = freshUser()
      const { page, location, verifier } = await signIn({ user, clientId })
      expect(page).toContain("Published by <strong>client.standin.test</strong>")
      const code = new URL(location!).searchParams.get("code")!
      const tokens = await exchange(clientId, code, verifier)
      expect(tokens.status).toBe(200)
      expect((await call("/v1/counter/cimd", bearer(tokens.body.access_token))).status).toBe(200)
    } finally {
      globalThis.fetch = previous
    }
  })

  it("JWTs for services keep working beside OAuth tokens", async () => {
    const secret = "oauth-test-jwt-secret-" + crypto.randomUUID()
    const jwt = await new SignJWT({ sub: "service", scope: "read" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(secret))
    const both = { ...CONFIGURED, JWT_SECRET: secret }
    expect((await call("/v1/counter/a", bearer(jwt), both)).status).toBe(200)
    const { access_token } = await tokensFor(freshUser())
    expect((await call("/v1/counter/a", bearer(access_token), both)).status).toBe(200)
    expect((await call("/v1/counter/a", bearer("not-a-jwt"), both)).status).toBe(401)
  })
})
