/**
 * Many rooms per connection, user channels and capability grants (docs/protocol.md#rooms-and-user-channels): the
 * rules every part shares (authorizer, routes, delivery, SDK, local hub, client docs).
 *
 * Data model: no new table. The connections table and its room index stay as they are:
 * - The connection row (`connection_id` = API Gateway's id) says who the connection is:
 *   `user_id`, `generation` and `auth_key` (the auth row its token was checked against),
 *   `grants` (the token's room grants), `rooms` (string set: the rooms it is subscribed to,
 *   never its user channel), `connected_at`, `expires_at`. A new row has no `room_id`, so it
 *   is not in the room index itself.
 * - Each subscription is an item of its own: `connection_id` = membershipKey(id, room),
 *   `room_id` = the room, `user_id`, `connected_at`, `expires_at` (the connection's). The room
 *   index finds a room's memberships exactly as it found the seed's rows, so delivery still
 *   reads one room's partition of the index, never the table.
 * - Every connection has the membership of its user channel `user:{user_id}`; so "every
 *   connection of user 42" is the user channel's room, read like any other.
 * - A row written before this change (the seed's: `room_id` on the connection row) is its
 *   room's membership; connectionIdOf() maps both kinds to the connection id.
 */
import * as crypto from "crypto";
import { fail, normalizeId, parseJsonObject, type Parsed } from "./messages";

/** User channels: `user:{user_id}`. The prefix is reserved: no room id, grant or pattern may start with it. */
export const USER_CHANNEL_PREFIX = "user:";
/** Default (and the component's default) `maxRoomsPerConnection`. */
export const DEFAULT_MAX_ROOMS_PER_CONNECTION = 100;
/**
 * Highest `maxRoomsPerConnection` accepted: a connection's row lists its rooms (up to 257
 * bytes each, DynamoDB's item limit is 400 KB) and `$disconnect` deletes one item per room.
 */
export const MAX_ROOMS_PER_CONNECTION_LIMIT = 1_000;
/** Most entries in a token's `rooms` claim. */
export const MAX_GRANTS_PER_TOKEN = 100;
/** The WebSocket subprotocol a client names beside its token; `$connect` echoes it. */
export const SUBPROTOCOL = "notification-hub";
/** Between a connection id and a room in a membership's key: API Gateway ids are base64, never `#`. */
const MEMBERSHIP_SEPARATOR = "#";

export function userChannel(userId: string): string {
  return USER_CHANNEL_PREFIX + userId;
}

export function isUserChannel(roomId: string): boolean {
  return roomId.startsWith(USER_CHANNEL_PREFIX);
}

/** The key of a connection's membership of one room. */
export function membershipKey(connectionId: string, roomId: string): string {
  return `${connectionId}${MEMBERSHIP_SEPARATOR}${roomId}`;
}

/** The connection behind a room index item: a membership key, or a seed row's own id. */
export function connectionIdOf(indexKey: string): string {
  const at = indexKey.indexOf(MEMBERSHIP_SEPARATOR);
  return at === -1 ? indexKey : indexKey.slice(0, at);
}

/** A room id as a token, a publish or a subscribe may name it: any id, except the user-channel prefix. */
export function normalizeRoomId(value: unknown, field: string): Parsed<string> {
  const id = normalizeId(value, field);
  if (!id.ok) return id;
  if (isUserChannel(id.value)) return fail("invalid_" + field, `${field} must not start with "${USER_CHANNEL_PREFIX}" (reserved for user channels; publish to a user with to_user_id)`);
  // A seed token's room becomes its one grant, where a trailing "*" would read as a prefix:
  // a token for room "*" would open every room.
  if (id.value.includes("*")) return fail("invalid_" + field, `${field} must not contain "*" (reserved for room prefixes in a token's rooms)`);
  return id;
}

/**
 * Validates a token's `rooms` grants: 1 to MAX_GRANTS_PER_TOKEN entries, each an exact room id
 * or a prefix ending in `*` (`acme/ops/*`; a lone `*` grants every room). `*` elsewhere is
 * refused, so "a*b" can never be read two ways. Returns them sorted and deduplicated, so equal
 * grant sets have one form (and one auth row).
 */
export function normalizeGrants(value: unknown, field = "rooms"): Parsed<string[]> {
  if (!Array.isArray(value)) return fail("invalid_" + field, `${field} must be an array of room ids or prefixes ending in "*"`);
  if (value.length === 0 || value.length > MAX_GRANTS_PER_TOKEN) {
    return fail("invalid_" + field, `${field} must hold 1 to ${MAX_GRANTS_PER_TOKEN} entries (use a prefix such as "acme/*" for more rooms)`);
  }
  const grants = new Set<string>();
  for (const [i, entry] of value.entries()) {
    // The code names the field (invalid_rooms), the reason the entry: a code is never composed from an index.
    const id = normalizeId(entry, `${field}[${i}]`);
    if (!id.ok) return fail("invalid_" + field, id.reason);
    const star = id.value.indexOf("*");
    if (star !== -1 && star !== id.value.length - 1) return fail("invalid_" + field, `${field}[${i}] may hold "*" only as its last character (a prefix)`);
    // A pattern such as "u*" is fine: grantAllows never lets a grant reach a user channel.
    if (isUserChannel(id.value)) {
      return fail("invalid_" + field, `${field}[${i}] must not start with "${USER_CHANNEL_PREFIX}": a user's channel is theirs alone`);
    }
    grants.add(id.value);
  }
  return { ok: true, value: [...grants].sort() };
}

/** Whether grants let a connection into `roomId`. User channels are never granted this way (only one's own, implicitly). */
export function grantAllows(grants: readonly string[], roomId: string): boolean {
  if (isUserChannel(roomId)) return false;
  return grants.some((grant) => (grant.endsWith("*") ? roomId.startsWith(grant.slice(0, -1)) : grant === roomId));
}

/**
 * A client's `{"action":"subscribe"|"unsubscribe","room_id":"x"}`: the room id, or `code`
 * (`invalid_subscribe`) with a message naming the key.
 */
export function parseRoomRequest<C extends string>(body: string | null | undefined, code: C): Parsed<string, C> {
  const object = parseJsonObject(body ?? "", "the message", code);
  if (!object.ok) return fail(code, object.reason);
  const room = normalizeId(object.value.room_id, "room_id");
  return room.ok ? room : fail(code, `${room.reason} (send {"action":"...","room_id":"<room>"})`);
}

/** Whether this connection (of `userId`, with `grants`) may subscribe to `roomId`. */
export function maySubscribe(userId: string, grants: readonly string[], roomId: string): boolean {
  return roomId === userChannel(userId) || grantAllows(grants, roomId);
}

/**
 * The auth table's sort key for a grant set (tokens with `rooms`). Seed tokens keep their
 * room id as the key. This one starts with a control character, which no room id can hold
 * (normalizeId), so the two kinds never collide; the hash binds the grants into the token's
 * secret: a holder of the signing key alone cannot widen a token's rooms.
 */
export function grantsAuthKey(grants: readonly string[]): string {
  return `\u001frooms\u001f${crypto.createHash("sha256").update(JSON.stringify(grants)).digest("base64url")}`;
}

export function isGrantsAuthKey(authKey: string): boolean {
  return authKey.startsWith("\u001frooms\u001f");
}

/** RFC 7230 `token`: what a subprotocol name may hold (RFC 6455 section 4.1). */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isHttpToken(value: string): boolean {
  return HTTP_TOKEN.test(value);
}

/**
 * A `Sec-WebSocket-Protocol` value as the list of protocols it offers, in order, or undefined
 * when it is not one: RFC 6455's `1#token` with RFC 7230's list rules, as `ws` parses it (its
 * handleUpgrade refuses anything else with 400). Optional whitespace (spaces and tabs only:
 * String.trim() would also drop e.g. U+00A0) around each comma, and around the whole value,
 * which an HTTP parser strips before `ws` sees it. Refused: an empty entry ("a,,b", "a,"; RFC
 * 7230 lets a recipient skip those, `ws` and browsers do not), a name that is not a token (a
 * space inside, quotes, non-ASCII), a name given twice (RFC 6455: "MUST all be unique").
 * The one parser of that header: the authorizer reads its token with it (tokenFromRequest),
 * the local API Gateway emulator refuses a handshake with it (local/gateway/handshake.ts).
 */
export function parseSubprotocols(value: string): string[] | undefined {
  const protocols = value.split(",").map(trimSpacesAndTabs);
  if (protocols.some((protocol) => !HTTP_TOKEN.test(protocol)) || new Set(protocols).size !== protocols.length) return undefined;
  return protocols;
}

/**
 * Spaces and tabs off both ends, in linear time: the header reaches the authorizer before any
 * token check, and a `[ \t]+$` regex takes quadratic time on a long run of spaces inside an
 * entry (a 15 KB header cost ~230 ms of the authorizer's CPU).
 */
function trimSpacesAndTabs(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === " " || text[start] === "\t")) start++;
  while (end > start && (text[end - 1] === " " || text[end - 1] === "\t")) end--;
  return text.slice(start, end);
}

type StringMap<T> = Record<string, T | undefined> | null | undefined;

/**
 * The protocols a `$connect` request offered, in order: [] without the header, undefined when
 * it is not a valid list (parseSubprotocols). Header lines sent more than once are one list
 * (RFC 6455 section 11.3.4): `multiValueHeaders` holds every line where `headers` may hold only
 * the last. Header names are matched without regard to case (API Gateway passes them as the
 * client sent them).
 */
function offeredSubprotocols(event: { headers?: StringMap<string>; multiValueHeaders?: StringMap<string[]> }): string[] | undefined {
  const named = <T>(headers: StringMap<T>): T[] =>
    Object.entries(headers ?? {}).flatMap(([name, value]) => (name.toLowerCase() === "sec-websocket-protocol" && value !== undefined ? [value] : []));
  const lines = named(event.multiValueHeaders).flat();
  const values = (lines.length > 0 ? lines : named(event.headers)).filter((value): value is string => typeof value === "string");
  return values.length === 0 ? [] : parseSubprotocols(values.join(","));
}

/**
 * The connect token of a `$connect` request: `Sec-WebSocket-Protocol: notification-hub, <token>`
 * (a browser's `new WebSocket(url, ["notification-hub", token])`), else `?token=`. A header
 * that is not a valid protocol list fails (`invalid_protocol_header`), whatever the query says.
 */
export function tokenFromRequest(event: {
  headers?: StringMap<string>;
  multiValueHeaders?: StringMap<string[]>;
  queryStringParameters?: StringMap<string>;
}): Parsed<{ token: string | undefined; subprotocol: boolean }> {
  const offered = offeredSubprotocols(event);
  if (!offered) return fail("invalid_protocol_header", "Sec-WebSocket-Protocol must be a list of distinct protocol names (tokens) separated by commas");
  if (offered.includes(SUBPROTOCOL)) {
    const others = offered.filter((protocol) => protocol !== SUBPROTOCOL);
    return { ok: true, value: { token: others.length === 1 ? others[0] : undefined, subprotocol: true } };
  }
  return { ok: true, value: { token: event.queryStringParameters?.token ?? undefined, subprotocol: false } };
}
