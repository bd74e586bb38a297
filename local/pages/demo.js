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
/**
 * One press of "Get token & connect": its one token, the connection made with it, how its
 * socket last closed, and a pending reconnect. The page reconnects itself (the client's own
 * reconnect is off) so that it can ask first whether the token still passes: a revoked user
 * is told so and stays disconnected, never quietly issued a new token, and no handshake is
 * tried with a token the hub would refuse.
 * A hub restarted without --data-dir knows no token from before (new secrets, empty tables):
 * then, and only then, the page asks for a new token, and says so in its event list.
 * @typedef {{ token: string, tokenRequest: object, url: string, retries: number, lastClose?: { code: number, reason: string }, timer?: ReturnType<typeof setTimeout> }} Session
 */
/** @type {Session | undefined} */
let session;
/** The hub's presence, from /demo/info: its eventMembersLimit, or null when it is off. @type {{ eventMembersLimit: number } | null} */
let presence = null;
/**
 * Who is in each room of this connection, as the client's onMember tells it: a reset replaces
 * a room's list, joined/left change it (`members` undefined: a room past eventMembersLimit, of
 * which only the count is kept). `stale`: the socket dropped; the next connection's reset
 * (the client reads the room again) replaces it.
 * @typedef {{ connection: HubConnection, count: number, members: Set<string> | undefined, stale: boolean, stop: () => void }} RoomMembers
 */
/** @type {Map<string, RoomMembers>} */
const whoIsHere = new Map();
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
/**
 * The status line: "open", "connecting" or "closed", and what to say.
 * @param {import("/client.mjs").ConnectionState} state
 * @param {string} text
 */
function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}
/**
 * A line in the connection's event list (newest first): connects, disconnects and why.
 * @param {"connected" | "disconnected" | "ended"} kind
 * @param {string} text
 */
function logEvent(kind, text) {
  const item = document.createElement("li");
  item.dataset.kind = kind;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date().toLocaleTimeString();
  item.append(time, " " + text);
  $("events").prepend(item);
  while ($("events").children.length > 20) $("events").lastElementChild?.remove();
}
/**
 * A WebSocket close, in words: the code API Gateway (or the emulator) closed with.
 * @param {{ code: number, reason: string } | undefined} close
 */
function closeWords(close) {
  if (!close) return "the socket closed";
  const words = {
    1000: "closed by the hub through @connections DELETE (a revoke, the console's Close, or the app)",
    1001: "going away: idle timeout, the 2-hour limit, or the hub stopping",
    1003: "a binary frame was refused",
    1006: "the connection dropped without a close frame (the hub stopped?)",
    1009: "a frame over 32 KB was refused",
  }[close.code];
  return (words ?? "closed") + ", code " + close.code + (close.reason ? ' "' + close.reason + '"' : "");
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
    presence = info.presence ?? null;
    renderMembers();
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
  // The hub's member events are not notifications: "Who is here" shows them.
  if (frame.origin === "hub") return;
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
      leave.onclick = () => {
        unwatchMembers(room);
        connection.leave(room).then(renderRooms, (err) => say("Cannot leave " + room + ": " + messageOf(err)));
      };
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
 * Follows who is in `room` on this connection (the client's onMember): its first reset lists
 * them; after a reconnect the new connection's reset (or its refresh's joins and leaves) replaces
 * what the old one showed.
 * @param {HubConnection} connection
 * @param {string} room
 */
function watchMembers(connection, room) {
  const before = whoIsHere.get(room);
  if (!presence || before?.connection === connection) return;
  before?.stop();
  /** @type {RoomMembers} */
  const entry = { connection, count: before?.count ?? 0, members: before?.members, stale: true, stop: () => {} };
  whoIsHere.set(room, entry);
  entry.stop = connection.onMember(room, (change) => {
    if (whoIsHere.get(room) !== entry) return;
    if (change.type === "reset") {
      entry.members = change.members ? new Set(change.members.map((member) => member.user_id)) : undefined;
      entry.count = change.members ? change.members.length : change.count;
      entry.stale = false;
    } else if (change.type === "joined") {
      entry.members?.add(change.user_id);
      entry.count = entry.members?.size ?? entry.count + 1;
    } else {
      entry.members?.delete(change.user_id);
      entry.count = entry.members?.size ?? Math.max(0, entry.count - 1);
    }
    renderMembers();
  });
  renderMembers();
}
/** @param {string} room */
function unwatchMembers(room) {
  whoIsHere.get(room)?.stop();
  whoIsHere.delete(room);
  renderMembers();
}
/** @param {string} text */
function muted(text) {
  return Object.assign(document.createElement("span"), { className: "muted", textContent: text });
}
function renderMembers() {
  const box = $("members");
  if (!presence) return box.replaceChildren(muted("Presence is off on this hub (started with --no-presence): no member list."));
  if (whoIsHere.size === 0) return box.replaceChildren(muted("Connect to see who is in your rooms."));
  box.replaceChildren(
    ...[...whoIsHere].map(([room, entry]) => {
      const part = document.createElement("div");
      part.dataset.room = room;
      if (entry.stale) part.dataset.stale = "";
      const title = document.createElement("h3");
      const people = entry.stale && !entry.members ? "…" : entry.count + (entry.count === 1 ? " member" : " members");
      title.append(room + " ", muted("· " + people + (entry.stale && entry.members ? " (reconnecting…)" : "")));
      const list = document.createElement("ul");
      list.className = "people";
      list.setAttribute("aria-label", "members of " + room);
      for (const user of [...(entry.members ?? [])].sort()) {
        const item = document.createElement("li");
        item.dataset.user = user;
        item.textContent = user;
        if (user === joined?.userId) {
          item.dataset.you = "";
          item.textContent += " (you)";
        }
        list.append(item);
      }
      if (!entry.members && !entry.stale) list.append(muted("more than " + presence?.eventMembersLimit + ": only the count is kept"));
      part.append(title, list);
      return part;
    }),
  );
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
  endSession();
  // With more rooms the token carries grants (claim rooms) and the room is joined; else the seed's one-room token.
  const tokenRequest = grants.length ? { userId, rooms: [roomId, ...grants] } : { userId, roomId };
  // The one token of this session, asked for here (pressing Connect is asking for one).
  let token;
  try {
    token = String((await post("/demo/token", tokenRequest)).token);
  } catch (err) {
    setStatus("closed", "disconnected");
    say("Cannot connect: " + messageOf(err));
    return;
  }
  const url = await refreshInfo();
  if (!url) {
    setStatus("closed", "disconnected");
    say("Cannot connect: the local hub does not answer (stopped?); start it again with npm run dev");
    return;
  }
  say("");
  joined = { userId, roomId, tokenRoom: grants.length ? undefined : roomId };
  session = { token, tokenRequest, url, retries: 0 };
  openSocket(session, grants.length ? [roomId] : []);
};
/** Stops the current session: its connection, and any reconnect it had planned. */
function endSession() {
  for (const room of [...whoIsHere.keys()]) unwatchMembers(room);
  if (!session) return;
  clearTimeout(session.timer);
  session = undefined;
  hub?.close();
  hub = undefined;
}
/**
 * A connection for this session's token, joining `rooms` once open (those of the connection
 * before, after a reconnect).
 * @param {Session} mine
 * @param {string[]} rooms
 */
function openSocket(mine, rooms) {
  /** Records how each socket closed: the client reports that it did, not the code. */
  class WatchedSocket extends WebSocket {
    /**
     * @param {string | URL} url
     * @param {string | string[]} [protocols]
     */
    constructor(url, protocols) {
      super(url, protocols);
      this.addEventListener("close", (event) => (mine.lastClose = { code: event.code, reason: event.reason }));
    }
  }
  mine.lastClose = undefined;
  setStatus("connecting", mine.retries ? "reconnecting…" : "connecting…");
  /** Set once connect() returns: it reports its first state change before it does. @type {HubConnection | undefined} */
  let connection;
  connection = connect({
    url: mine.url,
    token: mine.token,
    reconnect: false,
    WebSocket: WatchedSocket,
    ...(presence ? { eventMembersLimit: presence.eventMembersLimit } : {}),
    onStateChange: (state, change) => {
      if (connection === undefined || session !== mine || hub !== connection) return;
      if (state === "open") opened(mine);
      else if (state === "closed" && change.reason === "socket closed") void dropped(mine, connection, change.previous === "open");
    },
  });
  hub = connection;
  // The demo shows every frame, members' messages included (origin "client").
  connection.subscribe("*", addRow, { clientFrames: true });
  // The token's room: $connect puts the connection in it.
  if (joined?.tokenRoom !== undefined) watchMembers(connection, joined.tokenRoom);
  for (const room of rooms) joinRoom(room);
  renderRooms();
}
/** @param {Session} mine */
function opened(mine) {
  const again = mine.retries > 0;
  mine.retries = 0;
  say("");
  setStatus("open", "connected as " + joined?.userId + " in " + joined?.roomId);
  logEvent("connected", (again ? "reconnected" : "connected") + " as " + joined?.userId + " (token for " + (joined?.tokenRoom ?? "its rooms") + ")");
  refreshInfo();
}
/**
 * The socket closed (or its handshake failed): say why, ask the hub whether the token still
 * passes, then either reconnect with it or stop and say the token ended.
 * @param {Session} mine
 * @param {HubConnection} connection
 * @param {boolean} wasOpen
 */
async function dropped(mine, connection, wasOpen) {
  const rooms = connection.rooms;
  const why = wasOpen ? closeWords(mine.lastClose) : "the handshake failed";
  // What the lists show may miss what happened meanwhile: the next connection reads them again.
  for (const entry of whoIsHere.values()) entry.stale = true;
  renderMembers();
  if (wasOpen) logEvent("disconnected", "disconnected: " + why);
  setStatus("connecting", "disconnected: checking the token…");
  /** @type {{ valid: boolean, reason?: string, words?: string } | undefined} */
  let status;
  try {
    status = /** @type {{ valid: boolean, reason?: string, words?: string }} */ (await post("/demo/token-status", { token: mine.token }));
    if (!status.valid && status.reason === "invalid") {
      // Not revoked: this hub never issued it (a restart). A new one, said in the list.
      mine.token = String((await post("/demo/token", mine.tokenRequest)).token);
      mine.url = (await refreshInfo()) ?? mine.url;
      logEvent("disconnected", "new token: " + status.words);
      status = { valid: true };
    }
  } catch {
    status = undefined; // the hub does not answer: try again later
  }
  if (session !== mine) return;
  if (status && !status.valid) {
    session = undefined;
    hub = undefined;
    for (const room of [...whoIsHere.keys()]) unwatchMembers(room);
    setStatus("closed", "disconnected: " + status.words);
    logEvent("ended", "not reconnecting: " + status.words);
    say("The hub closed the connection: " + status.words + ". The demo does not fetch a new token behind your back: press \"Get token & connect\" to be issued one.", "warn");
    renderRooms();
    return;
  }
  const delay = Math.min(30_000, 500 * 2 ** mine.retries++);
  const seconds = (delay / 1000).toFixed(1) + " s";
  setStatus("connecting", "connection lost, reconnecting in " + seconds + "…");
  say(status ? "The hub closed the connection (" + why + "). Your token still passes: reconnecting with it in " + seconds + "." : "The hub does not answer (stopped?): trying again in " + seconds + ".", "warn");
  mine.timer = setTimeout(() => session === mine && openSocket(mine, rooms), delay);
}
/** @param {string} room */
function joinRoom(room) {
  const mine = hub;
  if (!mine) return;
  mine.join(room).then(
    () => {
      if (hub !== mine) return;
      watchMembers(mine, room);
      renderRooms();
    },
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
    () => $("status").dataset.state === "open" && say(""),
    (err) => say("Publish failed: " + err.message),
  );
};
