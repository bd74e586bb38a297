// @ts-check
/**
 * Room membership (docs/protocol.md "The browser client", Rooms): one Room record per room, owning
 * everything the client knows of it, and the reconciliation that moves the hub's membership
 * towards the app's last join()/leave().
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
 * only answers the kind of request that can get it (the `routes` of client/codes.mjs).
 */
import { answers, HubError, isPartWay, isTemporary } from "./codes.mjs";
import { backoffDelay, callApp } from "./connection.mjs";

/** @typedef {import("./index.mjs").HubFrame} HubFrame */
/** @typedef {import("./index.mjs").GapInfo} GapInfo */
/** @typedef {import("./index.mjs").SubscribedInfo} SubscribedInfo */
/** @typedef {import("./index.mjs").JoinOptions} JoinOptions */
/** @typedef {import("./index.mjs").ConnectOptions} ConnectOptions */
/** @typedef {import("./codes.mjs").HubErrorData} HubErrorData */
/** @typedef {import("./connection.mjs").Connection} Connection */
/** @typedef {import("./streams.mjs").Streams} Streams */
/** @typedef {import("./streams.mjs").ResumedInfo} ResumedInfo */
/** @typedef {{ promise: Promise<SubscribedInfo>, resolve: (info: SubscribedInfo) => void, reject: (err: Error) => void }} PendingJoin */
/** @typedef {{ promise: Promise<void>, done: () => void }} PendingLeave */
/** @typedef {{ action: "subscribe" | "unsubscribe", forJoin: PendingJoin | undefined, timer: ReturnType<typeof setTimeout>, stale: boolean }} RoomRequest */
/** @typedef {{ load: (room: string) => number | undefined, save: (room: string, seq: number) => void, remove: (room: string) => void }} SeqStore */
/**
 * A resume on the wire: `after` as sent (undefined: `last: 0`, the baseline), the last seq handed
 * out then, the seqs waiting in the buffer then, and its timeout.
 * @typedef {{ after: number | undefined, handedBefore: number, waiting: Set<number>, timer: ReturnType<typeof setTimeout> | undefined }} ResumeRequest
 */

export const USER_CHANNEL_PREFIX = "user:";
/**
 * Subscribes/unsubscribes of different rooms in flight at once: pipelined, but never a burst
 * of hundreds that API Gateway's throttle (or the connections table) would push back on.
 */
const MAX_ROOM_REQUESTS = 10;
/** Longest room id the hub reads (MAX_ID_LENGTH in core/messages.ts). */
const MAX_ROOM_ID_LENGTH = 256;
/** Rooms left on this socket whose late frames are still dropped; past it the oldest is forgotten. */
const LEFT_ROOMS_KEPT = 1000;

/**
 * Everything the client knows of one room:
 *   wanted    the app's last join()/leave() (a failed join: not wanted, but $connect's rooms
 *             stay: keptByConnect)
 *   hubHas    hub.subscribed data | false | undefined: not known (never asked, or the answer lost)
 *   request   the one subscribe/unsubscribe sent and not answered
 *   join/leave the join()/leave() promise waiting for the hub
 *   retry     a re-join or unsubscribe waiting out its backoff
 *   left      left (or failed to join) on this socket: its frames are dropped
 *   lastSeq, buffer, resume, resumeFailures, resumeThrottled, gapTimer: its stream (client/streams.mjs)
 *   presence  its members and their listeners (client/presence.mjs)
 */
export class Room {
  /** @type {SeqStore | undefined} */ #store;
  wanted = false;
  /** When it became wanted: `rooms` lists, and a reconnect re-joins, in join order. */
  wantedSince = 0;
  /** @type {PendingJoin | undefined} */ join;
  /** @type {PendingLeave | undefined} */ leave;
  /** @type {RoomRequest | undefined} */ request;
  /** @type {SubscribedInfo | false | undefined} */ hubHas;
  left = false;
  /** When it was left: past LEFT_ROOMS_KEPT the oldest goes. */
  leftSince = 0;
  /** @type {{ attempts: number, timer?: ReturnType<typeof setTimeout> } | undefined} */ retry;
  /** The join's own gap handler. @type {((gap: GapInfo) => void) | undefined} */ onGap;
  /** Last seq handed to subscribers. @type {number | undefined} */ lastSeq;
  /** Frames ahead of the next expected seq. @type {Map<number, HubFrame> | undefined} */ buffer;
  /** The resume on the wire (current socket): see ResumeRequest. @type {ResumeRequest | undefined} */ resume;
  /** Failed resumes in a row for its gap (resume_throttled apart). */
  resumeFailures = 0;
  /** resume_throttled refusals in a row for its gap. */
  resumeThrottled = 0;
  /** The next resume: after the gap wait, or a failed one's backoff. @type {ReturnType<typeof setTimeout> | undefined} */ gapTimer;
  /** Its members, count and listeners, while presence()/onMember need them (client/presence.mjs). @type {import("./presence.mjs").RoomPresence | undefined} */ presence;

  /**
   * @param {string} id
   * @param {SeqStore | undefined} store
   */
  constructor(id, store) {
    this.id = id;
    this.#store = store;
  }

  /** @param {number} seq */
  advance(seq) {
    this.lastSeq = seq;
    this.#store?.save(this.id, seq);
  }

  /** Its last seq from sessionStorage (persistSeq), unless this page already has one. */
  loadStoredSeq() {
    if (this.lastSeq === undefined) this.lastSeq = this.#store?.load(this.id);
  }

  /** Drops what the client tracks of a stream it no longer follows. */
  forget() {
    this.lastSeq = undefined;
    this.buffer = undefined;
    this.stopResume();
    this.#store?.remove(this.id);
  }

  /** No resume on the wire nor due (the socket ended, or the stream is no longer followed). */
  stopResume() {
    clearTimeout(this.resume?.timer);
    this.resume = undefined;
    clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    this.resumeFailures = 0;
    this.resumeThrottled = 0;
  }

  stopRetry() {
    clearTimeout(this.retry?.timer);
    this.retry = undefined;
  }

  /**
   * The app no longer wants the room (leave(), a join refused for good, the end): its waiting
   * join() rejects with `failure`, its retry and gap handler go.
   * @param {Error} failure
   */
  giveUp(failure) {
    this.wanted = false;
    this.onGap = undefined;
    const join = this.join;
    this.join = undefined;
    join?.reject(failure);
    this.stopRetry();
  }

  /** Nothing known, nothing waiting: the record can go. */
  get idle() {
    return !this.wanted && !this.join && !this.leave && !this.request && !this.retry && !this.left && this.hubHas === undefined && !this.onGap && this.lastSeq === undefined && !this.buffer && !this.resume && !this.gapTimer && !this.presence;
  }
}

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

/** @param {unknown} id */
const idText = (id) => (typeof id === "string" && id !== "" ? id : typeof id === "number" && Number.isFinite(id) ? String(id) : undefined);

/**
 * A TypeError for an argument join()/leave() cannot send; `code` says how the hub would refuse it.
 * @param {string} message
 * @param {unknown} room
 */
function argumentError(message, room) {
  return Object.assign(new TypeError(message), { code: "invalid_subscribe", roomId: room });
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
  return argumentError(`${what}: room must be a string of 1 to ${MAX_ROOM_ID_LENGTH} characters without control characters or lone surrogates`, room);
}

/**
 * The last seq per room in sessionStorage (persistSeq), so a page reload resumes too.
 * @param {ConnectOptions} options
 * @returns {SeqStore | undefined}
 */
function seqStore(options) {
  const storage = options.persistSeq ? globalThis.sessionStorage : undefined;
  if (!storage) return undefined;
  /** @param {string} room */
  const key = (room) => `notification-hub:seq:${options.url}:${room}`;
  return {
    load(room) {
      const stored = Number(storage.getItem(key(room)));
      return Number.isSafeInteger(stored) && stored > 0 ? stored : undefined;
    },
    save: (room, seq) => storage.setItem(key(room), String(seq)),
    remove: (room) => storage.removeItem(key(room)),
  };
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
 * @param {Room} room
 * @returns {PendingLeave}
 */
function deferredLeave(room) {
  /** @type {() => void} */
  let resolve = () => {};
  const promise = /** @type {Promise<void>} */ (new Promise((res) => (resolve = () => res(undefined))));
  return {
    promise,
    done() {
      if (room.leave?.promise === promise) room.leave = undefined;
      resolve();
    },
  };
}

export class Rooms {
  /** @type {Map<string, Room>} */ #rooms = new Map();
  /** Rooms whose membership may differ from the app's wish, in the order they were touched. @type {Set<Room>} */
  #due = new Set();
  /** Rooms with a request on the wire: at most MAX_ROOM_REQUESTS. @type {Set<Room>} */
  #onWire = new Set();
  #leftCount = 0;
  #order = 0;
  #options;
  #connection;
  #streams;
  #store;
  #joinTimeoutMs;
  /** The token's room: the option, else the token's `room_id` claim (none for a token with `rooms`). @type {string | undefined} */
  tokenRoom;
  /** This user's channel `user:{id}`, from the token's claims. @type {string | undefined} */
  userChannel;

  /**
   * @param {ConnectOptions} options
   * @param {Connection} connection
   * @param {Streams} streams
   */
  constructor(options, connection, streams) {
    this.#options = options;
    this.#connection = connection;
    this.#streams = streams;
    this.#store = seqStore(options);
    this.#joinTimeoutMs = options.joinTimeoutMs ?? 10_000;
    this.tokenRoom = options.room;
    if (this.tokenRoom) this.room(this.tokenRoom).loadStoredSeq();
  }

  /** The record of a room, made on first use. @param {string} id */
  room(id) {
    let room = this.#rooms.get(id);
    if (!room) {
      room = new Room(id, this.#store);
      this.#rooms.set(id, room);
    }
    return room;
  }

  /** @param {string} id */
  peek(id) {
    return this.#rooms.get(id);
  }

  /** @param {string} id */
  isLeft(id) {
    return this.#rooms.get(id)?.left ?? false;
  }

  /** Every room record. */
  all() {
    return [...this.#rooms.values()];
  }

  /** A record another part let go of (its presence) goes if it holds nothing else. @param {Room} room */
  release(room) {
    this.#prune(room);
  }

  /** The rooms the app wants, in join order. */
  get wanted() {
    return [...this.#rooms.values()].filter((room) => room.wanted).sort((a, b) => a.wantedSince - b.wantedSince);
  }

  /* ---- the socket's life (client/connection.mjs hooks) ---- */

  /**
   * The token's user channel and room, from its claims; a token from getToken may be another user's.
   * @param {string | undefined} token
   */
  learnIdentity(token) {
    const claims = tokenClaims(token);
    const user = idText(claims?.user_id);
    const channel = user === undefined ? undefined : USER_CHANNEL_PREFIX + user;
    if (channel !== this.userChannel) {
      if (this.userChannel) this.room(this.userChannel).forget();
      this.userChannel = channel;
      if (channel) this.room(channel).loadStoredSeq();
    }
    if (!this.#options.room) {
      const id = idText(claims?.room_id);
      if (id !== this.tokenRoom && this.tokenRoom && !this.room(this.tokenRoom).wanted) this.room(this.tokenRoom).forget();
      this.tokenRoom = id;
      if (id) this.room(id).loadStoredSeq();
    }
  }

  /**
   * A new socket: resume every room $connect put it in before anything else is sent; the rooms
   * joined since are joined again first, and resumed once the hub confirms.
   */
  onOpen() {
    const resumed = new Set([...this.#rooms.values()].filter((room) => room.lastSeq !== undefined));
    if (this.tokenRoom) resumed.add(this.room(this.tokenRoom));
    if (this.userChannel) resumed.add(this.room(this.userChannel));
    for (const room of resumed) if (!room.wanted && !room.left) this.#streams.resume(room);
    // A new connection is in no joined room but these two: each is joined again (and resumed
    // once confirmed); one left while queued needs no unsubscribe.
    for (const room of this.wanted) {
      if (room.id !== this.tokenRoom && room.id !== this.userChannel) room.hubHas = false;
      this.#due.add(room);
    }
    // The token's room, left while the socket was down: $connect put the connection in it again.
    const tokenRoom = this.tokenRoom === undefined ? undefined : this.peek(this.tokenRoom);
    if (tokenRoom?.left) this.#due.add(tokenRoom);
    this.#pump();
  }

  /** The socket ended: resumes and room requests in flight died with it; the next open sends what is due. */
  onSocketEnd() {
    // The next open resumes what each room needs; answers of this socket never come.
    for (const room of this.#rooms.values()) room.stopResume();
    this.#stopRequests();
    for (const room of this.#rooms.values()) {
      room.hubHas = undefined;
      // Frames of the old connection cannot come any more; the token's room is in the next one.
      if (room.left && room.id !== this.tokenRoom) this.#unmarkLeft(room);
      this.#prune(room);
    }
  }

  /** No socket any more, nor another one coming (close(), or a close with reconnect: false): nothing waits. */
  onClosedForGood() {
    this.#stopRequests();
    for (const room of this.#rooms.values()) {
      // Never made: not listed in rooms.
      if (room.join) room.giveUp(new HubError("closed", `join ${room.id}: the connection was closed`, { room: room.id }));
      room.stopResume();
    }
  }

  /**
   * Ends what the room requests have in flight: their answers died with the socket. A leave in
   * flight is done (the next connection starts without the room, the token's room aside: see onOpen).
   */
  #stopRequests() {
    for (const room of this.#onWire) {
      clearTimeout(room.request?.timer);
      room.request = undefined;
    }
    this.#onWire.clear();
    this.#due.clear();
    for (const room of this.#rooms.values()) {
      room.stopRetry();
      room.leave?.done();
    }
  }

  /* ---- the app's calls ---- */

  /**
   * @param {string} id
   * @param {JoinOptions} [joinOptions]
   * @returns {Promise<SubscribedInfo>}
   */
  join(id, joinOptions) {
    const unreadable = unreadableRoom("join", id);
    if (unreadable) return Promise.reject(unreadable);
    if (this.#connection.ended) return Promise.reject(new HubError("closed", "join: the connection is closed", { room: id }));
    const room = this.room(id);
    if (joinOptions?.onGap) room.onGap = joinOptions.onGap;
    if (room.join) return room.join.promise;
    this.#unmarkLeft(room);
    room.stopRetry(); // the app's new word on the room goes now, not after a backoff
    // A leave not answered yet is overtaken: this join is the app's last word on the room.
    room.leave?.done();
    if (!room.wanted) {
      room.wanted = true;
      room.wantedSince = ++this.#order;
    }
    room.loadStoredSeq();
    const pending = (room.join = deferredJoin());
    this.#due.add(room);
    this.#pump(); // may settle it at once
    return pending.promise;
  }

  /**
   * @param {string} id
   * @returns {Promise<void>}
   */
  leave(id) {
    const unreadable = unreadableRoom("leave", id);
    if (unreadable) return Promise.reject(unreadable);
    // The hub refuses any user channel (invalid_subscribe): it is how the app reaches its user.
    // By the prefix, as the hub does, so even before the token (and so the user) is known.
    if (id.startsWith(USER_CHANNEL_PREFIX)) return Promise.reject(argumentError(`leave: ${id} is a user channel, which a connection cannot leave`, id));
    const room = this.room(id);
    // A subscribe on the wire still gets its answer (then an unsubscribe follows); one not sent yet never goes.
    room.giveUp(new HubError("left", `join ${id}: left before the hub answered`, { room: id }));
    this.#dropRoom(room);
    // With the socket down there is nothing to send: the next connection starts without the
    // room (the token's room: the next open sends the unsubscribe).
    if (!this.#connection.isOpen) {
      this.#due.delete(room);
      return Promise.resolve();
    }
    const pending = (room.leave ??= deferredLeave(room));
    this.#due.add(room);
    this.#pump(); // may settle it at once
    return pending.promise;
  }

  /* ---- the hub's frames ---- */

  /** @param {HubFrame} frame a frame with a seq, of a room not left */
  onStreamFrame(frame) {
    this.#streams.onFrame(this.room(/** @type {string} */ (frame.room_id)), frame);
  }

  /** @param {ResumedInfo} info */
  onResumed(info) {
    this.#streams.onResumed(this.room(info.room_id), info);
  }

  /** @param {SubscribedInfo} info */
  onSubscribed(info) {
    const room = this.room(info.room_id);
    if (room.request?.action !== "subscribe") return this.#onLateAnswer(room, info);
    this.#confirmJoined(room, info);
    this.#finishRequest(room, info);
  }

  /** @param {string} id */
  onUnsubscribed(id) {
    const room = this.room(id);
    if (room.request?.action === "unsubscribe") this.#finishRequest(room, false);
    else this.#onLateAnswer(room, false);
  }

  /**
   * A `hub.error` that names a room (`room_id`) answers that room's one request on the wire.
   * Only a request the hub could not read names none; join() refuses those itself, so this is
   * the one on the wire when just one is. Any other error (a refused send, a resume) is not
   * about a room's membership and leaves the requests alone.
   * @param {HubErrorData} error
   */
  onError(error) {
    const code = error?.code;
    if (answers("resume", code) && !answers("subscribe", code) && !answers("unsubscribe", code)) return this.#onResumeError(error);
    const named = typeof error?.room_id === "string" ? error.room_id : undefined;
    const room = named !== undefined ? this.room(named) : code === "invalid_subscribe" && this.#onWire.size === 1 ? [...this.#onWire][0] : undefined;
    if (room === undefined) return;
    const request = room.request;
    // Not a refusal the request on the wire can get: a late one of an earlier request. Only a
    // membership request that failed part way tells something: it may have made the membership.
    if (!request || !answers(request.action, code)) {
      if (isPartWay(code) && (answers("subscribe", code) || answers("unsubscribe", code))) this.#onLateAnswer(room, undefined);
      return;
    }
    const failure = new HubError(String(code), `${request.action === "subscribe" ? "join" : "leave"} ${room.id}: ${code}`, { room: room.id, hubError: error });
    // A refused unsubscribe: the room is left on this side anyway (its frames are dropped); one
    // that failed part way may have kept the membership: unknown, and tried again. A subscribe
    // that failed part way may have made the membership: unknown, undone unless wanted.
    if (request.action === "unsubscribe") return isPartWay(code) ? this.#finishRequest(room, undefined, failure) : this.#finishRequest(room, false);
    this.#finishRequest(room, isPartWay(code) ? undefined : false, failure);
  }

  /**
   * A refused or failed resume: the room it names (this hub names it), else the one room with a
   * resume on the wire (an older hub names none). With several and no name, each one's timeout
   * (resumeTimeoutMs) stands in for the answer.
   * @param {HubErrorData} error
   */
  #onResumeError(error) {
    const named = typeof error.room_id === "string" ? this.peek(error.room_id) : undefined;
    const asking = [...this.#rooms.values()].filter((room) => room.resume !== undefined);
    const room = named ?? (typeof error.room_id !== "string" && asking.length === 1 ? asking[0] : undefined);
    if (room) this.#streams.onResumeError(room, error);
  }

  /* ---- reconciliation ---- */

  /**
   * Moves every due room towards the app's last join()/leave(): settles the waiting call when
   * the hub already agrees, else sends the one request that makes it agree (after the room's
   * previous request was answered, and while fewer than MAX_ROOM_REQUESTS are in flight).
   */
  #pump() {
    if (!this.#connection.isOpen) return; // the next open joins what is due
    for (const room of this.#due) {
      if (room.request) {
        this.#due.delete(room); // its answer makes it due again
        continue;
      }
      const action = this.#nextRequest(room);
      if (action === undefined) {
        this.#due.delete(room);
        this.#prune(room);
        continue;
      }
      // Full window: this room stays due; later ones may still need no request (a leave settled at once).
      if (this.#onWire.size >= MAX_ROOM_REQUESTS) continue;
      this.#due.delete(room);
      this.#connection.sendNow({ action, room_id: room.id });
      /** @type {RoomRequest} */
      const request = { action, forJoin: room.join, timer: setTimeout(() => this.#onNoAnswer(room, request), this.#joinTimeoutMs), stale: false };
      room.request = request;
      this.#onWire.add(room);
    }
  }

  /**
   * The request a room needs, or undefined when the hub already has what the app asked for
   * last (the waiting join or leave is then settled).
   * @param {Room} room
   * @returns {"subscribe" | "unsubscribe" | undefined}
   */
  #nextRequest(room) {
    const has = room.hubHas;
    if (room.retry?.timer) return undefined; // its backoff's end makes it due again
    if (room.wanted) {
      if (!has) return "subscribe";
      const join = room.join;
      room.join = undefined;
      join?.resolve(has);
    } else {
      // Not known counts as a member: the hub answers an unsubscribe of a room it is not in the same.
      if (has !== false && !this.#keptByConnect(room)) return "unsubscribe";
      room.leave?.done();
      room.hubHas = undefined; // settled: not kept for every room ever left
    }
    return undefined;
  }

  /**
   * A room $connect put the connection in and the app has not left: the token's room, and any
   * user channel (by the prefix, as leave() and the hub judge it, even with unreadable claims).
   * Not joining it (a failed join()) does not make the app want out: it is never unsubscribed.
   * @param {Room} room
   */
  #keptByConnect(room) {
    return room.id.startsWith(USER_CHANNEL_PREFIX) || (room.id === this.tokenRoom && !room.left);
  }

  /**
   * Takes a room's request off the wire, with what its answer says of the membership, and moves
   * the room on. A failed subscribe rejects the join it was sent for while that is still the
   * app's last word on the room; a join() made since gets a subscribe of its own.
   * @param {Room} room
   * @param {SubscribedInfo | false | undefined} has undefined: not known
   * @param {HubError} [failure]
   */
  #finishRequest(room, has, failure) {
    const request = room.request;
    if (!request) return;
    clearTimeout(request.timer);
    room.request = undefined;
    this.#onWire.delete(room);
    // An answer of the other kind came while this one ran: the two ran in either order.
    room.hubHas = has === undefined || request.stale ? undefined : has;
    if (failure && request.action === "unsubscribe" && !room.wanted) {
      this.#retryLater(room); // the hub may still count the membership (maxRoomsPerConnection)
    } else if (failure && request.action === "subscribe" && room.wanted && room.join === request.forJoin) {
      // A re-join nobody awaits is retried after a passing failure; a join() hears every one.
      if (!request.forJoin && isTemporary(failure.code)) {
        this.#retryLater(room);
      } else {
        room.giveUp(failure);
        // Its frames come whatever the join said (keptByConnect): kept, with their seq.
        if (!this.#keptByConnect(room)) this.#dropRoom(room);
        if (!request.forJoin) callApp(this.#options.onRoomLost, room.id, String(failure.code));
      }
    } else if (!failure) {
      room.stopRetry();
    }
    this.#due.add(room);
    this.#pump();
  }

  /**
   * A request nobody awaits failed for a passing reason: a re-join (subscribe_failed, timeout,
   * unknown_connection) or an unsubscribe (unsubscribe_failed). The hub's membership is not
   * known, so the request goes again, after a backoff that grows with each failure.
   * @param {Room} room
   */
  #retryLater(room) {
    const retry = room.retry ?? { attempts: 0 };
    room.retry = retry;
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      this.#due.add(room);
      this.#pump();
    }, backoffDelay(retry.attempts++, this.#connection.backoff));
  }

  /**
   * The app no longer wants a room: its frames still in flight are dropped, its seq forgotten.
   * @param {Room} room
   */
  #dropRoom(room) {
    if (!room.left) {
      room.left = true;
      room.leftSince = ++this.#order;
      this.#leftCount++;
    }
    room.forget();
    if (this.#leftCount <= LEFT_ROOMS_KEPT) return;
    // The oldest goes (with any seq its late frames set), never the token's room: forgetting
    // that one would silently undo the app's leave() after the next reconnect.
    let oldest;
    for (const other of this.#rooms.values()) {
      if (other.left && other.id !== this.tokenRoom && (!oldest || other.leftSince < oldest.leftSince)) oldest = other;
    }
    if (!oldest) return;
    this.#unmarkLeft(oldest);
    oldest.forget();
    this.#prune(oldest);
  }

  /** @param {Room} room */
  #unmarkLeft(room) {
    if (!room.left) return;
    room.left = false;
    this.#leftCount--;
  }

  /** A record that holds nothing any more goes (not kept for every room ever seen). @param {Room} room */
  #prune(room) {
    if (room.idle && !this.#due.has(room) && !this.#onWire.has(room)) this.#rooms.delete(room.id);
  }

  /**
   * An answer no request on the wire waits for: one given up on (timed out) that ran late. It
   * is news of the hub's membership, and the room is reconciled with the app's wish once
   * nothing is on the wire for it.
   * @param {Room} room
   * @param {SubscribedInfo | false | undefined} has undefined: the hub may have it or not
   */
  #onLateAnswer(room, has) {
    if (room.id.startsWith(USER_CHANNEL_PREFIX)) return; // a connection is in its own and can leave none
    const request = room.request;
    if (request) {
      // It ran alongside the request on the wire, in either order: that answer no longer tells.
      request.stale = true;
      return;
    }
    room.hubHas = has;
    if (has) this.#confirmJoined(room, has);
    this.#due.add(room);
    this.#pump();
  }

  /**
   * No answer in joinTimeoutMs (a lost post): whether the hub acted is not known. The join
   * gives up (an unsubscribe then undoes it, in case it was made); a leave is done on this
   * side anyway (its frames are dropped), so the room is not stuck behind it.
   * @param {Room} room
   * @param {RoomRequest} request
   */
  #onNoAnswer(room, request) {
    if (room.request !== request) return;
    // A late answer is news (onLateAnswer). A re-join since needs its subscribe, whatever the hub did.
    if (request.action === "unsubscribe") return this.#finishRequest(room, room.wanted ? undefined : false);
    this.#finishRequest(room, undefined, new HubError("timeout", `join ${room.id}: no answer from the hub in ${this.#joinTimeoutMs} ms`, { room: room.id }));
  }

  /**
   * The hub has the room (its answer on the wire, or a late one): no re-join waits any more,
   * and a wanted room catches up with its stream.
   * @param {Room} room
   * @param {SubscribedInfo} info
   */
  #confirmJoined(room, info) {
    room.stopRetry();
    if (!room.wanted) return;
    const last = room.lastSeq;
    if (last === undefined) {
      // The first join: live frames start after the stream's head (unless some already came).
      if (Number.isSafeInteger(info.last_seq)) room.advance(info.last_seq);
      this.#streams.drain(room);
    } else if (info.last_seq > last) {
      // Joined again (a reconnect, a page reload with persistSeq): fetch what was missed.
      this.#streams.resume(room);
    }
  }
}
