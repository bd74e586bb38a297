/**
 * Wire formats: what apps publish to the queue, what clients send, what the hub pushes.
 * Validation lives here once; the Lambdas, the SDK and the local hub all call it.
 */
import * as crypto from "crypto";
// rooms.ts uses fail/normalizeId from here: a cycle, safe because both sides call each other only inside functions.
import { normalizeRoomId, USER_CHANNEL_PREFIX, userChannel } from "./rooms";
import { isTemporary, type HubErrorCode } from "./errorCodes";

/** API Gateway's WebSocket message limit; a bigger frame would never reach a client. */
export const MAX_MESSAGE_BYTES = 128 * 1024;
/** SQS's limit for one message body; chunks are cut to fit it, and the parser reads no more. */
export const MAX_QUEUE_BODY_BYTES = 256 * 1024;
/** Room and user ids end up in DynamoDB keys and logs: keep them short and printable. */
export const MAX_ID_LENGTH = 256;

/**
 * Who a frame comes from: an app backend (through the queue) or a room member (the
 * `sendMessage` route). Set by the hub only, so a member can never pass for the app.
 */
export type FrameOrigin = "app" | "client";

/** A frame pushed to a browser. The seed's client reads `.data.type` and `.data.data`. */
export interface HubFrame {
  id: string;
  room_id: string;
  user_id: string | null;
  origin: FrameOrigin;
  /** Position in the room's stream (docs/protocol.md#room-streams); absent when streams are off. */
  seq?: number;
  data: unknown;
}

/** A frame the hub sends one client about its own requests (`hub.error`, `hub.resumed`): same envelope, no room, no origin. */
export interface ControlFrame<T extends string = string, D = unknown> {
  id: string;
  room_id: null;
  user_id: null;
  data: { type: T; data: D };
}

/** `temporary`: the same request may pass if sent again (core/errorCodes.ts). */
/**
 * What a refusal may say besides its code: the room the request was about, and for a refusal
 * that passes with time (`resume_throttled`), how long to wait before sending it again.
 */
export interface ErrorAbout {
  room_id?: string;
  retry_after_ms?: number;
  /** The ref of the sendMessage it refuses. */
  ref?: string;
}
export type ErrorFrame = ControlFrame<"hub.error", ErrorAbout & { code: HubErrorCode; message: string; temporary: boolean }>;

/** The answer to `resume` (docs/protocol.md#control-frames), sent after the replayed frames. */
export interface ResumedInfo {
  room_id: string;
  after: number;
  last_seq: number;
  recovered: boolean;
  reason?: "retention_exceeded" | "too_many";
  /**
   * Present (true) when a seq between `last_seq` and the stream's newest is still being written
   * or waits for its tombstone: frames beyond `last_seq` exist, so ask again later.
   */
  in_flight?: true;
  /** Presence on: how often the client should ping (core/presence.ts keepAliveOf), as in `hub.subscribed`. */
  keep_alive_ms?: number;
}

/**
 * What an app sends to the queue: the seed article's body for a room, or `to_user_id`
 * instead of `room_id` for a user's channel (docs/protocol.md#publishing-from-an-app-backend). `user_id` is the sender.
 */
export type PublishBody =
  | { room_id: string | number; to_user_id?: undefined; user_id?: string | number | null; data: unknown }
  | { to_user_id: string | number; room_id?: undefined; user_id?: string | number | null; data: unknown };

/** A notification ready for fan-out, whatever its source. */
export interface Notification {
  id: string;
  roomId: string;
  userId: string | null;
  origin: FrameOrigin;
  data: unknown;
}

/** A value, or why not: `code` is a wire code (those a `hub.error` may carry are in core/errorCodes.ts). */
export type Parsed<T, C extends string = string> = { ok: true; value: T } | { ok: false; code: C; reason: string };

export const fail = <C extends string>(code: C, reason: string): { ok: false; code: C; reason: string } => ({ ok: false, code, reason });

export function byteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * The characters SQS refuses in a message body (InvalidMessageContents): it takes #x9 | #xA |
 * #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF, counted in code points, so
 * every emoji passes and U+FFFE, U+FFFF, lone surrogates and control characters do not.
 */
export const SQS_REFUSED_CHARACTER = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const SQS_REFUSED_CHARACTERS = new RegExp(SQS_REFUSED_CHARACTER.source, "gu");

/**
 * JSON text as a body SQS takes: each character SQS refuses written as its `\uXXXX` escape.
 * The JSON means the same (outside strings JSON.stringify writes only ASCII, and inside a
 * string the escape is the character), so deliver parses back exactly what was published.
 * JSON.stringify already escapes control characters and lone surrogates; this catches U+FFFE
 * and U+FFFF, which it writes as they are. Idempotent.
 */
export function queueSafeJson(json: string): string {
  return json.replace(SQS_REFUSED_CHARACTERS, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** Why SQS would refuse this body (a character or its size), or undefined when it takes it. */
export function queueBodyRefusal(body: string): string | undefined {
  const refused = SQS_REFUSED_CHARACTER.exec(body);
  if (refused) return `the body holds U+${refused[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")} at ${refused.index}, which SQS refuses`;
  const size = byteLength(body);
  if (size > MAX_QUEUE_BODY_BYTES) return `the body is ${size} bytes; queue bodies are limited to ${MAX_QUEUE_BODY_BYTES}`;
  return undefined;
}


/**
 * Room ids may be numbers, as in the seed; keys are strings, so "42" and 42 are one room.
 * The one rule for ids, used by the SDK, the authorizer (token claims) and the queue parser.
 */
export function normalizeId(value: unknown, field: string): Parsed<string> {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return fail("invalid_" + field, `${field} must be a finite number or a string`);
    return { ok: true, value: String(value) };
  }
  if (typeof value !== "string") return fail("invalid_" + field, `${field} must be a string or a number`);
  if (value.length === 0) return fail("invalid_" + field, `${field} must not be empty`);
  if (value.length > MAX_ID_LENGTH) return fail("invalid_" + field, `${field} is longer than ${MAX_ID_LENGTH} characters`);
  // Control characters in ids would corrupt logs and make look-alike rooms.
  if (/[\u0000-\u001f\u007f]/.test(value)) return fail("invalid_" + field, `${field} contains control characters`);
  // A lone UTF-16 surrogate has no UTF-8 form: DynamoDB, logs and JWTs all turn every one
  // into U+FFFD, so "\uD800" and "\uDBFF" would be one room and one token secret.
  if (/[\uD800-\uDFFF]/u.test(value)) return fail("invalid_" + field, `${field} is not well-formed Unicode (lone surrogate)`);
  return { ok: true, value };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The frame a notification becomes; its size is what API Gateway enforces. */
export function serializeFrame(frame: HubFrame | ControlFrame): string {
  return JSON.stringify(frame);
}

/** The frame of a notification; with `seq` when it was stored in its room's stream. */
export function frameFor(notification: Notification, seq?: number): HubFrame {
  const { id, roomId, userId, origin, data } = notification;
  return seq === undefined ? { id, room_id: roomId, user_id: userId, origin, data } : { id, room_id: roomId, user_id: userId, origin, seq, data };
}

/**
 * Serializes a frame without ever throwing: data nested deeply enough overflows
 * JSON.stringify's stack (10 KB of `[` is enough), and such a record must fail alone.
 */
export function trySerializeFrame(frame: HubFrame): Parsed<string, "invalid_data"> {
  try {
    const text = serializeFrame(frame);
    if (typeof text !== "string") return fail("invalid_data", "data is not JSON-serializable");
    return { ok: true, value: text };
  } catch (err) {
    const overflow = err instanceof RangeError;
    return fail("invalid_data", overflow ? "data is nested too deeply to serialize" : "data is not JSON-serializable");
  }
}

/** What `"seq":N,` adds to a frame at most. */
const SEQ_FIELD_BYTES = byteLength(`"seq":${Number.MAX_SAFE_INTEGER},`);

/** Checks that a notification's frame serializes and fits in one WebSocket message. */
export function checkFrameSize(notification: Notification): Parsed<string, "invalid_data" | "message_too_large"> {
  const serialized = trySerializeFrame(frameFor(notification));
  if (!serialized.ok) return serialized;
  const text = serialized.value;
  // Room for the `seq` a stored frame gains (core/streams.ts), so what passes here delivers.
  const size = byteLength(text) + SEQ_FIELD_BYTES;
  if (size > MAX_MESSAGE_BYTES) {
    return fail("message_too_large", `the notification is ${size} bytes as a frame; the limit is ${MAX_MESSAGE_BYTES}`);
  }
  return { ok: true, value: text };
}

/** A queue body as a JSON object, within SQS's size; chunks and publish bodies both start here. */
export function parseQueueJson(text: string): Parsed<Record<string, unknown>> {
  if (typeof text !== "string") return fail("invalid_body", "the body must be text");
  if (byteLength(text) > MAX_QUEUE_BODY_BYTES) {
    return fail("message_too_large", `the body is ${byteLength(text)} bytes; queue bodies are limited to ${MAX_QUEUE_BODY_BYTES}`);
  }
  return parseJsonObject(text, "the body", "invalid_body");
}

/**
 * Text a stranger sent (a queue body, a client frame), as a JSON object: `invalid_json` when it
 * is not JSON, `notObjectCode` when it is JSON but not an object. `what` names it in the reason.
 */
export function parseJsonObject<C extends string>(text: string, what: string, notObjectCode: C): Parsed<Record<string, unknown>, "invalid_json" | C> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail("invalid_json", `${what} is not JSON`);
  }
  if (!isPlainObject(parsed)) return fail(notObjectCode, `${what} must be a JSON object`);
  return { ok: true, value: parsed };
}

/** A user id as `to_user_id` names it: an id whose channel `user:{id}` is itself a valid room id. */
export function normalizeRecipient(value: unknown, field: string): Parsed<string> {
  const user = normalizeId(value, field);
  if (!user.ok) return user;
  if (userChannel(user.value).length > MAX_ID_LENGTH) {
    return fail("invalid_" + field, `${field} is longer than ${MAX_ID_LENGTH - USER_CHANNEL_PREFIX.length} characters (its channel "${USER_CHANNEL_PREFIX}{id}" must fit in ${MAX_ID_LENGTH})`);
  }
  return user;
}

/**
 * The room a publish goes to: exactly one of `room_id` (any room but a user channel) or
 * `to_user_id` (that user's channel). `roomKey`/`userKey` name the fields as the caller's
 * input spells them (`room_id` on the queue, `roomId` in the SDK), so messages name the key.
 */
export function publishTarget(roomValue: unknown, userValue: unknown, roomKey: string, userKey: string): Parsed<string> {
  const hasRoom = roomValue !== undefined && roomValue !== null;
  const hasUser = userValue !== undefined && userValue !== null;
  if (hasRoom && hasUser) return fail("conflicting_target", `pass ${roomKey} or ${userKey}, not both`);
  if (hasUser) {
    const user = normalizeRecipient(userValue, userKey);
    return user.ok ? { ok: true, value: userChannel(user.value) } : user;
  }
  if (!hasRoom) return fail("missing_" + roomKey, `${roomKey} is required (or ${userKey} to publish to one user's channel)`);
  // normalizeRoomId refuses "user:…" and says to use to_user_id; name the caller's own key.
  const room = normalizeRoomId(roomValue, roomKey);
  return room.ok ? room : fail(room.code, room.reason.replace("to_user_id", userKey));
}

/** An idempotency key is 1 to this many characters, each visible ASCII (0x21–0x7E). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
/**
 * Publishes to one stream with one idempotency key within this many hours (or the stream's
 * retention, if longer) are one notification (core/streams.ts keeps the claim that long).
 */
export const IDEMPOTENCY_WINDOW_HOURS = 24;
/** Rooms one publish may name (`room_ids`, the SDK's `roomIds`). */
export const MAX_PUBLISH_ROOMS = 1_000;

const present = (value: unknown) => value !== undefined && value !== null;

/**
 * A key or publish id as the queue carries it: 1 to 128 visible ASCII characters. `code` is
 * the refusal's wire code; `field` names the caller's own key in the reason.
 */
function visibleAscii(value: unknown, field: string, code: string): Parsed<string> {
  const rule = `1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters (0x21–0x7E)`;
  if (typeof value !== "string") return fail(code, `${field} must be a string of ${rule}`);
  if (value.length === 0) return fail(code, `${field} must not be empty (${rule})`);
  if (value.length > MAX_IDEMPOTENCY_KEY_LENGTH) return fail(code, `${field} is ${value.length} characters; the limit is ${MAX_IDEMPOTENCY_KEY_LENGTH} (${rule})`);
  const bad = /[^\x21-\x7e]/u.exec(value);
  if (bad) return fail(code, `${field} holds U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")} at ${bad.index}; it may hold only ${rule}`);
  return { ok: true, value };
}

/** Validates an idempotency key (`field`: `idempotency_key` on the queue, `idempotencyKey` in the SDK). */
export function checkIdempotencyKey(value: unknown, field: string): Parsed<string> {
  return visibleAscii(value, field, "invalid_idempotency_key");
}

/**
 * `room_ids` (the SDK's `roomIds`): 1 to MAX_PUBLISH_ROOMS room ids, each valid as `room_id`
 * is, none twice (42 and "42" are one room). Normalized, in the given order.
 */
export function checkRoomIds(value: unknown, field: string): Parsed<string[]> {
  const code = "invalid_room_ids";
  if (!Array.isArray(value)) return fail(code, `${field} must be an array of 1 to ${MAX_PUBLISH_ROOMS} room ids`);
  if (value.length === 0) return fail(code, `${field} must name at least 1 room (at most ${MAX_PUBLISH_ROOMS})`);
  if (value.length > MAX_PUBLISH_ROOMS) return fail(code, `${field} names ${value.length} rooms; the limit is ${MAX_PUBLISH_ROOMS}`);
  const seen = new Map<string, number>();
  const rooms: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const room = normalizeRoomId(value[i], `${field}[${i}]`);
    if (!room.ok) return fail(code, room.reason.replace("to_user_id", field === "roomIds" ? "toUserId" : "to_user_id"));
    const first = seen.get(room.value);
    if (first !== undefined) return fail(code, `${field}[${i}] repeats ${field}[${first}] (${JSON.stringify(room.value)}); each room may be named once`);
    seen.set(room.value, i);
    rooms.push(room.value);
  }
  return { ok: true, value: rooms };
}

/** A name-based id in UUID form (version 8, from SHA-256): the same inputs always give the same id. */
function derivedId(...parts: string[]): string {
  const hash = crypto.createHash("sha256").update(parts.join("\u001f")).digest();
  hash[6] = (hash[6] & 0x0f) | 0x80;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The id of the notification published to `streamId` (a room, or `user:{id}`) with this
 * idempotency key: every publish with that key to that stream gets it, so its claim in the
 * streams table (core/streams.ts) makes them one notification, and the SDK returns it.
 */
export function keyedMessageId(streamId: string, key: string): string {
  return derivedId("idempotency_key", streamId, key);
}

/** A multi-room publish's own id when it has an idempotency key (the SDK's `messageId`); its rooms' ids are keyedMessageId. */
export function keyedPublishId(key: string): string {
  return derivedId("idempotency_key", "", key);
}

/** The frame id of one room of a multi-room publish without a key: from the publish's id and the room. */
export function roomMessageId(publishId: string, roomId: string): string {
  return derivedId("room_ids", publishId, roomId);
}

/** The sender and data of a publish body, checked as every publish body's are. */
function parseSenderAndData(body: Record<string, unknown>): Parsed<{ userId: string | null; data: unknown }> {
  let userId: string | null = null;
  if (present(body.user_id)) {
    const user = normalizeId(body.user_id, "user_id");
    if (!user.ok) return user;
    userId = user.value;
  }
  if (!("data" in body) || body.data === undefined) return fail("missing_data", "data is required (any JSON value)");
  return { ok: true, value: { userId, data: body.data } };
}

/**
 * Validates a publish body (the seed's `{room_id, user_id, data}`, or `to_user_id` for a
 * user's channel). `messageId` becomes the frame id, so a redelivered SQS message keeps its
 * id: clients drop the duplicate and the room's stream stores it once. With
 * `idempotency_key`, the id is derived from the stream and the key instead (keyedMessageId).
 */
export function parsePublishBody(body: Record<string, unknown>, messageId: string): Parsed<Notification> {
  const room = publishTarget(body.room_id, body.to_user_id, "room_id", "to_user_id");
  if (!room.ok) return room;
  const sender = parseSenderAndData(body);
  if (!sender.ok) return sender;
  let id = messageId;
  if (present(body.idempotency_key)) {
    const key = checkIdempotencyKey(body.idempotency_key, "idempotency_key");
    if (!key.ok) return key;
    id = keyedMessageId(room.value, key.value);
  }
  const notification: Notification = { id, roomId: room.value, origin: "app", ...sender.value };
  const size = checkFrameSize(notification);
  if (!size.ok) return size;
  return { ok: true, value: notification };
}

/** A publish to several rooms (`room_ids`), checked whole. */
export interface MultiRoomPublish {
  /** The publish's id: `message_id`, else the SQS message id; derived from the key when there is one. */
  publishId: string;
  /** One per room, in the body's order, each with its own id (keyedMessageId or roomMessageId). */
  notifications: Notification[];
  /** The same publish as one body per room (`room_ids` of one), each giving its room the same id. */
  roomBodies(): string[];
}

/** The JSON text of a multi-room body; `dataJson` is serialized once for any number of bodies. */
function multiRoomBody(rooms: readonly string[], fields: { publishId?: string; userId: string | number | null; dataJson: string; key?: string }): string {
  return (
    `{"room_ids":${JSON.stringify(rooms)}` +
    (fields.publishId !== undefined ? `,"message_id":${JSON.stringify(fields.publishId)}` : "") +
    `,"user_id":${JSON.stringify(fields.userId)}` +
    (fields.key !== undefined ? `,"idempotency_key":${JSON.stringify(fields.key)}` : "") +
    `,"data":${fields.dataJson}}`
  );
}

/** The longest frame a multi-room publish becomes: its room with the longest JSON. */
function longestRoom(rooms: readonly string[]): string {
  let longest = rooms[0];
  for (const room of rooms) if (byteLength(JSON.stringify(room)) > byteLength(JSON.stringify(longest))) longest = room;
  return longest;
}

/**
 * Validates a body with `room_ids` (docs/protocol.md#publishing-from-an-app-backend): every
 * room, the sender, the data (its frame checked once, with the longest room), the key and
 * `message_id`; any fault refuses the whole body.
 */
export function parseMultiRoomBody(body: Record<string, unknown>, messageId: string): Parsed<MultiRoomPublish> {
  if (present(body.room_id) || present(body.to_user_id)) return fail("conflicting_target", `pass room_ids, room_id or to_user_id, only one`);
  const rooms = checkRoomIds(body.room_ids, "room_ids");
  if (!rooms.ok) return rooms;
  const sender = parseSenderAndData(body);
  if (!sender.ok) return sender;
  let key: string | undefined;
  if (present(body.idempotency_key)) {
    const checked = checkIdempotencyKey(body.idempotency_key, "idempotency_key");
    if (!checked.ok) return checked;
    key = checked.value;
  }
  let publishId = messageId;
  if (present(body.message_id)) {
    const checked = visibleAscii(body.message_id, "message_id", "invalid_message_id");
    if (!checked.ok) return checked;
    publishId = checked.value;
  }
  if (key !== undefined) publishId = keyedPublishId(key);
  const idOf = (room: string) => (key !== undefined ? keyedMessageId(room, key) : roomMessageId(publishId, room));
  const size = checkFrameSize({ id: idOf(rooms.value[0]), roomId: longestRoom(rooms.value), origin: "app", ...sender.value });
  if (!size.ok) return size;
  const notifications = rooms.value.map((room): Notification => ({ id: idOf(room), roomId: room, origin: "app", ...sender.value }));
  const roomBodies = () => {
    const dataJson = JSON.stringify(sender.value.data);
    const fields = { publishId: key === undefined ? publishId : undefined, userId: sender.value.userId, dataJson, key };
    return rooms.value.map((room) => multiRoomBody([room], fields));
  };
  return { ok: true, value: { publishId, notifications, roomBodies } };
}

/** What the SDK publishes: a room (`roomId`) or one user's channel (`toUserId`); `userId` is the sender, as on the wire. */
export interface PublishBodyInput {
  roomId?: string | number;
  toUserId?: string | number;
  userId?: string | number | null;
  data: unknown;
  /** 1 to 128 visible ASCII characters: publishes with one key to one room or user within 24 hours are one notification. */
  idempotencyKey?: string;
}

/** Builds the body an app publishes; throws a clear error before anything is sent. */
export function buildPublishBody(input: PublishBodyInput, method = "publish"): string {
  return buildPublish(input, method).body;
}

/** The key of an SDK input, checked; a RangeError for its length, a TypeError for the rest. */
function sdkKey(input: { idempotencyKey?: unknown }, method: string): string | undefined {
  if (!present(input.idempotencyKey)) return undefined;
  const key = checkIdempotencyKey(input.idempotencyKey, "idempotencyKey");
  if (!key.ok) throw new (typeof input.idempotencyKey === "string" && input.idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH ? RangeError : TypeError)(`${method}: ${key.reason}`);
  return key.value;
}

/**
 * The body an app publishes to one room or user and, with an idempotency key, the id it will
 * have (the SQS message id otherwise). Throws a clear error before anything is sent.
 */
export function buildPublish(input: PublishBodyInput, method = "publish"): { body: string; messageId?: string } {
  if (typeof input !== "object" || input === null) throw new TypeError(`${method}: expected { roomId | toUserId, userId?, data, idempotencyKey? }`);
  if ("roomIds" in input && input.roomIds !== undefined) throw new TypeError(`${method}: roomIds is taken by publish only (one publish to several rooms)`);
  const room = publishTarget(input.roomId, input.toUserId, "roomId", "toUserId");
  if (!room.ok) throw new TypeError(`${method}: ${room.reason}`);
  if (input.userId !== undefined && input.userId !== null) {
    const user = normalizeId(input.userId, "userId");
    if (!user.ok) throw new TypeError(`${method}: ${user.reason}`);
  }
  if (input.data === undefined) throw new TypeError(`${method}: data is required (any JSON value)`);
  const key = sdkKey(input, method);
  const target = input.toUserId !== undefined && input.toUserId !== null ? { to_user_id: input.toUserId } : { room_id: input.roomId };
  let text: string;
  try {
    text = JSON.stringify({ ...target, user_id: input.userId ?? null, ...(key !== undefined ? { idempotency_key: key } : {}), data: input.data });
  } catch (err) {
    throw new TypeError(`${method}: data is not JSON-serializable (${(err as Error).message})`);
  }
  // Size as the frame the clients will get, with a worst-case id, so what passes here delivers.
  const size = checkFrameSize({
    id: crypto.randomUUID() + "-00000000",
    roomId: room.value,
    userId: input.userId == null ? null : String(input.userId),
    origin: "app",
    data: JSON.parse(text).data,
  });
  if (!size.ok) throw new RangeError(`${method}: ${size.reason}`);
  // What SQS refuses travels escaped; an escape takes up to twice the bytes, so measure again.
  const body = queueSafeJson(text);
  const refusal = queueBodyRefusal(body);
  if (refusal) throw new RangeError(`${method}: ${refusal}`);
  return { body, ...(key !== undefined ? { messageId: keyedMessageId(room.value, key) } : {}) };
}

/** What the SDK publishes to several rooms at once. */
export interface MultiRoomPublishBodyInput {
  roomIds: readonly (string | number)[];
  userId?: string | number | null;
  data: unknown;
  idempotencyKey?: string;
}

/**
 * The bodies of a publish to several rooms: as few as SQS's 256 KiB allows (rooms packed in
 * order), each naming the publish's id (`message_id`, or the key's), so every room's
 * notification id is the same whichever body carries it. Throws before anything is sent.
 */
export function buildMultiRoomBodies(input: MultiRoomPublishBodyInput, method = "publish"): { bodies: string[]; messageId: string } {
  if (typeof input !== "object" || input === null) throw new TypeError(`${method}: expected { roomIds, userId?, data, idempotencyKey? }`);
  const loose = input as { roomId?: unknown; toUserId?: unknown };
  if (present(loose.roomId) || present(loose.toUserId)) throw new TypeError(`${method}: pass roomIds, roomId or toUserId, only one`);
  const rooms = checkRoomIds(input.roomIds, "roomIds");
  if (!rooms.ok) throw new (Array.isArray(input.roomIds) && input.roomIds.length > MAX_PUBLISH_ROOMS ? RangeError : TypeError)(`${method}: ${rooms.reason}`);
  if (present(input.userId)) {
    const user = normalizeId(input.userId, "userId");
    if (!user.ok) throw new TypeError(`${method}: ${user.reason}`);
  }
  if (input.data === undefined) throw new TypeError(`${method}: data is required (any JSON value)`);
  const key = sdkKey(input, method);
  let dataJson: string;
  try {
    dataJson = JSON.stringify(input.data);
  } catch (err) {
    throw new TypeError(`${method}: data is not JSON-serializable (${(err as Error).message})`);
  }
  if (typeof dataJson !== "string") throw new TypeError(`${method}: data is not JSON-serializable`);
  const userId = input.userId == null ? null : String(input.userId);
  const size = checkFrameSize({ id: crypto.randomUUID(), roomId: longestRoom(rooms.value), userId, origin: "app", data: JSON.parse(dataJson) });
  if (!size.ok) throw new RangeError(`${method}: ${size.reason}`);
  const messageId = key !== undefined ? keyedPublishId(key) : crypto.randomUUID();
  const fields = { publishId: key === undefined ? messageId : undefined, userId: input.userId ?? null, dataJson, key };
  // Sizes as SQS counts them (escaped); a room's share is its JSON and a comma.
  const base = byteLength(queueSafeJson(multiRoomBody([], fields)));
  const bodies: string[] = [];
  let part: string[] = [];
  let bytes = base;
  for (const room of rooms.value) {
    const share = byteLength(queueSafeJson(JSON.stringify(room))) + (part.length > 0 ? 1 : 0);
    if (part.length > 0 && bytes + share > MAX_QUEUE_BODY_BYTES) {
      bodies.push(multiRoomBody(part, fields));
      part = [];
      bytes = base;
    }
    part.push(room);
    bytes += byteLength(queueSafeJson(JSON.stringify(room)));
    if (part.length > 1) bytes += 1;
  }
  bodies.push(multiRoomBody(part, fields));
  const escaped = bodies.map(queueSafeJson);
  for (const body of escaped) {
    const refusal = queueBodyRefusal(body);
    if (refusal) throw new RangeError(`${method}: ${refusal} (with one room, the smallest body this publish can be)`);
  }
  return { bodies: escaped, messageId };
}

/** The longest `ref` a client may put on a sendMessage (echoed in `hub.sent` or `hub.error`). */
export const MAX_REF_LENGTH = 64;

/**
 * A client's sendMessage frame: `data`, `room_id` (which of its rooms; optional with one room)
 * and `ref` (optional: the client's name for this send, echoed in the answer). `ref` is read
 * first and returned with a refusal too, so the refusal can name it.
 */
export function parseClientMessage(
  body: string | null | undefined,
): Parsed<{ data: unknown; roomId?: string; ref?: string }, "invalid_json" | "invalid_body" | "missing_data" | "invalid_message"> & { ref?: string } {
  if (body === null || body === undefined || body === "") return fail("invalid_json", "the message is empty");
  const object = parseJsonObject(body, "the message", "invalid_body");
  if (!object.ok) return object;
  const parsed = object.value;
  const ref = parsed.ref;
  if (ref !== undefined && (typeof ref !== "string" || ref.length === 0 || ref.length > MAX_REF_LENGTH)) {
    return fail("invalid_message", `ref must be a string of 1 to ${MAX_REF_LENGTH} characters`);
  }
  const about = ref === undefined ? {} : { ref };
  if (!("data" in parsed) || parsed.data === undefined) return { ...fail("missing_data", 'send {"action":"sendMessage","data":...}'), ...about };
  if (parsed.room_id === undefined) return { ok: true, value: { data: parsed.data, ...about }, ...about };
  const room = normalizeId(parsed.room_id, "room_id");
  if (!room.ok) return { ...fail("invalid_message", room.reason), ...about };
  return { ok: true, value: { data: parsed.data, roomId: room.value, ...about }, ...about };
}

/** The answer to a sendMessage that carried a `ref` (docs/protocol.md#control-frames): the hub took it. */
export interface SentInfo {
  ref: string;
  room_id: string;
  /** The notification's id, as every member gets it. */
  id: string;
  /** Its seq in the room's stream; absent when streams are off. */
  seq?: number;
}

/** What a refused request was about, named in its `hub.error` so a client with several requests in flight can match it. */
export interface ErrorAbout {
  room_id?: string;
  /** A sendMessage's `ref`. */
  ref?: string;
}

export function controlFrame<T extends string, D>(type: T, data: D): ControlFrame<T, D> {
  return { id: crypto.randomUUID(), room_id: null, user_id: null, data: { type, data } };
}

/** The error envelope sent back to one client. */
/** `about` names what the refused request was about (`{ room_id }`, `{ ref }`), so a client with several requests in flight can match the answer. */
export function errorFrame(code: HubErrorCode, message: string, about?: ErrorAbout): ErrorFrame {
  return controlFrame("hub.error", { ...about, code, message, temporary: isTemporary(code) });
}
