// @ts-check
import { connect } from "/client.mjs";
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
const FOLD_AT = 300;
/** @typedef {import("/client.mjs").HubConnection} HubConnection */
/** @typedef {import("/client.mjs").HubFrame} HubFrame */
/** @typedef {import("/client.mjs").JoinError} JoinError */
/** @type {HubConnection | undefined} */
let hub;
/** Who this page connected as: the user, the Room field, and the token's room (a one-room token). @type {{ userId: string, roomId: string, tokenRoom?: string } | undefined} */
let joined;
let wasOpen = false;
/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error ? err.message : String(err));

// Problems show on the page, never in an alert; an empty text hides the line.
/**
 * @param {string} text
 * @param {"error" | "warn"} [kind]
 */
function say(text, kind = "error") {
  $("message").textContent = text;
  $("message").dataset.kind = kind;
  $("message").hidden = !text;
}
/** @param {import("/client.mjs").ConnectionState} state */
function setStatus(state) {
  $("status").dataset.state = state;
  if (state === "open") {
    wasOpen = true;
    say("");
    $("status").textContent = "connected as " + joined?.userId + " in " + joined?.roomId;
    refreshInfo();
  } else if (state === "connecting" && wasOpen) {
    $("status").textContent = "connection lost, reconnecting…";
    say("The hub closed the connection: the token was revoked, or the hub stopped or restarted. Reconnecting with a new token…", "warn");
  } else $("status").textContent = state === "connecting" ? "connecting…" : "disconnected";
}
/**
 * A demo endpoint's JSON answer; its error message when it refuses.
 * @param {string} path
 * @param {object} body
 * @returns {Promise<Record<string, unknown>>}
 */
async function post(path, body) {
  let response;
  try {
    response = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    throw new Error("the local hub does not answer (stopped?); start it again with npm run dev");
  }
  /** @type {Record<string, unknown>} */
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(String(json.error || json.message || response.statusText));
  return json;
}
// Where to connect, and what the header shows: asked at load, and again after a restart
// (the queue, and maybe more, moved).
/** @returns {Promise<string | undefined>} the WebSocket URL, unless the hub does not answer */
async function refreshInfo() {
  try {
    const info = await (await fetch("/demo/info")).json();
    $("ws-url").textContent = info.websocketUrl;
    $("queue-url").textContent = info.queueUrl;
    return info.websocketUrl;
  } catch {
    return undefined;
  }
}
refreshInfo();
// Any JSON value: long ones fold, so one big payload cannot make the page huge.
/** @param {string} text */
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
/**
 * @param {any} data the notification's data: any JSON value
 * @param {HubFrame} frame
 */
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
  row.dataset.id = frame.id ?? "";
  row.dataset.room = frame.room_id ?? "";
  row.hidden = !shownRoom(row.dataset.room);
  $("log").prepend(row);
}
/** @param {string | undefined} room */
const shownRoom = (room) => !$("show").value || $("show").value === room;
$("show").onchange = () => {
  /** @type {HTMLTableSectionElement} */
  const log = $("log");
  for (const row of log.rows) row.hidden = !shownRoom(row.dataset.room);
};

// The rooms of this connection: the token's room and the user's own channel (from $connect),
// and those joined here. The publish and show lists follow them.
function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  const connection = hub;
  if (!connection || !joined) return;
  const fixed = [joined.tokenRoom, "user:" + joined.userId].filter((room) => room !== undefined);
  for (const room of [...fixed, ...connection.rooms]) {
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
      leave.onclick = () => connection.leave(room).then(renderRooms, (err) => say("Cannot leave " + room + ": " + messageOf(err)));
      item.append(leave);
    }
    list.append(item);
  }
  const rooms = [joined.tokenRoom, ...connection.rooms].filter((room) => room !== undefined);
  fillSelect($("to-room"), rooms.map((room) => [room, room]));
  fillSelect($("show"), [["", "every room"], ...[...rooms, "user:" + joined.userId].map((room) => /** @type {[string, string]} */ ([room, room]))]);
  showTarget();
}
/**
 * @param {HTMLSelectElement} select
 * @param {[string, string][]} options value and label of each
 */
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
  /** The token asked for above, used once by the first connect. @type {string | undefined} */
  let first;
  try {
    first = String((await post("/demo/token", tokenRequest)).token);
  } catch (err) {
    setStatus("closed");
    say("Cannot connect: " + messageOf(err));
    return;
  }
  const url = await refreshInfo();
  if (!url) {
    setStatus("closed");
    say("Cannot connect: the local hub does not answer (stopped?); start it again with npm run dev");
    return;
  }
  joined = { userId, roomId, tokenRoom: grants.length ? undefined : roomId };
  const mine = connect({
    url,
    getToken: async () => {
      if (first) {
        const token = first;
        first = undefined;
        return token;
      }
      try {
        return String((await post("/demo/token", tokenRequest)).token);
      } catch (err) {
        say("Cannot reconnect: " + messageOf(err));
        throw err;
      }
    },
    onStateChange: (state) => hub === mine && setStatus(state),
  });
  hub = mine;
  // The demo shows every frame, members' messages included (origin "client").
  mine.subscribe("*", addRow, { clientFrames: true });
  if (grants.length) joinRoom(roomId);
  renderRooms();
};
/** @param {string} room */
function joinRoom(room) {
  const mine = hub;
  if (!mine) return;
  mine.join(room).then(
    () => hub === mine && renderRooms(),
    (/** @type {JoinError} */ err) => {
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
