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

/**
 * Validates a publish body (the seed's `{room_id, user_id, data}`, or `to_user_id` for a
 * user's channel). `messageId` becomes the frame id, so a redelivered SQS message keeps its
 * id: clients drop the duplicate and the room's stream stores it once.
 */
export function parsePublishBody(body: Record<string, unknown>, messageId: string): Parsed<Notification> {
  const room = publishTarget(body.room_id, body.to_user_id, "room_id", "to_user_id");
  if (!room.ok) return room;
  let userId: string | null = null;
  if (body.user_id !== undefined && body.user_id !== null) {
    const user = normalizeId(body.user_id, "user_id");
    if (!user.ok) return user;
    userId = user.value;
  }
  if (!("data" in body) || body.data === undefined) return fail("missing_data", "data is required (any JSON value)");
  const notification: Notification = { id: messageId, roomId: room.value, userId, origin: "app", data: body.data };
  const size = checkFrameSize(notification);
  if (!size.ok) return size;
  return { ok: true, value: notification };
}

/** What the SDK publishes: a room (`roomId`) or one user's channel (`toUserId`); `userId` is the sender, as on the wire. */
export interface PublishBodyInput {
  roomId?: string | number;
  toUserId?: string | number;
  userId?: string | number | null;
  data: unknown;
}

/** Builds the body an app publishes; throws a clear error before anything is sent. */
export function buildPublishBody(input: PublishBodyInput, method = "publish"): string {
  if (typeof input !== "object" || input === null) throw new TypeError(`${method}: expected { roomId | toUserId, userId?, data }`);
  const room = publishTarget(input.roomId, input.toUserId, "roomId", "toUserId");
  if (!room.ok) throw new TypeError(`${method}: ${room.reason}`);
  if (input.userId !== undefined && input.userId !== null) {
    const user = normalizeId(input.userId, "userId");
    if (!user.ok) throw new TypeError(`${method}: ${user.reason}`);
  }
  if (input.data === undefined) throw new TypeError(`${method}: data is required (any JSON value)`);
  const target = input.toUserId !== undefined && input.toUserId !== null ? { to_user_id: input.toUserId } : { room_id: input.roomId };
  let text: string;
  try {
    text = JSON.stringify({ ...target, user_id: input.userId ?? null, data: input.data });
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
  return body;
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
