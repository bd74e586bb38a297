// @ts-check
/**
 * Browser client for notification-hub: ES modules, no framework, no build step.
 *
 *   import { connect } from "notification-hub/client";
 *   const hub = connect({ url: WEBSOCKET_URL, getToken: () => fetch("/token").then((r) => r.text()) });
 *   hub.subscribe("backup.done", (data, frame) => show(data));
 *   await hub.send({ type: "chat", data: "hi" }); // resolves when the hub stored and sent it (hub.sent)
 *
 * The token goes in the `Sec-WebSocket-Protocol` header by default
 * (`new WebSocket(url, ["notification-hub", token])`), so it stays out of URLs, proxies' logs
 * and the console's "WebSocket connection to ... failed" line; `tokenIn: "query"` sends it as
 * the seed did, `?token=` (for a hub older than the subprotocol, or a proxy that drops the header).
 *
 * Subscribers work as in the seed article: a frame `{ data: { type, data } }` goes to the
 * subscribers of `type`, which get the inner `data`. Duplicate ids are dropped (SQS may deliver
 * twice). The parts, as docs/protocol.md "The browser client" describes them:
 *
 *   client/connection.mjs  the socket: token, state (one guarded setter), reconnects, keep-alive,
 *                          one disconnect funnel
 *   client/rooms.mjs       one Room record per room and the membership reconciliation
 *                          (docs/protocol.md "The browser client", Rooms)
 *   client/streams.mjs     seq order, buffer, gaps and resumes per room (docs/protocol.md "Room streams")
 *   client/presence.mjs    presence(), occupancy(), onMember(): members per room, refreshed after
 *                          reconnects (docs/protocol.md#presence)
 *   client/codes.mjs       the hub's error codes (a checked copy of core/errorCodes.ts) and HubError
 *
 * The types are declared once, in index.d.mts; these modules' JSDoc refers to them, and
 * `npm test` type-checks the modules against them (client/tsconfig.json).
 */
import * as codes from "./codes.mjs";
import { Connection, callApp } from "./connection.mjs";
import { isOccupancy, isPresencePage, MEMBER_EVENT_TYPES, Presence } from "./presence.mjs";
import { Rooms, USER_CHANNEL_PREFIX } from "./rooms.mjs";
import { GAP_WAIT_MS, MAX_BUFFERED_FRAMES, RESUME_TIMEOUT_MS, Streams } from "./streams.mjs";

// Typed as index.d.mts declares them, so the check holds the modules to the declarations.
/** @type {typeof import("./index.mjs").HubError} */
export const HubError = codes.HubError;
/** @type {typeof import("./index.mjs").HUB_ERROR_CODES} */
export const HUB_ERROR_CODES = codes.HUB_ERROR_CODES;
/** @type {typeof import("./index.mjs").CLIENT_ERROR_CODES} */
export const CLIENT_ERROR_CODES = codes.CLIENT_ERROR_CODES;

/** @typedef {import("./index.mjs").ConnectOptions} ConnectOptions */
/** @typedef {import("./index.mjs").HubConnection} HubConnection */
/** @typedef {import("./index.mjs").HubFrame} HubFrame */
/** @typedef {import("./index.mjs").InvalidFrame} InvalidFrame */
/** @typedef {import("./index.mjs").Subscriber} Subscriber */
/** @typedef {import("./index.mjs").SentInfo} SentInfo */
/** @typedef {import("./index.mjs").SubscribeOptions} SubscribeOptions */
/** @typedef {{ callback: Subscriber, clientFrames: boolean, room?: string, userChannel: boolean }} Subscription */

const SEEN_IDS_KEPT = 1000;

/** @param {unknown} value @returns {value is Record<string, any>} */
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
/** A seq or a stream head as the hub writes them: a whole number from 0 to 2^53 - 1. @param {unknown} value @returns {value is number} */
const isSeqNumber = (value) => Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;
/** @param {Record<string, any>} info @returns {info is import("./streams.mjs").ResumedInfo} */
const isResumedInfo = (info) => isSeqNumber(info.after) && isSeqNumber(info.last_seq) && typeof info.recovered === "boolean";

/**
 * @param {ConnectOptions} options
 * @returns {HubConnection}
 */
export function connect(options) {
  if (!options || typeof options.url !== "string") throw new TypeError("connect: url is required");
  if (!options.token && !options.getToken) throw new TypeError("connect: token or getToken is required");
  const tokenIn = options.tokenIn ?? "protocol";
  if (tokenIn !== "protocol" && tokenIn !== "query") throw new TypeError('connect: tokenIn must be "protocol" (the default) or "query"');

  /** @type {Map<string, Set<Subscription>>} */
  const subscribers = new Map();
  /** @type {Set<string>} */
  const seen = new Set();
  /**
   * send() calls waiting for the hub's answer, by the `ref` each sendMessage carries.
   * @type {Map<string, { resolve: (info: SentInfo) => void, reject: (err: Error) => void, timer: ReturnType<typeof setTimeout> }>}
   */
  const sends = new Map();
  let sendCount = 0;
  const sendTimeoutMs = options.sendTimeoutMs ?? 10_000;

  /**
   * @param {string} ref
   * @param {SentInfo | undefined} info
   * @param {Error} [err]
   */
  function settleSend(ref, info, err) {
    const waiting = sends.get(ref);
    if (!waiting) return false;
    sends.delete(ref);
    clearTimeout(waiting.timer);
    if (err) waiting.reject(err);
    else waiting.resolve(/** @type {SentInfo} */ (info));
    return true;
  }

  const connection = new Connection(options, {
    onToken: (token) => rooms.learnIdentity(token),
    onOpen: () => {
      rooms.onOpen();
      presence.onOpen();
    },
    onMessage,
    onSocketEnd: () => {
      rooms.onSocketEnd();
      presence.onSocketEnd();
    },
    onClosedForGood: () => {
      for (const ref of [...sends.keys()]) settleSend(ref, undefined, new HubError("closed", "send: the connection was closed before the hub answered"));
      rooms.onClosedForGood();
      presence.onClosedForGood();
    },
  });
  const streams = new Streams({
    dispatch,
    connection,
    gapWaitMs: options.gapWaitMs ?? GAP_WAIT_MS,
    resumeTimeoutMs: options.resumeTimeoutMs ?? RESUME_TIMEOUT_MS,
    maxBufferedFrames: options.maxBufferedFrames ?? MAX_BUFFERED_FRAMES,
    onGap: options.onGap,
    onInvalidFrame: options.onInvalidFrame,
  });
  const rooms = new Rooms(options, connection, streams);
  const presence = new Presence(options, rooms, connection);

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
   * A frame the client cannot use (docs/protocol.md "The browser client", onInvalidFrame): dropped, and told to the app.
   * @param {InvalidFrame["reason"]} reason
   * @param {unknown} frame
   */
  function invalid(reason, frame) {
    callApp(options.onInvalidFrame, { reason, frame, roomId: undefined });
  }

  /** @param {MessageEvent} event */
  function onMessage(event) {
    /** @type {unknown} */
    let parsed;
    try {
      parsed = JSON.parse(String(event.data));
    } catch {
      return invalid("not_json", event.data);
    }
    // Anything may come down the socket (the console's "Send...", a proxy): only an object is a frame.
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return invalid("not_an_object", parsed);
    const frame = /** @type {HubFrame} */ (parsed);
    const control = frame.room_id === null && isObject(frame.data) ? frame.data.type : undefined;
    const info = control === undefined ? undefined : frame.data.data;
    const about = isObject(info) ? info.room_id : undefined;
    // Presence on: how often the hub wants a keep-alive (its sweep's staleness); the smallest told wins.
    if (isObject(info) && info.keep_alive_ms !== undefined) connection.adoptKeepAlive(info.keep_alive_ms);
    if (control === "hub.resumed" && typeof about === "string") {
      if (!isResumedInfo(info)) return invalid("invalid_control", frame);
      rooms.onResumed(info);
    } else if (control === "hub.subscribed" && typeof about === "string") {
      if (!isSeqNumber(info.last_seq)) return invalid("invalid_control", frame);
      rooms.onSubscribed(info);
      presence.onInRoom(about);
    } else if (control === "hub.presence" && typeof about === "string") {
      if (!isPresencePage(info)) return invalid("invalid_control", frame);
      presence.onPresence(info);
    } else if (control === "hub.occupancy" && typeof about === "string") {
      if (!isOccupancy(info)) return invalid("invalid_control", frame);
      presence.onOccupancy(info);
    } else if (control === "hub.unsubscribed" && typeof about === "string") {
      rooms.onUnsubscribed(about);
    } else if (control === "hub.sent" && typeof frame.data.data?.ref === "string") {
      settleSend(frame.data.data.ref, frame.data.data);
    } else if (control === "hub.error" && typeof frame.data.data?.ref === "string" && sends.has(frame.data.data.ref)) {
      const error = frame.data.data;
      settleSend(error.ref, undefined, new HubError(String(error.code), `send: ${error.code}: ${error.message}`, { hubError: error }));
    } else if (control === "hub.error") {
      if (!isObject(info)) return invalid("invalid_control", frame);
      const error = /** @type {import("./index.mjs").HubErrorData} */ (info);
      // A refusal only a presence read can get is not the rooms' news.
      if (!presence.onError(error)) rooms.onError(error);
    } else if (typeof frame.room_id === "string" && rooms.isLeft(frame.room_id)) {
      return; // a room the app left (or failed to join): in flight, or a membership being undone
    } else if (frame.seq !== undefined) {
      // A seq the hub never gives (not a whole number from 1 to 2^53 - 1, e.g. 2^60) cannot be
      // placed in the stream: waiting for the frames before it would never end.
      if (typeof frame.room_id !== "string" || !isSeqNumber(frame.seq) || frame.seq < 1) return invalid("invalid_seq", frame);
      return rooms.onStreamFrame(frame);
    }
    if (typeof frame.id === "string") {
      // SQS may deliver a notification twice; its id stays the same.
      if (seen.has(frame.id)) return;
      seen.add(frame.id);
      if (seen.size > SEEN_IDS_KEPT) seen.delete(seen.values().next().value ?? "");
    }
    // The hub's member events (origin "hub", no seq): the room's presence first, then subscribers as any frame.
    if (frame.origin === "hub" && typeof frame.room_id === "string" && isObject(frame.data) && MEMBER_EVENT_TYPES.has(frame.data.type)) {
      presence.onEvent(frame.room_id, frame.data.type, frame.data.data);
    }
    dispatch(frame);
  }

  connection.start();

  return {
    subscribe(type, callback, subscribeOptions) {
      const room = subscribeOptions?.room;
      if (room !== undefined && (typeof room !== "string" || room === "")) throw new TypeError("subscribe: room must be a non-empty string (or left out for every room)");
      const set = subscribers.get(type) ?? new Set();
      const subscription = { callback, clientFrames: subscribeOptions?.clientFrames === true, room, userChannel: subscribeOptions?.userChannel === true };
      set.add(subscription);
      subscribers.set(type, set);
      return () => set.delete(subscription);
    },
    join: (room, joinOptions) => rooms.join(room, joinOptions),
    leave: (room) => {
      presence.onLeave(room);
      return rooms.leave(room);
    },
    presence: (room, presenceOptions) => presence.presence(room, presenceOptions),
    occupancy: (room) => presence.occupancy(room),
    onMember: (room, listener) => presence.onMember(room, listener),
    get rooms() {
      return rooms.wanted.map((room) => room.id);
    },
    send(data, sendOptions) {
      const ref = `s${++sendCount}`;
      /** @type {Promise<SentInfo>} */
      const sent = new Promise((resolve, reject) => {
        const timer = setTimeout(() => settleSend(ref, undefined, new HubError("timeout", `send: no answer from the hub in ${sendTimeoutMs} ms; the message may still have been sent`)), sendTimeoutMs);
        sends.set(ref, { resolve, reject, timer });
      });
      // A send nobody awaits (as before send() answered) must not become an unhandled rejection.
      sent.catch(() => undefined);
      connection.sendOrQueue(sendOptions?.room === undefined ? { action: "sendMessage", data, ref } : { action: "sendMessage", room_id: sendOptions.room, data, ref });
      return sent;
    },
    close: () => connection.close(),
    get state() {
      return connection.state;
    },
    lastSeq: (roomId) => rooms.peek(roomId)?.lastSeq,
  };
}
