/**
 * The upstream identity provider: GitHub's OAuth web flow, with PKCE, at the endpoints the
 * settings name (GITHUB_OAUTH_URL, GITHUB_API_URL: a stand-in GitHub in tests). Only the
 * user's public identity is asked for (no GitHub scope), and GitHub's token is dropped as soon
 * as `/user` has answered: nothing here needs it afterwards.
 */
import type { Env } from "../env.js"

export const DEFAULT_GITHUB_OAUTH_URL = "https://github.com"
export const DEFAULT_GITHUB_API_URL = "https://api.github.com"

export interface GithubUser {
  readonly login: string
  /** Stable across renames, unlike the login. */
  readonly id: number
}

/** Why GitHub did not give us a user: the user (or GitHub) refused, or GitHub could not be reached. */
export class UpstreamRefused extends Error {
  constructor(
    readonly code: "access_denied" | "temporarily_unavailable",
    message: string,
  ) {
    super(message)
  }
}

const trimSlash = (url: string) => url.replace(/\/+$/, "")
const oauthBase = (env: Env) => trimSlash(env.GITHUB_OAUTH_URL || DEFAULT_GITHUB_OAUTH_URL)
const apiBase = (env: Env) => trimSlash(env.GITHUB_API_URL || DEFAULT_GITHUB_API_URL)

/** GitHub logins: 1–39 letters, digits and hyphens. Anything else from `/user` is not GitHub's answer. */
const LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "")

/** A fresh PKCE verifier (RFC 7636: 43–128 unreserved characters) and its S256 challenge. */
export const pkcePair = async (): Promise<{ verifier: string; challenge: string }> => {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)))
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))
  return { verifier, challenge: base64url(new Uint8Array(digest)) }
}

/** Where the browser goes to sign in at GitHub; GitHub sends it back to `redirectUri` with `code` and `state`. */
export const githubAuthorizeUrl = (
  env: Env,
  { redirectUri, state, challenge }: { redirectUri: string; state: string; challenge: string },
): string => {
  const url = new URL(`${oauthBase(env)}/login/oauth/authorize`)
  url.searchParams.set("client_id", env.GITHUB_CLIENT_ID ?? "")
  url.searchParams.set("redirect_uri", redirectUri)
  url.searchParams.set("state", state)
  url.searchParams.set("code_challenge", challenge)
  url.searchParams.set("code_challenge_method", "S256")
  return url.toString()
}

const unreachable = (what: string, detail: string) =>
  new UpstreamRefused("temporarily_unavailable", `GitHub could not be reached (${what}): ${detail}`)

const getJson = async (what: string, response: Promise<Response>): Promise<Record<string, unknown>> => {
  let answered: Response
  try {
    answered = await response
  } catch (error) {
    throw unreachable(what, String(error))
  }
  if (!answered.ok) throw unreachable(what, `HTTP ${answered.status}`)
  try {
    const body: unknown = await answered.json()
    if (typeof body === "object" && body !== null) return body as Record<string, unknown>
  } catch {
    // falls through: a body that is not a JSON object is not GitHub's answer
  }
  throw unreachable(what, "the answer is not a JSON object")
}

/** GitHub's user for the code it gave the callback (the code and the PKCE verifier are single use there). */
export const githubUser = async (
  env: Env,
  { code, verifier, redirectUri }: { code: string; verifier: string; redirectUri: string },
): Promise<GithubUser> => {
  const exchanged = await getJson(
    "access_token",
    fetch(`${oauthBase(env)}/login/oauth/access_token`, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        client_id: env.GITHUB_CLIENT_ID ?? "",
        client_secret: env.GITHUB_CLIENT_SECRET ?? "",
        code,
        redirect_uri: redirectUri,
        code_verifier: verifier,
      }),
    }),
  )
  // GitHub refuses a code with 200 and {error, error_description}, not with a 4xx.
  if (typeof exchanged.error === "string") {
    const described = typeof exchanged.error_description === "string" ? `: ${exchanged.error_description}` : ""
    throw new UpstreamRefused("access_denied", `GitHub refused the sign-in (${exchanged.error}${described})`)
  }
  const token = exchanged.access_token
  if (typeof token !== "string" || token.length === 0)
    throw unreachable("access_token", "no access_token in the answer")
  const user = await getJson(
    "/user",
    fetch(`${apiBase(env)}/user`, {
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: "application/vnd.github+json",
        // api.github.com refuses requests without one.
        "User-Agent": "emberlog",
      },
    }),
  )
  const { login, id } = user
  if (typeof login !== "string" || login === "" || typeof id !== "number" || !Number.isSafeInteger(id))
    throw unreachable("/user", "the answer has no valid login and id")
  // Enterprise Managed Users have logins like `alice_acme`: a login, but no tenant name (or subdomain).
  if (!LOGIN.test(login))
    throw new UpstreamRefused(
      "access_denied",
      `The GitHub login ${JSON.stringify(login.slice(0, 64))} cannot sign in here: logins of letters, digits and hyphens only (no managed-user logins)`,
    )
  return { login, id }
}
