/**
 * Browser client for notification-hub: the one declaration of its types. The modules
 * (index.mjs, connection.mjs, rooms.mjs, streams.mjs, codes.mjs) refer to these in their JSDoc,
 * and `npm test` type-checks them against this file (client/tsconfig.json).
 */
export interface HubFrame {
  id?: string;
  room_id?: string | null;
  user_id?: string | null;
  /**
   * "app" for what an app backend published, "client" for what a room member sent, "hub" for
   * the hub's own room events (`hub.member.joined`, `hub.member.left`, `hub.presence.diff`). Set by the hub.
   */
  origin?: "app" | "client" | "hub";
  /** Position in the room's stream: 1, 2, 3… (absent when the hub keeps no history). */
  seq?: number;
  data?: any;
}
/**
 * Frames of a room that the client will never hand out: refetch what you show. After onGap the
 * client hands out what it holds past the gap and goes on from `lastSeq`.
 */
export interface GapInfo {
  roomId: string;
  /** The last seq the client had. */
  after: number;
  /** The stream's newest seq as the hub said it (or, when the client gave up, the newest seq it holds). */
  lastSeq: number;
  /**
   * `retention_exceeded`: the hub no longer keeps them (`hub.resumed` `recovered: false`);
   * `not_replayed`: the hub answered that it sent them and they never came;
   * `resume_failed`: RESUME_ATTEMPTS resumes in a row failed or went unanswered (or the hub kept refusing `resume_throttled`);
   * `buffer_full`: more than `maxBufferedFrames` frames waited behind the gap;
   * a refusal that cannot pass (`not_subscribed`, `streams_off`, `invalid_resume`): its code.
   */
  reason: "retention_exceeded" | "not_replayed" | "resume_failed" | "buffer_full" | (string & {});
}
/**
 * A frame the client dropped: `not_json`, `not_an_object` (JSON such as `null`, `42`, `"x"`,
 * `[]`), `invalid_seq` (a `seq` that is not a whole number from 1 to 2^53 − 1, or one without a
 * `room_id`), `invalid_control` (a `hub.resumed`, `hub.subscribed` or `hub.error` whose data is
 * not what the hub sends), `beyond_head` (a frame of `roomId` with a seq past the head the hub
 * reported in answer to a resume sent after the frame came: not in the stream). `frame` is the
 * parsed value (for `not_json`, the text).
 */
export interface InvalidFrame {
  reason: "not_json" | "not_an_object" | "invalid_seq" | "invalid_control" | "beyond_head";
  frame: unknown;
  roomId: string | undefined;
}
export interface SubscribeOptions {
  /** Also deliver frames room members sent (`origin: "client"`). Default false: only the app's notifications. */
  clientFrames?: boolean;
  /** Only frames of this room (for a control frame such as `hub.subscribed`: the room its data names). Default: every room. */
  room?: string;
  /** Only frames of this user's own channel (`user:{id}`, what the app sent with publishToUser). */
  userChannel?: boolean;
}
/** The hub's answer to a send(): `hub.sent`'s data. */
export interface SentInfo {
  /** The client's name for the send (it numbers them). */
  ref: string;
  room_id: string;
  /** The notification's id, as every member got it. */
  id: string;
  /** Its seq in the room's stream (absent when the hub keeps no history). */
  seq?: number;
}
/** The hub's answer to a join: the stream's head when the subscription was made. */
export interface SubscribedInfo {
  room_id: string;
  last_seq: number;
}
export interface JoinOptions {
  /** Called, besides ConnectOptions.onGap, when this room's missed frames are gone. */
  onGap?: (gap: GapInfo) => void;
}
/** The codes a `hub.error` frame can carry (the hub's table, core/errorCodes.ts). */
export type HubErrorCode =
  | "invalid_json"
  | "unknown_action"
  | "unknown_connection"
  | "forbidden"
  | "invalid_subscribe"
  | "too_many_rooms"
  | "subscribe_failed"
  | "unsubscribe_failed"
  | "invalid_resume"
  | "not_subscribed"
  | "streams_off"
  | "resume_failed"
  | "resume_throttled"
  | "invalid_body"
  | "missing_data"
  | "invalid_message"
  | "invalid_data"
  | "message_too_large"
  | "delivery_failed"
  | "delivery_incomplete"
  | "invalid_presence"
  | "presence_failed";
/** The codes the client gives a join() or send() itself: the page or the socket gave up before the hub answered. */
export type ClientErrorCode = "closed" | "left" | "timeout";
/** The requests a `hub.error` can answer. */
export type HubRoute = "subscribe" | "unsubscribe" | "resume" | "sendMessage" | "presence" | "occupancy" | "$default";
/**
 * Per code: `temporary` (the same request may pass if sent again: a re-join nobody awaits is
 * retried), `partWay` (the request may have changed something before it failed), `routes`
 * (the requests that can get it).
 */
export declare const HUB_ERROR_CODES: { readonly [code in HubErrorCode]: { readonly temporary: boolean; readonly partWay: boolean; readonly routes: readonly HubRoute[] } };
export declare const CLIENT_ERROR_CODES: { readonly [code in ClientErrorCode]: { readonly temporary: boolean } };
/** A `hub.error` frame's data. `temporary` is sent by hubs since this client; older ones leave it out. */
export interface HubErrorData {
  code: string;
  message: string;
  temporary?: boolean;
  room_id?: string;
  /** `resume_throttled`: milliseconds until the connection's replay budget has room again. */
  retry_after_ms?: number;
  /** The ref of the send() it refuses. */
  ref?: string;
}
/**
 * How join() rejects (and the hub's refusal of a leave() that failed part way, retried inside):
 * `code` is the hub's (`forbidden`, `too_many_rooms`, `invalid_subscribe`, ...), or the client's
 * own: `closed` / `left` (the page gave up first: close(), or leave() before the hub answered) /
 * `timeout`. `closed` also when the socket ends with `reconnect: false`, and for every join()
 * after that. `temporary`: the same request may pass if sent again (the hub's frame says so, or
 * the table for an older hub; `timeout` is temporary, `closed` and `left` are not). `room` (and
 * `roomId`, its name in earlier versions) is the room the join was for. `hubError` is the
 * `hub.error` data when the hub refused.
 */
export declare class HubError extends Error {
  constructor(code: string, message: string, details?: { room?: string; hubError?: HubErrorData });
  readonly name: "HubError";
  code: HubErrorCode | ClientErrorCode | (string & {});
  temporary: boolean;
  room: string | undefined;
  roomId: string | undefined;
  hubError?: HubErrorData;
}
/**
 * What join() rejects with: a HubError. A room id the hub could not read (empty, over 256
 * characters, control characters, a lone surrogate) is refused at once, without a request: a
 * TypeError with code `invalid_subscribe` and `roomId`.
 */
export type JoinError = HubError;
export type Subscriber = (data: any, frame: HubFrame) => void;
/** A member of a room (presence is per user: tabs and devices merge). */
export interface Member {
  user_id: string;
  /** The user's connections in the room (a member the client learnt of from an event: 1). */
  connections: number;
  /** Epoch ms of the user's first connection in the room (from an event: when the client heard it). */
  since: number;
}
/** presence()'s answer: every member (all pages) and how many they are. */
export interface PresenceInfo {
  room: string;
  members: Member[];
  /** `members.length`: the list's own count (the hub's `count` may trail a join by a moment: it is written after the member). */
  count: number;
}
/** occupancy()'s answer: one read of the room's counter, whatever its size. */
export interface OccupancyInfo {
  room: string;
  connections: number;
  users: number;
}
/** Why a member left: its last connection closed, unsubscribed, was revoked, or was found dead (no `$disconnect`). */
export type LeaveReason = "closed" | "unsubscribed" | "revoked" | "timed_out";
/**
 * What onMember listeners get, per room, in order:
 * - `reset` first (and after each reconnect that could not tell the differences): the room as
 *   the client now knows it. `members` when the room is within eventMembersLimit; absent for a
 *   bigger room (only its `count` was read; call presence() for the list). Replace what you show.
 * - `joined` / `left`: one per change, from the hub's events (`via: "event"`), its batched
 *   diffs (`via: "diff"`), or a read after a reconnect that found what the lost events would
 *   have said (`via: "refresh"`, no `reason`).
 */
export type MemberChange =
  | { type: "joined"; room: string; user_id: string; via: "event" | "diff" | "refresh" }
  | { type: "left"; room: string; user_id: string; reason?: LeaveReason | (string & {}); via: "event" | "diff" | "refresh" }
  | { type: "reset"; room: string; count: number; connections?: number; members?: Member[] };
export type MemberListener = (change: MemberChange) => void;
export type ConnectionState = "connecting" | "open" | "closed";
/**
 * Why the state changed: `connect` (connect() began: the first `connecting`, from `closed`),
 * `open` (the socket opened), `socket closed` (the socket ended or never opened: `connecting`
 * again, or `closed` with `reconnect: false`), `connect failed` (getToken or the WebSocket
 * constructor threw: `closed` with `reconnect: false`; otherwise it stays `connecting`),
 * `client closed` (close()).
 */
export type StateChangeReason = "connect" | "open" | "socket closed" | "connect failed" | "client closed";
export interface StateChange {
  /** The state before this change (never equal to the new one). */
  previous: ConnectionState;
  reason: StateChangeReason;
}
export interface ConnectOptions {
  /** The hub's WebSocket URL, `wss://host/{stage}`. */
  url: string;
  /** A connect token; with getToken instead, a fresh one is fetched after a refused handshake. */
  token?: string;
  getToken?: () => string | Promise<string>;
  /**
   * How the token travels. "protocol" (default): in `Sec-WebSocket-Protocol`, as
   * `new WebSocket(url, ["notification-hub", token])`, so it never appears in a URL.
   * "query": `?token=`, as the seed's clients (a hub older than the subprotocol, or a proxy that drops the header).
   */
  tokenIn?: "protocol" | "query";
  /** Reconnect with jittered exponential backoff. Default true. */
  reconnect?: boolean;
  /**
   * Milliseconds between keep-alives (`{"action":"ping"}`, answered by API Gateway itself: no
   * Lambda runs, nothing comes back). Default 8 minutes (480000): API Gateway closes a connection
   * after 10 idle minutes, and a hidden tab's timer may fire up to a minute late (Chrome's
   * intensive throttling) and a ping on a poor link arrive ~30 s late; 8 minutes leaves 30 s to
   * spare. A longer interval risks the idle close in background tabs; a shorter one costs a
   * billed message per ping (docs/protocol.md "Keep-alive").
   */
  keepAliveMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** WebSocket implementation (e.g. the `ws` package outside browsers). Default globalThis.WebSocket. */
  WebSocket?: typeof WebSocket;
  /**
   * Called once per change of state, never twice with the same state: a reconnect is one
   * `connecting` (reason `socket closed`) then one `open`, however many attempts it takes.
   */
  onStateChange?: (state: ConnectionState, change: StateChange) => void;
  /**
   * The room this connection's token names: the client asks where its stream stands on the
   * first connect, so even frames missed before the first one arrived are resumed. Default: the
   * token's `room_id` claim (none for a token with `rooms`).
   */
  room?: string;
  /** Keep the last seq per room in sessionStorage, so a page reload resumes too. Default false. */
  persistSeq?: boolean;
  /** Called when frames were missed and will not be handed out (GapInfo.reason says why). */
  onGap?: (gap: GapInfo) => void;
  /** Called for each frame the client drops as unusable; nothing else happens to the connection. */
  onInvalidFrame?: (invalid: InvalidFrame) => void;
  /** How long a seq gap may stay open before the client asks for a resume. Default 300 ms. */
  gapWaitMs?: number;
  /**
   * How long a resume may go unanswered before it counts as failed and is sent again (with the
   * reconnect backoff; the gap is given up after 6 failures in a row). Default 10 s.
   */
  resumeTimeoutMs?: number;
  /**
   * Frames one room may hold behind a gap while it is resumed. Past it the client gives the gap
   * up (onGap, `buffer_full`) and hands out what it holds. Default 5,000.
   */
  maxBufferedFrames?: number;
  /**
   * How long a join or leave waits for the hub's answer. A join then rejects with code `timeout`
   * (and is undone, in case the hub made it, but for the token's room and any `user:` channel,
   * which `$connect` puts the connection in: no failed join leaves those); a leave resolves (the room is left on this side). Default 10 s.
   * A request given up on may still run later: its late answer is taken as news of the hub's
   * membership, and the client sends what makes the hub match the app's last join()/leave() again.
   */
  joinTimeoutMs?: number;
  /** How long a send(), presence() or occupancy() waits for the hub's answer before it rejects with code `timeout`. Default 10 s. */
  sendTimeoutMs?: number;
  /**
   * The hub's `presence.eventMembersLimit` (default 100, the hub's default). A room with more
   * members gets its changes as batched diffs, and after a reconnect only its count is read
   * (occupancy) instead of its list (docs/protocol.md#presence).
   */
  eventMembersLimit?: number;
  /**
   * A joined room the client joins again after a reconnect (nobody awaits that join) was refused
   * for good (`forbidden`: the token no longer grants it; `too_many_rooms`; `invalid_subscribe`) and dropped from
   * `rooms`. A passing failure (`subscribe_failed`, `unknown_connection`, no answer) is retried
   * with the reconnect backoff (minBackoffMs doubling up to maxBackoffMs) instead, without end.
   */
  onRoomLost?: (room: string, code: string) => void;
}
export interface HubConnection {
  subscribe(type: string, callback: Subscriber, options?: SubscribeOptions): () => void;
  /**
   * Subscribes this connection to a room its token grants; resolves with `hub.subscribed`'s data,
   * rejects with a JoinError. Joined rooms are joined again, and resumed, after every reconnect.
   *
   * join() and leave() may be called in any order without waiting: the connection ends in the
   * rooms of the last call for each room. The client keeps one request per room on the wire
   * (the hub runs requests in no guaranteed order), so a join(), leave(), join() before any
   * answer sends one subscribe; different rooms' joins go together, up to 10 at a time. So at
   * the maxRoomsPerConnection cap, leave(a) then join(b) without awaiting may be refused
   * `too_many_rooms` (b's subscribe may run first): at the cap, await leave() before join().
   */
  join(room: string, options?: JoinOptions): Promise<SubscribedInfo>;
  /**
   * Unsubscribes from a room; its frames still in flight are dropped. Resolves once the hub
   * confirms (at once when the socket is down or the hub is known not to have the room; also when a join()
   * of the room overtakes it, or after joinTimeoutMs without an answer; an `unsubscribe_failed` is
   * retried with the reconnect backoff until the hub lets go). With the socket down the
   * next connection starts without the room, except the token's room, which `$connect` puts every
   * connection in: the next connection sends its unsubscribe. Rejects only for a room id it cannot
   * send (TypeError) or a user channel (`user:...`, code `invalid_subscribe`, without a request).
   */
  leave(room: string): Promise<void>;
  /** Rooms joined with join() and not left (not the token's room nor the user channel). */
  readonly rooms: string[];
  /**
   * sendMessage to this connection's room, or with `{ room }` to that one of its rooms. Resolves
   * with the hub's `hub.sent` (the notification's id and seq) once it was stored and sent to the
   * room; rejects with a HubError: the hub's refusal (`forbidden`, `message_too_large`,
   * `delivery_failed`, ...), `timeout` (no answer in sendTimeoutMs: it may still have been sent),
   * or `closed`. Sent while the socket is down, it goes when it opens. Not awaiting is fine: a
   * refusal nobody awaits is not an unhandled rejection.
   */
  send(data: unknown, options?: { room?: string }): Promise<SentInfo>;
  close(): void;
  readonly state: ConnectionState;
  /** The last seq handed to subscribers for a room (undefined before any). */
  lastSeq(roomId: string): number | undefined;
  /**
   * Every member of a room the connection is in (the token's room, or one joined: a join in
   * progress is waited for), following the hub's `next` cursor page by page (`limit` members a
   * page, 1 to 1,000, default 1,000). Rejects with a HubError: `not_subscribed` (a room neither
   * joined nor the token's, refused at once once the connection has opened), `presence_failed` (temporary), `timeout` (sendTimeoutMs, counted
   * per page), `closed`; the hub without presence refuses `unknown_action`, which surfaces as `timeout`.
   */
  presence(room: string, options?: { limit?: number }): Promise<PresenceInfo>;
  /** A room's connections and users: one read, whatever the room's size. Rejects as presence() does. */
  occupancy(room: string): Promise<OccupancyInfo>;
  /**
   * Calls `listener` with the room's membership changes (MemberChange): a `reset` with the
   * members once the connection is in the room, then each join and leave. After every
   * reconnect the client reads the room again instead of trusting what it had: the list
   * (presence) for a room within eventMembersLimit, whose differences come as joined/left with
   * `via: "refresh"`; only the count (occupancy) for a bigger one, told as a `reset` without
   * members. Returns the function that stops it.
   */
  onMember(room: string, listener: MemberListener): () => void;
}
export declare function connect(options: ConnectOptions): HubConnection;
