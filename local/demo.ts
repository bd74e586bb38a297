/**
 * The local hub's demo page and the two small endpoints it needs, playing the app backend:
 * issue a token (one room, or several with `rooms`), publish a notification through the queue
 * (to a room, or to a user's channel). Local development only.
 */
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { describeError, type Logger } from "../core/log";
import type { Notifier } from "../server";
import { splitTarget } from "./apiGateway";
import type { LocalHubInfo } from "./index";

interface DemoContext {
  info: LocalHubInfo;
  notifier: Notifier;
  log: Logger;
}

/** The browser client, from the source tree or from the installed package. */
function clientModulePath(): string {
  const candidates = [path.join(__dirname, "../client/index.mjs"), path.join(__dirname, "../../client/index.mjs")];
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (!found) throw new Error("client/index.mjs not found beside the local hub");
  return found;
}

export function send(response: http.ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  response.end(body);
}

export async function readJson(request: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > 256 * 1024) throw new RangeError("request body too large");
    chunks.push(chunk as Buffer);
  }
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TypeError("expected a JSON object");
  return parsed as Record<string, unknown>;
}

/** Host headers this hub answers to: its own address, and loopback names on its port. */
function allowedHosts(info: LocalHubInfo): Set<string> {
  const port = new URL(info.httpUrl).port;
  const own = new URL(info.httpUrl).host;
  return new Set([own, `127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`].map((h) => h.toLowerCase()));
}

/**
 * Why a request must be refused, if it must. A DNS-rebinding page reaches us under its own
 * host name (foreign Host header); a cross-site form or fetch says so in Origin or
 * Sec-Fetch-Site. The demo endpoints mint tokens, so neither may use them.
 */
export function refusalReason(request: http.IncomingMessage, info: LocalHubInfo): string | undefined {
  const host = String(request.headers.host ?? "").toLowerCase();
  const hosts = allowedHosts(info);
  if (!hosts.has(host)) return "foreign Host header";
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return "cross-site request";
  const origin = request.headers.origin;
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      const parsed = new URL(String(origin));
      originHost = parsed.protocol === "http:" ? parsed.host.toLowerCase() : undefined;
    } catch {
      originHost = undefined;
    }
    if (!originHost || !hosts.has(originHost)) return "cross-site request";
  }
  return undefined;
}

export function handleDemoRequest(request: http.IncomingMessage, response: http.ServerResponse, context: DemoContext): void {
  const json = (status: number, body: unknown) => send(response, status, "application/json", JSON.stringify(body));
  const target = splitTarget(request.url);
  if (!target) return json(400, { message: "Bad Request" });
  const refusal = refusalReason(request, context.info);
  if (refusal) {
    context.log.warn("demo request refused", { reason: refusal, method: request.method });
    return json(403, { message: `Forbidden: ${refusal}` });
  }
  const route = `${request.method} ${target.path}`;
  switch (route) {
    case "GET /demo":
      // "/" is the developer console (local/console.ts); the demo is one of its tabs.
      return send(response, 200, "text/html; charset=utf-8", demoPage(context.info));
    case "GET /client.mjs":
      return send(response, 200, "text/javascript; charset=utf-8", fs.readFileSync(clientModulePath(), "utf8"));
    case "GET /health":
      return json(200, { ok: true });
    case "GET /demo/info":
      // No secrets: what the page's header shows, refreshed so an open tab follows a restart.
      return json(200, { websocketUrl: context.info.websocketUrl, queueUrl: context.info.queueUrl });
    case "POST /demo/token":
    case "POST /demo/publish":
      readJson(request)
        .then(async (body) => {
          if (route === "POST /demo/token") {
            const userId = body.userId as string;
            const token = await context.notifier.issueToken(Array.isArray(body.rooms) ? { userId, rooms: body.rooms as string[] } : { userId, roomId: body.roomId as string });
            return json(200, { token });
          }
          // To one user's channel with toUserId, else to a room; userId is the sender either way.
          const sender = (body.userId as string) ?? null;
          const { messageId } =
            body.toUserId !== undefined
              ? await context.notifier.publish({ toUserId: body.toUserId as string, userId: sender, data: body.data })
              : await context.notifier.publish({ roomId: body.roomId as string, userId: sender, data: body.data });
          return json(200, { messageId });
        })
        .catch((err: unknown) => {
          const clientError = err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError;
          if (!clientError) context.log.error("demo request failed", { route, ...describeError(err) });
          json(clientError ? 400 : 500, { error: (err as Error).message });
        });
      return;
    default:
      return json(404, { message: "Not Found" });
  }
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function demoPage(info: LocalHubInfo): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>notification-hub · local</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; color: #1d2330; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; } .muted { color: #667; font-size: .85rem; }
  fieldset { border: 1px solid #d4d8e0; border-radius: 8px; margin: 1rem 0; padding: .8rem 1rem; }
  label { margin-right: .8rem; } input { font: inherit; padding: .25rem .4rem; border: 1px solid #bbc; border-radius: 4px; }
  button { font: inherit; padding: .3rem .9rem; border-radius: 4px; border: 1px solid #2b5fd9; background: #2f6bff; color: white; cursor: pointer; }
  #status { font-weight: 600; } #status[data-state=open] { color: #18864b; } #status[data-state=closed] { color: #b3261e; }
  table { width: 100%; border-collapse: collapse; font-size: .9rem; } th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
  td code, .full, summary { white-space: pre-wrap; word-break: break-all; } .type { font-weight: 600; }
  .full { max-height: 16rem; overflow: auto; margin: .3rem 0 0; font-size: .85rem; } summary { cursor: pointer; }
  .message { padding: .5rem .8rem; border-radius: 6px; background: #fdecea; color: #8c1d18; }
  .message[data-kind=warn] { background: #fff4e5; color: #7a4b00; }
  select { font: inherit; padding: .2rem; } .rooms { list-style: none; padding: 0; margin: .5rem 0 0; display: flex; flex-wrap: wrap; gap: .4rem; }
  .rooms li { border: 1px solid #c9d3ea; border-radius: 999px; padding: .1rem .3rem .1rem .7rem; background: #f3f6fd; }
  .rooms li button { padding: 0 .5rem; margin-left: .3rem; background: white; color: #2b5fd9; }
  .rooms li[data-fixed] { padding-right: .7rem; }
</style>
</head>
<body>
<h1>notification-hub — local hub</h1>
<div class="muted">WebSocket <code id="ws-url">${escapeHtml(info.websocketUrl)}</code> · queue <code id="queue-url">${escapeHtml(info.queueUrl)}</code></div>

<fieldset>
  <legend>Connect</legend>
  <label>User <input id="user" value="alice" size="10"></label>
  <label>Room <input id="room" value="lobby" size="10"></label>
  <label title="Rooms the token also grants, comma-separated: exact ids or prefixes ending in *">Also grant <input id="grants" placeholder="team, projects/*" size="16"></label>
  <button id="connect">Get token &amp; connect</button>
  <span id="status" data-state="closed" role="status">disconnected</span>
</fieldset>

<fieldset>
  <legend>Rooms on this connection</legend>
  <label>Room <input id="join-room" placeholder="team" size="12"></label>
  <button id="join" type="button">Join</button>
  <ul id="rooms" class="rooms" aria-label="rooms of this connection"></ul>
</fieldset>

<fieldset>
  <legend>Publish (through the queue, as an app backend would)</legend>
  <label>To <select id="publish-to"><option value="room">room</option><option value="user">user</option></select></label>
  <label id="to-room-label">Room <select id="to-room"><option value="">the room you join</option></select></label>
  <label id="to-user-label" hidden>User <input id="to-user" size="10"></label>
  <label>Type <input id="type" value="info" size="10"></label>
  <label>Data <input id="data" value="Hello from the demo" size="28"></label>
  <button id="publish">Publish</button>
  <div class="muted">Publishing <span id="target">to the room you join</span></div>
</fieldset>

<p id="message" class="message" role="alert" hidden></p>

<h2 style="font-size:1.1rem">Notifications <label class="muted" style="font-weight:normal">show <select id="show"><option value="">every room</option></select></label></h2>
<table><thead><tr><th>Time</th><th>Type</th><th>From</th><th>Data</th><th>Room</th></tr></thead><tbody id="log"></tbody></table>

<script type="module">
import { connect } from "/client.mjs";
const $ = (id) => document.getElementById(id);
const FOLD_AT = 300;
let hub, joined, wasOpen = false;

// Problems show on the page, never in an alert; an empty text hides the line.
function say(text, kind = "error") {
  $("message").textContent = text;
  $("message").dataset.kind = kind;
  $("message").hidden = !text;
}
function setStatus(state) {
  $("status").dataset.state = state;
  if (state === "open") {
    wasOpen = true;
    say("");
    $("status").textContent = "connected as " + joined.userId + " in " + joined.roomId;
    refreshInfo();
  } else if (state === "connecting" && wasOpen) {
    $("status").textContent = "connection lost, reconnecting…";
    say("The hub closed the connection: the token was revoked, or the hub stopped or restarted. Reconnecting with a new token…", "warn");
  } else $("status").textContent = state === "connecting" ? "connecting…" : "disconnected";
}
async function post(path, body) {
  let response;
  try {
    response = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    throw new Error("the local hub does not answer (stopped?); start it again with npm run dev");
  }
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(json.error || json.message || response.statusText);
  return json;
}
// After a restart the queue (and maybe more) moved: show what the hub says now.
async function refreshInfo() {
  try {
    const info = await (await fetch("/demo/info")).json();
    $("ws-url").textContent = info.websocketUrl;
    $("queue-url").textContent = info.queueUrl;
  } catch {}
}
// Any JSON value: long ones fold, so one big payload cannot make the page huge.
function dataCell(text) {
  if (text.length <= FOLD_AT) {
    const code = document.createElement("code");
    code.textContent = text;
    return code;
  }
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = text.slice(0, 120) + "… (" + text.length.toLocaleString("en") + " characters)";
  const full = document.createElement("pre");
  full.className = "full";
  full.textContent = text;
  details.append(summary, full);
  return details;
}
function addRow(data, frame) {
  // The hub's answers to the client's own requests (resume, join) are not notifications.
  if (frame.room_id === null && typeof data?.type === "string" && data.type.startsWith("hub.")) {
    if (data.type === "hub.error") say("The hub refused a request: " + (data.data?.code ?? "") + " — " + (data.data?.message ?? ""));
    return;
  }
  const envelope = data !== null && typeof data === "object" && !Array.isArray(data) && "type" in data;
  const shown = envelope && "data" in data ? data.data : data;
  const row = document.createElement("tr");
  const cells = [new Date().toLocaleTimeString(), envelope ? String(data.type) : "", frame.user_id ?? "", dataCell(JSON.stringify(shown) ?? String(shown)), frame.room_id ?? ""];
  cells.forEach((content, i) => {
    const cell = document.createElement("td");
    cell.append(content);
    if (i === 1) cell.className = "type";
    row.append(cell);
  });
  row.dataset.id = frame.id;
  row.dataset.room = frame.room_id ?? "";
  row.hidden = !shownRoom(row.dataset.room);
  $("log").prepend(row);
}
const shownRoom = (room) => !$("show").value || $("show").value === room;
$("show").onchange = () => {
  for (const row of $("log").rows) row.hidden = !shownRoom(row.dataset.room);
};

// The rooms of this connection: the token's room and the user's own channel (from $connect),
// and those joined here. The publish and show lists follow them.
function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  if (!hub) return;
  const fixed = [joined.tokenRoom, "user:" + joined.userId].filter(Boolean);
  for (const room of [...fixed, ...hub.rooms]) {
    const item = document.createElement("li");
    item.textContent = room;
    item.dataset.room = room;
    if (fixed.includes(room)) {
      item.dataset.fixed = "";
      item.title = room.startsWith("user:") ? "your user channel: what the app publishes to you" : "the token's room";
    } else {
      const leave = document.createElement("button");
      leave.type = "button";
      leave.textContent = "Leave";
      leave.setAttribute("aria-label", "Leave " + room);
      leave.onclick = () => hub.leave(room).then(renderRooms, (err) => say("Cannot leave " + room + ": " + err.message));
      item.append(leave);
    }
    list.append(item);
  }
  const rooms = [joined.tokenRoom, ...hub.rooms].filter(Boolean);
  fillSelect($("to-room"), rooms.map((room) => [room, room]));
  fillSelect($("show"), [["", "every room"], ...[...rooms, "user:" + joined.userId].map((room) => [room, room])]);
  showTarget();
}
function fillSelect(select, options) {
  const current = select.value;
  select.replaceChildren(...options.map(([value, label]) => Object.assign(document.createElement("option"), { value, textContent: label })));
  if (options.some(([value]) => value === current)) select.value = current;
}
function showTarget() {
  const toUser = $("publish-to").value === "user";
  $("to-room-label").hidden = toUser;
  $("to-user-label").hidden = !toUser;
  if (toUser && !$("to-user").value && joined) $("to-user").value = joined.userId;
  $("target").textContent = toUser ? "to every connection of user " + ($("to-user").value || "…") : "to room " + ($("to-room").value || joined?.roomId || "you join");
}
$("publish-to").onchange = showTarget;
$("to-room").onchange = showTarget;
$("to-user").oninput = showTarget;

$("connect").onclick = async () => {
  const userId = $("user").value.trim(), roomId = $("room").value.trim();
  const grants = $("grants").value.split(",").map((grant) => grant.trim()).filter(Boolean);
  const empty = !userId ? "user" : !roomId ? "room" : "";
  if (empty) {
    say("Type a " + empty + " id to connect.");
    $(empty).focus();
    return;
  }
  hub?.close();
  hub = undefined;
  wasOpen = false;
  // With more rooms the token carries grants (claim rooms) and the room is joined; else the seed's one-room token.
  const tokenRequest = grants.length ? { userId, rooms: [roomId, ...grants] } : { userId, roomId };
  // The first token is asked for here, so a refusal shows at once instead of a retry loop.
  let first;
  try {
    first = (await post("/demo/token", tokenRequest)).token;
  } catch (err) {
    setStatus("closed");
    say("Cannot connect: " + err.message);
    return;
  }
  joined = { userId, roomId, tokenRoom: grants.length ? undefined : roomId };
  const mine = connect({
    url: ${JSON.stringify(info.websocketUrl)},
    getToken: async () => {
      if (first) return [first, (first = undefined)][0];
      try {
        return (await post("/demo/token", tokenRequest)).token;
      } catch (err) {
        say("Cannot reconnect: " + err.message);
        throw err;
      }
    },
    onStateChange: (state) => hub === mine && setStatus(state),
  });
  hub = mine;
  // The demo shows every frame, members' messages included (origin "client").
  hub.subscribe("*", addRow, { clientFrames: true });
  if (grants.length) joinRoom(roomId);
  renderRooms();
};
function joinRoom(room) {
  const mine = hub;
  mine.join(room).then(
    () => hub === mine && renderRooms(),
    (err) => {
      if (hub !== mine) return;
      say("Cannot join " + room + ": " + err.code + (err.hubError ? " — " + err.hubError.message : ""));
      renderRooms(); // the refused room leaves the list
    },
  );
  renderRooms();
}
$("join").onclick = () => {
  const room = $("join-room").value.trim();
  if (!hub) return say("Connect first: rooms are joined on your connection.");
  if (!room) {
    say("Type a room id to join.");
    return $("join-room").focus();
  }
  joinRoom(room);
};
// Publish goes to a room of this connection (the Room field only says where to connect next), or to a user.
$("publish").onclick = () => {
  if (!joined) return say("Connect first: Publish sends to the room you joined.");
  const data = { type: $("type").value, data: $("data").value };
  const target = $("publish-to").value === "user" ? { toUserId: $("to-user").value.trim() || joined.userId } : { roomId: $("to-room").value || joined.roomId };
  post("/demo/publish", { ...target, userId: joined.userId, data }).then(
    () => wasOpen && $("status").dataset.state === "open" && say(""),
    (err) => say("Publish failed: " + err.message),
  );
};
</script>
</body>
</html>`;
}
