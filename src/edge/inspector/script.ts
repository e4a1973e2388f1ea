/**
 * The inspector's browser script, served as-is at /inspect/app.js (no build step). It reads
 * through the public HTTP API with the token from session storage, follows the actor's
 * WebSocket (the token travels as the `bearer` subprotocol, the one header a browser
 * WebSocket can send) and renders with plain DOM calls.
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
const openSocket = (path) => (token() ? new WebSocket(wsUrl(path), ["bearer", token()]) : new WebSocket(wsUrl(path)));
const base = () => "/v1/" + encodeURIComponent(view.kind) + "/" + encodeURIComponent(view.id);

async function api(path, init) {
  const response = await fetch(path, { ...init, headers: { ...headers(), ...(init && init.headers) } });
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
  const socket = openSocket(base() + "/ws?after=" + view.shown);
  view.socket = socket;
  socket.addEventListener("open", () => ($("live").textContent = "live"));
  socket.addEventListener("close", () => {
    if (view.socket !== socket) return;
    $("live").textContent = "reconnecting…";
    setTimeout(() => view.socket === socket && follow(), 1000);
  });
  socket.addEventListener("message", (message) => {
    if (view.socket !== socket) return;
    const frame = JSON.parse(message.data);
    if (frame.type !== "event" || frame.event.seq <= view.shown) return;
    const following = Number($("seq").value) === view.version;
    $("events").prepend(eventRow(frame.event));
    view.shown = frame.event.seq;
    setVersion(Math.max(view.version, frame.event.seq));
    if (view.oldest === null) view.oldest = frame.event.seq;
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
  const socket = openSocket(path + "/ws?after=" + Math.max(0, head - TOPIC_BACKLOG));
  view.topicSocket = socket;
  socket.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type !== "entry") return;
    const { topicSeq, source, event } = frame.entry;
    const row = document.createElement("li");
    row.textContent = "#" + topicSeq + " " + source.kind + "/" + source.id + " seq " + event.seq + " " + event.type + " " + JSON.stringify(event.data);
    $("topic-entries").prepend(row);
    while ($("topic-entries").children.length > 4 * TOPIC_BACKLOG) $("topic-entries").lastChild.remove();
  });
  socket.addEventListener("close", () => view.topicSocket === socket && status("topic " + topic + " closed", true));
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
    if (load === picker.loads) status("Listing actors: " + String(error.message || error), true);
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
  $("token").addEventListener("change", () => sessionStorage.setItem("emberlog.token", $("token").value.trim()));
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
  initPicker();
  const preset = document.body.dataset;
  if (preset.kind && preset.id) open(preset.kind, preset.id);
});
`
