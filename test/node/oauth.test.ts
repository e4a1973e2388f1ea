// Sign in with GitHub, end to end: the Worker under `wrangler dev` as its own OAuth 2.1
// authorization server, a stand-in GitHub on node:http (test/node/standins/github.ts), the MCP
// SDK's own OAuth client, a browser's part played by hand (redirects and cookies), then the
// inspector's sign-in in headless Chromium. One Worker and one stand-in for the whole file.
import { UnauthorizedError, type OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js"
import { createHash, randomBytes } from "node:crypto"
import { request as httpRequest } from "node:http"
import { request as httpsRequest } from "node:https"
import type { Browser as Chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launchChromium } from "./chromium.js"
import type { Unstable_DevWorker } from "wrangler"
import { unstable_dev } from "wrangler"
import { startGitHub, type StandInGitHub } from "./standins/github.js"

const GITHUB_APP = { clientId: "Iv1.emberlog-test", clientSecret: `gh-secret-${randomBytes(8).toString("hex")}` }
const BASE_DOMAIN = "emberlog.test"
// The MCP client's own loopback redirect: nothing listens there, the "browser" stops at it.
const CLIENT_REDIRECT = "http://127.0.0.1:8976/oauth/callback"

let github: StandInGitHub
let worker: Unstable_DevWorker
let base: string
let port: number
let chromiumBrowser: Chromium

const startServers = async () => {
  github = await startGitHub(GITHUB_APP)
  // Over https (wrangler's self-signed certificate), as deployed: the OAuth library accepts http
  // only on loopback hosts, and {login}.{BASE_DOMAIN} is not one.
  worker = await unstable_dev("src/app.ts", {
    config: "wrangler.toml",
    ip: "127.0.0.1",
    localProtocol: "https",
    persist: false,
    logLevel: "none",
    vars: {
      AUTH_MODE: "on",
      BASE_DOMAIN,
      GITHUB_CLIENT_ID: GITHUB_APP.clientId,
      GITHUB_CLIENT_SECRET: GITHUB_APP.clientSecret,
      GITHUB_OAUTH_URL: github.url,
      GITHUB_API_URL: github.url,
    },
    experimental: { disableExperimentalWarning: true },
  })
  port = worker.port
  base = `https://127.0.0.1:${port}`
  // The first request loads the Worker's modules (seconds on a busy machine): while Chromium starts.
  await loopbackFetch(`${base}/.well-known/oauth-authorization-server`)
}

beforeAll(async () => {
  // wrangler's self-signed certificate
  ;[, chromiumBrowser] = await Promise.all([startServers(), launchChromium(["--ignore-certificate-errors"])])
}, 60_000)

afterAll(async () => {
  await Promise.all([worker?.stop(), github?.close(), chromiumBrowser?.close()])
})

// ---------------------------------------------------------------------------------------------
// A fetch that reaches the Worker under any hostname ({login}.{BASE_DOMAIN}, localhost): it
// connects to 127.0.0.1 and sends the URL's host as Host, as DNS pointing there would, and
// trusts wrangler's self-signed certificate. Every request of this file goes through it.

const loopbackFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const request = new Request(input, init)
  return request.arrayBuffer().then(
    (body) =>
      new Promise<Response>((resolve, reject) => {
        const url = new URL(request.url)
        const headers: Record<string, string> = {}
        request.headers.forEach((value, name) => (headers[name] = value))
        headers.host = url.host
        const send = url.protocol === "https:" ? httpsRequest : httpRequest
        const outgoing = send(
          {
            host: "127.0.0.1",
            port: url.port,
            path: url.pathname + url.search,
            method: request.method,
            headers: { ...headers, "content-length": String(body.byteLength) },
            rejectUnauthorized: false,
          },
          (incoming) => {
            const chunks: Array<Buffer> = []
            incoming.on("data", (chunk: Buffer) => chunks.push(chunk))
            incoming.on("end", () => {
              const responseHeaders = new Headers()
              for (const [name, value] of Object.entries(incoming.headers))
                for (const one of Array.isArray(value) ? value : [value ?? ""]) responseHeaders.append(name, one)
              const status = incoming.statusCode ?? 500
              const nullBody = status === 204 || status === 304 || request.method === "HEAD"
              resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, headers: responseHeaders }))
            })
            incoming.on("error", reject)
          },
        )
        outgoing.on("error", reject)
        outgoing.end(Buffer.from(body))
      }),
  )
}

// ---------------------------------------------------------------------------------------------
// The browser's part: follows redirects one by one and keeps each host's cookies (the
// library's __Host- cookies bind the consent and the GitHub round trip to this browser).

class Browser {
  private readonly jar = new Map<string, Map<string, string>>()

  async go(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url)
    const headers = new Headers(init.headers)
    const cookies = this.jar.get(target.host)
    if (cookies && cookies.size > 0)
      headers.set("cookie", [...cookies].map(([name, value]) => `${name}=${value}`).join("; "))
    const response = await loopbackFetch(target, { ...init, headers, redirect: "manual" })
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";")
      const at = pair!.indexOf("=")
      const name = pair!.slice(0, at).trim()
      const value = pair!.slice(at + 1).trim()
      const host = this.jar.get(target.host) ?? new Map<string, string>()
      this.jar.set(target.host, host)
      if (value === "" || /max-age=0/i.test(line)) host.delete(name)
      else host.set(name, value)
    }
    return response
  }

  /** Follows redirects from `url` until one leaves for `stopAt` (not fetched) or a page answers. */
  async follow(url: string | URL, stopAt: string, init?: RequestInit): Promise<{ landed?: URL; page?: Response }> {
    let response = await this.go(url, init)
    for (let hops = 0; hops < 10; hops++) {
      const location = response.headers.get("location")
      if (response.status < 300 || response.status >= 400 || location === null) return { page: response }
      const next = new URL(location, response.url || url)
      if (next.href.startsWith(stopAt)) return { landed: next }
      response = await this.go(next)
    }
    throw new Error("too many redirects")
  }

  /** Forgets this host's cookies: the next request comes from a browser that never saw the consent. */
  forget(host: string) {
    this.jar.delete(host)
  }
}

/** The consent page's form: its handle, and what it tells the user. */
const consentForm = async (page: Response) => {
  expect(page.status).toBe(200)
  expect(page.headers.get("content-type")).toMatch(/text\/html/)
  const html = await page.text()
  const input = html.match(/<input[^>]*name="consent_handle"[^>]*>/)?.[0]
  expect(input, "a hidden consent_handle input").toBeDefined()
  const handle = input!.match(/value="([^"]*)"/)?.[1]
  expect(handle).toBeTruthy()
  expect(html).toMatch(
    /<form[^>]*method="post"[^>]*action="\/authorize"|<form[^>]*action="\/authorize"[^>]*method="post"/i,
  )
  expect(html).toMatch(/<button[^>]*name="decision"[^>]*value="approve"/)
  expect(html).toMatch(/<button[^>]*name="decision"[^>]*value="deny"/)
  return { handle: decodeEntities(handle!), html }
}

const decodeEntities = (text: string) =>
  text
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&")

/**
 * The user's part from the authorization URL to the client's redirect: the consent page, the
 * decision, then GitHub (the stand-in signs in whoever `signInAs` named) and back.
 */
const consent = async (
  browser: Browser,
  authorizationUrl: string | URL,
  decision: "approve" | "deny",
  redirect = CLIENT_REDIRECT,
): Promise<{ landed: URL; html: string }> => {
  const authorize = new URL(authorizationUrl)
  const { handle, html } = await consentForm(await browser.go(authorize))
  const { landed, page } = await browser.follow(new URL("/authorize", authorize), redirect, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: authorize.origin },
    body: new URLSearchParams({ consent_handle: handle, decision }),
  })
  if (landed === undefined) throw new Error(`no redirect to the client: ${page?.status} ${await page?.text()}`)
  return { landed, html }
}

// ---------------------------------------------------------------------------------------------
// An MCP client's OAuth state, in memory (the SDK's OAuthClientProvider).

class TestOAuthClient implements OAuthClientProvider {
  information: OAuthClientInformationMixed | undefined
  saved: OAuthTokens | undefined
  verifier = ""
  authorizationUrl: URL | undefined
  lastState = ""
  constructor(private readonly name = "emberlog test client") {}
  get redirectUrl() {
    return CLIENT_REDIRECT
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.name,
      redirect_uris: [CLIENT_REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }
  }
  state() {
    return (this.lastState = randomBytes(12).toString("base64url"))
  }
  clientInformation() {
    return this.information
  }
  saveClientInformation(information: OAuthClientInformationMixed) {
    this.information = information
  }
  tokens() {
    return this.saved
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier
  }
  codeVerifier() {
    return this.verifier
  }
}

// ---------------------------------------------------------------------------------------------
// The same steps by hand, for the refusals: registration, an authorization URL, a token request.

const s256 = (verifier: string) => createHash("sha256").update(verifier).digest("base64url")

const register = async (origin: string, redirectUris = [CLIENT_REDIRECT], name = "hand-made client") => {
  const response = await loopbackFetch(`${origin}/oauth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: redirectUris,
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }),
  })
  expect(response.status).toBe(201)
  const { client_id } = (await response.json()) as { client_id: string }
  return client_id
}

interface AuthorizationParams {
  readonly origin: string
  readonly clientId: string
  readonly redirectUri?: string
  readonly verifier?: string
  readonly pkce?: boolean
  readonly resource?: string
  readonly scope?: string
}

const authorizationUrl = (params: AuthorizationParams) => {
  const url = new URL("/authorize", params.origin)
  const state = randomBytes(9).toString("base64url")
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: params.clientId,
    redirect_uri: params.redirectUri ?? CLIENT_REDIRECT,
    state,
    scope: params.scope ?? "read write",
    resource: params.resource ?? `${params.origin}/mcp`,
    ...(params.pkce === false ? {} : { code_challenge: s256(params.verifier ?? "v"), code_challenge_method: "S256" }),
  }).toString()
  return { url, state }
}

const tokenRequest = (origin: string, params: Record<string, string>) =>
  loopbackFetch(`${origin}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params),
  })

/** Registration, consent and the code exchange, by hand: a token for `resource`. */
const signInByHand = async (origin: string, resource = origin) => {
  const clientId = await register(origin)
  const verifier = randomBytes(32).toString("base64url")
  const { url } = authorizationUrl({ origin, clientId, verifier, resource })
  const { landed } = await consent(new Browser(), url, "approve")
  const code = landed.searchParams.get("code")
  expect(code, landed.href).toBeTruthy()
  const response = await tokenRequest(origin, {
    grant_type: "authorization_code",
    code: code!,
    redirect_uri: CLIENT_REDIRECT,
    client_id: clientId,
    code_verifier: verifier,
    resource,
  })
  expect(response.status).toBe(200)
  return { clientId, tokens: (await response.json()) as OAuthTokens }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** An MCP initialize request with a token: 200 once the token is accepted. */
const initialize = (origin: string, token: string) =>
  loopbackFetch(`${origin}/mcp`, {
    method: "POST",
    headers: { ...bearer(token), "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "emberlog-oauth-test", version: "1" },
      },
    }),
  })
const errorOf = async (response: Response) => ((await response.json()) as { error: unknown }).error

const mcpClient = async (provider: OAuthClientProvider, url = `${base}/mcp`) => {
  const client = new Client({ name: "emberlog-oauth-test", version: "1.0.0" })
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: loopbackFetch })
  await client.connect(transport)
  return { client, transport }
}

// ---------------------------------------------------------------------------------------------

describe("an MCP client signs in with (stand-in) GitHub", () => {
  it("discovers, registers, is consented, gets a token, calls tools, refreshes and calls again", async () => {
    github.signInAs({ login: "Ada-L", id: 1815, name: "Ada Lovelace" })
    // Discovery starts from the 401 on /mcp: it points at the /mcp resource's metadata.
    const challenge = await loopbackFetch(`${base}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    })
    expect(challenge.status).toBe(401)
    const wwwAuthenticate = challenge.headers.get("www-authenticate") ?? ""
    expect(wwwAuthenticate).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`)
    expect(wwwAuthenticate).toContain(`scope="read write"`)
    const resource = await (await loopbackFetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json()
    expect(resource).toMatchObject({ resource: `${base}/mcp`, authorization_servers: [base] })
    const server = (await (await loopbackFetch(`${base}/.well-known/oauth-authorization-server`)).json()) as {
      scopes_supported: Array<string>
    }
    expect(server).toMatchObject({
      issuer: base,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/oauth/token`,
      registration_endpoint: `${base}/oauth/register`,
      code_challenge_methods_supported: ["S256"],
    })
    expect(server.scopes_supported).toEqual(expect.arrayContaining(["read", "write", "admin"]))
    expect(server.scopes_supported).not.toContain("operator")

    // The SDK: 401 → metadata → registration → the authorization URL it would open in a browser.
    const provider = new TestOAuthClient("Claude-ish <test> client")
    await expect(mcpClient(provider)).rejects.toBeInstanceOf(UnauthorizedError)
    expect(provider.information?.client_id).toBeTruthy()
    const authorizationUrl = provider.authorizationUrl!
    expect(authorizationUrl.origin + authorizationUrl.pathname).toBe(`${base}/authorize`)
    expect(authorizationUrl.searchParams.get("code_challenge_method")).toBe("S256")
    expect(authorizationUrl.searchParams.get("resource")).toBe(`${base}/mcp`)

    // The user approves; GitHub (the stand-in) signs Ada in and sends the browser back.
    const before = github.calls.length
    const { landed, html } = await consent(new Browser(), authorizationUrl, "approve")
    // The consent page names the client (escaped), its redirect host and the scopes.
    expect(html).toContain("Claude-ish &lt;test&gt; client")
    expect(html).not.toContain("<test>")
    expect(html).toContain("127.0.0.1:8976")
    expect(html).toMatch(/\bread\b/)
    expect(html).toMatch(/\bwrite\b/)
    expect(landed.searchParams.get("state")).toBe(provider.lastState)
    expect(landed.searchParams.get("iss")).toBe(base)
    const code = landed.searchParams.get("code")!
    expect(code).toBeTruthy()
    // What the Worker asked GitHub: the contract's parameters and headers, PKCE included.
    const asked = github.calls.slice(before)
    expect(asked.map((call) => call.endpoint)).toEqual(["authorize", "access_token", "user"])
    expect(asked[0]!.params).toMatchObject({
      client_id: GITHUB_APP.clientId,
      redirect_uri: `${base}/oauth/github/callback`,
      code_challenge_method: "S256",
    })
    expect(asked[1]!.params.code_verifier).toBeTruthy()
    expect(asked[1]!.headers.accept).toContain("application/json")
    expect(asked[2]!.headers["user-agent"]).toBe("emberlog")
    expect(asked[2]!.headers.accept).toBe("application/vnd.github+json")

    // The code for tokens: an access token that expires, a refresh token.
    const finishing = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
      authProvider: provider,
      fetch: loopbackFetch,
    })
    await finishing.finishAuth(code)
    const first = provider.saved!
    expect(first.token_type.toLowerCase()).toBe("bearer")
    expect(first.access_token).toContain(":")
    expect(first.refresh_token).toBeTruthy()
    expect(first.expires_in).toBeGreaterThan(60)
    expect(first.expires_in).toBeLessThanOrEqual(3600)
    expect(first.scope?.split(" ").sort()).toEqual(["read", "write"])

    // Tools as Ada: the events carry her login; her tenant, the token's user, is the login lowercased.
    expect(first.access_token.split(":")[0]).toBe("ada-l")
    const { client } = await mcpClient(provider)
    const id = `oauth-${Date.now()}`
    const called = await client.callTool({ name: "counter_increment", arguments: { id, command: { by: 2 } } })
    expect(called.isError).toBeFalsy()
    expect(called.structuredContent).toMatchObject({ version: 1, state: { value: 2 } })
    const events = await client.callTool({ name: "read_events", arguments: { kind: "counter", id } })
    expect(JSON.stringify(events.structuredContent)).toContain('"principal":"Ada-L"')

    // The access token revoked (RFC 7009, as a client signing out of one token does): to the
    // server it is now what an expired token is, 401 invalid_token, and to the SDK a reason to refresh.
    const revoked = await tokenRequest(base, {
      token: first.access_token,
      token_type_hint: "access_token",
      client_id: provider.information!.client_id,
    })
    expect(revoked.status).toBe(200)
    const refused = await loopbackFetch(`${base}/mcp`, {
      method: "POST",
      headers: {
        ...bearer(first.access_token),
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    })
    expect(refused.status).toBe(401)
    expect(refused.headers.get("www-authenticate")).toContain('error="invalid_token"')
    expect(await errorOf(refused)).toMatchObject({ code: "invalid_token" })

    // The next call: 401, the SDK refreshes (the refresh token rotates), and the call goes through.
    const again = await client.callTool({ name: "counter_increment", arguments: { id, command: { by: 3 } } })
    expect(again.isError).toBeFalsy()
    expect(again.structuredContent).toMatchObject({ version: 2, state: { value: 5 } })
    const second = provider.saved!
    expect(second.access_token).not.toBe(first.access_token)
    expect(second.refresh_token).toBeTruthy()
    expect(second.refresh_token).not.toBe(first.refresh_token)
    await client.close()
  })
})

describe("refusals: each with its OAuth error, and nothing granted", () => {
  /** GitHub was not asked for anything after `from`: no sign-in began. */
  const githubUntouchedSince = (from: number) => expect(github.calls.slice(from)).toEqual([])

  it("an unregistered client, or a redirect URI it did not register, gets an error page and no redirect", async () => {
    const clientId = await register(base)
    const from = github.calls.length
    const cases = [
      { clientId: "no-such-client", redirectUri: CLIENT_REDIRECT },
      { clientId, redirectUri: "https://attacker.example/oauth/callback" }, // never registered
      { clientId, redirectUri: `${CLIENT_REDIRECT}/deeper` }, // matched exactly, not by prefix
      { clientId, redirectUri: "http://127.0.0.1:8976/other" },
    ]
    for (const { clientId, redirectUri } of cases) {
      const response = await new Browser().go(authorizationUrl({ origin: base, clientId, redirectUri }).url)
      expect(response.status, redirectUri).toBe(400)
      expect(response.headers.get("location")).toBeNull()
      expect(response.headers.getSetCookie()).toEqual([])
      const text = await response.text()
      expect(text).toMatch(/invalid_client|invalid_request|redirect/i)
      expect(text).not.toContain("consent_handle")
    }
    githubUntouchedSince(from)
  })

  it("an authorization request without PKCE S256 goes back to the client as invalid_request", async () => {
    const clientId = await register(base)
    const from = github.calls.length
    const { url, state } = authorizationUrl({ origin: base, clientId, pkce: false })
    const response = await new Browser().go(url)
    expect(response.status).toBe(302)
    const back = new URL(response.headers.get("location")!)
    expect(back.href.startsWith(CLIENT_REDIRECT)).toBe(true)
    expect(back.searchParams.get("error")).toBe("invalid_request")
    expect(back.searchParams.get("state")).toBe(state)
    expect(back.searchParams.get("code")).toBeNull()
    // plain is not S256
    const plain = new URL(url)
    plain.searchParams.set("code_challenge", "a".repeat(43))
    plain.searchParams.set("code_challenge_method", "plain")
    const refused = await new Browser().go(plain)
    expect(refused.status).toBe(302)
    expect(new URL(refused.headers.get("location")!).searchParams.get("error")).toBe("invalid_request")
    githubUntouchedSince(from)
  })

  it("a code needs its PKCE verifier, works once, and a second use revokes what the first gave", async () => {
    github.signInAs({ login: "grace", id: 1906 })
    const clientId = await register(base)
    const verifier = randomBytes(32).toString("base64url")
    const { url } = authorizationUrl({ origin: base, clientId, verifier, resource: base })
    const { landed } = await consent(new Browser(), url, "approve")
    const code = landed.searchParams.get("code")!
    const exchange = (extra: Record<string, string>) =>
      tokenRequest(base, {
        grant_type: "authorization_code",
        code,
        redirect_uri: CLIENT_REDIRECT,
        client_id: clientId,
        resource: base,
        ...extra,
      })

    const missing = await exchange({})
    expect(missing.status).toBe(400)
    expect(await missing.json()).toMatchObject({ error: expect.stringMatching(/^invalid_(request|grant)$/) })
    const wrong = await exchange({ code_verifier: randomBytes(32).toString("base64url") })
    expect(wrong.status).toBe(400)
    expect(await wrong.json()).toMatchObject({ error: "invalid_grant" })
    const otherRedirect = await exchange({ code_verifier: verifier, redirect_uri: "http://127.0.0.1:8976/other" })
    expect(otherRedirect.status).toBe(400)
    expect(((await otherRedirect.json()) as OAuthTokens).access_token).toBeUndefined()

    const good = await exchange({ code_verifier: verifier })
    expect(good.status).toBe(200)
    const tokens = (await good.json()) as OAuthTokens
    expect((await loopbackFetch(`${base}/v1/counter/grace-1`, { headers: bearer(tokens.access_token) })).status).toBe(
      200,
    )

    const twice = await exchange({ code_verifier: verifier })
    expect(twice.status).toBe(400)
    expect(await twice.json()).toMatchObject({ error: "invalid_grant" })
    // A replayed code means it leaked: the grant it made is revoked, tokens and refresh alike.
    const after = await loopbackFetch(`${base}/v1/counter/grace-1`, { headers: bearer(tokens.access_token) })
    expect(after.status).toBe(401)
    const refresh = await tokenRequest(base, {
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token!,
      client_id: clientId,
    })
    expect(refresh.status).toBe(400)
    expect(await refresh.json()).toMatchObject({ error: "invalid_grant" })
  })

  it("a consent denied goes back to the client as access_denied, and GitHub is never asked", async () => {
    const clientId = await register(base)
    const from = github.calls.length
    const { url, state } = authorizationUrl({ origin: base, clientId })
    const { landed } = await consent(new Browser(), url, "deny")
    expect(landed.searchParams.get("error")).toBe("access_denied")
    expect(landed.searchParams.get("state")).toBe(state)
    expect(landed.searchParams.get("code")).toBeNull()
    githubUntouchedSince(from)
  })

  it("the user cancelling on GitHub goes back to the client as access_denied", async () => {
    github.signInAs("deny")
    try {
      const clientId = await register(base)
      const { url, state } = authorizationUrl({ origin: base, clientId })
      const { landed } = await consent(new Browser(), url, "approve")
      expect(landed.searchParams.get("error")).toBe("access_denied")
      expect(landed.searchParams.get("state")).toBe(state)
      expect(landed.searchParams.get("code")).toBeNull()
    } finally {
      github.signInAs({ login: "octocat", id: 1 })
    }
  })

  it("GitHub's callback refuses a forged state, a state from another browser, and a state used twice", async () => {
    github.signInAs({ login: "linus", id: 1969 })
    const clientId = await register(base)
    const { url } = authorizationUrl({ origin: base, clientId })
    const browser = new Browser()
    const { handle } = await consentForm(await browser.go(url))
    const toGitHub = await browser.go(`${base}/authorize`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: base },
      body: new URLSearchParams({ consent_handle: handle, decision: "approve" }),
    })
    expect(toGitHub.status).toBe(302)
    const fromGitHub = await new Browser().go(toGitHub.headers.get("location")!) // the stand-in: no cookies of ours
    const callback = new URL(fromGitHub.headers.get("location")!)
    expect(callback.origin + callback.pathname).toBe(`${base}/oauth/github/callback`)
    const exchangesBefore = github.calls.filter((call) => call.endpoint === "access_token").length
    const refusedPage = async (response: Response) => {
      expect(response.status).toBeGreaterThanOrEqual(400)
      expect(response.status).toBeLessThan(500)
      const location = response.headers.get("location")
      if (location !== null) expect(new URL(location).searchParams.get("code")).toBeNull()
    }

    const forged = new URL(callback)
    forged.searchParams.set("state", randomBytes(24).toString("base64url"))
    await refusedPage(await browser.go(forged))
    // The real state, from a browser that did not consent: the binding cookie is missing.
    await refusedPage(await new Browser().go(callback))
    expect(github.calls.filter((call) => call.endpoint === "access_token").length).toBe(exchangesBefore)

    // The real one completes; the same callback again is refused.
    const done = await browser.go(callback)
    expect(done.status).toBe(302)
    expect(new URL(done.headers.get("location")!).searchParams.get("code")).toBeTruthy()
    await refusedPage(await browser.go(callback))
  })

  it("malformed sign-in requests are refused with a 4xx, never a 500, and grant nothing", async () => {
    const form = (body: string) => ({
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: base },
      body,
    })
    const requests: Array<[string, RequestInit?]> = [
      ["/authorize"],
      ["/authorize?client_id=nobody"],
      ["/authorize?response_type=token&client_id=nobody&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"],
      ["/authorize", form("consent_handle=forged&decision=approve")],
      ["/authorize", form("consent_handle=forged&decision=deny")],
      ["/authorize", form("decision=maybe")],
      ["/oauth/github/callback"],
      ["/oauth/github/callback?error=access_denied&state=forged"],
      ["/oauth/github/callback?code=abc"],
      ["/oauth/token", form("grant_type=authorization_code&code=a:b:c&client_id=nobody")],
      ["/oauth/token", form("grant_type=refresh_token&refresh_token=a:b:c&client_id=nobody")],
      ["/oauth/register", { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" }],
      [
        "/oauth/register",
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ redirect_uris: ["http://attacker.example/cb"], token_endpoint_auth_method: "none" }),
        },
      ],
    ]
    for (const [path, init] of requests) {
      const response = await new Browser().go(`${base}${path}`, init)
      expect(response.status, `${init?.method ?? "GET"} ${path}`).toBeGreaterThanOrEqual(400)
      expect(response.status, `${init?.method ?? "GET"} ${path}`).toBeLessThan(500)
      expect(response.headers.get("location")).toBeNull()
      expect(await response.text()).not.toMatch(/"access_token"|name="consent_handle"/)
    }
  })

  it("a token is good for the resource it was minted for: not another origin, not / when minted for /mcp", async () => {
    github.signInAs({ login: "barbara", id: 1939 })
    const { tokens } = await signInByHand(base, `${base}/mcp`)
    expect((await initialize(base, tokens.access_token)).status).toBe(200)
    // The same Worker under another name is another resource (and another issuer).
    const elsewhere = await initialize(`https://localhost:${port}`, tokens.access_token)
    expect(elsewhere.status).toBe(403)
    expect(await errorOf(elsewhere)).toMatchObject({ code: "wrong_resource" })
    // A token for /mcp is not one for the HTTP API beside it.
    const root = await loopbackFetch(`${base}/v1/counter/barbara-1`, { headers: bearer(tokens.access_token) })
    expect(root.status).toBe(403)
    expect(await errorOf(root)).toMatchObject({ code: "wrong_resource" })
  })
})

describe("{login}.BASE_DOMAIN is that user's namespace", () => {
  const at = (login: string) => `https://${login}.${BASE_DOMAIN}:${port}`

  it("Alice signs in at hers and reads there; her token at Bob's is 403; Bob cannot sign in at hers", async () => {
    github.signInAs({ login: "Alice", id: 4242 })
    const alice = at("alice")
    const { tokens } = await signInByHand(alice)
    const read = (origin: string) =>
      loopbackFetch(`${origin}/v1/counter/home`, { headers: bearer(tokens.access_token) })
    expect((await read(alice)).status).toBe(200)
    const wrong = await read(at("bob"))
    expect(wrong.status).toBe(403)
    expect(await errorOf(wrong)).toMatchObject({ code: "wrong_tenant" })

    // Bob signs in with GitHub at alice.{BASE_DOMAIN}: the client gets access_denied, no code.
    github.signInAs({ login: "bob", id: 77 })
    const clientId = await register(alice)
    const { url, state } = authorizationUrl({ origin: alice, clientId, resource: alice })
    const { landed } = await consent(new Browser(), url, "approve")
    expect(landed.searchParams.get("error")).toBe("access_denied")
    expect(landed.searchParams.get("state")).toBe(state)
    expect(landed.searchParams.get("code")).toBeNull()
  })
})

describe("the inspector's Sign in with GitHub, in headless Chromium", () => {
  it("signs in, follows an actor over a WebSocket with the OAuth token, refreshes a revoked token, signs out", async () => {
    github.signInAs({ login: "Hopper", id: 1906 })
    const page = await chromiumBrowser.newPage({ ignoreHTTPSErrors: true })
    const id = `inspect-oauth-${Date.now()}`
    await page.goto(`${base}/inspect/counter/${id}`)
    await expect.poll(() => page.textContent("#status")).toContain("unauthenticated")
    await page.click("#sign-in")
    // The consent page: it names the inspector; approving goes to GitHub and back to /inspect.
    await page.waitForURL(/\/authorize\?/)
    expect(await page.textContent("body")).toContain("emberlog inspector")
    await page.click('button[name="decision"][value="approve"]')
    await page.waitForURL(`${base}/inspect/counter/${id}`)
    await expect.poll(() => page.textContent("#signed-in")).toBe("signed in as hopper")
    const token = await page.evaluate(() => (globalThis as any).sessionStorage.getItem("emberlog.token") as string)
    expect(token).toMatch(/^hopper:/)
    expect(await page.inputValue("#token")).toBe(token)
    await expect.poll(() => page.textContent("#live")).toBe("live") // the socket took the b64u subprotocol
    await expect.poll(() => page.textContent("#chain")).toContain("ok") // admin within the user's own tenant

    // A command from the page arrives over the socket, as Hopper.
    await page.fill("#command", '{"type": "Increment", "by": 5}')
    await page.click("#send")
    await expect.poll(() => page.textContent("#version")).toBe("1")
    await expect.poll(() => page.locator("#events tr").count()).toBe(1)
    expect(await page.locator("#events tr").first().textContent()).toContain("Hopper")

    const stored = () => page.evaluate(() => (globalThis as any).sessionStorage.getItem("emberlog.token") as string)
    const signIn = () => page.evaluate(() => JSON.parse((globalThis as any).sessionStorage.getItem("emberlog.oauth")))

    // Expired by the clock (the server's TTL is an hour): the page refreshes before its next read.
    await page.evaluate(() => {
      const storage = (globalThis as any).sessionStorage
      storage.setItem(
        "emberlog.oauth",
        JSON.stringify({ ...JSON.parse(storage.getItem("emberlog.oauth")), expires_at: Date.now() }),
      )
    })
    await page.click("#verify")
    await expect.poll(stored).not.toBe(token)
    await expect.poll(() => page.textContent("#chain")).toContain("ok")
    const second = await stored()
    expect((await signIn()).expires_at).toBeGreaterThan(Date.now() + 60_000)

    // Revoked behind the page's back: its next read is a 401, it refreshes once and reads again.
    const { client_id } = (await signIn()) as { client_id: string }
    const revoked = await tokenRequest(base, { token: second, token_type_hint: "access_token", client_id })
    expect(revoked.status).toBe(200)
    expect((await loopbackFetch(`${base}/v1/counter/${id}`, { headers: bearer(second) })).status).toBe(401)
    await page.click("#verify")
    await expect.poll(stored).not.toBe(second)
    await expect.poll(() => page.textContent("#chain")).toContain("ok")
    const refreshed = await stored()
    expect(await page.inputValue("#token")).toBe(refreshed)
    expect((await loopbackFetch(`${base}/v1/counter/${id}`, { headers: bearer(refreshed) })).status).toBe(200)

    // Signing out revokes the grant: the token is dead, the field is empty.
    await page.click("#sign-out")
    await expect.poll(() => page.textContent("#status")).toBe("Signed out")
    expect(await page.inputValue("#token")).toBe("")
    await expect
      .poll(async () => (await loopbackFetch(`${base}/v1/counter/${id}`, { headers: bearer(refreshed) })).status)
      .toBe(401)
    await page.close()
  })

  it("registers anew when the server has forgotten its registration", async () => {
    github.signInAs({ login: "Hopper", id: 1906 })
    const page = await chromiumBrowser.newPage({ ignoreHTTPSErrors: true })
    await page.goto(`${base}/inspect`)
    await page.evaluate(
      ([issuer]) =>
        (globalThis as any).localStorage.setItem(
          "emberlog.oauth.client",
          JSON.stringify({
            issuer,
            client_id: "forgotten",
            redirect_uri: `${issuer}/inspect`,
            registered_at: Date.now(),
          }),
        ),
      [base],
    )
    await page.click("#sign-in")
    await page.waitForURL(/\/authorize\?/)
    expect(await page.textContent("body")).toMatch(/Sign-in failed[\s\S]*client_id/) // the server's own error page
    await page.goto(`${base}/inspect`)
    await page.click("#sign-in")
    await page.waitForURL(/\/authorize\?/)
    await page.click('button[name="decision"][value="approve"]')
    await page.waitForURL(`${base}/inspect`)
    await expect.poll(() => page.textContent("#signed-in")).toBe("signed in as hopper")
    await page.close()
  })

  it("refuses an answer whose state it did not send", async () => {
    const page = await chromiumBrowser.newPage({ ignoreHTTPSErrors: true })
    await page.goto(`${base}/inspect?code=stolen&state=forged`)
    await expect.poll(() => page.textContent("#status")).toContain("state mismatch")
    expect(page.url()).toBe(`${base}/inspect`)
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem("emberlog.token"))).toBeNull()
    await page.close()
  })
})
