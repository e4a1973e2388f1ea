/**
 * A stand-in GitHub on node:http for the OAuth tests: the three endpoints the Worker uses
 * (README, "Sign in with GitHub"), answering as github.com and api.github.com do, including
 * their failures (the token endpoint says `error` in a 200). It checks what GitHub checks: the
 * client secret, that a code is used once, for the redirect URI it was issued to, with the PKCE
 * verifier of its challenge. The test decides who signs in (`signInAs`).
 */
import { createHash, randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export interface GitHubUser {
  readonly login: string
  readonly id: number
  readonly name?: string
  readonly email?: string
}

interface IssuedCode {
  readonly clientId: string
  readonly redirectUri: string
  readonly codeChallenge: string
  readonly user: GitHubUser
  used: boolean
}

/** What the Worker sent, endpoint by endpoint, for assertions ("GitHub was never asked"). */
export interface GitHubCall {
  readonly endpoint: "authorize" | "access_token" | "user"
  readonly params: Record<string, string>
  readonly headers: IncomingMessage["headers"]
}

export interface StandInGitHub {
  /** Serves both GITHUB_OAUTH_URL and GITHUB_API_URL. */
  readonly url: string
  readonly calls: Array<GitHubCall>
  /** Who the next authorizations sign in as, or `"deny"`: the user cancels on GitHub's page. */
  signInAs(user: GitHubUser | "deny"): void
  close(): Promise<void>
}

const base64url = (bytes: Buffer) => bytes.toString("base64url")
const s256 = (verifier: string) => base64url(createHash("sha256").update(verifier).digest())

const readBody = async (request: IncomingMessage) => {
  const chunks: Array<Buffer> = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString("utf8")
}

const json = (response: ServerResponse, status: number, body: unknown) =>
  response.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body))

export const startGitHub = async (app: { clientId: string; clientSecret: string }): Promise<StandInGitHub> => {
  const codes = new Map<string, IssuedCode>()
  const tokens = new Map<string, GitHubUser>()
  const calls: Array<GitHubCall> = []
  let next: GitHubUser | "deny" = { login: "octocat", id: 1 }

  // GET /login/oauth/authorize: GitHub's sign-in and consent, answered at once for `next`.
  const authorize = (url: URL, response: ServerResponse) => {
    const params = Object.fromEntries(url.searchParams)
    const { client_id, redirect_uri, state, code_challenge, code_challenge_method } = params
    if (client_id !== app.clientId) return json(response, 404, { message: "Not Found: unknown client_id" })
    if (!redirect_uri) return json(response, 400, { message: "redirect_uri is required" })
    // Not GitHub's rule (PKCE is optional there) but the contract's: the Worker always sends S256.
    if (!code_challenge || code_challenge_method !== "S256")
      return json(response, 400, { message: "code_challenge with code_challenge_method=S256 is required" })
    const back = new URL(redirect_uri)
    if (next === "deny") {
      back.searchParams.set("error", "access_denied")
      back.searchParams.set("error_description", "The user has denied your application access.")
    } else {
      const code = base64url(randomBytes(15))
      codes.set(code, {
        clientId: client_id,
        redirectUri: redirect_uri,
        codeChallenge: code_challenge,
        user: next,
        used: false,
      })
      back.searchParams.set("code", code)
    }
    if (state !== undefined) back.searchParams.set("state", state)
    response.writeHead(302, { location: back.href }).end()
  }

  // POST /login/oauth/access_token: failures are HTTP 200 with `error`, as on github.com.
  const accessToken = (params: Record<string, string>, response: ServerResponse) => {
    const refuse = (error: string, error_description: string) => json(response, 200, { error, error_description })
    if (params.client_id !== app.clientId || params.client_secret !== app.clientSecret)
      return refuse("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
    const issued = codes.get(params.code ?? "")
    if (issued === undefined || issued.used || issued.clientId !== params.client_id)
      return refuse("bad_verification_code", "The code passed is incorrect or expired.")
    issued.used = true
    if (params.redirect_uri !== undefined && params.redirect_uri !== issued.redirectUri)
      return refuse(
        "redirect_uri_mismatch",
        "The redirect_uri MUST match the registered callback URL for this application.",
      )
    if (!params.code_verifier || s256(params.code_verifier) !== issued.codeChallenge)
      return refuse("bad_verification_code", "The code_verifier does not match the code_challenge.")
    const token = `gho_${base64url(randomBytes(27))}`
    tokens.set(token, issued.user)
    json(response, 200, { access_token: token, token_type: "bearer", scope: "" })
  }

  // GET /user (api.github.com): needs a User-Agent, like the real API.
  const user = (request: IncomingMessage, response: ServerResponse) => {
    if (!request.headers["user-agent"])
      return json(response, 403, {
        message: "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
      })
    const token = request.headers.authorization?.match(/^(?:Bearer|token) (\S+)$/i)?.[1]
    const found = token === undefined ? undefined : tokens.get(token)
    if (found === undefined) return json(response, 401, { message: "Bad credentials" })
    json(response, 200, { login: found.login, id: found.id, name: found.name ?? null, email: found.email ?? null })
  }

  const server: Server = createServer(async (request, response) => {
    try {
      const url = new URL(request.url ?? "/", "http://github.test")
      if (request.method === "GET" && url.pathname === "/login/oauth/authorize") {
        calls.push({ endpoint: "authorize", params: Object.fromEntries(url.searchParams), headers: request.headers })
        return authorize(url, response)
      }
      if (request.method === "POST" && url.pathname === "/login/oauth/access_token") {
        const params = Object.fromEntries(new URLSearchParams(await readBody(request)))
        calls.push({ endpoint: "access_token", params, headers: request.headers })
        if (!request.headers.accept?.includes("application/json"))
          // github.com answers form-encoded without it; the Worker must ask for JSON.
          return response
            .writeHead(200, { "content-type": "application/x-www-form-urlencoded" })
            .end("error=accept_json_please")
        return accessToken(params, response)
      }
      if (request.method === "GET" && url.pathname === "/user") {
        calls.push({ endpoint: "user", params: {}, headers: request.headers })
        return user(request, response)
      }
      json(response, 404, { message: "Not Found" })
    } catch (error) {
      json(response, 500, { message: String(error) })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    signInAs: (user) => void (next = user),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
