// @ts-check
/**
 * The socket of a hub connection: the token and how it travels, the state with its one guarded
 * setter, reconnects with jittered backoff, the outbox, the keep-alive, and one disconnect
 * funnel every end goes through (a socket's close, a failed connect, close()). What the rooms
 * make of a socket's life comes in through the hooks (client/rooms.mjs).
 */

/** @typedef {import("./index.mjs").ConnectOptions} ConnectOptions */
/** @typedef {import("./index.mjs").ConnectionState} ConnectionState */
/** @typedef {import("./index.mjs").StateChangeReason} StateChangeReason */

/** Named beside the token in `Sec-WebSocket-Protocol`; the hub names it back (core/rooms.ts SUBPROTOCOL). */
const SUBPROTOCOL = "notification-hub";

/**
 * What the rooms do at each point of a socket's life.
 * @typedef {{
 *   onToken: (token: string | undefined) => void,
 *   onOpen: () => void,
 *   onMessage: (event: MessageEvent) => void,
 *   onSocketEnd: () => void,
 *   onClosedForGood: () => void,
 * }} ConnectionHooks
 */

/**
 * Calls an app's callback: one that throws is logged, and never stops the client's own work
 * (the queued re-joins, the rest of a frame's subscribers).
 * @template {unknown[]} A
 * @param {((...args: A) => void) | undefined} callback
 * @param {A} args
 */
export function callApp(callback, ...args) {
  try {
    callback?.(...args);
  } catch (err) {
    console.error("notification-hub: an app callback failed", err);
  }
}

/**
 * Full jitter: anywhere from 0 to a ceiling that doubles with each failure, from minBackoffMs
 * up to maxBackoffMs; reconnects and room retries alike. After a hub-wide drop every client
 * fails at once: spread over the whole ceiling (not its upper half) they come back at a
 * steady rate under API Gateway's new-connection limit instead of in waves.
 * @param {number} failures
 * @param {{ minBackoffMs: number, maxBackoffMs: number }} limits
 */
export function backoffDelay(failures, { minBackoffMs, maxBackoffMs }) {
  const ceiling = Math.min(maxBackoffMs, minBackoffMs * 2 ** failures);
  return Math.floor(Math.random() * ceiling);
}

/* ---- keep-alive: one interval per open socket, under API Gateway's 10-minute idle timeout ---- */

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
const DEFAULT_KEEP_ALIVE_MS = 8 * 60_000;

/**
 * @param {WebSocket} ws
 * @param {number} openState the implementation's OPEN
 * @param {number} everyMs
 */
function startKeepAlive(ws, openState, everyMs) {
  return setInterval(() => ws.readyState === openState && ws.send(KEEP_ALIVE_FRAME), everyMs);
}

/* ---- the connection ---- */

export class Connection {
  /** @type {ConnectOptions} */ #options;
  /** @type {ConnectionHooks} */ #hooks;
  /** @type {typeof WebSocket} */ #Impl;
  #reconnect;
  #limits;
  /** Before start(): nothing is connected. @type {ConnectionState} */ #state = "closed";
  /** @type {WebSocket | undefined} */ #socket;
  /** @type {string | undefined} */ #token;
  #attempt = 0;
  #closedByUser = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */ #retryTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */ #keepAlive;
  /** Frames sent before the socket was open. @type {string[]} */ #outbox = [];
  /** The smallest interval the hub asked for (`keep_alive_ms`, presence on), else the option's. @type {number | undefined} */ #hubKeepAliveMs;

  /**
   * @param {ConnectOptions} options
   * @param {ConnectionHooks} hooks
   */
  constructor(options, hooks) {
    this.#options = options;
    this.#hooks = hooks;
    this.#Impl = options.WebSocket ?? globalThis.WebSocket;
    this.#reconnect = options.reconnect ?? true;
    this.#limits = { minBackoffMs: options.minBackoffMs ?? 500, maxBackoffMs: options.maxBackoffMs ?? 30_000 };
    this.#token = options.token;
  }

  /** @returns {ConnectionState} */
  get state() {
    return this.#state;
  }

  /** No socket any more, nor another one coming. */
  get ended() {
    return this.#closedByUser || this.#state === "closed";
  }

  get isOpen() {
    return this.#socket !== undefined && this.#socket.readyState === this.#Impl.OPEN;
  }

  get backoff() {
    return this.#limits;
  }

  start() {
    this.#setState("connecting", "connect");
    void this.#open().catch((err) => this.#connectFailed(err));
  }

  /**
   * Sends a request now if the socket is open; otherwise the next open sends what is due.
   * @param {object} request
   */
  sendNow(request) {
    if (!this.#socket || !this.isOpen) return false;
    this.#socket.send(JSON.stringify(request));
    return true;
  }

  /** Sends now, or once the socket is open. @param {object} frame */
  sendOrQueue(frame) {
    const text = JSON.stringify(frame);
    if (this.#socket && this.isOpen) this.#socket.send(text);
    else this.#outbox.push(text);
  }

  /**
   * The hub's `keep_alive_ms` (in hub.subscribed, hub.resumed, hub.presence, hub.occupancy with presence on:
   * its sweep calls a connection stale after about that long without a ping). The smallest one
   * told wins, for this socket and the next; the interval restarts with it.
   * @param {unknown} ms
   */
  adoptKeepAlive(ms) {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0 || ms >= this.#keepAliveMs()) return;
    this.#hubKeepAliveMs = ms;
    if (this.#socket && this.isOpen) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = startKeepAlive(this.#socket, this.#Impl.OPEN, ms);
    }
  }

  #keepAliveMs() {
    return Math.min(this.#hubKeepAliveMs ?? Infinity, this.#options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS);
  }

  /** Closes for good: no reconnect. */
  close() {
    this.#closedByUser = true;
    this.#disconnect("client closed");
    this.#socket?.close(1000, "client closed");
  }

  /**
   * The one place the state changes: tells the app (onStateChange) only when it did.
   * @param {ConnectionState} next
   * @param {StateChangeReason} reason
   * @returns {boolean} false when the state already was `next`
   */
  #setState(next, reason) {
    if (next === this.#state) return false;
    const previous = this.#state;
    this.#state = next;
    callApp(this.#options.onStateChange, next, { previous, reason });
    return true;
  }

  /**
   * Every end goes through here: a socket's close (`socketEnded`: its requests died with it), a
   * connect that failed, close(). Then either another socket comes after a backoff, or none.
   * @param {StateChangeReason} reason
   * @param {boolean} [socketEnded]
   */
  #disconnect(reason, socketEnded = false) {
    clearInterval(this.#keepAlive);
    if (socketEnded) this.#hooks.onSocketEnd();
    if (this.#closedByUser || !this.#reconnect) {
      this.#hooks.onClosedForGood();
      clearTimeout(this.#retryTimer);
      this.#setState("closed", reason);
      return;
    }
    this.#setState("connecting", reason);
    this.#retryTimer = setTimeout(() => void this.#open().catch((err) => this.#connectFailed(err)), backoffDelay(this.#attempt++, this.#limits));
  }

  /** @param {unknown} err */
  #connectFailed(err) {
    console.error("notification-hub: could not connect", err);
    this.#disconnect("connect failed");
  }

  async #open() {
    const options = this.#options;
    if (this.#closedByUser) return;
    if (!this.#token && options.getToken) this.#token = await options.getToken();
    if (this.#closedByUser) return; // close() while the token was being fetched
    const token = this.#token;
    this.#hooks.onToken(token);
    const Impl = this.#Impl;
    /** @type {WebSocket} */
    let ws;
    try {
      if (options.tokenIn === "query") {
        const separator = options.url.includes("?") ? "&" : "?";
        ws = new Impl(`${options.url}${separator}token=${encodeURIComponent(token ?? "")}`);
      } else {
        ws = new Impl(options.url, [SUBPROTOCOL, token ?? ""]);
      }
    } catch (err) {
      // A token that cannot be a protocol name (empty, spaces) throws here: fetch another next time.
      if (options.getToken) this.#token = undefined;
      throw err;
    }
    this.#socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.#attempt = 0;
      this.#setState("open", "open");
      this.#hooks.onOpen();
      while (this.#outbox.length > 0 && ws.readyState === Impl.OPEN) ws.send(/** @type {string} */ (this.#outbox.shift()));
      this.#keepAlive = startKeepAlive(ws, Impl.OPEN, this.#keepAliveMs());
    };
    ws.onmessage = (event) => this.#hooks.onMessage(event);
    // Every failure ends in a close event, where reconnecting happens; nothing to do here.
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this.#socket === ws) this.#socket = undefined;
      // Browsers hide the handshake's status: a refusal (401/403, e.g. an expired token)
      // looks like a close before open. Ask for a fresh token next time.
      if (!opened && options.getToken) this.#token = undefined;
      this.#disconnect("socket closed", true);
    };
  }
}
