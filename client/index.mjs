// @ts-check
/**
 * Browser client for notification-hub: an ES module, no framework, no build step.
 *
 *   import { connect } from "notification-hub/client";
 *   const hub = connect({ url: WEBSOCKET_URL, getToken: () => fetch("/token").then((r) => r.text()) });
 *   hub.subscribe("backup.done", (data, frame) => show(data));
 *   hub.send({ type: "chat", data: "hi" });
 *
 * The token goes in the `Sec-WebSocket-Protocol` header by default
 * (`new WebSocket(url, ["notification-hub", token])`), so it stays out of URLs, proxies' logs
 * and the console's "WebSocket connection to ... failed" line; `tokenIn: "query"` sends it as
 * the seed did, `?token=` (for a hub older than the subprotocol, or a proxy that drops the header).
 *
 * Subscribers work as in the seed article: a frame `{ data: { type, data } }` goes to the
 * subscribers of `type`, which get the inner `data`. Reconnects with jittered backoff,
 * fetches a fresh token when a handshake is refused, keeps the connection under API
 * Gateway's 10-minute idle timeout, and drops frames whose id it has already seen.
 *
 * Room streams (docs/protocol.md#room-streams): frames carry `seq`, consecutive per room. The client
 * keeps the last seq per room (optionally in sessionStorage), sends `resume` after every
 * reconnect, and hands subscribers each frame once and in seq order: a frame ahead of the
 * next expected seq waits in a buffer until the missing ones arrive (live or replayed); a
 * gap that stays open asks the hub for a resume. When the hub cannot fill a gap
 * (`recovered: false`, retention exceeded) `onGap` tells the app, which can refetch.
 *
 * Many rooms (docs/protocol.md#rooms-and-user-channels): `join(room)` subscribes this connection to another room
 * its token grants, `leave(room)` unsubscribes. After every reconnect the client joins each
 * room again and, once the hub confirms, resumes it after its last seq; the token's room and
 * the user's own channel (`user:{id}`, read from the token's claims) are resumed at once, as
 * `$connect` puts the connection in them.
 *
 * Each subscribe/unsubscribe runs as its own Lambda invocation, and API Gateway keeps no order
 * between them: an unsubscribe sent right after a subscribe may run first. So a room never has
 * two requests in flight: its next one goes after the previous one's answer, and only when the
 * hub's membership differs from the app's last join()/leave() (join, leave, join before any
 * answer sends one subscribe). Different rooms' requests go together, at most
 * MAX_ROOM_REQUESTS at once, so re-joining 100 rooms after a reconnect takes 10 round trips.
 *
 * Answers carry the room but no request id. A request given up on (joinTimeoutMs) may still
 * run, so an answer no request waits for is news: the hub has (or lacks) the room, and the room
 * is reconciled once nothing is on the wire for it (onLateAnswer); one that comes while the
 * other kind of request runs leaves that request's answer telling nothing (`stale`). A refusal
 * only answers the kind of request that can get it (REFUSALS).
 */

/** The keep-alive: its own route, answered by API Gateway without a Lambda and without a reply (core/keepAlive.ts). */
const KEEP_ALIVE_FRAME = JSON.stringify({ action: "ping" });
/**
 * 8 minutes between pings. API Gateway closes a connection after 10 minutes without a client
 * message, and the gap it sees between two pings can exceed the interval by:
 * - up to 60 s of timer lateness: Chrome's intensive throttling runs a hidden tab's chained
 *   timers (setInterval counts) only on wake-ups aligned to the minute;
 * - up to ~30 s of network delay: a ping lost on a poor link waits for TCP's retransmits
 *   (1 + 2 + 4 + 8 + 16 s), and the gateway's clock restarts only when it arrives.
 * 480 + 60 + 30 = 570 s, 30 s under the 600 s timeout; 9 minutes would leave none. A tab the
 * browser freezes or a machine that sleeps runs no timer at all: the connection is closed,
 * and the client reconnects and resumes when it wakes up.
 */
const KEEP_ALIVE_MS = 8 * 60_000;
/** Named beside the token in `Sec-WebSocket-Protocol`; the hub names it back (core/rooms.ts SUBPROTOCOL). */
const SUBPROTOCOL = "notification-hub";
const SEEN_IDS_KEPT = 1000;
/** How long a seq gap may stay open (a frame overtaken by the next one) before asking for a resume. */
const GAP_WAIT_MS = 300;
const USER_CHANNEL_PREFIX = "user:";
/**
 * Subscribes/unsubscribes of different rooms in flight at once: pipelined, but never a burst
 * of hundreds that API Gateway's throttle (or the connections table) would push back on.
 */
const MAX_ROOM_REQUESTS = 10;
/** Longest room id the hub reads (MAX_ID_LENGTH in core/messages.ts). */
const MAX_ROOM_ID_LENGTH = 256;
/** Refusals of a subscribe made before anything was written: the hub has no membership to undo. */
const REFUSED_UNWRITTEN = new Set(["forbidden", "too_many_rooms", "invalid_subscribe", "unknown_connection"]);
/**
 * The codes each request can be refused with (handlers/subscribe.ts, handlers/unsubscribe.ts).
 * An error with another code is not the answer to the request on the wire: a late refusal of
 * an earlier request of the other kind, which must not reject a newer join.
 */
const REFUSALS = {
  subscribe: new Set(["forbidden", "too_many_rooms", "subscribe_failed", "unknown_connection", "invalid_subscribe"]),
  unsubscribe: new Set(["invalid_subscribe", "unknown_connection", "unsubscribe_failed"]),
};
/** Failures part way: the request may or may not have changed the membership. */
const FAILED_PART_WAY = new Set(["subscribe_failed", "unsubscribe_failed"]);
/** A re-join nobody awaits (after a reconnect) is dropped only for these; any other failure is retried. */
const REFUSED_FOR_GOOD = new Set(["forbidden", "too_many_rooms", "invalid_subscribe"]);

/**
 * The claims of a JWT, read without checking it (the hub checks it): the client only learns
 * which user and room the token is for. Undefined for anything that is not a JWT.
 * @param {string | undefined} token
 * @returns {{ user_id?: unknown, room_id?: unknown } | undefined}
 */
function tokenClaims(token) {
  const payload = typeof token === "string" ? token.split(".")[1] : undefined;
  if (!payload) return undefined;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const text = new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
    const claims = JSON.parse(text);
    return claims && typeof claims === "object" ? claims : undefined;
  } catch {
    return undefined;
  }
}

/**
 * join()/leave()'s error for a room id the hub could not read at all, else undefined. The hub
 * refuses such a request without naming the room, so with several in flight the refusal could
 * not find its join: the client refuses it first, by the hub's rule (core/messages.ts normalizeId).
 * @param {"join" | "leave"} what
 * @param {unknown} room
 */
function unreadableRoom(what, room) {
  const readable =
    typeof room === "string" && room !== "" && room.length <= MAX_ROOM_ID_LENGTH && !/[\u0000-\u001f\u007f]/.test(room) && !/[\uD800-\uDFFF]/u.test(room);
  if (readable) return undefined;
  const message = `${what}: room must be a string of 1 to ${MAX_ROOM_ID_LENGTH} characters without control characters or lone surrogates`;
  return Object.assign(new TypeError(message), { code: "invalid_subscribe", roomId: room });
}

/** @param {unknown} id */
const idText = (id) => (typeof id === "string" && id !== "" ? id : typeof id === "number" && Number.isFinite(id) ? String(id) : undefined);

/**
 * @typedef {{ id?: string, room_id?: string | null, user_id?: string | null, origin?: "app" | "client", seq?: number, data?: any }} HubFrame
 * @typedef {{ roomId: string, after: number, lastSeq: number, reason: string }} GapInfo
 * @typedef {{ room_id: string, after: number, last_seq: number, recovered: boolean, reason?: string }} ResumedInfo
 * @typedef {(data: any, frame: HubFrame) => void} Subscriber
 * @typedef {{ clientFrames?: boolean, room?: string, userChannel?: boolean }} SubscribeOptions
 * @typedef {{ callback: Subscriber, clientFrames: boolean, room?: string, userChannel: boolean }} Subscription
 * @typedef {{ room_id: string, last_seq: number }} SubscribedInfo
 * @typedef {{ onGap?: (gap: GapInfo) => void }} JoinOptions
 * @typedef {{ promise: Promise<SubscribedInfo>, resolve: (info: SubscribedInfo) => void, reject: (err: Error) => void }} PendingJoin
 * @typedef {{ promise: Promise<void>, done: () => void }} PendingLeave
 * @typedef {{ action: "subscribe" | "unsubscribe", forJoin: PendingJoin | undefined, timer: ReturnType<typeof setTimeout>, stale: boolean }} RoomRequest
 * @typedef {"connecting" | "open" | "closed"} ConnectionState
 * @typedef {{
 *   url: string,
 *   token?: string,
 *   getToken?: () => string | Promise<string>,
 *   tokenIn?: "protocol" | "query",
 *   reconnect?: boolean,
 *   keepAliveMs?: number,
 *   minBackoffMs?: number,
 *   maxBackoffMs?: number,
 *   WebSocket?: typeof WebSocket,
 *   onStateChange?: (state: ConnectionState) => void,
 *   room?: string,
 *   persistSeq?: boolean,
 *   onGap?: (gap: GapInfo) => void,
 *   gapWaitMs?: number,
 *   joinTimeoutMs?: number,
 *   onRoomLost?: (room: string, code: string) => void,
 * }} ConnectOptions
 */

/**
 * @param {ConnectOptions} options
 */
export function connect(options) {
  if (!options || typeof options.url !== "string") throw new TypeError("connect: url is required");
  if (!options.token && !options.getToken) throw new TypeError("connect: token or getToken is required");
  const tokenIn = options.tokenIn ?? "protocol";
  if (tokenIn !== "protocol" && tokenIn !== "query") throw new TypeError('connect: tokenIn must be "protocol" (the default) or "query"');
  const Impl = options.WebSocket ?? globalThis.WebSocket;
  const reconnect = options.reconnect ?? true;
  const keepAliveMs = options.keepAliveMs ?? KEEP_ALIVE_MS;
  const minBackoffMs = options.minBackoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;

  const gapWaitMs = options.gapWaitMs ?? GAP_WAIT_MS;

  /** @type {Map<string, Set<Subscription>>} */
  const subscribers = new Map();
  /** Last seq handed to subscribers, per room. @type {Map<string, number>} */
  const lastSeq = new Map();
  /** Frames ahead of the next expected seq, per room. @type {Map<string, Map<number, HubFrame>>} */
  const pending = new Map();
  /** Rooms with a resume in flight on the current socket. @type {Set<string>} */
  const resuming = new Set();
  /** @type {Map<string, ReturnType<typeof setTimeout>>} */
  const gapTimers = new Map();
  /** @type {Storage | undefined} */
  const storage = options.persistSeq ? globalThis.sessionStorage : undefined;
  /** @param {string} room */
  const storageKey = (room) => `notification-hub:seq:${options.url}:${room}`;
  /**
   * A room's last seq from sessionStorage (persistSeq), unless this page already has one.
   * @param {string} room
   */
  function loadStoredSeq(room) {
    if (!storage || lastSeq.has(room)) return;
    const stored = Number(storage.getItem(storageKey(room)));
    if (Number.isSafeInteger(stored) && stored > 0) lastSeq.set(room, stored);
  }
  /** The token's room: the option, else the token's `room_id` claim (none for a token with `rooms`). */
  let tokenRoom = options.room;
  if (tokenRoom) loadStoredSeq(tokenRoom);
  /** This user's channel `user:{id}`, from the token's claims. @type {string | undefined} */
  let userChannel;
  /*
   * Room membership, one state per room spread over the maps below:
   *   wanted   joined.has(room)       the app's last join()/leave() (a failed join: not wanted,
   *                                   but $connect's rooms stay: keptByConnect)
   *   hubHas   hubHas.get(room)       hub.subscribed data | false | absent: unknown
   *   onWire   onWire.get(room)       the one subscribe/unsubscribe sent and not answered
   *   waiters  joining / leaving      the join()/leave() promise waiting for the hub
   *   retry    retries.get(room)      a re-join or unsubscribe waiting out its backoff
   * Every event (join(), leave(), an answer, a late answer, a timeout, open, close) updates
   * these and marks the room `due`; pumpRooms() then runs nextRequest(room), the one place that
   * settles the waiters when the hub agrees with the app, or picks the request that makes it.
   */
  /**
   * The rooms the app wants: joined with join() (or being joined) and not left since; joined
   * again after every reconnect. @type {Set<string>}
   */
  const joined = new Set();
  /** join() calls waiting for the hub, one per room. @type {Map<string, PendingJoin>} */
  const joining = new Map();
  /** leave() calls waiting for the hub, one per room. @type {Map<string, PendingLeave>} */
  const leaving = new Map();
  /** The one subscribe or unsubscribe of a room on the wire, per room. @type {Map<string, RoomRequest>} */
  const onWire = new Map();
  /**
   * What the hub last answered about a room on this socket: its `hub.subscribed` data (a
   * member), false (not one), or absent: not known (never asked, or the answer was lost).
   * @type {Map<string, SubscribedInfo | false>}
   */
  const hubHas = new Map();
  /** Rooms whose membership may differ from the app's wish, in the order they were touched. @type {Set<string>} */
  const due = new Set();
  const joinTimeoutMs = options.joinTimeoutMs ?? 10_000;
  /**
   * Rooms the app left (or whose join failed, but for keptByConnect's) on this socket: their
   * frames are dropped, as the hub may still send some. Emptied on close (a new connection is in none of them), except
   * the token's room, which $connect puts it in again. @type {Set<string>}
   */
  const left = new Set();
  /**
   * Re-joins nobody awaits (after a reconnect) and unsubscribes that failed for a passing
   * reason, waiting to be tried again: attempts so far and the timer, if one runs. @type {Map<string, { attempts: number, timer?: ReturnType<typeof setTimeout> }>}
   */
  const retries = new Map();
  /** Per-room gap handlers given to join(). @type {Map<string, (gap: GapInfo) => void>} */
  const roomGapHandlers = new Map();
  /** @type {Set<string>} */
  const seen = new Set();
  /** @type {string[]} */
  const outbox = [];
  /** @type {WebSocket | undefined} */
  let socket;
  let token = options.token;
  let attempt = 0;
  let closedByUser = false;
  /** @type {ConnectionState} */
  let state = "connecting";
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let keepAliveTimer;

  /**
   * Calls an app's callback: one that throws is logged, and never stops the client's own work
   * (the queued re-joins, the rest of a frame's subscribers).
   * @template {unknown[]} A
   * @param {((...args: A) => void) | undefined} callback
   * @param {A} args
   */
  function callApp(callback, ...args) {
    try {
      callback?.(...args);
    } catch (err) {
      console.error("notification-hub: an app callback failed", err);
    }
  }

  /** @param {ConnectionState} next */
  function setState(next) {
    state = next;
    callApp(options.onStateChange, next);
  }

  /** @param {HubFrame} frame */
  function dispatch(frame) {
    const type = frame?.data?.type;
    // A control frame (hub.subscribed, hub.resumed, ...) is about the room its data names.
    const room = typeof frame.room_id === "string" ? frame.room_id : frame.data?.data?.room_id;
    for (const key of [type, "*"]) {
      if (typeof key !== "string") continue;
      for (const { callback, clientFrames, room: only, userChannel: ownChannel } of subscribers.get(key) ?? []) {
        // What a room member sent (origin "client") can carry any type, e.g. "backup.done":
        // only subscribers that asked for members' frames get it, so a member cannot pass for the app.
        if (frame.origin === "client" && !clientFrames) continue;
        if (only !== undefined && room !== only) continue;
        // A connection only ever gets its own user's channel: the prefix says it is that one.
        if (ownChannel && !(typeof room === "string" && room.startsWith(USER_CHANNEL_PREFIX))) continue;
        callApp(callback, key === "*" ? frame.data : frame.data.data, frame);
      }
    }
  }

  /**
   * @param {string} room
   * @param {number} seq
   */
  function advance(room, seq) {
    lastSeq.set(room, seq);
    storage?.setItem(storageKey(room), String(seq));
  }

  /**
   * Hands subscribers every buffered frame that is next in line.
   * @param {string} room
   */
  function drain(room) {
    const buffer = pending.get(room);
    if (!buffer) return;
    for (;;) {
      const last = lastSeq.get(room) ?? 0;
      for (const seq of buffer.keys()) if (seq <= last) buffer.delete(seq);
      const next = buffer.get(last + 1);
      if (!next) break;
      buffer.delete(last + 1);
      advance(room, last + 1);
      dispatch(next);
    }
    if (buffer.size === 0) {
      pending.delete(room);
      clearTimeout(gapTimers.get(room));
      gapTimers.delete(room);
    } else if (!resuming.has(room) && !gapTimers.has(room)) {
      // A gap: the missing frame may just be late (another delivery overtook it); if it stays
      // missing, the stream has it (stored before sent): ask for it.
      gapTimers.set(
        room,
        setTimeout(() => {
          gapTimers.delete(room);
          if (pending.get(room)?.size) sendResume(room);
        }, gapWaitMs),
      );
    }
  }

  /**
   * Gives up on a gap the hub cannot fill: everything buffered goes out in seq order.
   * @param {string} room
   */
  function flushPast(room) {
    const buffer = pending.get(room);
    pending.delete(room);
    for (const seq of [...(buffer?.keys() ?? [])].sort((a, b) => a - b)) {
      if (seq <= (lastSeq.get(room) ?? 0)) continue;
      advance(room, seq);
      dispatch(/** @type {HubFrame} */ (buffer?.get(seq)));
    }
  }

  /**
   * Asks for the frames after the last one this room handed out (or, with none yet, where the stream stands).
   * @param {string} room
   */
  function sendResume(room) {
    if (!socket || socket.readyState !== Impl.OPEN) return; // resumed on the next open
    const after = lastSeq.get(room);
    // Frames wait in the buffer only while a resume can fill the gap before them.
    if (after !== undefined) resuming.add(room);
    socket.send(JSON.stringify(after === undefined ? { action: "resume", room_id: room, last: 0 } : { action: "resume", room_id: room, after }));
  }

  /** @param {ResumedInfo} info */
  function onResumed(info) {
    const room = info.room_id;
    resuming.delete(room);
    if (left.has(room)) return; // asked before the room was left
    if (lastSeq.get(room) === undefined && info.recovered) {
      // The baseline for a client that has seen nothing yet: later frames follow last_seq.
      advance(room, info.last_seq);
    } else if (info.reason === "too_many") {
      // A page of 1,000 arrived; ask for the next one.
      drain(room);
      if ((lastSeq.get(room) ?? 0) < info.last_seq) sendResume(room);
      return;
    } else if (!info.recovered) {
      const gap = { roomId: room, after: info.after, lastSeq: info.last_seq, reason: info.reason ?? "unknown" };
      callApp(options.onGap, gap);
      callApp(roomGapHandlers.get(room), gap);
      // A stream that started over (everything expired) counts from its new head.
      if ((lastSeq.get(room) ?? 0) > info.last_seq) advance(room, info.last_seq);
      flushPast(room);
      const last = lastSeq.get(room) ?? 0;
      if (last < info.last_seq) advance(room, info.last_seq);
    }
    drain(room);
  }

  /**
   * Sends a request frame now if the socket is open; otherwise the next open sends what is due.
   * @param {object} request
   */
  function sendNow(request) {
    if (!socket || socket.readyState !== Impl.OPEN) return false;
    socket.send(JSON.stringify(request));
    return true;
  }

  /**
   * Moves every due room towards the app's last join()/leave(): settles the waiting call when
   * the hub already agrees, else sends the one request that makes it agree (after the room's
   * previous request was answered, and while fewer than MAX_ROOM_REQUESTS are in flight).
   */
  function pumpRooms() {
    if (!socket || socket.readyState !== Impl.OPEN) return; // the next open joins what is due
    for (const room of due) {
      if (onWire.has(room)) {
        due.delete(room); // its answer makes it due again
        continue;
      }
      const action = nextRequest(room);
      if (action === undefined) {
        due.delete(room);
        continue;
      }
      // Full window: this room stays due; later ones may still need no request (a leave settled at once).
      if (onWire.size >= MAX_ROOM_REQUESTS) continue;
      due.delete(room);
      sendNow({ action, room_id: room });
      /** @type {RoomRequest} */
      const request = { action, forJoin: joining.get(room), timer: setTimeout(() => onNoAnswer(room, request), joinTimeoutMs), stale: false };
      onWire.set(room, request);
    }
  }

  /**
   * The request a room needs, or undefined when the hub already has what the app asked for
   * last (the waiting join or leave is then settled).
   * @param {string} room
   * @returns {"subscribe" | "unsubscribe" | undefined}
   */
  function nextRequest(room) {
    const has = hubHas.get(room);
    if (retries.get(room)?.timer) return undefined; // its backoff's end makes it due again
    if (joined.has(room)) {
      if (!has) return "subscribe";
      const pendingJoin = joining.get(room);
      joining.delete(room);
      pendingJoin?.resolve(has);
    } else {
      // Not known counts as a member: the hub answers an unsubscribe of a room it is not in the same.
      if (has !== false && !keptByConnect(room)) return "unsubscribe";
      leaving.get(room)?.done();
      hubHas.delete(room); // settled: not kept for every room ever left
    }
    return undefined;
  }

  /**
   * A room $connect put the connection in and the app has not left: the token's room, and any
   * user channel (by the prefix, as leave() and the hub judge it, even with unreadable claims).
   * Not joining it (a failed join()) does not make the app want out: it is never unsubscribed.
   * @param {string} room
   */
  function keptByConnect(room) {
    return room.startsWith(USER_CHANNEL_PREFIX) || (room === tokenRoom && !left.has(room));
  }

  /**
   * Takes a room's request off the wire, with what its answer says of the membership, and moves
   * the room on. A failed subscribe rejects the join it was sent for while that is still the
   * app's last word on the room; a join() made since gets a subscribe of its own.
   * @param {string} room
   * @param {SubscribedInfo | false | undefined} has undefined: not known
   * @param {Error} [failure]
   */
  function finishRequest(room, has, failure) {
    const request = onWire.get(room);
    if (!request) return;
    clearTimeout(request.timer);
    onWire.delete(room);
    // An answer of the other kind came while this one ran: the two ran in either order.
    if (has === undefined || request.stale) hubHas.delete(room);
    else hubHas.set(room, has);
    const code = /** @type {{ code?: string } | undefined} */ (failure)?.code;
    if (failure && request.action === "unsubscribe" && !joined.has(room)) {
      retryLater(room); // the hub may still count the membership (maxRoomsPerConnection)
    } else if (failure && request.action === "subscribe" && joined.has(room) && joining.get(room) === request.forJoin) {
      if (!request.forJoin && !REFUSED_FOR_GOOD.has(String(code))) {
        retryLater(room);
      } else {
        joined.delete(room);
        joining.delete(room);
        roomGapHandlers.delete(room);
        retries.delete(room);
        // Its frames come whatever the join said (keptByConnect): kept, with their seq.
        if (!keptByConnect(room)) dropRoom(room);
        if (request.forJoin) request.forJoin.reject(failure);
        else callApp(options.onRoomLost, room, String(code));
      }
    } else if (!failure) {
      stopRetry(room);
    }
    due.add(room);
    pumpRooms();
  }

  /**
   * A request nobody awaits failed for a passing reason: a re-join (subscribe_failed, timeout,
   * unknown_connection) or an unsubscribe (unsubscribe_failed). The hub's membership is not
   * known, so the request goes again, after a backoff that grows with each failure.
   * @param {string} room
   */
  function retryLater(room) {
    const retry = retries.get(room) ?? { attempts: 0 };
    retries.set(room, retry);
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      due.add(room);
      pumpRooms();
    }, backoffDelay(retry.attempts++));
  }

  /**
   * Half to all of a ceiling that doubles with each failure, from minBackoffMs up to
   * maxBackoffMs: reconnects and room retries alike, jittered so clients do not retry in step.
   * @param {number} failures
   */
  function backoffDelay(failures) {
    const ceiling = Math.min(maxBackoffMs, minBackoffMs * 2 ** failures);
    return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  function scheduleReconnect() {
    retryTimer = setTimeout(() => void open().catch(scheduleAfterError), backoffDelay(attempt++));
  }

  /** @param {string} room */
  function stopRetry(room) {
    clearTimeout(retries.get(room)?.timer);
    retries.delete(room);
  }

  /**
   * The app no longer wants a room: its frames still in flight are dropped, its seq forgotten.
   * @param {string} room
   */
  function dropRoom(room) {
    left.add(room);
    forget(room);
    if (left.size <= SEEN_IDS_KEPT) return;
    // The oldest goes (with any seq its late frames set), never the token's room: forgetting
    // that one would silently undo the app's leave() after the next reconnect.
    for (const old of left) {
      if (old === tokenRoom) continue;
      left.delete(old);
      forget(old);
      break;
    }
  }

  /**
   * An answer no request on the wire waits for: one given up on (timed out) that ran late. It
   * is news of the hub's membership, and the room is reconciled with the app's wish once
   * nothing is on the wire for it.
   * @param {string} room
   * @param {SubscribedInfo | false | undefined} has undefined: the hub may have it or not
   */
  function onLateAnswer(room, has) {
    if (room.startsWith(USER_CHANNEL_PREFIX)) return; // a connection is in its own and can leave none
    const request = onWire.get(room);
    if (request) {
      // It ran alongside the request on the wire, in either order: that answer no longer tells.
      request.stale = true;
      return;
    }
    if (has === undefined) hubHas.delete(room);
    else hubHas.set(room, has);
    if (has) confirmJoined(room, has);
    due.add(room);
    pumpRooms();
  }

  /**
   * No answer in joinTimeoutMs (a lost post): whether the hub acted is not known. The join
   * gives up (an unsubscribe then undoes it, in case it was made); a leave is done on this
   * side anyway (its frames are dropped), so the room is not stuck behind it.
   * @param {string} room
   * @param {RoomRequest} request
   */
  function onNoAnswer(room, request) {
    if (onWire.get(room) !== request) return;
    // A late answer is news (onLateAnswer). A re-join since needs its subscribe, whatever the hub did.
    if (request.action === "unsubscribe") return finishRequest(room, joined.has(room) ? undefined : false);
    finishRequest(room, undefined, Object.assign(new Error(`join ${room}: no answer from the hub in ${joinTimeoutMs} ms`), { code: "timeout", roomId: room }));
  }

  /** @param {SubscribedInfo} info */
  function onSubscribed(info) {
    const room = info.room_id;
    if (onWire.get(room)?.action !== "subscribe") return onLateAnswer(room, info);
    confirmJoined(room, info);
    finishRequest(room, info);
  }

  /**
   * The hub has the room (its answer on the wire, or a late one): no re-join waits any more,
   * and a wanted room catches up with its stream.
   * @param {string} room
   * @param {SubscribedInfo} info
   */
  function confirmJoined(room, info) {
    stopRetry(room);
    if (!joined.has(room)) return;
    const last = lastSeq.get(room);
    if (last === undefined) {
      // The first join: live frames start after the stream's head (unless some already came).
      if (Number.isSafeInteger(info.last_seq)) advance(room, info.last_seq);
      drain(room);
    } else if (info.last_seq > last) {
      // Joined again (a reconnect, a page reload with persistSeq): fetch what was missed.
      sendResume(room);
    }
  }

  /**
   * A `hub.error` that names a room (`room_id`) answers that room's one request on the wire.
   * Only a request the hub could not read names none; join() refuses those itself, so this is
   * the one on the wire when just one is. Any other error (a refused send, a resume) is not
   * about a room's membership and leaves the requests alone.
   * @param {{ code?: string, room_id?: string }} error
   */
  function onError(error) {
    const named = typeof error?.room_id === "string" ? error.room_id : undefined;
    const room = named ?? (error?.code === "invalid_subscribe" && onWire.size === 1 ? [...onWire.keys()][0] : undefined);
    if (room === undefined) return;
    const request = onWire.get(room);
    // Not a refusal the request on the wire can get: a late one of an earlier request. Only a
    // subscribe that failed part way tells something: it may have made the membership.
    if (!request || !REFUSALS[request.action].has(String(error.code))) {
      if (FAILED_PART_WAY.has(String(error.code))) onLateAnswer(room, undefined);
      return;
    }
    const failure = Object.assign(new Error(`${request.action === "subscribe" ? "join" : "leave"} ${room}: ${error.code}`), { code: error.code, roomId: room, hubError: error });
    // A refused unsubscribe: the room is left on this side anyway (its frames are dropped); one
    // that failed part way may have kept the membership: unknown, and tried again.
    if (request.action === "unsubscribe") return error.code === "unsubscribe_failed" ? finishRequest(room, undefined, failure) : finishRequest(room, false);
    // A failure part way (subscribe_failed) may have made the membership: unknown, undone unless wanted.
    const has = REFUSED_UNWRITTEN.has(String(error.code)) ? false : undefined;
    finishRequest(room, has, failure);
  }

  /** @param {HubFrame} frame */
  function onStreamFrame(frame) {
    const room = /** @type {string} */ (frame.room_id);
    const seq = /** @type {number} */ (frame.seq);
    const last = lastSeq.get(room);
    if (last === undefined && !resuming.has(room)) {
      advance(room, seq);
      dispatch(frame);
      return;
    }
    if (last !== undefined && seq <= last) return; // seen (redelivered, or replayed and live)
    const buffer = pending.get(room) ?? new Map();
    buffer.set(seq, frame);
    pending.set(room, buffer);
    if (last !== undefined) drain(room);
  }

  /** @param {MessageEvent} event */
  function onMessage(event) {
    /** @type {HubFrame} */
    let frame;
    try {
      frame = JSON.parse(String(event.data));
    } catch {
      return;
    }
    const control = frame?.room_id === null ? frame.data?.type : undefined;
    if (control === "hub.resumed" && typeof frame.data.data?.room_id === "string") {
      onResumed(frame.data.data);
    } else if (control === "hub.subscribed" && typeof frame.data.data?.room_id === "string") {
      onSubscribed(frame.data.data);
    } else if (control === "hub.unsubscribed" && typeof frame.data.data?.room_id === "string") {
      const room = frame.data.data.room_id;
      if (onWire.get(room)?.action === "unsubscribe") finishRequest(room, false);
      else onLateAnswer(room, false);
    } else if (control === "hub.error") {
      onError(frame.data.data);
    } else if (typeof frame?.room_id === "string" && left.has(frame.room_id)) {
      return; // a room the app left (or failed to join): in flight, or a membership being undone
    } else if (typeof frame?.seq === "number" && typeof frame.room_id === "string") {
      return onStreamFrame(frame);
    }
    if (typeof frame.id === "string") {
      // SQS may deliver a notification twice; its id stays the same.
      if (seen.has(frame.id)) return;
      seen.add(frame.id);
      if (seen.size > SEEN_IDS_KEPT) seen.delete(seen.values().next().value ?? "");
    }
    dispatch(frame);
  }

  async function open() {
    if (closedByUser) return;
    setState("connecting");
    if (!token && options.getToken) token = await options.getToken();
    if (closedByUser) return; // close() while the token was being fetched
    learnIdentity(token);
    /** @type {WebSocket} */
    let ws;
    try {
      if (tokenIn === "query") {
        const separator = options.url.includes("?") ? "&" : "?";
        ws = new Impl(`${options.url}${separator}token=${encodeURIComponent(token ?? "")}`);
      } else {
        ws = new Impl(options.url, [SUBPROTOCOL, token ?? ""]);
      }
    } catch (err) {
      // A token that cannot be a protocol name (empty, spaces) throws here: fetch another next time.
      if (options.getToken) token = undefined;
      throw err;
    }
    socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      attempt = 0;
      setState("open");
      // Resume every room $connect put this connection in before anything else is sent; the
      // rooms joined since are joined again first, and resumed once the hub confirms.
      const rooms = new Set(lastSeq.keys());
      if (tokenRoom) rooms.add(tokenRoom);
      if (userChannel) rooms.add(userChannel);
      for (const room of rooms) if (!joined.has(room) && !left.has(room)) sendResume(room);
      // A new connection is in no joined room but these two: each is joined again (and resumed
      // once confirmed); one left while queued needs no unsubscribe.
      for (const room of joined) {
        if (room !== tokenRoom && room !== userChannel) hubHas.set(room, false);
        due.add(room);
      }
      // The token's room, left while the socket was down: $connect put the connection in it again.
      if (tokenRoom && left.has(tokenRoom)) due.add(tokenRoom);
      pumpRooms();
      while (outbox.length > 0 && ws.readyState === Impl.OPEN) ws.send(/** @type {string} */ (outbox.shift()));
      keepAliveTimer = setInterval(() => ws.readyState === Impl.OPEN && ws.send(KEEP_ALIVE_FRAME), keepAliveMs);
    };
    ws.onmessage = onMessage;
    // Every failure ends in a close event, where reconnecting happens; nothing to do here.
    ws.onerror = () => {};
    ws.onclose = () => {
      clearInterval(keepAliveTimer);
      // Resumes and room requests in flight died with the socket; the next open sends what is due.
      resuming.clear();
      stopRoomRequests();
      hubHas.clear();
      // Frames of the old connection cannot come any more; the token's room is in the next one.
      for (const room of left) if (room !== tokenRoom) left.delete(room);
      if (socket === ws) socket = undefined;
      // Browsers hide the handshake's status: a refusal (401/403, e.g. an expired token)
      // looks like a close before open. Ask for a fresh token next time.
      if (!opened && options.getToken) token = undefined;
      if (closedByUser || !reconnect) return closedForGood();
      setState("connecting");
      scheduleReconnect();
    };
  }

  /**
   * The token's user channel and room, from its claims; a token from getToken may be another user's.
   * @param {string | undefined} current
   */
  function learnIdentity(current) {
    const claims = tokenClaims(current);
    const user = idText(claims?.user_id);
    const channel = user === undefined ? undefined : USER_CHANNEL_PREFIX + user;
    if (channel !== userChannel) {
      if (userChannel) forget(userChannel);
      userChannel = channel;
      if (channel) loadStoredSeq(channel);
    }
    if (!options.room) {
      const room = idText(claims?.room_id);
      if (room !== tokenRoom && tokenRoom && !joined.has(tokenRoom)) forget(tokenRoom);
      tokenRoom = room;
      if (room) loadStoredSeq(room);
    }
  }

  /**
   * Drops what the client tracks of a room it no longer follows.
   * @param {string} room
   */
  function forget(room) {
    lastSeq.delete(room);
    pending.delete(room);
    resuming.delete(room);
    clearTimeout(gapTimers.get(room));
    gapTimers.delete(room);
    storage?.removeItem(storageKey(room));
  }

  /** @returns {PendingJoin} */
  function deferredJoin() {
    /** @type {(info: SubscribedInfo) => void} */
    let resolve = () => {};
    /** @type {(err: Error) => void} */
    let reject = () => {};
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A join nobody awaits (the re-join after a reconnect) must not be an unhandled rejection.
    promise.catch(() => {});
    return { promise: /** @type {Promise<SubscribedInfo>} */ (promise), resolve, reject };
  }

  /**
   * Ends what the room requests have in flight: their answers died with the socket. A leave in
   * flight is done (the next connection starts without the room, the token's room aside: see onopen).
   */
  function stopRoomRequests() {
    for (const request of onWire.values()) clearTimeout(request.timer);
    onWire.clear();
    due.clear();
    for (const retry of retries.values()) clearTimeout(retry.timer);
    retries.clear();
    for (const pendingLeave of [...leaving.values()]) pendingLeave.done();
  }

  /** No socket any more, nor another one coming (close(), or a close with reconnect: false): nothing waits. */
  function closedForGood() {
    stopRoomRequests();
    for (const [room, pendingJoin] of joining) {
      joined.delete(room); // never made: not listed in rooms
      pendingJoin.reject(Object.assign(new Error(`join ${room}: the connection was closed`), { code: "closed", roomId: room }));
    }
    joining.clear();
    for (const timer of gapTimers.values()) clearTimeout(timer);
    clearTimeout(retryTimer);
    clearInterval(keepAliveTimer);
    if (state !== "closed") setState("closed");
  }

  /** @param {unknown} err */
  function scheduleAfterError(err) {
    console.error("notification-hub: could not connect", err);
    if (closedByUser || !reconnect) return closedForGood();
    scheduleReconnect();
  }

  void open().catch(scheduleAfterError);

  return {
    /**
     * Calls `callback(data, frame)` for every notification of `type` ("*" for all, with the whole `data`).
     * Frames room members sent (`origin: "client"`) are skipped unless `{ clientFrames: true }`.
     * @param {string} type
     * @param {Subscriber} callback
     * @param {SubscribeOptions} [subscribeOptions]
     * @returns {() => void} unsubscribe
     */
    subscribe(type, callback, subscribeOptions) {
      const room = subscribeOptions?.room;
      if (room !== undefined && (typeof room !== "string" || room === "")) throw new TypeError("subscribe: room must be a non-empty string (or left out for every room)");
      const set = subscribers.get(type) ?? new Set();
      const subscription = { callback, clientFrames: subscribeOptions?.clientFrames === true, room, userChannel: subscribeOptions?.userChannel === true };
      set.add(subscription);
      subscribers.set(type, set);
      return () => set.delete(subscription);
    },
    /**
     * Subscribes this connection to `room` (its token must grant it). Resolves with the hub's
     * `hub.subscribed` data `{ room_id, last_seq }`; rejects with an Error whose `code` is the
     * hub's (`forbidden`, `too_many_rooms`, ...). Joined rooms are joined again after every
     * reconnect and resumed after their last seq; such a re-join is retried after a passing
     * failure and dropped (onRoomLost) only when refused for good.
     * @param {string} room
     * @param {JoinOptions} [joinOptions]
     * @returns {Promise<SubscribedInfo>}
     */
    join(room, joinOptions) {
      const unreadable = unreadableRoom("join", room);
      if (unreadable) return Promise.reject(unreadable);
      if (closedByUser || state === "closed") return Promise.reject(Object.assign(new Error("join: the connection is closed"), { code: "closed", roomId: room }));
      if (joinOptions?.onGap) roomGapHandlers.set(room, joinOptions.onGap);
      const waiting = joining.get(room);
      if (waiting) return waiting.promise;
      left.delete(room);
      stopRetry(room); // the app's new word on the room goes now, not after a backoff
      // A leave not answered yet is overtaken: this join is the app's last word on the room.
      leaving.get(room)?.done();
      joined.add(room);
      loadStoredSeq(room);
      const pendingJoin = deferredJoin();
      joining.set(room, pendingJoin);
      due.add(room);
      pumpRooms();
      return pendingJoin.promise;
    },
    /**
     * Unsubscribes this connection from `room`; its frames still in flight are dropped.
     * Resolves once the hub confirms (at once when the socket is down: a new connection starts
     * without it, but for the token's room, which the next open leaves again).
     * @param {string} room
     * @returns {Promise<void>}
     */
    leave(room) {
      const unreadable = unreadableRoom("leave", room);
      if (unreadable) return Promise.reject(unreadable);
      // The hub refuses any user channel (invalid_subscribe): it is how the app reaches its user.
      // By the prefix, as the hub does, so even before the token (and so the user) is known.
      if (room.startsWith(USER_CHANNEL_PREFIX)) return Promise.reject(Object.assign(new TypeError(`leave: ${room} is a user channel, which a connection cannot leave`), { code: "invalid_subscribe", roomId: room }));
      joined.delete(room);
      roomGapHandlers.delete(room);
      // A subscribe on the wire still gets its answer (then an unsubscribe follows); one not sent yet never goes.
      joining.get(room)?.reject(Object.assign(new Error(`join ${room}: left before the hub answered`), { code: "left", roomId: room }));
      joining.delete(room);
      stopRetry(room);
      dropRoom(room);
      // With the socket down there is nothing to send: the next connection starts without the
      // room (the token's room: the next open sends the unsubscribe).
      if (!socket || socket.readyState !== Impl.OPEN) {
        due.delete(room);
        return Promise.resolve();
      }
      let pendingLeave = leaving.get(room);
      if (!pendingLeave) {
        /** @type {() => void} */
        let resolve = () => {};
        const promise = /** @type {Promise<void>} */ (new Promise((res) => (resolve = () => res(undefined))));
        pendingLeave = {
          promise,
          done() {
            leaving.delete(room);
            resolve();
          },
        };
        leaving.set(room, pendingLeave);
      }
      due.add(room);
      pumpRooms();
      return pendingLeave.promise;
    },
    /** The rooms joined with join() and not left (the token's room and the user channel are not listed). */
    get rooms() {
      return [...joined];
    },
    /**
     * Broadcasts `data` to this connection's room (`sendMessage`); with `{ room }`, to that one of
     * its rooms. Queued until the socket is open.
     * @param {any} data
     * @param {{ room?: string }} [sendOptions]
     */
    send(data, sendOptions) {
      const frame = JSON.stringify(sendOptions?.room === undefined ? { action: "sendMessage", data } : { action: "sendMessage", room_id: sendOptions.room, data });
      if (socket && socket.readyState === Impl.OPEN) socket.send(frame);
      else outbox.push(frame);
    },
    /** Closes for good: no reconnect. */
    close() {
      closedByUser = true;
      closedForGood();
      socket?.close(1000, "client closed");
    },
    /** @returns {ConnectionState} */
    get state() {
      return state;
    },
    /**
     * The last seq handed to subscribers for a room (undefined before any).
     * @param {string} roomId
     */
    lastSeq(roomId) {
      return lastSeq.get(roomId);
    },
  };
}
