/**
 * The inspector: `GET /inspect` and `/inspect/{kind}/{id}` serve one server-rendered page
 * and `/inspect/app.js` its script. The page holds no data: the script reads everything
 * through the public API with the visitor's token, so the inspector sees exactly what the
 * token may see.
 */
import { html } from "hono/html"
import type { App } from "../env.js"
import type { KindRegistry } from "../kind.js"
import { inspectorScript } from "./script.js"

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { display: flex; gap: 1rem; align-items: center; padding: .6rem 1rem; background: #1d2330; color: #fff; flex-wrap: wrap; }
header h1 { font-size: 1rem; margin: 0 1rem 0 0; }
header input, header select, header button { font: inherit; }
header a { color: #fff; }
main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; padding: 1rem; }
section { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: .8rem; min-width: 0; }
section.wide { grid-column: 1 / -1; }
#actor { display: contents; } #actor[hidden] { display: none; }
h2 { font-size: .95rem; margin: 0 0 .5rem; }
pre { background: #f0f2f5; padding: .5rem; overflow: auto; max-height: 20rem; margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
td, th { border-bottom: 1px solid #eceef2; padding: .25rem .4rem; text-align: left; vertical-align: top; word-break: break-all; }
tbody tr { cursor: pointer; } tbody tr:hover { background: #eef3ff; }
input[type=range] { width: 100%; }
del { color: #b42318; } ins { color: #067647; text-decoration: none; }
.ok { color: #067647; } .error { color: #b42318; }
#status { padding: 0 1rem; min-height: 1.4em; }
textarea { width: 100%; font: 12px monospace; box-sizing: border-box; }
#topic-entries { font: 12px monospace; max-height: 16rem; overflow: auto; }
#picker { list-style: none; padding: 0; margin: .4rem 0; max-height: 12rem; overflow: auto; columns: 3 14rem; font: 12px monospace; }
#picker a { cursor: pointer; color: #1849a9; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
figure { margin: 0; } figcaption { font-size: 12px; color: #5b6474; }
.charts svg { width: 100%; height: 100px; background: #f0f2f5; }
.charts polyline { fill: none; stroke: #1849a9; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.charts circle { fill: #1849a9; }
.charts text { font: 10px system-ui, sans-serif; fill: #5b6474; }
`

/** Usage of the token's tenant by day (GET /v1/usage), read when asked: the page stays one request until then. */
const usagePanel = html`<section class="wide" id="usage">
  <h2>Usage of this tenant, by UTC day</h2>
  <label>from <input id="usage-from" type="date" /></label>
  <label>to <input id="usage-to" type="date" /></label>
  <button id="usage-show" type="button">Show usage</button>
  <span id="usage-status"></span>
  <table>
    <thead>
      <tr>
        <th>day</th>
        <th>requests</th>
        <th>commands</th>
        <th>events</th>
        <th>tool calls</th>
        <th>refusals</th>
        <th>429s</th>
      </tr>
    </thead>
    <tbody id="usage-days"></tbody>
  </table>
</section>`

/**
 * This isolate's metrics (GET /v1/admin/metrics, operator scope), polled while watched: totals,
 * latency per route class, and two charts of the last minutes (requests/s, p95) drawn as inline SVG.
 */
const metricsPanel = html`<section class="wide" id="metrics">
  <h2>Metrics of this isolate</h2>
  <button id="metrics-watch" type="button">Watch metrics</button>
  <span id="metrics-status"></span>
  <p id="metrics-summary"></p>
  <div class="charts">
    <figure>
      <figcaption>requests/s, last minutes (this panel's own polls, one each 2 s, included)</figcaption>
      <svg
        id="metrics-rate"
        viewBox="0 0 600 100"
        preserveAspectRatio="none"
        role="img"
        aria-label="requests per second"
      ></svg>
    </figure>
    <figure>
      <figcaption>p95 latency (ms), last minutes</figcaption>
      <svg id="metrics-p95" viewBox="0 0 600 100" preserveAspectRatio="none" role="img" aria-label="p95 latency"></svg>
    </figure>
  </div>
  <table>
    <thead>
      <tr>
        <th>route class</th>
        <th>requests</th>
        <th>p50 ms</th>
        <th>p95 ms</th>
        <th>p99 ms</th>
      </tr>
    </thead>
    <tbody id="metrics-latency"></tbody>
  </table>
</section>`

/** The page lists the served kinds, and the topics worth tailing: one per kind, then the kinds' extra topics. */
const page = (served: KindRegistry, preset: { kind?: string; id?: string }) =>
  html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>emberlog inspector</title>
        <style>
          ${STYLE}
        </style>
        <script src="/inspect/app.js" defer></script>
      </head>
      <body data-kind="${preset.kind ?? ""}" data-id="${preset.id ?? ""}">
        <header>
          <h1>emberlog inspector</h1>
          <a href="#metrics">Metrics</a>
          <form id="open-form">
            <select id="kind" aria-label="kind">
              ${served.names.map((kind) => html`<option>${kind}</option>`)}
            </select>
            <input id="id" aria-label="id" placeholder="id" list="actor-ids" autocomplete="off" required />
            <datalist id="actor-ids"></datalist>
            <button type="submit">Open</button>
          </form>
          <label
            >Token <input id="token" type="password" placeholder="Bearer token (when auth is on)" autocomplete="off"
          /></label>
          <span id="oauth" hidden>
            <button id="sign-in" type="button">Sign in with GitHub</button>
            <span id="signed-in"></span>
            <button id="sign-out" type="button" hidden>Sign out</button>
          </span>
        </header>
        <p id="status" role="status"></p>
        <main>
          <section class="wide" id="picker-section">
            <h2>Actors of this tenant</h2>
            <label>id prefix <input id="picker-prefix" aria-label="id prefix" autocomplete="off" /></label>
            <button id="picker-refresh" type="button">List</button>
            <ul id="picker"></ul>
            <button id="picker-more" type="button" hidden>More</button>
          </section>
          <div id="actor" hidden>
            <section>
              <h2>Now: version <span id="version">0</span> · <span id="live">connecting…</span></h2>
              <p>Hash chain: <span id="chain">…</span> <button id="verify" type="button">Check again</button></p>
              <pre id="state"></pre>
            </section>
            <section>
              <h2 id="past-label">State at seq</h2>
              <input id="slider" type="range" min="0" max="0" value="0" aria-label="history" />
              <label>seq <input id="seq" type="number" min="0" value="0" /></label>
              <label>diff from seq <input id="diff-from" type="number" min="0" value="0" /></label>
              <pre id="past-state"></pre>
              <h2>Changes</h2>
              <ul id="diff"></ul>
            </section>
            <section class="wide">
              <h2>Events (newest first)</h2>
              <table>
                <thead>
                  <tr>
                    <th>seq</th>
                    <th>time</th>
                    <th>type</th>
                    <th>principal</th>
                    <th>data</th>
                    <th>hash</th>
                  </tr>
                </thead>
                <tbody id="events"></tbody>
              </table>
              <button id="older" hidden>Older events</button>
            </section>
            <section class="wide">
              <h2>Send a command</h2>
              <textarea id="command" rows="3">{"type": "Increment", "by": 1}</textarea>
              <button id="send">Send</button>
            </section>
          </div>
          ${usagePanel} ${metricsPanel}
          <section class="wide">
            <h2>Topic tail</h2>
            <select id="topic" aria-label="topic">
              ${served.topics.map((topic) => html`<option>${topic}</option>`)}
            </select>
            <button id="tail">Tail</button>
            <ul id="topic-entries"></ul>
          </section>
        </main>
      </body>
    </html>`

const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
}

export const inspectorRoutes = (app: App, served: KindRegistry) => {
  app.get("/inspect/app.js", (c) =>
    c.body(inspectorScript, 200, {
      "Content-Type": "text/javascript; charset=utf-8",
      "Cache-Control": "no-cache",
      ...SECURITY_HEADERS,
    }),
  )
  app.get("/inspect", (c) => c.html(page(served, {}), 200, SECURITY_HEADERS))
  app.get("/inspect/:kind/:id", (c) =>
    c.html(page(served, { kind: c.req.param("kind"), id: c.req.param("id") }), 200, SECURITY_HEADERS),
  )
}
