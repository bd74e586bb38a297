// @ts-check
/**
 * An element of this page by id: the HTML has every id the script asks for. Most are form
 * fields, so by default it is typed as an input; name another element type where it is one.
 * @template {HTMLElement} [T=HTMLInputElement]
 * @param {string} id
 * @returns {T}
 */
const $ = (id) => {
  const element = document.getElementById(id);
  if (!element) throw new Error("the page has no element #" + id);
  return /** @type {T} */ (element);
};
/**
 * What /console/api/ answers (local/console.ts).
 * @typedef {{ connectionId: string, userId: string, rooms: string[], tokenRoom: string, grants: string[], connectedAt: string, lastActiveAt: string, sourceIp: string, closing: boolean }} Connection
 * @typedef {{ id: number, time: string, kind: string, text: string, fields: Record<string, unknown> }} LogEvent
 * @typedef {{ instance: string, websocketUrl: string, queueUrl: string, deadLetterQueueUrl: string, stage: string, retentionHours: number, dropDisconnect: number }} HubInfo
 * @typedef {{ count: number, members: { userId: string, connections: number }[] }} RoomPresence
 * @typedef {{ now: string, hub: HubInfo, connections: Connection[], deadLetters: number, messagesVersion: number, lifecycleVersion?: number, presence?: Record<string, RoomPresence>, events: LogEvent[] }} State
 * @typedef {{ id: string, "detail-type": string, source: string, time: string, detail: { event_id: string, at: number, room_id?: string, user_id?: string, connection_id?: string, reason?: string } }} BusEvent
 * @typedef {{ key: string, notificationId?: string, recordIds: string[], roomId?: string, seq?: number, outcome: string, text: string, delivered: number, receives: number, maxReceives: number, nextTryAt?: string, firstAt: string, updatedAt: string, version: number, steps: { time: string, text: string }[] }} MessageEntry
 * @typedef {{ version: number, maxReceiveCount: number, retryDelaySeconds: number, messages: MessageEntry[] }} MessageLog
 * @typedef {{ room: string, head: number, oldest: number, frames: number }} StreamRow
 * @typedef {{ seq: number, id: string, user_id?: string | null, origin: string, data: unknown }} ReplayFrame
 * @typedef {{ messageId: string, body: string, receiveCount: number, sentAt?: string, code: string, reason: string, source: string }} DeadLetter
 * @typedef {Node | string | number | false | null | undefined} Child
 */
const FOLD_AT = 160;
let serverOffset = 0, lastEventId = 0, connSignature = "", deadLetters = -1, messagesVersion = -1, lifecycleVersion = -1;
/** Members per room (presence on), from the last state. @type {Record<string, RoomPresence> | undefined} */
let presence;
/** @type {string | undefined} */
let hubInstance;
/** @type {Connection[]} */
let connections = [];
/** The connection the Send form is open for, and the button that opened it. @type {{ connection: Connection, opener: HTMLElement } | undefined} */
let sendTarget;
/** @type {LogEvent[]} */
const logEvents = [];
/** @type {ReturnType<typeof setTimeout> | undefined} */
let sayTimer;
/**
 * The poll: its next timer, whether one is running, and whether another was asked for meanwhile.
 * @type {{ timer: ReturnType<typeof setTimeout> | undefined, running: boolean, again: boolean }}
 */
const poll = { timer: undefined, running: false, again: false };
/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error ? err.message : String(err));

/**
 * An element from a tag, attributes and children; strings become text, never HTML.
 * Attributes: `class`, `dataset` (an object), `on<event>` (a listener), else set as text.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null && child !== false) node.append(child instanceof Node ? child : String(child));
  return node;
}
/**
 * Any JSON value (or text), compact; past FOLD_AT characters folded, the full value pretty-printed inside.
 * @param {unknown} value
 * @param {boolean} [isText]
 */
function jsonView(value, isText) {
  let compact = isText ? String(value) : JSON.stringify(value);
  if (compact === undefined) compact = String(value);
  if (compact.length <= FOLD_AT) return el("code", { class: "json" }, compact);
  let full = compact;
  if (!isText) full = JSON.stringify(value, null, 2);
  else { try { full = JSON.stringify(JSON.parse(compact), null, 2); } catch {} }
  return el("details", { class: "json-fold" }, el("summary", {}, compact.slice(0, 100) + "… (" + compact.length.toLocaleString("en") + " characters)"), el("pre", { class: "json" }, full));
}
/**
 * @param {string} text
 * @param {"ok" | "error"} [kind]
 */
function say(text, kind) {
  clearTimeout(sayTimer);
  // A success fades after a while; a problem stays until the next message.
  if (kind === "ok") sayTimer = setTimeout(() => say(""), 8000);
  $("message").textContent = text || "";
  $("message").dataset.kind = kind || "error";
  $("message").hidden = !text;
}
/** @param {string} iso */
function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() + serverOffset - Date.parse(iso)) / 1000));
  if (seconds < 60) return seconds + " s ago";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s ago";
  return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min ago";
}
const clock = (/** @type {string} */ iso) => new Date(iso).toLocaleTimeString();
/**
 * A console endpoint's JSON answer (GET, or POST with a body); its error message when it refuses.
 * @param {string} path
 * @param {object} [body]
 * @returns {Promise<unknown>}
 */
async function api(path, body) {
  let response;
  try {
    response = await fetch(path, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    throw new Error("the local hub does not answer (stopped?); start it again with npm run dev");
  }
  /** @type {{ error?: string, message?: string }} */
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(json.error || json.message || response.statusText);
  return json;
}

// Tabs: the hash names the open one; arrow keys move along the tab list.
const tabs = [...document.querySelectorAll("nav [role=tab]")].map((tab) => /** @type {HTMLElement} */ (tab));
/**
 * @param {string | undefined} name
 * @param {boolean} [focus]
 */
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
  if (name === "messages") loadMessages();
  if (name === "events") loadLifecycle();
  if (name === "demo" && !$("demo-slot").firstChild) $("demo-slot").append(el("iframe", { src: "/demo", title: "Demo page: connect as a user", id: "demo-frame" }));
}
for (const tab of tabs) {
  tab.addEventListener("click", () => openTab(tab.dataset.tab));
  tab.addEventListener("keydown", (event) => {
    const i = tabs.indexOf(tab);
    /** @type {Record<string, number>} */
    const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
    const next = moves[event.key];
    if (next === undefined) return;
    event.preventDefault();
    openTab(tabs[(next + tabs.length) % tabs.length].dataset.tab, true);
  });
}
openTab(location.hash.slice(1));

// Connections: re-drawn when who or where changes; the clocks tick in place.
function groupKey() { return $("group-user").checked ? "user" : "room"; }
/** @param {Connection} c */
function connectionCard(c) {
  const buttons = el("div", { class: "buttons" },
    el("button", { type: "button", class: "action secondary send", onclick: (/** @type {Event} */ event) => openSend(c, /** @type {HTMLElement} */ (event.currentTarget)) }, "Send…"),
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
  /** @type {Map<string, Connection[]>} */
  const groups = new Map();
  for (const c of connections) {
    const keys = by === "user" ? [c.userId || "?"] : c.rooms.length ? c.rooms : ["(no room)"];
    for (const key of keys) groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const target = $("connections");
  target.replaceChildren();
  if (!connections.length) target.append(el("p", { class: "empty" }, "No live connections. Open the Demo tab and connect as a user."));
  for (const key of [...groups.keys()].sort()) {
    const list = groups.get(key) ?? [];
    const room = by === "room" ? presence?.[key] : undefined;
    // Presence is per user: tabs and devices of one user are one member.
    const members = room && el("span", { class: "members", dataset: { room: key } }, " · " + room.count + " member" + (room.count === 1 ? "" : "s") + (room.members.length ? ": " + room.members.map((m) => m.userId + (m.connections > 1 ? " ×" + m.connections : "")).join(", ") : ""));
    target.append(el("h3", {}, (by === "user" ? "User " : "Room ") + key + " · " + list.length + " connection" + (list.length === 1 ? "" : "s"), members),
      el("div", { class: "cards", dataset: { group: key } }, list.map(connectionCard)));
  }
}
/** @param {Connection[]} list */
function updateConnections(list) {
  connections = list;
  $("conn-count").textContent = String(list.length);
  const signature = groupKey() + JSON.stringify(list.map((c) => [c.connectionId, c.userId, c.rooms, c.closing])) + JSON.stringify(presence ?? null);
  if (signature !== connSignature) {
    connSignature = signature;
    drawConnections();
  } else {
    const byId = new Map(list.map((c) => [c.connectionId, c]));
    for (const card of document.querySelectorAll(".conn")) {
      const c = byId.get(/** @type {HTMLElement} */ (card).dataset.connectionId ?? "");
      const cell = /** @type {HTMLElement | null} */ (card.querySelector(".last-active"));
      const span = /** @type {HTMLElement | null} */ (cell?.firstElementChild ?? null);
      if (!c || !cell || !span) continue;
      cell.title = c.lastActiveAt;
      span.dataset.at = c.lastActiveAt;
    }
  }
  for (const span of document.querySelectorAll(".ago")) span.textContent = ago(/** @type {HTMLElement} */ (span).dataset.at ?? "");
  const open = sendTarget?.connection.connectionId;
  if (open && !list.some((c) => c.connectionId === open)) closeSend();
}
for (const radio of document.querySelectorAll("input[name=group]")) radio.addEventListener("change", () => { connSignature = ""; updateConnections(connections); });
/**
 * @param {Connection} c
 * @param {HTMLElement} opener
 */
function openSend(c, opener) {
  sendTarget = { connection: c, opener };
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
  const target = sendTarget?.connection;
  if (!target) return;
  let data;
  try { data = JSON.parse($("send-data").value); } catch (err) { return say("The frame is not JSON: " + messageOf(err)); }
  try {
    await api("/console/api/send", { connectionId: target.connectionId, data });
    say("Sent to " + target.connectionId + ".", "ok");
    closeSend();
  } catch (err) { say("Send failed: " + messageOf(err)); }
  tick();
};
/**
 * An action on one connection (close, revoke), said on the page when done.
 * @param {string} path
 * @param {Connection} c
 * @param {string} done
 * @param {Record<string, unknown>} [extra]
 */
async function act(path, c, done, extra) {
  try {
    const result = /** @type {{ closedConnections?: number }} */ (await api(path, { connectionId: c.connectionId, ...extra }));
    say(c.userId + "'s connection " + done + (result.closedConnections !== undefined ? ": " + result.closedConnections + " connection(s) closed" : "") + ".", "ok");
  } catch (err) { say("Could not do that: " + messageOf(err)); }
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

// Messages: each publish the deliver handler saw, newest first, with where it went.
async function loadMessages() {
  try {
    const log = /** @type {MessageLog} */ (await api("/console/api/messages"));
    $("messages-count").textContent = String(log.messages.length);
    $("messages-note").textContent = "a failed record is received again after " + log.retryDelaySeconds + " s; after " + log.maxReceiveCount + " receives it goes to the dead-letter queue";
    $("message-list").replaceChildren(...log.messages.map((m) => el("li", { dataset: { key: m.key, outcome: m.outcome, notificationId: m.notificationId ?? "", room: m.roomId ?? "" } },
      el("div", { class: "head" },
        el("span", { class: "time", title: m.firstAt }, clock(m.firstAt)),
        el("span", { class: "outcome" }, m.outcome),
        m.roomId ? el("span", {}, "room ", el("span", { class: "chip" }, m.roomId)) : el("span", { class: "empty" }, "no room"),
        el("span", {}, m.notificationId ? "id " : "record ", el("code", {}, m.notificationId ?? m.recordIds[0] ?? m.key)),
        m.seq !== undefined && el("span", { class: "seq" }, "seq " + m.seq)),
      el("p", { class: "outcome-text" }, m.text + (m.nextTryAt ? " (at " + clock(m.nextTryAt) + ")" : "")),
      m.steps.length > 1 && el("details", {}, el("summary", {}, m.steps.length + " steps"),
        el("ol", {}, m.steps.map((step) => el("li", {}, clock(step.time) + " " + step.text)))))));
    if (!log.messages.length) $("message-list").append(el("li", { class: "empty" }, "No publish seen yet: publish from the Publish tab, the CLI or the SDK."));
  } catch (err) { say("Messages: " + messageOf(err)); }
}

// Events: lifecycle events as the bus took them, newest first (presence on).
async function loadLifecycle() {
  try {
    const log = /** @type {{ version: number, eventBusName: string | null, events: BusEvent[] }} */ (await api("/console/api/lifecycle"));
    $("events-count").textContent = String(log.events.length);
    $("events-note").textContent = log.eventBusName ? "bus " + log.eventBusName + ", source notification-hub: what an app's EventBridge rule gets" : "lifecycle events exist with presence on";
    $("event-list").replaceChildren(...log.events.map((e) => {
      const d = e.detail;
      return el("li", { dataset: { eventId: d.event_id, detailType: e["detail-type"], room: d.room_id ?? "", user: d.user_id ?? "" } },
        el("span", { class: "time", title: new Date(d.at).toISOString() }, clock(new Date(d.at).toISOString())),
        el("span", { class: "detail-type" }, e["detail-type"]),
        d.room_id !== undefined && el("span", {}, "room ", el("span", { class: "chip" }, d.room_id)),
        d.user_id !== undefined && el("span", {}, "user ", el("strong", {}, d.user_id)),
        d.connection_id !== undefined && el("span", {}, "connection ", el("code", {}, d.connection_id)),
        d.reason !== undefined && el("span", { class: "reason-text" }, "reason " + d.reason),
        el("span", { class: "muted" }, "event_id ", el("code", {}, d.event_id)));
    }));
    if (!log.events.length) $("event-list").append(el("li", { class: "empty" }, "No lifecycle event yet: connect from the Demo tab."));
  } catch (err) { say("Events: " + messageOf(err)); }
}

// Live: the hub's state every second, and at once after an action; one request at a time.
async function tick() {
  clearTimeout(poll.timer);
  if (poll.running) return void (poll.again = true);
  poll.running = true;
  try {
    const state = /** @type {State} */ (await api("/console/api/state?after=" + lastEventId));
    if (hubInstance !== undefined && state.hub.instance !== hubInstance) {
      // Another hub answers at this address (a restart): its log starts again, from id 1.
      logEvents.length = 0;
      lastEventId = 0;
      deadLetters = -1;
      messagesVersion = -1;
      lifecycleVersion = -1;
      drawLog();
      $("log-count").textContent = "0";
      say("The hub restarted: the console follows the new one (its log starts empty).", "ok");
      state.events = /** @type {State} */ (await api("/console/api/state?after=0")).events;
    }
    hubInstance = state.hub.instance;
    state.events = state.events.filter((e) => e.id > lastEventId);
    serverOffset = Date.parse(state.now) - Date.now();
    $("live").dataset.state = "ok";
    $("live").textContent = "live";
    $("ws-url").textContent = state.hub.websocketUrl;
    $("queue-url").textContent = state.hub.queueUrl;
    $("drop-disconnect").hidden = !(state.hub.dropDisconnect > 0);
    $("drop-disconnect").textContent = "$disconnect dropped for " + Number((state.hub.dropDisconnect * 100).toFixed(1)) + " % of closes (dropDisconnect)";
    $("retention").textContent = state.hub.retentionHours > 0 ? "frames kept " + state.hub.retentionHours + " h" : "streams are off (history.retentionHours 0)";
    presence = state.presence;
    updateConnections(state.connections);
    if (state.lifecycleVersion !== undefined) {
      $("tab-events").hidden = false;
      if (state.lifecycleVersion !== lifecycleVersion) {
        lifecycleVersion = state.lifecycleVersion;
        loadLifecycle();
      }
    }
    if (state.events.length) {
      logEvents.push(...state.events);
      lastEventId = state.events[state.events.length - 1].id;
      if (logEvents.length > 1000) logEvents.splice(0, logEvents.length - 1000);
      $("log-count").textContent = String(logEvents.length);
      drawLog();
    }
    if (state.messagesVersion !== messagesVersion) {
      messagesVersion = state.messagesVersion;
      loadMessages();
    }
    if (state.deadLetters !== deadLetters) {
      deadLetters = state.deadLetters;
      $("dlq-count").textContent = String(deadLetters);
      $("dlq-count").dataset.alert = String(deadLetters > 0);
      if (!$("panel-dead-letters").hidden) loadDeadLetters();
    }
  } catch {
    $("live").dataset.state = "down";
    $("live").textContent = "hub not answering (stopped?)";
  }
  poll.running = false;
  poll.timer = setTimeout(tick, poll.again ? 0 : 1000);
  poll.again = false;
}

// Streams and replay.
async function loadStreams() {
  try {
    const { streams } = /** @type {{ streams: StreamRow[] }} */ (await api("/console/api/streams"));
    $("streams").replaceChildren(...streams.map((s) => el("tr", { dataset: { room: s.room } },
      el("td", {}, el("code", {}, s.room)), el("td", { class: "head" }, String(s.head)), el("td", {}, String(s.frames)), el("td", {}, String(s.oldest)),
      el("td", {}, el("button", { type: "button", class: "action secondary", onclick: () => { $("replay-room").value = s.room; $("replay-after").value = String(Math.max(0, s.head - 20)); replay(); } }, "Replay")))));
    if (!streams.length) $("streams").append(el("tr", {}, el("td", { colspan: "5", class: "empty" }, "No stored frames yet: publish something.")));
  } catch (err) { say("Streams: " + messageOf(err)); }
}
$("streams-refresh").onclick = loadStreams;
async function replay() {
  const room = $("replay-room").value.trim();
  if (!room) { $("replay-room").focus(); return say("Type a stream (room id, or user:ID) to replay."); }
  const after = $("replay-after").value.trim();
  try {
    const result = /** @type {{ frames: ReplayFrame[] }} */ (await api("/console/api/history?room=" + encodeURIComponent(room) + (after ? "&after=" + encodeURIComponent(after) : "&last=20")));
    $("replay-summary").textContent = result.frames.length + " frame(s) of " + room + (after ? " after seq " + after : " (the newest 20)");
    $("replay-list").replaceChildren(...result.frames.map((f) => el("li", { dataset: { seq: String(f.seq) } },
      el("strong", {}, "seq " + f.seq), " · ", el("code", {}, f.id), " · from ", String(f.user_id ?? "the app"), " (" + f.origin + ") ", jsonView(f.data))));
    say("");
  } catch (err) { say("Replay failed: " + messageOf(err)); }
}
$("replay-form").onsubmit = (event) => { event.preventDefault(); replay(); };

// Publish.
function publishMode() { return /** @type {HTMLInputElement | null} */ (document.querySelector("input[name=pub-mode]:checked"))?.value ?? "room"; }
function showPublishFields() {
  const mode = publishMode();
  for (const field of document.querySelectorAll("[data-for-mode]")) {
    const element = /** @type {HTMLElement} */ (field);
    element.hidden = !(element.dataset.forMode ?? "").split(" ").includes(mode);
  }
}
for (const radio of document.querySelectorAll("input[name=pub-mode]")) radio.addEventListener("change", showPublishFields);
showPublishFields();
$("publish-form").onsubmit = async (event) => {
  event.preventDefault();
  const mode = publishMode();
  /** @type {{ mode: string, body?: string, data?: unknown, userId?: string, roomId?: string, roomIds?: string[], toUserId?: string, idempotencyKey?: string }} */
  const body = { mode };
  if (mode === "raw") body.body = $("pub-raw").value;
  else {
    try { body.data = JSON.parse($("pub-data").value); } catch (err) { $("pub-data").focus(); return say("Data is not JSON (" + messageOf(err) + "); a text needs quotes: \"hello\"."); }
    body.userId = $("pub-sender").value.trim();
    // Sent as typed (empty: none): the hub names what it refuses, and its limits.
    if ($("pub-key").value !== "") body.idempotencyKey = $("pub-key").value;
    if (mode === "room") body.roomId = $("pub-room").value.trim();
    else if (mode === "rooms") body.roomIds = $("pub-rooms").value.split(",").map((room) => room.trim()).filter((room) => room !== "");
    else body.toUserId = $("pub-to-user").value.trim();
    const missing = mode === "room" ? (!body.roomId && "pub-room") : mode === "rooms" ? (!body.roomIds?.length && "pub-rooms") : (!body.toUserId && "pub-to-user");
    if (missing) { $(missing).focus(); return say(mode === "user" ? "Type the user to publish to." : mode === "rooms" ? "Type the rooms to publish to, separated by commas." : "Type the room to publish to."); }
  }
  try {
    const { messageId } = /** @type {{ messageId: string }} */ (await api("/console/api/publish", body));
    say("");
    $("pub-result").hidden = false;
    const to = mode === "room" ? " for room " + body.roomId : mode === "rooms" ? " for " + body.roomIds?.length + " rooms" : mode === "user" ? " for user " + body.toUserId : " (raw)";
    $("pub-result").textContent = "Queued as message " + messageId + to + (body.idempotencyKey ? " (key " + body.idempotencyKey + ": a retry with it is the same notification)" : "") + ".";
  } catch (err) { say("Publish failed: " + messageOf(err)); }
  tick();
};

// Dead letters: peek, reason, redrive.
async function loadDeadLetters() {
  try {
    const list = /** @type {DeadLetter[]} */ (await api("/console/api/dead-letters"));
    $("dlq-list").replaceChildren(...list.map((d) => el("article", { class: "card dead", dataset: { messageId: d.messageId } },
      el("dl", {},
        el("dt", {}, "message"), el("dd", {}, el("code", {}, d.messageId)),
        el("dt", {}, "reason"), el("dd", {}, el("span", { class: "reason" }, d.code), ": " + d.reason),
        el("dt", {}, "receives"), el("dd", { class: "receives", title: "deliveries from the main queue before it was dead-lettered (peeks here do not count)" }, String(d.receiveCount)),
        el("dt", {}, "sent"), el("dd", {}, d.sentAt ? clock(d.sentAt) : "?"),
        el("dt", {}, "body"), el("dd", {}, jsonView(d.body, true))),
      el("div", { class: "buttons" }, el("button", { type: "button", class: "action redrive", onclick: () => redrive(d.messageId) }, "Redrive to the main queue")))));
    if (!list.length) $("dlq-list").append(el("p", { class: "empty" }, "The dead-letter queue is empty."));
  } catch (err) { say("Dead letters: " + messageOf(err)); }
}
$("dlq-refresh").onclick = loadDeadLetters;
/** @param {string} messageId */
async function redrive(messageId) {
  try {
    const result = /** @type {{ newMessageId: string }} */ (await api("/console/api/redrive", { messageId }));
    say("Redriven: " + messageId + " is back on the main queue as " + result.newMessageId + ".", "ok");
  } catch (err) { say("Redrive failed: " + messageOf(err)); }
  loadDeadLetters();
  tick();
}

tick();
