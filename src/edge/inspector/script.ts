/**
 * The inspector's browser script, served as-is at /inspect/app.js (no build step). It reads
 * through the public HTTP API with the token from session storage, follows the actor's
 * WebSocket (the token travels as the `bearer` subprotocol, the one header a browser
 * WebSocket can send) and renders with plain DOM calls. "Sign in with GitHub" makes it an
 * OAuth 2.1 public client of the server it is served by (README, "The inspector's sign-in").
 */
export const inspectorScript = String.raw`"use strict";
const $ = (id) => document.getElementById(id);
const PAGE = 50;
const TOPIC_BACKLOG = 50;
// version: the newest seq known; shown: the newest seq in the table (what the socket resumes after);
// opened counts opens, so replies to an earlier open are dropped; travels does the same for the slider.
// verified: the version the chain was last found good at (null: not checked, or broken).
const view = {
  kind: null, id: null, version: 0, verified: null, shown: 0, stateVersion: -1, oldest: null, socket: null,
  topicSocket: null, cache: new Map(), opened: 0, travels: 0, refreshing: false, refreshAgain: false,
};

const token = () => sessionStorage.getItem("emberlog.token") || "";
const headers = () => (token() ? { Authorization: "Bearer " + token() } : {});
const wsUrl = (path) => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
// A subprotocol is an HTTP token: OAuth tokens (user:grant:secret) have ':', so they travel as b64u.<base64url>.
const SUBPROTOCOL_TOKEN = /^[!#$%&'*+.^_\x60|~0-9A-Za-z-]+$/;
const bearerSubprotocol = (value) =>
  SUBPROTOCOL_TOKEN.test(value) ? value : "b64u." + base64url(new TextEncoder().encode(value));
const openSocket = (path) =>
  token() ? new WebSocket(wsUrl(path), ["bearer", bearerSubprotocol(token())]) : new WebSocket(wsUrl(path));
const base = () => "/v1/" + encodeURIComponent(view.kind) + "/" + encodeURIComponent(view.id);
// Sockets ask for their backlog in batch frames ({"type":"events","events":[…]}, topics "entries"),
// and ack each one with its last seq: that is what lets a long backlog go on on the same socket.
const entriesOf = (socket, frame, single, batch, positionOf) => {
  if (frame.type === single) return [frame[single]];
  if (frame.type !== batch) return [];
  const entries = frame[batch];
  if (entries.length > 0) socket.send(JSON.stringify({ type: "ack", seq: positionOf(entries[entries.length - 1]) }));
  return entries;
};

async function api(path, init) {
  await freshToken();
  const sent = token();
  const send = () => fetch(path, { ...init, headers: { ...headers(), ...(init && init.headers) } });
  let response = await send();
  // Revoked or expired early: a signed-in inspector refreshes once (or another call just did) and retries.
  if (response.status === 401 && (token() !== sent || (await refreshSignIn(sent)))) response = await send();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((body.error && body.error.code + ": " + body.error.message) || "HTTP " + response.status);
  return body;
}

function show(id, value) {
  $(id).textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function status(message, isError) {
  const el = $("status");
  el.textContent = message;
  el.className = isError ? "error" : "";
}

/** The state at a seq, fetched once per seq (a past state never changes). */
async function stateAt(seq) {
  const key = view.kind + "/" + view.id + "@" + seq;
  if (!view.cache.has(key)) {
    const state = api(base() + "?at=" + seq).then((r) => r.state);
    view.cache.set(key, state);
    state.catch(() => view.cache.delete(key)); // a failed read (429, expired token) is tried again next time
  }
  return view.cache.get(key);
}

/** Changed leaves between two JSON values: [{path, before, after}]. */
function diff(before, after, path, out) {
  out = out || [];
  path = path || "";
  const isObject = (v) => v !== null && typeof v === "object";
  if (isObject(before) && isObject(after) && Array.isArray(before) === Array.isArray(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const key of keys) diff(before[key], after[key], path + (Array.isArray(after) ? "[" + key + "]" : "." + key), out);
  } else if (JSON.stringify(before) !== JSON.stringify(after)) {
    out.push({ path: path || "(root)", before, after });
  }
  return out;
}

function renderDiff(changes) {
  const list = $("diff");
  list.replaceChildren();
  if (changes.length === 0) list.append(Object.assign(document.createElement("li"), { textContent: "no change" }));
  for (const change of changes) {
    const item = document.createElement("li");
    const fmt = (v) => (v === undefined ? "∅" : JSON.stringify(v));
    item.innerHTML = "<code></code>: <del></del> → <ins></ins>";
    item.querySelector("code").textContent = change.path;
    item.querySelector("del").textContent = fmt(change.before);
    item.querySelector("ins").textContent = fmt(change.after);
    list.append(item);
  }
}

async function travel() {
  const to = Number($("seq").value);
  const from = Number($("diff-from").value);
  const travel = ++view.travels;
  $("slider").value = String(to);
  try {
    const [then, before] = await Promise.all([stateAt(to), stateAt(Math.min(from, to))]);
    if (travel !== view.travels) return; // the slider has moved on
    show("past-state", then);
    $("past-label").textContent = "State at seq " + to + " of " + view.version;
    renderDiff(diff(before, then));
  } catch (error) {
    status(String(error.message || error), true);
  }
}

// Laying out a table cell of a few hundred KB takes the browser seconds: long data is cut in the table.
const DATA_SHOWN = 2000;

function eventRow(event) {
  const row = document.createElement("tr");
  row.dataset.seq = String(event.seq);
  const json = JSON.stringify(event.data);
  const data = json.length > DATA_SHOWN ? json.slice(0, DATA_SHOWN) + "… (" + json.length + " characters)" : json;
  const at = new Date(event.meta.at).toISOString();
  const cells = [event.seq, at, event.type, event.meta.principal, data, event.hash.slice(0, 12) + "…"];
  for (const value of cells) row.append(Object.assign(document.createElement("td"), { textContent: String(value) }));
  row.lastChild.title = event.hash;
  row.addEventListener("click", () => {
    $("seq").value = String(event.seq);
    $("diff-from").value = String(Math.max(0, event.seq - 1));
    travel();
  });
  return row;
}

/** Up to count events after a seq, following next: the server ends a page early when its events are large. */
async function readEvents(after, count) {
  const events = [];
  for (let cursor = after; events.length < count; ) {
    const page = await api(base() + "/events?after=" + cursor + "&limit=" + (count - events.length));
    events.push(...page.events);
    if (page.next === null || page.events.length === 0) break;
    cursor = page.next;
  }
  return { events };
}

async function loadOlder() {
  if (view.oldest === null || view.oldest <= 1) return;
  const after = Math.max(0, view.oldest - 1 - PAGE);
  const page = await readEvents(after, Math.min(PAGE, view.oldest - 1));
  const body = $("events");
  for (const event of page.events.slice().reverse()) body.append(eventRow(event));
  view.oldest = after + 1;
  $("older").hidden = view.oldest <= 1;
}

function setVersion(version) {
  view.version = version;
  showChain();
  $("version").textContent = String(version);
  $("slider").max = String(version);
  $("seq").max = String(version);
  $("diff-from").max = String(version);
}

/** The current state; a reply older than one already shown is dropped. */
async function refreshState() {
  const opened = view.opened;
  const current = await api(base());
  if (opened !== view.opened || current.version < view.stateVersion) return;
  view.stateVersion = current.version;
  setVersion(Math.max(view.version, current.version));
  show("state", current.state);
}

/** One state read at a time while events stream in: a burst of events costs one or two reads, not one each. */
function refreshSoon() {
  if (view.refreshing) return void (view.refreshAgain = true);
  view.refreshing = true;
  refreshState()
    .catch((error) => status(error.message, true))
    .finally(() => {
      view.refreshing = false;
      if (view.refreshAgain) {
        view.refreshAgain = false;
        refreshSoon();
      }
    });
}

/** A good chain's status names the version it was verified at: events that arrived since are not covered. */
function showChain() {
  if (view.verified === null) return;
  const newer = view.version > view.verified ? " · now at version " + view.version : "";
  $("chain").textContent = "ok · verified through version " + view.verified + newer;
}

/** Walks the hash chain on the server: on open and on request, not per event (it reads the whole log). */
async function checkChain() {
  const opened = view.opened;
  view.verified = null;
  $("chain").textContent = "checking…";
  try {
    const verified = await api(base() + "/verify");
    if (opened !== view.opened) return;
    $("chain").className = verified.ok ? "ok" : "error";
    if (!verified.ok) $("chain").textContent = "BROKEN at seq " + verified.firstBadSeq + ": " + verified.reason;
    // A log without gaps: its event count is the version verified.
    view.verified = verified.ok ? verified.events : null;
    showChain();
  } catch (error) {
    $("chain").textContent = "not checked (" + error.message + ")";
    $("chain").className = "";
  }
}

function follow() {
  if (view.socket) view.socket.close();
  const sent = token();
  const socket = openSocket(base() + "/ws?batch=1&after=" + view.shown);
  let opened = false;
  view.socket = socket;
  socket.addEventListener("open", () => {
    opened = true;
    $("live").textContent = "live";
  });
  socket.addEventListener("close", () => {
    if (view.socket !== socket) return;
    $("live").textContent = "reconnecting…";
    // A socket refused before it opened may have carried a revoked token: a signed-in inspector refreshes it.
    setTimeout(async () => {
      if (view.socket !== socket) return;
      await (opened ? freshToken() : refreshSignIn(sent));
      if (view.socket === socket) follow();
    }, 1000);
  });
  socket.addEventListener("message", (message) => {
    if (view.socket !== socket) return;
    const events = entriesOf(socket, JSON.parse(message.data), "event", "events", (event) => event.seq);
    const fresh = events.filter((event) => event.seq > view.shown);
    if (fresh.length === 0) return;
    const following = Number($("seq").value) === view.version;
    for (const event of fresh) $("events").prepend(eventRow(event));
    view.shown = fresh[fresh.length - 1].seq;
    setVersion(Math.max(view.version, view.shown));
    if (view.oldest === null) view.oldest = fresh[0].seq;
    refreshSoon();
    if (following) {
      $("seq").value = String(view.version);
      travel();
    }
  });
}

async function open(kind, id) {
  const opened = ++view.opened;
  if (view.socket) view.socket.close();
  view.socket = null;
  view.kind = kind;
  view.id = id;
  view.cache.clear();
  view.oldest = null;
  view.shown = 0;
  view.stateVersion = -1;
  view.verified = null;
  setVersion(0);
  $("kind").value = kind;
  $("id").value = id;
  history.replaceState(null, "", "/inspect/" + encodeURIComponent(kind) + "/" + encodeURIComponent(id));
  $("actor").hidden = false;
  $("events").replaceChildren();
  try {
    await refreshState();
    checkChain();
    const after = Math.max(0, view.version - PAGE);
    const page = await readEvents(after, PAGE);
    if (opened !== view.opened) return;
    for (const event of page.events.slice().reverse()) $("events").append(eventRow(event));
    // Events appended since the head was read are on the page already: follow from the last one shown.
    view.shown = page.events.length > 0 ? page.events[page.events.length - 1].seq : after;
    setVersion(Math.max(view.version, view.shown));
    view.oldest = page.events.length > 0 ? after + 1 : null;
    $("older").hidden = view.oldest === null || view.oldest <= 1;
    $("seq").value = String(view.version);
    $("diff-from").value = String(Math.max(0, view.version - 1));
    await travel();
    if (opened !== view.opened) return;
    follow();
    status("Opened " + kind + "/" + id);
  } catch (error) {
    status(String(error.message || error), true);
  }
}

async function sendCommand() {
  try {
    const command = JSON.parse($("command").value);
    const reply = await api(base() + "/commands", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(command) });
    status("Committed: version " + reply.version);
  } catch (error) {
    status(String(error.message || error), true);
  }
}

async function tailTopic() {
  if (view.topicSocket) view.topicSocket.close();
  view.topicSocket = null;
  const topic = $("topic").value;
  $("topic-entries").replaceChildren();
  const path = "/v1/topics/" + encodeURIComponent(topic);
  let head;
  try {
    head = (await api(path + "/events?limit=1")).head;
  } catch (error) {
    return status(String(error.message || error), true);
  }
  // The newest entries, then live: a long topic is not replayed from its start.
  const socket = openSocket(path + "/ws?batch=1&after=" + Math.max(0, head - TOPIC_BACKLOG));
  view.topicSocket = socket;
  socket.addEventListener("message", (message) => {
    const entries = entriesOf(socket, JSON.parse(message.data), "entry", "entries", (entry) => entry.topicSeq);
    for (const { topicSeq, source, event } of entries) {
      const row = document.createElement("li");
      row.textContent = "#" + topicSeq + " " + source.kind + "/" + source.id + " seq " + event.seq + " " + event.type + " " + JSON.stringify(event.data);
      $("topic-entries").prepend(row);
    }
    while ($("topic-entries").children.length > 4 * TOPIC_BACKLOG) $("topic-entries").lastChild.remove();
  });
  socket.addEventListener("close", () => view.topicSocket === socket && status("topic " + topic + " closed", true));
}

// ---- Sign in with GitHub: this server's OAuth 2.1 authorization server, the inspector a public
// client of it (registered once per browser by DCR, PKCE S256, state checked). Tokens live in
// session storage and fill the token field, so everything above uses them like a pasted token.
const SIGN_IN = "emberlog.oauth"; // sessionStorage: { access_token, refresh_token, expires_at, client_id, token_endpoint, revocation_endpoint }
const PENDING_SIGN_IN = "emberlog.oauth.pending"; // sessionStorage, between leaving for /authorize and coming back
const REGISTERED_CLIENT = "emberlog.oauth.client"; // localStorage: { issuer, client_id, redirect_uri, registered_at }
// A registration is reused for a day: the server forgets unused ones (after 90 days, or with its KV).
const REGISTRATION_REUSED_MS = 24 * 3600 * 1000;
const REFRESH_EARLY_MS = 30000;
const signInRedirect = () => location.origin + "/inspect";
const readJson = (storage, key) => {
  try {
    return JSON.parse(storage.getItem(key) || "null");
  } catch {
    return null;
  }
};
const base64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const randomString = () => base64url(crypto.getRandomValues(new Uint8Array(32)));
const s256 = async (verifier) => base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
let authorizationServer = null; // the server's metadata, once fetched
let refreshingSignIn = null;

/** The sign-in in effect: only while the token field holds its access token (a pasted token replaces it). */
const signedIn = () => {
  const saved = readJson(sessionStorage, SIGN_IN);
  return saved && saved.access_token === token() ? saved : null;
};

async function serverMetadata() {
  if (authorizationServer) return authorizationServer;
  const response = await fetch("/.well-known/oauth-authorization-server");
  if (!response.ok) return null; // this deployment has no GitHub sign-in
  return (authorizationServer = await response.json());
}

/** The client id this browser registered here, or a new registration (RFC 7591, a public client). */
async function clientId(metadata) {
  const saved = readJson(localStorage, REGISTERED_CLIENT);
  const reusable =
    saved && saved.issuer === metadata.issuer && saved.redirect_uri === signInRedirect() &&
    Date.now() - saved.registered_at < REGISTRATION_REUSED_MS;
  if (reusable) return saved.client_id;
  const response = await fetch(metadata.registration_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      client_name: "emberlog inspector",
      redirect_uris: [signInRedirect()],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.client_id) throw new Error("registration refused: " + (body.error_description || body.error || response.status));
  localStorage.setItem(REGISTERED_CLIENT, JSON.stringify({ issuer: metadata.issuer, client_id: body.client_id, redirect_uri: signInRedirect(), registered_at: Date.now() }));
  return body.client_id;
}

async function tokenRequest(endpoint, params) {
  const response = await fetch(endpoint, { method: "POST", body: new URLSearchParams(params) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) throw new Error((body.error || "HTTP " + response.status) + (body.error_description ? ": " + body.error_description : ""));
  return body;
}

function keepSignIn(tokens, client) {
  const saved = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token || null,
    expires_at: Date.now() + (tokens.expires_in || 3600) * 1000,
    client_id: client.client_id,
    token_endpoint: client.token_endpoint,
    revocation_endpoint: client.revocation_endpoint || client.token_endpoint,
  };
  sessionStorage.setItem(SIGN_IN, JSON.stringify(saved));
  sessionStorage.setItem("emberlog.token", saved.access_token);
  $("token").value = saved.access_token;
  showSignIn();
}

function forgetSignIn() {
  if (signedIn()) {
    sessionStorage.removeItem("emberlog.token");
    $("token").value = "";
  }
  sessionStorage.removeItem(SIGN_IN);
  showSignIn();
}

function showSignIn() {
  const saved = signedIn();
  $("sign-in").hidden = saved !== null;
  $("sign-out").hidden = saved === null;
  // An OAuth token is tenant:grant:secret, and the tenant is the GitHub login lowercased.
  $("signed-in").textContent = saved ? "signed in as " + saved.access_token.split(":")[0] : "";
}

async function setUpSignIn() {
  $("sign-in").addEventListener("click", () => signIn().catch((error) => status("Sign-in failed: " + error.message, true)));
  $("sign-out").addEventListener("click", signOut);
  showSignIn();
  if (await serverMetadata().catch(() => null)) $("oauth").hidden = false;
}

/** To the server's /authorize (consent, then GitHub); the browser comes back to /inspect with a code. */
async function signIn() {
  const metadata = await serverMetadata();
  if (!metadata) throw new Error("this server does not offer sign-in");
  // A sign-in that never came back may have been refused for its client (one the server forgot): register anew.
  if (sessionStorage.getItem(PENDING_SIGN_IN)) localStorage.removeItem(REGISTERED_CLIENT);
  const client_id = await clientId(metadata);
  const verifier = randomString();
  const state = randomString();
  const pending = {
    state, verifier, client_id, issuer: metadata.issuer, return_to: location.pathname,
    token_endpoint: metadata.token_endpoint, revocation_endpoint: metadata.revocation_endpoint,
  };
  sessionStorage.setItem(PENDING_SIGN_IN, JSON.stringify(pending));
  const url = new URL(metadata.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id,
    redirect_uri: signInRedirect(),
    state,
    code_challenge: await s256(verifier),
    code_challenge_method: "S256",
    scope: "read write admin", // admin: the hash-chain check; within the user's own tenant only
    resource: location.origin, // every route here (/v1 and /mcp), not /mcp alone
  }).toString();
  location.assign(url.href);
}

/** Back from /authorize: the code for tokens, if the state is this browser's own. */
async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  if (location.pathname !== "/inspect" || !(params.has("code") || params.has("error"))) return;
  const pending = readJson(sessionStorage, PENDING_SIGN_IN);
  sessionStorage.removeItem(PENDING_SIGN_IN);
  history.replaceState(null, "", (pending && pending.return_to) || "/inspect"); // the code leaves the address bar
  if (!pending || params.get("state") !== pending.state)
    return status("Sign-in refused: it was not started by this page (state mismatch)", true);
  if (params.has("iss") && params.get("iss") !== pending.issuer)
    return status("Sign-in refused: the answer came from " + params.get("iss") + ", not " + pending.issuer, true);
  if (params.has("error"))
    return status("Sign-in " + params.get("error") + (params.get("error_description") ? ": " + params.get("error_description") : ""), true);
  try {
    const tokens = await tokenRequest(pending.token_endpoint, {
      grant_type: "authorization_code",
      code: params.get("code"),
      redirect_uri: signInRedirect(),
      client_id: pending.client_id,
      code_verifier: pending.verifier,
      resource: location.origin,
    });
    keepSignIn(tokens, pending);
    status("Signed in");
  } catch (error) {
    status("Sign-in failed: " + error.message, true);
  }
}

/** A new access token (the refresh token rotates); false when there is no sign-in for sent or it has ended. */
function refreshSignIn(sent) {
  const saved = signedIn();
  if (!saved || !saved.refresh_token || (sent !== undefined && saved.access_token !== sent)) return Promise.resolve(false);
  refreshingSignIn =
    refreshingSignIn ||
    tokenRequest(saved.token_endpoint, {
      grant_type: "refresh_token",
      refresh_token: saved.refresh_token,
      client_id: saved.client_id,
      resource: location.origin,
    })
      .then((tokens) => (keepSignIn(tokens, saved), true))
      .catch((error) => {
        forgetSignIn();
        status("Signed out: " + error.message, true);
        return false;
      })
      .finally(() => (refreshingSignIn = null));
  return refreshingSignIn;
}

/** Refreshes a signed-in token that expires within REFRESH_EARLY_MS. */
async function freshToken() {
  const saved = signedIn();
  if (saved && saved.expires_at - REFRESH_EARLY_MS < Date.now()) await refreshSignIn();
}

async function signOut() {
  const saved = signedIn();
  forgetSignIn();
  if (saved && saved.refresh_token)
    // Revoking the refresh token ends the whole grant, its access tokens too (RFC 7009).
    await fetch(saved.revocation_endpoint, {
      method: "POST",
      body: new URLSearchParams({ token: saved.refresh_token, token_type_hint: "refresh_token", client_id: saved.client_id }),
    }).catch(() => {});
  status("Signed out");
}

/** The actor to open: the server-rendered preset, or the path a sign-in came back to. */
function presetActor() {
  const preset = document.body.dataset;
  if (preset.kind && preset.id) return { kind: preset.kind, id: preset.id };
  const path = /^\/inspect\/([^/]+)\/([^/]+)$/.exec(location.pathname);
  return path ? { kind: decodeURIComponent(path[1]), id: decodeURIComponent(path[2]) } : null;
}

// ---- The usage panel: the token's tenant's usage by day (GET /v1/usage) ----

/** "a 3, b 1": a count per key, largest first. */
function usageBreakdown(counts) {
  const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return entries.length === 0 ? "–" : entries.map(([key, n]) => key + " " + n).join(", ");
}

const usageSum = (counts) => Object.values(counts || {}).reduce((sum, n) => sum + n, 0);

function usageRow(label, counts) {
  const row = document.createElement("tr");
  const cells = [
    label,
    usageSum(counts.requests) + " (" + usageBreakdown(counts.requests) + ")",
    counts.commands,
    counts.events,
    usageSum(counts.tools) === 0 ? "–" : usageSum(counts.tools) + " (" + usageBreakdown(counts.tools) + ")",
    usageBreakdown(counts.refusals),
    counts.rateLimited,
  ];
  for (const value of cells) row.append(Object.assign(document.createElement("td"), { textContent: String(value) }));
  return row;
}

async function showUsage() {
  const params = new URLSearchParams();
  if ($("usage-from").value) params.set("from", $("usage-from").value);
  if ($("usage-to").value) params.set("to", $("usage-to").value);
  $("usage-status").textContent = "reading…";
  $("usage-status").className = "";
  try {
    const report = await api("/v1/usage" + (params.size > 0 ? "?" + params : ""));
    const body = $("usage-days");
    body.replaceChildren(...report.days.slice().reverse().map((day) => usageRow(day.day, day)));
    if (report.days.length > 0) body.append(usageRow("total", report.total));
    $("usage-status").textContent = report.tenant + ", " + report.from + " to " + report.to + (report.days.length === 0 ? ": no usage" : "");
  } catch (error) {
    $("usage-status").textContent = String(error.message || error);
    $("usage-status").className = "error";
  }
}

// ---- The metrics panel: this isolate's counters (GET /v1/admin/metrics, operator scope), polled while watched ----

const METRICS_POLL_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";
// A poll is sent once the last one answered (a slow answer never stacks them); the generation ends a stopped watch's chain.
const metricsWatch = { watching: false, generation: 0, timer: null };
const roundTo = (value, digits) => (value === null || value === undefined ? "–" : String(Math.round(value * 10 ** digits) / 10 ** digits));

/**
 * Lines over the slots, the newest at the right edge of a window of capacity slots, scaled to the
 * largest value: a null value (a slot without requests has no p95) breaks the line there.
 */
function drawChart(svg, values, capacity, unit) {
  const width = 600;
  const height = 100;
  const known = values.filter((value) => value !== null);
  const max = Math.max(...known, 0);
  const step = width / Math.max(1, capacity - 1);
  const runs = [[]];
  values.forEach((value, i) => {
    if (value === null) {
      if (runs[runs.length - 1].length > 0) runs.push([]);
      return;
    }
    runs[runs.length - 1].push([(width - (values.length - 1 - i) * step).toFixed(1), (height - 4 - (max === 0 ? 0 : (value / max) * (height - 18))).toFixed(1)]);
  });
  const lines = runs.filter((run) => run.length > 0).map((run) => {
    const line = document.createElementNS(SVG_NS, "polyline");
    line.setAttribute("points", run.map((point) => point.join(",")).join(" "));
    return line;
  });
  // A dot a slot too: a slot alone between two without requests is a line of one point, which draws nothing.
  const dots = runs.flat().map(([x, y]) => {
    const dot = document.createElementNS(SVG_NS, "circle");
    dot.setAttribute("cx", x);
    dot.setAttribute("cy", y);
    dot.setAttribute("r", "2");
    return dot;
  });
  const label = document.createElementNS(SVG_NS, "text");
  label.setAttribute("x", "4");
  label.setAttribute("y", "11");
  label.textContent = "max " + roundTo(max, 2) + " " + unit;
  svg.replaceChildren(...lines, ...dots, label);
}

function showMetrics(metrics) {
  const errors = Object.entries(metrics.errors).map(([code, n]) => code + " " + n).join(", ") || "none";
  const { opened, open } = metrics.subscriptions;
  const lag = metrics.outboxLag;
  $("metrics-summary").textContent =
    metrics.requests + " requests since " + metrics.since + " · errors: " + errors +
    " · commands " + metrics.commands.appended + " (" + metrics.commands.events + " events)" +
    " · subscriptions opened: " + opened.websocket + " WebSocket, " + opened.sse + " SSE (" + open.sse + " SSE open)" +
    " · outbox: " + lag.eventsBehind + " events behind in " + lag.actorsBehind + " actors";
  $("metrics-summary").dataset.requests = String(metrics.requests);
  const rows = Object.entries(metrics.latency).map(([routeClass, { count, p50, p95, p99 }]) => {
    const row = document.createElement("tr");
    for (const value of [routeClass, count, roundTo(p50, 2), roundTo(p95, 2), roundTo(p99, 2)])
      row.append(Object.assign(document.createElement("td"), { textContent: String(value) }));
    return row;
  });
  $("metrics-latency").replaceChildren(...rows);
  const { slots, capacity } = metrics.recent;
  drawChart($("metrics-rate"), slots.map((slot) => slot.requests / (slot.durationMs / 1000)), capacity, "req/s");
  drawChart($("metrics-p95"), slots.map((slot) => slot.p95), capacity, "ms");
}

async function pollMetrics(generation) {
  try {
    showMetrics(await api("/v1/admin/metrics"));
    $("metrics-status").textContent = "updated " + new Date().toLocaleTimeString();
    $("metrics-status").className = "";
  } catch (error) {
    $("metrics-status").textContent = String(error.message || error);
    $("metrics-status").className = "error";
  }
  if (metricsWatch.watching && generation === metricsWatch.generation)
    metricsWatch.timer = setTimeout(() => pollMetrics(generation), METRICS_POLL_MS);
}

function toggleMetrics() {
  metricsWatch.generation++;
  clearTimeout(metricsWatch.timer);
  metricsWatch.timer = null;
  metricsWatch.watching = !metricsWatch.watching;
  $("metrics-watch").textContent = metricsWatch.watching ? "Stop watching" : "Watch metrics";
  if (metricsWatch.watching) pollMetrics(metricsWatch.generation);
}

// The actor picker: the tenant's actors of the selected kind, from its directory (GET /v1/actors),
// listed to click and offered as the id field's suggestions, instead of ids typed blind.
const picker = { cursor: null, loads: 0 };

async function listActors(more) {
  const load = ++picker.loads;
  const query = new URLSearchParams({ kind: $("kind").value, limit: "100" });
  const prefix = $("picker-prefix").value.trim();
  if (prefix) query.set("prefix", prefix);
  if (more && picker.cursor) query.set("cursor", picker.cursor);
  try {
    const page = await api("/v1/actors?" + query);
    if (load !== picker.loads) return; // the kind or prefix changed meanwhile
    if (!more) {
      $("picker").replaceChildren();
      $("actor-ids").replaceChildren();
    }
    for (const actor of page.actors) {
      const item = document.createElement("li");
      const link = Object.assign(document.createElement("a"), { textContent: actor.id, title: "listed " + actor.listedAt });
      link.dataset.kind = actor.kind;
      link.dataset.id = actor.id;
      link.addEventListener("click", () => open(actor.kind, actor.id));
      item.append(link);
      $("picker").append(item);
      $("actor-ids").append(Object.assign(document.createElement("option"), { value: actor.id }));
    }
    if (!more && page.actors.length === 0) $("picker").append(Object.assign(document.createElement("li"), { textContent: "none yet" }));
    picker.cursor = page.next;
    $("picker-more").hidden = page.next === null;
  } catch (error) {
    // Said in the picker, not the status line: that says what the visitor did (a sign-in, a command).
    if (load === picker.loads)
      $("picker").replaceChildren(Object.assign(document.createElement("li"), { className: "error", textContent: "Cannot list actors: " + String(error.message || error) }));
  }
}

function initPicker() {
  const relist = () => listActors(false);
  $("kind").addEventListener("change", relist);
  $("picker-prefix").addEventListener("input", relist);
  $("picker-refresh").addEventListener("click", relist);
  $("picker-more").addEventListener("click", () => listActors(true));
  $("token").addEventListener("change", relist);
  relist();
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = token();
  $("token").addEventListener("change", () => {
    sessionStorage.setItem("emberlog.token", $("token").value.trim());
    showSignIn();
  });
  setUpSignIn();
  $("open-form").addEventListener("submit", (event) => {
    event.preventDefault();
    open($("kind").value, $("id").value.trim());
  });
  $("slider").addEventListener("input", () => {
    $("seq").value = $("slider").value;
    travel();
  });
  $("seq").addEventListener("change", travel);
  $("diff-from").addEventListener("change", travel);
  $("older").addEventListener("click", () => loadOlder().catch((error) => status(error.message, true)));
  $("send").addEventListener("click", sendCommand);
  $("tail").addEventListener("click", tailTopic);
  $("verify").addEventListener("click", checkChain);
  $("usage-show").addEventListener("click", showUsage);
  $("metrics-watch").addEventListener("click", toggleMetrics);
  // The picker lists with the token a sign-in coming back brings.
  finishSignIn().then(() => {
    initPicker();
    const preset = presetActor();
    if (preset) open(preset.kind, preset.id);
  });
});
`
