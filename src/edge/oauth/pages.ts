/**
 * The pages a person sees while signing in: the consent page (which client, where its access
 * goes, which scopes) and the page of an error that cannot go back to the client. Server-rendered
 * with hono/html, which escapes every interpolated value: client names, URIs and scopes come
 * from whoever registered the client.
 */
import { html } from "hono/html"
import type { HtmlEscapedString } from "hono/utils/html"

const STYLE = `
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
main { max-width: 34rem; margin: 3rem auto; background: #fff; border: 1px solid #dde1e8; border-radius: 8px; padding: 1.5rem 2rem; }
h1 { font-size: 1.25rem; margin-top: 0; }
code { background: #f0f2f5; padding: 0 .25rem; border-radius: 3px; word-break: break-all; }
.warning { background: #fff4e5; border: 1px solid #f5c26b; border-radius: 6px; padding: .5rem .8rem; }
.buttons { display: flex; gap: .8rem; margin-top: 1.5rem; }
button { font: inherit; padding: .45rem 1.2rem; border-radius: 6px; border: 1px solid #1d2330; cursor: pointer; }
button[value=approve] { background: #1d2330; color: #fff; }
button[value=deny] { background: #fff; }
`

/** What each scope lets the client do, in the words the consent page uses. */
export const SCOPE_MEANINGS: Readonly<Record<string, string>> = {
  read: "read your actors, their events and topics",
  write: "send commands to your actors",
  admin: "administer your own namespace (verify logs)",
}

const shell = (title: string, body: HtmlEscapedString | Promise<HtmlEscapedString>) =>
  html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>${title}</title>
        <style>
          ${STYLE}
        </style>
      </head>
      <body>
        <main>${body}</main>
      </body>
    </html>`

export interface ConsentFacts {
  readonly clientName: string
  /** A Client ID Metadata Document client's verified domain; a registered client's name is its own claim. */
  readonly clientDomain?: string
  readonly redirectUri: string
  readonly redirectHost: string
  readonly redirectIsLoopback: boolean
  readonly scopes: ReadonlyArray<string>
  /** Who signs in, and to what: the host the user is on. */
  readonly host: string
  readonly handle: string
}

export const consentPage = (facts: ConsentFacts) =>
  shell(
    `Sign in to ${facts.host}`,
    html`<h1>Allow <strong>${facts.clientName}</strong> to use emberlog at ${facts.host}?</h1>
      <p>
        ${
          facts.clientDomain === undefined
            ? html`This app registered itself: its name is not verified.`
            : html`Published by <strong>${facts.clientDomain}</strong>.`
        }
        Access will be sent to <strong>${facts.redirectHost}</strong> (<code>${facts.redirectUri}</code>).
      </p>
      ${
        facts.redirectIsLoopback
          ? html`<p class="warning">
              <strong>This sends access to an app on your computer.</strong> Continue only if you just started signing
              in from it.
            </p>`
          : ""
      }
      <p>It asks to:</p>
      <ul>
        ${facts.scopes.map((scope) => html`<li><code>${scope}</code>: ${SCOPE_MEANINGS[scope] ?? scope}</li>`)}
      </ul>
      <p>You will sign in with GitHub next; the app gets an emberlog token, never your GitHub account.</p>
      <form method="post" action="/authorize">
        <input type="hidden" name="consent_handle" value="${facts.handle}" />
        <div class="buttons">
          <button type="submit" name="decision" value="approve">Allow</button>
          <button type="submit" name="decision" value="deny">Deny</button>
        </div>
      </form>`,
  )

export const errorPage = (code: string, message: string) =>
  shell(
    "Sign-in failed",
    html`<h1>Sign-in failed</h1>
      <p>${message}</p>
      <p><code>${code}</code></p>
      <p>Start again from the app you were signing in to.</p>`,
  )
