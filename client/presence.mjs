// @ts-check
/**
 * Presence on the client's side (docs/protocol.md#presence): who is in a room, how many, and
 * the member events, kept in the Room record of client/rooms.mjs (its `presence`), one per room.
 *
 * The hub's answers (`hub.presence`, `hub.occupancy`) carry the room but no request id, and a
 * refusal names only the room: so a room has at most one read on the wire, the next one goes
 * after its answer (different rooms' reads go together).
 *
 * What onMember listeners get (docs/protocol.md#presence), in this order per room:
 *   reset   the room's membership as the client now knows it: `count`, and `members` when the
 *           room is within eventMembersLimit (its list was read), else no list (a big room:
 *           only its count was read). Listeners start from it: replace what they show.
 *   joined / left   one per change, from the hub's single events (`via: "event"`), its diffs
 *           (`via: "diff"`), or a read that found what the events did not say (`via: "refresh"`).
 * The list is read when the first listener comes and the connection is in the room, and again
 * after every reconnect (and after a leave and join): the events of a connection's absence are
 * lost (the hub stores none), so the client never trusts the list it had. A room within
 * eventMembersLimit gets `presence` again (all its pages) and listeners hear the differences
 * (joined/left, `via: "refresh"`); a bigger one gets `occupancy` only and a reset without a list.
 * Which one: a room whose last event was a diff, or whose last known count is past
 * eventMembersLimit (the option: set it to the hub's), is big; a `presence` read that finds the
 * room's count past it stops after its first page and reports a reset without a list.
 * Events that come while the list is read are held and applied to what the pages said (a
 * user's last event is their state, whichever page saw them).
 */
import { answers, HubError } from "./codes.mjs";
import { backoffDelay, callApp } from "./connection.mjs";

/** @typedef {import("./index.mjs").Member} Member */
/** @typedef {import("./index.mjs").MemberChange} MemberChange */
/** @typedef {import("./index.mjs").MemberListener} MemberListener */
/** @typedef {import("./index.mjs").PresenceInfo} PresenceInfo */
/** @typedef {import("./index.mjs").OccupancyInfo} OccupancyInfo */
/** @typedef {import("./index.mjs").ConnectOptions} ConnectOptions */
/** @typedef {import("./index.mjs").HubErrorData} HubErrorData */
/** @typedef {import("./rooms.mjs").Room} Room */
/** @typedef {import("./rooms.mjs").Rooms} Rooms */
/** @typedef {import("./connection.mjs").Connection} Connection */
/** @typedef {{ room_id: string, members: Member[], count: number, next: string | null }} PresencePage */
/**
 * A read asked for and not answered: on the wire (`sent`) or waiting for the connection to be
 * in the room; `timer` is its timeout, from the call.
 * @typedef {{ action: "presence" | "occupancy", after?: string, limit?: number, sent: boolean, resolve: (data: any) => void, reject: (err: Error) => void, timer: ReturnType<typeof setTimeout> }} PresenceRead
 */
/** A list read's outcome: the members, or only the count of a room found past eventMembersLimit. @typedef {{ room: string, count: number, members?: Member[] }} ListResult */
/** A member change as the hub's events say it, before the known list filters it. @typedef {{ joined: string } | { left: string, reason?: string }} EventChange */

/** The hub's default `eventMembersLimit` (core/presence.ts PRESENCE_DEFAULTS). */
export const DEFAULT_EVENT_MEMBERS_LIMIT = 100;
/** Most members one `presence` page holds (core/presence.ts MAX_PRESENCE_PAGE). */
export const MAX_PRESENCE_PAGE = 1000;
/** Failed refreshes in a row before the client stops trying until the next reconnect. */
const REFRESH_ATTEMPTS = 6;

/** The hub's member events, by frame type. */
export const MEMBER_EVENT_TYPES = new Set(["hub.member.joined", "hub.member.left", "hub.presence.diff"]);

/**
 * Everything the client knows of one room's presence (Room.presence), while a listener or a
 * read needs it:
 *   members     by user id, complete as of the last list read plus the events since; undefined:
 *               not known (never read, or a big room)
 *   count, connections   the last known totals (undefined: none read)
 *   big         the room's changes come as diffs (past eventMembersLimit)
 *   stale       the list may have missed events (first listener, a reconnect, a leave): read on
 *               the next chance
 *   reads       the read on the wire first, then the waiting ones
 *   listing     the list read in progress, and the events held while it runs
 */
export class RoomPresence {
  /** @type {Map<string, Member> | undefined} */ members;
  /** @type {number | undefined} */ count;
  /** @type {number | undefined} */ connections;
  big = false;
  stale = true;
  /** @type {Set<MemberListener>} */ listeners = new Set();
  /** @type {PresenceRead[]} */ reads = [];
  /** @type {{ promise: Promise<ListResult>, held: EventChange[] } | undefined} */ listing;
  /** The refresh's retry after a failure. @type {{ attempts: number, timer?: ReturnType<typeof setTimeout> } | undefined} */ retry;

  /** Nothing listens, nothing is asked: the record can go. */
  get idle() {
    return this.listeners.size === 0 && this.reads.length === 0 && !this.listing && !this.retry?.timer;
  }
}

/** @param {unknown} value @returns {value is Record<string, any>} */
const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
/** @param {unknown} value */
const isCount = (value) => Number.isSafeInteger(value) && /** @type {number} */ (value) >= 0;

/**
 * A reply's data the client can use, or undefined.
 * @param {unknown} info
 * @returns {info is PresencePage}
 */
export function isPresencePage(info) {
  return isObject(info) && typeof info.room_id === "string" && Array.isArray(info.members) && isCount(info.count) && (info.next === null || typeof info.next === "string") && info.members.every((m) => isObject(m) && typeof m.user_id === "string");
}
/** @param {unknown} info @returns {info is OccupancyInfo & { room_id: string }} */
export function isOccupancy(info) {
  return isObject(info) && typeof info.room_id === "string" && isCount(info.connections) && isCount(info.users);
}

/**
 * The member changes a hub event says, in order; undefined for data the hub does not send.
 * @param {string} type
 * @param {Record<string, any>} data
 * @returns {EventChange[] | undefined}
 */
function eventChanges(type, data) {
  if (type === "hub.member.joined") return typeof data.user_id === "string" ? [{ joined: data.user_id }] : undefined;
  if (type === "hub.member.left") return typeof data.user_id === "string" ? [{ left: data.user_id, reason: typeof data.reason === "string" ? data.reason : undefined }] : undefined;
  if (!Array.isArray(data.joined) || !Array.isArray(data.left)) return undefined;
  return [
    ...data.joined.filter((user) => typeof user === "string").map((user) => ({ joined: user })),
    ...data.left.filter((left) => isObject(left) && typeof left.user_id === "string").map((left) => ({ left: left.user_id, reason: typeof left.reason === "string" ? left.reason : undefined })),
  ];
}

export class Presence {
  #rooms;
  #connection;
  #limit;
  #timeoutMs;
  #backoff;
  /** Sockets ended so far: a list read across one may have missed events. */
  #socketEnds = 0;
  /** A socket opened once: the token (and its room) is known. */
  #opened = false;

  /**
   * @param {ConnectOptions} options
   * @param {Rooms} rooms
   * @param {Connection} connection
   */
  constructor(options, rooms, connection) {
    const limit = options.eventMembersLimit ?? DEFAULT_EVENT_MEMBERS_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 0) throw new TypeError("connect: eventMembersLimit must be a whole number, 0 or more (the hub's presence.eventMembersLimit; default 100)");
    this.#rooms = rooms;
    this.#connection = connection;
    this.#limit = limit;
    this.#timeoutMs = options.sendTimeoutMs ?? 10_000;
    this.#backoff = connection.backoff;
  }

  /** @param {string} id */
  #state(id) {
    const room = this.#rooms.room(id);
    room.presence ??= new RoomPresence();
    return /** @type {RoomPresence} */ (room.presence);
  }

  /** Drops a room's presence record once nothing needs it (and the room's record, if it holds nothing else). @param {string} id */
  #release(id) {
    const room = this.#rooms.peek(id);
    if (room?.presence?.idle) {
      room.presence = undefined;
      this.#rooms.release(room);
    }
  }

  /**
   * Whether the hub has this connection in the room now: the token's room from `$connect`, a
   * joined room once the hub confirmed it. Reads wait for it.
   * @param {string} id
   */
  #inRoom(id) {
    const room = this.#rooms.peek(id);
    return this.#connection.isOpen && !room?.left && (Boolean(room?.hubHas) || id === this.#rooms.tokenRoom);
  }

  /* ---- the app's calls ---- */

  /**
   * Every member of a room (all pages), and the count.
   * @param {string} id
   * @param {{ limit?: number }} [options]
   * @returns {Promise<PresenceInfo>}
   */
  presence(id, options) {
    const limit = options?.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PRESENCE_PAGE)) {
      return Promise.reject(new TypeError(`presence: limit must be a whole number from 1 to ${MAX_PRESENCE_PAGE}`));
    }
    return this.#list(id, { limit, wholeList: true }).then((info) => /** @type {PresenceInfo} */ (info));
  }

  /**
   * @param {string} id
   * @returns {Promise<OccupancyInfo>}
   */
  occupancy(id) {
    return this.#ask(id, "occupancy", {}).then((info) => {
      const state = this.#state(id);
      state.count = info.users;
      state.connections = info.connections;
      this.#release(id);
      return { room: id, connections: info.connections, users: info.users };
    });
  }

  /**
   * @param {string} id
   * @param {MemberListener} listener
   * @returns {() => void}
   */
  onMember(id, listener) {
    if (typeof listener !== "function") throw new TypeError("onMember: listener must be a function");
    const state = this.#state(id);
    state.listeners.add(listener);
    if (state.listeners.size === 1) {
      state.stale = true;
      if (this.#inRoom(id)) this.#refresh(id);
    } else if (!state.listing && !state.stale) {
      // A later listener starts from what the others already know.
      const reset = this.#reset(id, state);
      queueMicrotask(() => state.listeners.has(listener) && callApp(listener, reset));
    }
    return () => {
      state.listeners.delete(listener);
      if (state.listeners.size === 0) {
        clearTimeout(state.retry?.timer);
        state.retry = undefined;
        state.members = undefined;
        state.stale = true;
      }
      this.#release(id);
    };
  }

  /* ---- the socket's and the rooms' life ---- */

  /** The socket ended: reads on the wire died with it (they go again once the connection is back in the room); every list may miss events. */
  onSocketEnd() {
    this.#socketEnds++;
    for (const [, state] of this.#each()) {
      for (const read of state.reads) read.sent = false;
      state.stale = true;
      clearTimeout(state.retry?.timer);
      if (state.retry) state.retry.timer = undefined;
    }
  }

  /** No socket any more, nor another coming: every read waiting fails. */
  onClosedForGood() {
    for (const [id, state] of this.#each()) {
      for (const read of state.reads.splice(0)) {
        clearTimeout(read.timer);
        read.reject(new HubError("closed", `${read.action} ${id}: the connection was closed`, { room: id }));
      }
      this.#release(id);
    }
  }

  /** A new socket: the token's room is in it from `$connect`. */
  onOpen() {
    this.#opened = true;
    const token = this.#rooms.tokenRoom;
    if (token !== undefined) this.onInRoom(token);
  }

  /**
   * The connection is in the room now (hub.subscribed; the token's room at open): what waited
   * goes, and a list that may have missed events is read again.
   * @param {string} id
   */
  onInRoom(id) {
    const state = this.#rooms.peek(id)?.presence;
    if (!state || !this.#inRoom(id)) return;
    if (state.stale && state.listeners.size > 0 && !state.listing) this.#refresh(id);
    this.#pump(id);
  }

  /** The app left the room: its events stop, so its list goes stale. @param {string} id */
  onLeave(id) {
    const state = this.#rooms.peek(id)?.presence;
    if (state) state.stale = true;
  }

  /* ---- the hub's frames ---- */

  /**
   * A member event of a room (origin "hub", no seq).
   * @param {string} id
   * @param {string} type
   * @param {unknown} data
   */
  onEvent(id, type, data) {
    const state = this.#rooms.peek(id)?.presence;
    if (!state || !isObject(data)) return;
    const changes = eventChanges(type, data);
    if (!changes) return;
    const diff = type === "hub.presence.diff";
    state.big = diff;
    if (diff && isCount(data.count)) state.count = data.count;
    if (state.listing) return void state.listing.held.push(...changes);
    const via = diff ? "diff" : "event";
    for (const change of changes) this.#apply(id, state, change, via, !diff);
  }

  /** @param {PresencePage} page */
  onPresence(page) {
    this.#answer(page.room_id, "presence", page);
  }

  /** @param {OccupancyInfo & { room_id: string }} info */
  onOccupancy(info) {
    this.#answer(info.room_id, "occupancy", info);
  }

  /**
   * A `hub.error` naming a room whose read is on the wire, with a code a read can get: the
   * read fails. True when only a read could get it (the rooms need not hear it).
   * @param {HubErrorData} error
   */
  onError(error) {
    const id = typeof error.room_id === "string" ? error.room_id : undefined;
    const state = id === undefined ? undefined : this.#rooms.peek(id)?.presence;
    const read = state?.reads[0];
    if (!state || !read?.sent || !answers(read.action, error.code)) return false;
    this.#settle(/** @type {string} */ (id), state, undefined, new HubError(String(error.code), `${read.action} ${id}: ${error.code}: ${error.message}`, { room: id, hubError: error }));
    return !answers("subscribe", error.code) && !answers("unsubscribe", error.code) && !answers("resume", error.code);
  }

  /* ---- reads ---- */

  /** @returns {[string, RoomPresence][]} */
  #each() {
    return this.#rooms.all().flatMap((room) => (room.presence ? [/** @type {[string, RoomPresence]} */ ([room.id, room.presence])] : []));
  }

  /**
   * One read, queued behind the room's read on the wire; sent once the connection is in the room.
   * @param {string} id
   * @param {"presence" | "occupancy"} action
   * @param {{ after?: string, limit?: number }} request
   * @returns {Promise<any>}
   */
  #ask(id, action, request) {
    const room = this.#rooms.peek(id);
    if (this.#connection.ended) return Promise.reject(new HubError("closed", `${action} ${id}: the connection is closed`, { room: id }));
    // A room neither joined nor the token's would wait for ever: refused as the hub would (once
    // the token is known: before the first open, getToken may still name the room).
    if (room?.left || (this.#opened && !room?.wanted && id !== this.#rooms.tokenRoom)) return Promise.reject(new HubError("not_subscribed", `${action} ${id}: join the room first`, { room: id }));
    const state = this.#state(id);
    return new Promise((resolve, reject) => {
      /** @type {PresenceRead} */
      const read = {
        action,
        ...request,
        sent: false,
        resolve,
        reject,
        timer: setTimeout(() => this.#settle(id, state, undefined, new HubError("timeout", `${action} ${id}: no answer from the hub in ${this.#timeoutMs} ms`, { room: id }), read), this.#timeoutMs),
      };
      state.reads.push(read);
      this.#pump(id);
    });
  }

  /** Sends the room's first read if none is on the wire and the connection is in the room. @param {string} id */
  #pump(id) {
    const read = this.#rooms.peek(id)?.presence?.reads[0];
    if (!read || read.sent || !this.#inRoom(id)) return;
    /** @type {Record<string, unknown>} */
    const request = { action: read.action, room_id: id };
    if (read.after !== undefined) request.after = read.after;
    if (read.limit !== undefined) request.limit = read.limit;
    read.sent = this.#connection.sendNow(request);
  }

  /**
   * @param {string} id
   * @param {"presence" | "occupancy"} action
   * @param {unknown} data
   */
  #answer(id, action, data) {
    const state = this.#rooms.peek(id)?.presence;
    const read = state?.reads[0];
    // An answer no read waits for (one that timed out, then ran): nothing to do with it.
    if (!state || !read?.sent || read.action !== action) return;
    this.#settle(id, state, data);
  }

  /**
   * Ends a read (the one on the wire, or `only` when given) and sends the next.
   * @param {string} id
   * @param {RoomPresence} state
   * @param {unknown} data
   * @param {Error} [failure]
   * @param {PresenceRead} [only]
   */
  #settle(id, state, data, failure, only) {
    const read = only ?? state.reads[0];
    const at = read ? state.reads.indexOf(read) : -1;
    if (!read || at < 0) return;
    state.reads.splice(at, 1);
    clearTimeout(read.timer);
    if (failure) read.reject(failure);
    else read.resolve(data);
    this.#pump(id);
  }

  /**
   * Reads the room's list: every page (`wholeList`), or, for a refresh, only while the room is
   * within eventMembersLimit (a bigger one stops after the first page: its count). One read at a
   * time per room: a second caller gets the running one's result. Listeners hear the outcome.
   * @param {string} id
   * @param {{ limit?: number, wholeList: boolean }} how
   * @returns {Promise<ListResult>}
   */
  #list(id, how) {
    const state = this.#state(id);
    if (state.listing && how.wholeList) {
      // A refresh that may stop short is not enough for presence(): read after it.
      return state.listing.promise.then(() => this.#list(id, how));
    }
    if (state.listing) return state.listing.promise;
    /** @type {EventChange[]} */
    const held = [];
    const socketEnds = this.#socketEnds;
    const run = async () => {
      /** @type {Map<string, Member>} */
      const found = new Map();
      /** @type {string | undefined} */
      let after;
      do {
        /** @type {PresencePage} */
        const page = await this.#ask(id, "presence", { after, limit: how.limit });
        if (!how.wholeList && page.count > this.#limit) return { room: id, count: page.count };
        for (const member of page.members) found.set(member.user_id, member);
        after = page.next ?? undefined;
      } while (after !== undefined);
      // A user's last event is their state, whichever page saw them.
      for (const change of held) {
        if ("joined" in change) found.set(change.joined, found.get(change.joined) ?? { user_id: change.joined, connections: 1, since: Date.now() });
        else found.delete(change.left);
      }
      // The list's own size: the hub's counter is written after a member's item, so a page read
      // in between may list a member the counter does not count yet.
      return { room: id, members: [...found.values()], count: found.size };
    };
    const promise = run().then(
      (info) => {
        state.listing = undefined;
        this.#learn(id, state, info);
        // Read across a reconnect: its first pages may have missed what the outage's events said.
        if (socketEnds !== this.#socketEnds) {
          state.stale = true;
          this.onInRoom(id);
        }
        this.#release(id);
        return info;
      },
      (err) => {
        state.listing = undefined;
        this.#release(id);
        throw err;
      },
    );
    state.listing = { promise, held };
    return promise;
  }

  /**
   * What a list read found becomes what the client knows; listeners hear the differences (or a
   * reset when they knew no list).
   * @param {string} id
   * @param {RoomPresence} state
   * @param {{ count: number, members?: Member[] }} info
   */
  #learn(id, state, info) {
    state.count = info.count;
    state.stale = false;
    if (state.retry) state.retry.attempts = 0;
    if (!info.members) {
      state.big = true;
      state.members = undefined;
      return this.#tell(state, this.#reset(id, state));
    }
    state.big = info.count > this.#limit;
    const known = state.members;
    state.members = new Map(info.members.map((member) => [member.user_id, member]));
    if (!known) return this.#tell(state, this.#reset(id, state));
    for (const user of known.keys()) if (!state.members.has(user)) this.#tell(state, { type: "left", room: id, user_id: user, via: "refresh" });
    for (const user of state.members.keys()) if (!known.has(user)) this.#tell(state, { type: "joined", room: id, user_id: user, via: "refresh" });
  }

  /**
   * The read after a reconnect (or for the first listener): the list for a room within
   * eventMembersLimit, only the count for a bigger one. A failure is tried again after a backoff.
   * @param {string} id
   */
  #refresh(id) {
    const state = this.#state(id);
    const retry = () => {
      if (state.listeners.size === 0) return;
      const attempt = state.retry ?? { attempts: 0 };
      state.retry = attempt;
      if (attempt.attempts >= REFRESH_ATTEMPTS) return; // the next reconnect (or leave and join) tries again
      attempt.timer = setTimeout(() => {
        attempt.timer = undefined;
        if (this.#inRoom(id)) this.#refresh(id);
      }, backoffDelay(attempt.attempts++, this.#backoff));
    };
    if (state.big || (state.count !== undefined && state.count > this.#limit)) {
      // Not trusted either: the diffs of the absence are lost. Only the count is read.
      state.members = undefined;
      this.occupancy(id).then(
        () => {
          state.stale = false;
          this.#tell(state, this.#reset(id, state));
        },
        retry,
      );
      return;
    }
    this.#list(id, { wholeList: false }).catch(retry);
  }

  /**
   * @param {string} id
   * @param {RoomPresence} state
   * @returns {MemberChange}
   */
  #reset(id, state) {
    return { type: "reset", room: id, count: state.count ?? 0, ...(state.connections !== undefined ? { connections: state.connections } : {}), ...(state.members ? { members: [...state.members.values()] } : {}) };
  }

  /**
   * One change from the hub's events: with a known list, only what changes it (a join of a
   * member already listed is not news); without one, as it came.
   * @param {string} id
   * @param {RoomPresence} state
   * @param {EventChange} change
   * @param {"event" | "diff"} via
   * @param {boolean} counts a single event moves the count (a diff carries it)
   */
  #apply(id, state, change, via, counts) {
    const members = state.members;
    if ("joined" in change) {
      if (members?.has(change.joined)) return;
      members?.set(change.joined, { user_id: change.joined, connections: 1, since: Date.now() });
      if (counts && state.count !== undefined) state.count++;
      return this.#tell(state, { type: "joined", room: id, user_id: change.joined, via });
    }
    if (members && !members.delete(change.left)) return;
    if (counts && state.count !== undefined) state.count = Math.max(0, state.count - 1);
    this.#tell(state, { type: "left", room: id, user_id: change.left, ...(change.reason !== undefined ? { reason: change.reason } : {}), via });
  }

  /**
   * @param {RoomPresence} state
   * @param {MemberChange} change
   */
  #tell(state, change) {
    for (const listener of [...state.listeners]) callApp(listener, change);
  }
}
