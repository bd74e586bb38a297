// @ts-check
/**
 * Browser client for notification-hub: an ES module, no framework, no build step.
 *
 *   import { connect } from "notification-hub/client";
 *   const hub = connect({ url: WEBSOCKET_URL, getToken: () => fetch("/token").then((r) => r.text()) });
 *   hub.subscribe("backup.done", (data, frame) => show(data));
 *   hub.send({ type: "chat", data: "hi" });
 *
 * Subscribers work as in the seed article: a frame `{ data: { type, data } }` goes to the
 * subscribers of `type`, which get the inner `data`. Reconnects with jittered backoff,
 * fetches a fresh token when a handshake is refused, keeps the connection under API
 * Gateway's 10-minute idle timeout, and drops frames whose id it has already seen.
 */

const KEEP_ALIVE_FRAME = JSON.stringify({ action: "ping" });
const SEEN_IDS_KEPT = 1000;

/**
 * @typedef {{ id?: string, room_id?: string | null, user_id?: string | null, origin?: "app" | "client", data?: any }} HubFrame
 * @typedef {(data: any, frame: HubFrame) => void} Subscriber
 * @typedef {{ clientFrames?: boolean }} SubscribeOptions
 * @typedef {{ callback: Subscriber, clientFrames: boolean }} Subscription
 * @typedef {"connecting" | "open" | "closed"} ConnectionState
 * @typedef {{
 *   url: string,
 *   token?: string,
 *   getToken?: () => string | Promise<string>,
 *   reconnect?: boolean,
 *   keepAliveMs?: number,
 *   minBackoffMs?: number,
 *   maxBackoffMs?: number,
 *   WebSocket?: typeof WebSocket,
 *   onStateChange?: (state: ConnectionState) => void,
 * }} ConnectOptions
 */

/**
 * @param {ConnectOptions} options
 */
export function connect(options) {
  if (!options || typeof options.url !== "string") throw new TypeError("connect: url is required");
  if (!options.token && !options.getToken) throw new TypeError("connect: token or getToken is required");
  const Impl = options.WebSocket ?? globalThis.WebSocket;
  const reconnect = options.reconnect ?? true;
  const keepAliveMs = options.keepAliveMs ?? 5 * 60_000;
  const minBackoffMs = options.minBackoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;

  /** @type {Map<string, Set<Subscription>>} */
  const subscribers = new Map();
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

  /** @param {MessageEvent} event */
  function onMessage(event) {
    /** @type {HubFrame} */
    let frame;
    try {
      frame = JSON.parse(String(event.data));
    } catch {
      return;
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
    const separator = options.url.includes("?") ? "&" : "?";
    const ws = new Impl(`${options.url}${separator}token=${encodeURIComponent(token ?? "")}`);
    socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      attempt = 0;
      setState("open");
      while (outbox.length > 0 && ws.readyState === Impl.OPEN) ws.send(/** @type {string} */ (outbox.shift()));
      keepAliveTimer = setInterval(() => ws.readyState === Impl.OPEN && ws.send(KEEP_ALIVE_FRAME), keepAliveMs);
    };
    ws.onmessage = onMessage;
    // Every failure ends in a close event, where reconnecting happens; nothing to do here.
    ws.onerror = () => {};
    ws.onclose = () => {
      clearInterval(keepAliveTimer);
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
      clearTimeout(retryTimer);
      clearInterval(keepAliveTimer);
      socket?.close(1000, "client closed");
      setState("closed");
    },
    /** @returns {ConnectionState} */
    get state() {
      return state;
    },
  };
}
