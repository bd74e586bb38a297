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
 * Room streams (CONTRACT section 9): frames carry `seq`, consecutive per room. The client
 * keeps the last seq per room (optionally in sessionStorage), sends `resume` after every
 * reconnect, and hands subscribers each frame once and in seq order: a frame ahead of the
 * next expected seq waits in a buffer until the missing ones arrive (live or replayed); a
 * gap that stays open asks the hub for a resume. When the hub cannot fill a gap
 * (`recovered: false`, retention exceeded) `onGap` tells the app, which can refetch.
 */

const KEEP_ALIVE_FRAME = JSON.stringify({ action: "ping" });
/** Named beside the token in `Sec-WebSocket-Protocol`; the hub names it back (core/rooms.ts SUBPROTOCOL). */
const SUBPROTOCOL = "notification-hub";
const SEEN_IDS_KEPT = 1000;
/** How long a seq gap may stay open (a frame overtaken by the next one) before asking for a resume. */
const GAP_WAIT_MS = 300;

/**
 * @typedef {{ id?: string, room_id?: string | null, user_id?: string | null, origin?: "app" | "client", seq?: number, data?: any }} HubFrame
 * @typedef {{ roomId: string, after: number, lastSeq: number, reason: string }} GapInfo
 * @typedef {{ room_id: string, after: number, last_seq: number, recovered: boolean, reason?: string }} ResumedInfo
 * @typedef {(data: any, frame: HubFrame) => void} Subscriber
 * @typedef {{ clientFrames?: boolean }} SubscribeOptions
 * @typedef {{ callback: Subscriber, clientFrames: boolean }} Subscription
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
  const keepAliveMs = options.keepAliveMs ?? 5 * 60_000;
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
  if (storage && options.room) {
    const stored = Number(storage.getItem(storageKey(options.room)));
    if (Number.isSafeInteger(stored) && stored > 0) lastSeq.set(options.room, stored);
  }
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

  /** @param {ConnectionState} next */
  function setState(next) {
    state = next;
    options.onStateChange?.(next);
  }

  /** @param {HubFrame} frame */
  function dispatch(frame) {
    const type = frame?.data?.type;
    for (const key of [type, "*"]) {
      if (typeof key !== "string") continue;
      for (const { callback, clientFrames } of subscribers.get(key) ?? []) {
        // What a room member sent (origin "client") can carry any type, e.g. "backup.done":
        // only subscribers that asked for members' frames get it, so a member cannot pass for the app.
        if (frame.origin === "client" && !clientFrames) continue;
        try {
          callback(key === "*" ? frame.data : frame.data.data, frame);
        } catch (err) {
          console.error("notification-hub subscriber failed", err);
        }
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
    if (lastSeq.get(room) === undefined && info.recovered) {
      // The baseline for a client that has seen nothing yet: later frames follow last_seq.
      advance(room, info.last_seq);
    } else if (info.reason === "too_many") {
      // A page of 1,000 arrived; ask for the next one.
      drain(room);
      if ((lastSeq.get(room) ?? 0) < info.last_seq) sendResume(room);
      return;
    } else if (!info.recovered) {
      options.onGap?.({ roomId: room, after: info.after, lastSeq: info.last_seq, reason: info.reason ?? "unknown" });
      // A stream that started over (everything expired) counts from its new head.
      if ((lastSeq.get(room) ?? 0) > info.last_seq) advance(room, info.last_seq);
      flushPast(room);
      const last = lastSeq.get(room) ?? 0;
      if (last < info.last_seq) advance(room, info.last_seq);
    }
    drain(room);
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
    if (frame?.data?.type === "hub.resumed" && frame.room_id === null && typeof frame.data.data?.room_id === "string") {
      onResumed(frame.data.data);
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
      // Resume every room this client follows before anything else is sent.
      const rooms = new Set(lastSeq.keys());
      if (options.room) rooms.add(options.room);
      for (const room of rooms) sendResume(room);
      while (outbox.length > 0 && ws.readyState === Impl.OPEN) ws.send(/** @type {string} */ (outbox.shift()));
      keepAliveTimer = setInterval(() => ws.readyState === Impl.OPEN && ws.send(KEEP_ALIVE_FRAME), keepAliveMs);
    };
    ws.onmessage = onMessage;
    // Every failure ends in a close event, where reconnecting happens; nothing to do here.
    ws.onerror = () => {};
    ws.onclose = () => {
      clearInterval(keepAliveTimer);
      // Resumes in flight died with the socket; the next open sends them again.
      resuming.clear();
      if (socket === ws) socket = undefined;
      // Browsers hide the handshake's status: a refusal (401/403, e.g. an expired token)
      // looks like a close before open. Ask for a fresh token next time.
      if (!opened && options.getToken) token = undefined;
      if (closedByUser || !reconnect) {
        setState("closed");
        return;
      }
      setState("connecting");
      const ceiling = Math.min(maxBackoffMs, minBackoffMs * 2 ** attempt++);
      retryTimer = setTimeout(() => void open().catch(scheduleAfterError), Math.floor(ceiling / 2 + Math.random() * (ceiling / 2)));
    };
  }

  /** @param {unknown} err */
  function scheduleAfterError(err) {
    console.error("notification-hub: could not connect", err);
    if (closedByUser || !reconnect) return setState("closed");
    const ceiling = Math.min(maxBackoffMs, minBackoffMs * 2 ** attempt++);
    retryTimer = setTimeout(() => void open().catch(scheduleAfterError), Math.floor(ceiling / 2 + Math.random() * (ceiling / 2)));
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
      const set = subscribers.get(type) ?? new Set();
      const subscription = { callback, clientFrames: subscribeOptions?.clientFrames === true };
      set.add(subscription);
      subscribers.set(type, set);
      return () => set.delete(subscription);
    },
    /**
     * Broadcasts `data` to this connection's room (`sendMessage`); queued until the socket is open.
     * @param {any} data
     */
    send(data) {
      const frame = JSON.stringify({ action: "sendMessage", data });
      if (socket && socket.readyState === Impl.OPEN) socket.send(frame);
      else outbox.push(frame);
    },
    /** Closes for good: no reconnect. */
    close() {
      closedByUser = true;
      for (const timer of gapTimers.values()) clearTimeout(timer);
      clearTimeout(retryTimer);
      clearInterval(keepAliveTimer);
      socket?.close(1000, "client closed");
      setState("closed");
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
