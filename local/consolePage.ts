/**
 * The developer console's page: plain HTML, CSS and a module script, no framework, no build
 * step. Everything it shows comes from /console/api/ (local/console.ts) and is put in the
 * page with textContent, never as HTML; JSON is shown compactly, long values folded.
 * Keyboard: tabs are buttons (arrow keys move between them), every action is a button.
 */
export function consolePage(): string {
  return PAGE;
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>notification-hub · developer console</title>
<style>
  :root { --line: #d9dde5; --muted: #5f6675; --accent: #2f6bff; --bad: #b3261e; --good: #18864b; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; } /* labels and fieldsets set their own display */
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { padding: .8rem 1rem .4rem; background: #fff; border-bottom: 1px solid var(--line); }
  h1 { font-size: 1.2rem; margin: 0; } h1 small { font-weight: 400; color: var(--muted); }
  h2 { font-size: 1.05rem; margin: .2rem 0 .6rem; } h3 { font-size: .95rem; margin: 1rem 0 .4rem; }
  .muted { color: var(--muted); font-size: .85rem; }
  .hubinfo { display: flex; flex-wrap: wrap; gap: .2rem 1rem; margin-top: .2rem; }
  .hubinfo code { word-break: break-all; }
  #live { font-weight: 600; } #live[data-state=ok] { color: var(--good); } #live[data-state=down] { color: var(--bad); }
  nav { display: flex; gap: .25rem; overflow-x: auto; padding: .5rem 1rem 0; background: #fff; border-bottom: 1px solid var(--line); }
  nav button { font: inherit; border: 1px solid transparent; border-bottom: none; background: none; padding: .4rem .8rem; border-radius: 6px 6px 0 0; cursor: pointer; white-space: nowrap; color: #1d2330; }
  nav button[aria-selected=true] { background: #f6f7f9; border-color: var(--line); font-weight: 600; margin-bottom: -1px; }
  nav .count { display: inline-block; min-width: 1.4em; padding: 0 .35em; border-radius: 1em; background: #e4e8f0; font-size: .8rem; text-align: center; }
  nav .count[data-alert=true] { background: var(--bad); color: #fff; }
  main { padding: .8rem 1rem 2rem; max-width: 72rem; }
  button.action, .toolbar button, form button { font: inherit; padding: .3rem .8rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
  button.secondary { background: #fff; color: var(--accent); }
  button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
  button:focus-visible, input:focus-visible, textarea:focus-visible, select:focus-visible, summary:focus-visible { outline: 3px solid #9bb8ff; outline-offset: 1px; }
  input, textarea, select { font: inherit; padding: .25rem .4rem; border: 1px solid #b9bfcc; border-radius: 4px; max-width: 100%; background: #fff; }
  textarea { width: 100%; font-family: ui-monospace, monospace; font-size: .85rem; }
  label { display: inline-block; margin: .2rem .8rem .2rem 0; }
  fieldset { border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem; margin: 0 0 .8rem; background: #fff; }
  .toolbar { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; margin-bottom: .6rem; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr)); gap: .6rem; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem; min-width: 0; }
  .card dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .7rem; margin: 0 0 .5rem; font-size: .88rem; }
  .card dt { color: var(--muted); } .card dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
  .card .buttons { display: flex; flex-wrap: wrap; gap: .4rem; }
  .card[data-closing=true] { opacity: .55; }
  .chip.grant { background: #f1f3f6; }
  .chip { display: inline-block; padding: 0 .45em; margin: 0 .25em .15em 0; border-radius: 4px; background: #eef2ff; font-size: .82rem; }
  code, pre { font-family: ui-monospace, monospace; font-size: .84rem; }
  .json { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
  details.json-fold summary { cursor: pointer; overflow-wrap: anywhere; }
  details.json-fold pre { max-height: 16rem; overflow: auto; background: #f3f4f7; padding: .4rem; border-radius: 4px; }
  table { width: 100%; border-collapse: collapse; background: #fff; font-size: .9rem; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
  .scroll { overflow-x: auto; }
  #log-list, #replay-list { list-style: none; margin: 0; padding: 0; }
  #log-list li { display: grid; grid-template-columns: auto 7.8rem 1fr; gap: 0 .4rem; align-items: baseline; }
  #log-list li, #replay-list li { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .35rem .6rem; margin-bottom: .35rem; font-size: .88rem; overflow-wrap: anywhere; }
  .kind { display: inline-block; min-width: 7.8rem; font-weight: 600; font-size: .78rem; text-transform: uppercase; letter-spacing: .02em; }
  li[data-kind=refused] .kind, li[data-kind=rejected] .kind { color: var(--bad); }
  li[data-kind=disconnected] .kind, li[data-kind=gone] .kind { color: #8a5a00; }
  li[data-kind=connected] .kind { color: var(--good); } li[data-kind=action] .kind { color: var(--accent); }
  .time { color: var(--muted); font-size: .8rem; margin-right: .4rem; }
  .message { padding: .45rem .7rem; border-radius: 6px; background: #fdecea; color: #8c1d18; margin: .4rem 0; }
  .message[data-kind=ok] { background: #e7f5ec; color: #11623a; }
  .reason { color: var(--bad); font-weight: 600; }
  iframe { width: 100%; height: 75vh; border: 1px solid var(--line); border-radius: 8px; background: #fff; }
  .empty { color: var(--muted); font-style: italic; }
  @media (max-width: 600px) {
    body { font-size: 14px; } header, main { padding-left: .6rem; padding-right: .6rem; }
    nav { padding: .4rem .4rem 0; flex-wrap: wrap; } nav button { padding: .35rem .55rem; }
    .cards { grid-template-columns: 1fr; } label { display: block; } input:not([type=radio]) { width: 100%; }
    .kind { min-width: 0; margin-right: .4rem; } #log-list li { display: block; }
  }
</style>
</head>
<body>
<header>
  <h1>notification-hub — local hub <small>developer console</small></h1>
  <div class="hubinfo muted">
    <span>WebSocket <code id="ws-url">…</code></span>
    <span>queue <code id="queue-url">…</code></span>
    <span id="live" data-state="wait" role="status">connecting to the hub…</span>
  </div>
</header>
<nav role="tablist" aria-label="Console sections">
  <button role="tab" id="tab-connections" data-tab="connections" aria-controls="panel-connections">Connections <span class="count" id="conn-count">0</span></button>
  <button role="tab" id="tab-streams" data-tab="streams" aria-controls="panel-streams">Streams</button>
  <button role="tab" id="tab-publish" data-tab="publish" aria-controls="panel-publish">Publish</button>
  <button role="tab" id="tab-dead-letters" data-tab="dead-letters" aria-controls="panel-dead-letters">Dead letters <span class="count" id="dlq-count">0</span></button>
  <button role="tab" id="tab-log" data-tab="log" aria-controls="panel-log">Log <span class="count" id="log-count">0</span></button>
  <button role="tab" id="tab-demo" data-tab="demo" aria-controls="panel-demo">Demo</button>
</nav>
<main>
<p id="message" class="message" role="alert" hidden></p>

<section id="panel-connections" role="tabpanel" aria-labelledby="tab-connections" hidden>
  <div class="toolbar">
    <h2 style="margin:0">Live connections</h2>
    <span role="radiogroup" aria-label="Group connections">
      <label><input type="radio" name="group" value="room" id="group-room" checked> by room</label>
      <label><input type="radio" name="group" value="user" id="group-user"> by user</label>
    </span>
  </div>
  <form id="send-form" hidden>
    <fieldset>
      <legend>Send a frame to <code id="send-target"></code> (through @connections POST)</legend>
      <label for="send-data" style="display:block">JSON frame</label>
      <textarea id="send-data" rows="3">{"user_id": null, "origin": "app", "data": {"type": "console.hello", "data": "Hello from the console"}}</textarea>
      <div class="toolbar" style="margin:.4rem 0 0"><button type="submit" id="send-submit">Send</button><button type="button" class="secondary" id="send-cancel">Cancel</button></div>
    </fieldset>
  </form>
  <div id="connections"></div>
</section>

<section id="panel-streams" role="tabpanel" aria-labelledby="tab-streams" hidden>
  <div class="toolbar"><h2 style="margin:0">Room streams</h2><span class="muted" id="retention"></span><button type="button" class="secondary" id="streams-refresh">Refresh</button></div>
  <div class="scroll"><table><thead><tr><th>Stream</th><th>Head seq</th><th>Frames kept</th><th>Oldest seq</th><th></th></tr></thead><tbody id="streams"></tbody></table></div>
  <form id="replay-form">
    <fieldset style="margin-top:.8rem">
      <legend>Replay (notifier.history)</legend>
      <label>Stream <input id="replay-room" size="16" placeholder="room or user:42"></label>
      <label>After seq <input id="replay-after" type="number" min="0" size="6" placeholder="newest 20"></label>
      <button type="submit" id="replay-submit">Replay</button>
    </fieldset>
  </form>
  <p id="replay-summary" class="muted"></p>
  <ol id="replay-list"></ol>
</section>

<section id="panel-publish" role="tabpanel" aria-labelledby="tab-publish" hidden>
  <h2>Publish through the queue</h2>
  <form id="publish-form">
    <fieldset>
      <legend>To</legend>
      <label><input type="radio" name="pub-mode" value="room" id="pub-mode-room" checked> a room</label>
      <label><input type="radio" name="pub-mode" value="user" id="pub-mode-user"> a user (to_user_id)</label>
      <label><input type="radio" name="pub-mode" value="raw" id="pub-mode-raw"> raw queue body (not validated: bad ones end in the dead-letter queue)</label>
    </fieldset>
    <fieldset>
      <label data-for-mode="room">Room <input id="pub-room" value="lobby" size="16"></label>
      <label data-for-mode="user" hidden>User <input id="pub-to-user" size="16" placeholder="user id"></label>
      <label data-for-mode="room user">Sender user_id <input id="pub-sender" size="16" placeholder="optional"></label>
      <div data-for-mode="room user"><label for="pub-data" style="display:block">Data (any JSON)</label>
      <textarea id="pub-data" rows="4">{"type": "info", "data": "Hello from the console"}</textarea></div>
      <div data-for-mode="raw" hidden><label for="pub-raw" style="display:block">Queue message body</label>
      <textarea id="pub-raw" rows="4">{"user_id": "nobody", "data": "a record without room_id"}</textarea></div>
      <div class="toolbar" style="margin:.5rem 0 0"><button type="submit" id="publish">Publish</button></div>
    </fieldset>
  </form>
  <p id="pub-result" class="message" data-kind="ok" role="status" hidden></p>
</section>

<section id="panel-dead-letters" role="tabpanel" aria-labelledby="tab-dead-letters" hidden>
  <div class="toolbar"><h2 style="margin:0">Dead-letter queue</h2><span class="muted">peeked without losing them: each is hidden for a moment, then released</span><button type="button" class="secondary" id="dlq-refresh">Refresh</button></div>
  <div id="dlq-list" class="cards"></div>
</section>

<section id="panel-log" role="tabpanel" aria-labelledby="tab-log" hidden>
  <div class="toolbar"><h2 style="margin:0">Refusals, connects and disconnects</h2>
    <label>Show <select id="log-filter"><option value="">everything</option><option value="refused">refusals</option><option value="disconnected">disconnects</option><option value="connected">connects</option><option value="rejected gone">rejected records, 410s</option><option value="action">console actions</option></select></label>
  </div>
  <ol id="log-list"></ol>
</section>

<section id="panel-demo" role="tabpanel" aria-labelledby="tab-demo" hidden>
  <p class="muted">The demo page: connect as a user and watch notifications arrive. <a href="/demo" target="_blank" rel="noopener">Open it alone</a> to connect as a second user.</p>
  <div id="demo-slot"></div>
</section>
</main>

<script type="module">
const $ = (id) => document.getElementById(id);
const FOLD_AT = 160;
let serverOffset = 0, lastEventId = 0, hubInstance, connections = [], connSignature = "", deadLetters = -1, sendTarget;
const logEvents = [];

/** An element from a tag, attributes and children; strings become text, never HTML. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null && child !== false) node.append(child instanceof Node ? child : String(child));
  return node;
}
/** Any JSON value (or text), compact; past FOLD_AT characters folded, the full value pretty-printed inside. */
function jsonView(value, isText) {
  let compact = isText ? String(value) : JSON.stringify(value);
  if (compact === undefined) compact = String(value);
  if (compact.length <= FOLD_AT) return el("code", { class: "json" }, compact);
  let full = compact;
  if (!isText) full = JSON.stringify(value, null, 2);
  else { try { full = JSON.stringify(JSON.parse(compact), null, 2); } catch {} }
  return el("details", { class: "json-fold" }, el("summary", {}, compact.slice(0, 100) + "… (" + compact.length.toLocaleString("en") + " characters)"), el("pre", { class: "json" }, full));
}
function say(text, kind) {
  clearTimeout(say.timer);
  // A success fades after a while; a problem stays until the next message.
  if (kind === "ok") say.timer = setTimeout(() => say(""), 8000);
  $("message").textContent = text || "";
  $("message").dataset.kind = kind || "error";
  $("message").hidden = !text;
}
function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() + serverOffset - Date.parse(iso)) / 1000));
  if (seconds < 60) return seconds + " s ago";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s ago";
  return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min ago";
}
const clock = (iso) => new Date(iso).toLocaleTimeString();
async function api(path, body) {
  let response;
  try {
    response = await fetch(path, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    throw new Error("the local hub does not answer (stopped?); start it again with npm run dev");
  }
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(json.error || json.message || response.statusText);
  return json;
}

// Tabs: the hash names the open one; arrow keys move along the tab list.
const tabs = [...document.querySelectorAll("nav [role=tab]")];
function openTab(name, focus) {
  if (!tabs.some((t) => t.dataset.tab === name)) name = "connections";
  for (const tab of tabs) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $("panel-" + tab.dataset.tab).hidden = !selected;
    if (selected && focus) tab.focus();
  }
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  if (name === "streams") loadStreams();
  if (name === "dead-letters") loadDeadLetters();
  if (name === "demo" && !$("demo-slot").firstChild) $("demo-slot").append(el("iframe", { src: "/demo", title: "Demo page: connect as a user", id: "demo-frame" }));
}
for (const tab of tabs) {
  tab.addEventListener("click", () => openTab(tab.dataset.tab));
  tab.addEventListener("keydown", (event) => {
    const i = tabs.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    openTab(tabs[(next + tabs.length) % tabs.length].dataset.tab, true);
  });
}
openTab(location.hash.slice(1));

// Connections: re-drawn when who or where changes; the clocks tick in place.
function groupKey() { return $("group-user").checked ? "user" : "room"; }
function connectionCard(c) {
  const buttons = el("div", { class: "buttons" },
    el("button", { type: "button", class: "action secondary send", onclick: (event) => openSend(c, event.currentTarget) }, "Send…"),
    el("button", { type: "button", class: "action secondary close", onclick: () => act("/console/api/close", c, "closed") }, "Close"),
    el("button", { type: "button", class: "action danger revoke", title: "revokeToken for this connection's token", onclick: () => act("/console/api/revoke", c, "revoked") }, "Revoke token"),
    el("button", { type: "button", class: "action danger revoke-user", title: "revokeToken({ userId }): every token of the user", onclick: () => act("/console/api/revoke", c, "revoked with every token of " + c.userId, { scope: "user" }) }, "Revoke user"));
  return el("article", { class: "card conn", dataset: { connectionId: c.connectionId, user: c.userId, closing: String(c.closing) } },
    el("dl", {},
      el("dt", {}, "user"), el("dd", {}, el("strong", {}, c.userId || "?")),
      el("dt", {}, "connection"), el("dd", {}, el("code", {}, c.connectionId)),
      el("dt", {}, "rooms"), el("dd", { class: "rooms" }, c.rooms.length ? c.rooms.map((r) => el("span", { class: "chip" }, r)) : el("span", { class: "empty" }, "none")),
      el("dt", {}, "token grants"), el("dd", { class: "grants" }, c.grants.length ? c.grants.map((g) => el("span", { class: "chip grant" }, g)) : el("span", { class: "empty" }, "none")),
      el("dt", {}, "connected"), el("dd", { title: c.connectedAt }, clock(c.connectedAt) + " · ", el("span", { class: "ago", dataset: { at: c.connectedAt } }, ago(c.connectedAt))),
      el("dt", {}, "last active"), el("dd", { class: "last-active", title: c.lastActiveAt }, el("span", { class: "ago", dataset: { at: c.lastActiveAt } }, ago(c.lastActiveAt)))),
    buttons);
}
function drawConnections() {
  const by = groupKey();
  const groups = new Map();
  for (const c of connections) {
    const keys = by === "user" ? [c.userId || "?"] : c.rooms.length ? c.rooms : ["(no room)"];
    for (const key of keys) (groups.get(key) || groups.set(key, []).get(key)).push(c);
  }
  const target = $("connections");
  target.replaceChildren();
  if (!connections.length) target.append(el("p", { class: "empty" }, "No live connections. Open the Demo tab and connect as a user."));
  for (const key of [...groups.keys()].sort()) {
    const list = groups.get(key);
    target.append(el("h3", {}, (by === "user" ? "User " : "Room ") + key + " · " + list.length + " connection" + (list.length === 1 ? "" : "s")),
      el("div", { class: "cards", dataset: { group: key } }, list.map(connectionCard)));
  }
}
function updateConnections(list) {
  connections = list;
  $("conn-count").textContent = String(list.length);
  const signature = groupKey() + JSON.stringify(list.map((c) => [c.connectionId, c.userId, c.rooms, c.closing]));
  if (signature !== connSignature) {
    connSignature = signature;
    drawConnections();
  } else {
    const byId = new Map(list.map((c) => [c.connectionId, c]));
    for (const card of document.querySelectorAll(".conn")) {
      const c = byId.get(card.dataset.connectionId);
      const cell = card.querySelector(".last-active");
      if (!c || !cell) continue;
      cell.title = c.lastActiveAt;
      cell.firstChild.dataset.at = c.lastActiveAt;
    }
  }
  for (const span of document.querySelectorAll(".ago")) span.textContent = ago(span.dataset.at);
  if (sendTarget && !list.some((c) => c.connectionId === sendTarget.connectionId)) closeSend();
}
for (const radio of document.querySelectorAll("input[name=group]")) radio.addEventListener("change", () => { connSignature = ""; updateConnections(connections); });
function openSend(c, opener) {
  sendTarget = c;
  sendTarget.opener = opener;
  $("send-target").textContent = c.connectionId + " (" + c.userId + ")";
  $("send-form").hidden = false;
  $("send-data").focus();
}
// Focus goes back to the button that opened the form, if it is still on the page.
function closeSend() {
  const opener = sendTarget?.opener;
  sendTarget = undefined;
  $("send-form").hidden = true;
  if (opener?.isConnected) opener.focus();
}
$("send-cancel").onclick = closeSend;
$("send-form").addEventListener("keydown", (event) => event.key === "Escape" && closeSend());
$("send-form").onsubmit = async (event) => {
  event.preventDefault();
  let data;
  try { data = JSON.parse($("send-data").value); } catch (err) { return say("The frame is not JSON: " + err.message); }
  try {
    await api("/console/api/send", { connectionId: sendTarget.connectionId, data });
    say("Sent to " + sendTarget.connectionId + ".", "ok");
    closeSend();
  } catch (err) { say("Send failed: " + err.message); }
  tick();
};
async function act(path, c, done, extra) {
  try {
    const result = await api(path, { connectionId: c.connectionId, ...extra });
    say(c.userId + "'s connection " + done + (result.closedConnections !== undefined ? ": " + result.closedConnections + " connection(s) closed" : "") + ".", "ok");
  } catch (err) { say("Could not do that: " + err.message); }
  tick();
}

// Log: newest first; refusals and disconnects carry their reasons.
function drawLog() {
  const filter = $("log-filter").value.split(" ").filter(Boolean);
  const shown = logEvents.filter((e) => !filter.length || filter.includes(e.kind));
  $("log-list").replaceChildren(...shown.slice(-300).reverse().map((e) =>
    el("li", { dataset: { kind: e.kind, id: String(e.id) } }, el("span", { class: "time" }, clock(e.time)), el("span", { class: "kind" }, e.kind), el("span", { class: "text" }, e.text))));
  if (!shown.length) $("log-list").append(el("li", { class: "empty" }, "Nothing yet."));
}
$("log-filter").onchange = drawLog;

// Live: the hub's state every second, and at once after an action; one request at a time.
async function tick() {
  clearTimeout(tick.timer);
  if (tick.running) return void (tick.again = true);
  tick.running = true;
  try {
    const state = await api("/console/api/state?after=" + lastEventId);
    if (hubInstance !== undefined && state.hub.instance !== hubInstance) {
      // Another hub answers at this address (a restart): its log starts again, from id 1.
      logEvents.length = 0;
      lastEventId = 0;
      deadLetters = -1;
      drawLog();
      $("log-count").textContent = "0";
      say("The hub restarted: the console follows the new one (its log starts empty).", "ok");
      state.events = (await api("/console/api/state?after=0")).events;
    }
    hubInstance = state.hub.instance;
    state.events = state.events.filter((e) => e.id > lastEventId);
    serverOffset = Date.parse(state.now) - Date.now();
    $("live").dataset.state = "ok";
    $("live").textContent = "live";
    $("ws-url").textContent = state.hub.websocketUrl;
    $("queue-url").textContent = state.hub.queueUrl;
    $("retention").textContent = state.hub.retentionHours > 0 ? "frames kept " + state.hub.retentionHours + " h" : "streams are off (history.retentionHours 0)";
    updateConnections(state.connections);
    if (state.events.length) {
      logEvents.push(...state.events);
      lastEventId = state.events[state.events.length - 1].id;
      if (logEvents.length > 1000) logEvents.splice(0, logEvents.length - 1000);
      $("log-count").textContent = String(logEvents.length);
      drawLog();
    }
    if (state.deadLetters !== deadLetters) {
      deadLetters = state.deadLetters;
      $("dlq-count").textContent = String(deadLetters);
      $("dlq-count").dataset.alert = String(deadLetters > 0);
      if (!$("panel-dead-letters").hidden) loadDeadLetters();
    }
  } catch (err) {
    $("live").dataset.state = "down";
    $("live").textContent = "hub not answering (stopped?)";
  }
  tick.running = false;
  tick.timer = setTimeout(tick, tick.again ? 0 : 1000);
  tick.again = false;
}

// Streams and replay.
async function loadStreams() {
  try {
    const { streams } = await api("/console/api/streams");
    $("streams").replaceChildren(...streams.map((s) => el("tr", { dataset: { room: s.room } },
      el("td", {}, el("code", {}, s.room)), el("td", { class: "head" }, String(s.head)), el("td", {}, String(s.frames)), el("td", {}, String(s.oldest)),
      el("td", {}, el("button", { type: "button", class: "action secondary", onclick: () => { $("replay-room").value = s.room; $("replay-after").value = String(Math.max(0, s.head - 20)); replay(); } }, "Replay")))));
    if (!streams.length) $("streams").append(el("tr", {}, el("td", { colspan: "5", class: "empty" }, "No stored frames yet: publish something.")));
  } catch (err) { say("Streams: " + err.message); }
}
$("streams-refresh").onclick = loadStreams;
async function replay() {
  const room = $("replay-room").value.trim();
  if (!room) { $("replay-room").focus(); return say("Type a stream (room id, or user:ID) to replay."); }
  const after = $("replay-after").value.trim();
  try {
    const result = await api("/console/api/history?room=" + encodeURIComponent(room) + (after ? "&after=" + encodeURIComponent(after) : "&last=20"));
    $("replay-summary").textContent = result.frames.length + " frame(s) of " + room + (after ? " after seq " + after : " (the newest 20)");
    $("replay-list").replaceChildren(...result.frames.map((f) => el("li", { dataset: { seq: String(f.seq) } },
      el("strong", {}, "seq " + f.seq), " · ", el("code", {}, f.id), " · from ", String(f.user_id ?? "the app"), " (" + f.origin + ") ", jsonView(f.data))));
    say("");
  } catch (err) { say("Replay failed: " + err.message); }
}
$("replay-form").onsubmit = (event) => { event.preventDefault(); replay(); };

// Publish.
function publishMode() { return document.querySelector("input[name=pub-mode]:checked").value; }
function showPublishFields() {
  const mode = publishMode();
  for (const field of document.querySelectorAll("[data-for-mode]")) field.hidden = !field.dataset.forMode.split(" ").includes(mode);
}
for (const radio of document.querySelectorAll("input[name=pub-mode]")) radio.addEventListener("change", showPublishFields);
showPublishFields();
$("publish-form").onsubmit = async (event) => {
  event.preventDefault();
  const mode = publishMode();
  const body = { mode };
  if (mode === "raw") body.body = $("pub-raw").value;
  else {
    try { body.data = JSON.parse($("pub-data").value); } catch (err) { $("pub-data").focus(); return say("Data is not JSON (" + err.message + "); a text needs quotes: \\"hello\\"."); }
    body.userId = $("pub-sender").value.trim();
    if (mode === "room") body.roomId = $("pub-room").value.trim();
    else body.toUserId = $("pub-to-user").value.trim();
    const missing = mode === "room" ? (!body.roomId && "pub-room") : (!body.toUserId && "pub-to-user");
    if (missing) { $(missing).focus(); return say(mode === "room" ? "Type the room to publish to." : "Type the user to publish to."); }
  }
  try {
    const { messageId } = await api("/console/api/publish", body);
    say("");
    $("pub-result").hidden = false;
    $("pub-result").textContent = "Queued as message " + messageId + (mode === "room" ? " for room " + body.roomId : mode === "user" ? " for user " + body.toUserId : " (raw)") + ".";
  } catch (err) { say("Publish failed: " + err.message); }
  tick();
};

// Dead letters: peek, reason, redrive.
async function loadDeadLetters() {
  try {
    const list = await api("/console/api/dead-letters");
    $("dlq-list").replaceChildren(...list.map((d) => el("article", { class: "card dead", dataset: { messageId: d.messageId } },
      el("dl", {},
        el("dt", {}, "message"), el("dd", {}, el("code", {}, d.messageId)),
        el("dt", {}, "reason"), el("dd", {}, el("span", { class: "reason" }, d.code), ": " + d.reason),
        el("dt", {}, "receives"), el("dd", {}, String(d.receiveCount)),
        el("dt", {}, "sent"), el("dd", {}, d.sentAt ? clock(d.sentAt) : "?"),
        el("dt", {}, "body"), el("dd", {}, jsonView(d.body, true))),
      el("div", { class: "buttons" }, el("button", { type: "button", class: "action redrive", onclick: () => redrive(d.messageId) }, "Redrive to the main queue")))));
    if (!list.length) $("dlq-list").append(el("p", { class: "empty" }, "The dead-letter queue is empty."));
  } catch (err) { say("Dead letters: " + err.message); }
}
$("dlq-refresh").onclick = loadDeadLetters;
async function redrive(messageId) {
  try {
    const result = await api("/console/api/redrive", { messageId });
    say("Redriven: " + messageId + " is back on the main queue as " + result.newMessageId + ".", "ok");
  } catch (err) { say("Redrive failed: " + err.message); }
  loadDeadLetters();
  tick();
}

tick();
</script>
</body>
</html>`;
