/**
 * `presence` route (docs/protocol.md#presence), deployed only with presence on:
 * `{"action":"presence","room_id":"x","limit"?:N,"after"?:cursor}` answers `hub.presence`
 * `{room_id, members:[{user_id, connections, since}], count, next}`: one page of the room's
 * member users (by user id, at most 1,000), `count` the room's total, `next` the cursor of the
 * next page or null. The connection must be subscribed to the room (`not_subscribed`).
 */
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { describeError } from "../core/log";
import { controlFrame, normalizeId, parseJsonObject } from "../core/messages";
import type { HubErrorCode } from "../core/errorCodes";
import { keepAliveOf, MAX_PRESENCE_PAGE, readPresence, type PresenceDeps } from "../core/presence";
import { refuser, sendControlFrame } from "../core/reply";
import { getConnection } from "../core/tables";
import { lambdaSource, presenceFrom, type HandlerSource } from "./dependencies";

export type PresenceRequest = { roomId: string; limit?: number; after?: string };

/** The request of a `presence` or `occupancy` action, or the refusal's reason. */
export function parsePresenceRequest(body: string | null | undefined): { ok: true; value: PresenceRequest } | { ok: false; reason: string } {
  const object = parseJsonObject(body ?? "", "the message", "invalid_presence");
  if (!object.ok) return { ok: false, reason: object.reason };
  const room = normalizeId(object.value.room_id, "room_id");
  if (!room.ok) return { ok: false, reason: `${room.reason} (send {"action":"presence","room_id":"<room>"})` };
  const { limit, after } = object.value;
  if (limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_PRESENCE_PAGE)) {
    return { ok: false, reason: `limit must be a whole number from 1 to ${MAX_PRESENCE_PAGE}` };
  }
  if (after !== undefined && after !== null && (typeof after !== "string" || after.length === 0 || after.length > 1_400)) return { ok: false, reason: "after must be the next cursor of a previous page" };
  return { ok: true, value: { roomId: room.value, ...(limit !== undefined ? { limit } : {}), ...(typeof after === "string" ? { after } : {}) } };
}

/**
 * The part both routes share: parse, check the connection is in the room, answer with
 * `answer(request)`'s frame or a refusal.
 */
export function createRoomReadHandler(deps: PresenceDeps, what: "presence" | "occupancy", answer: (request: PresenceRequest) => Promise<ReturnType<typeof controlFrame>>) {
  return async (event: WebSocketEvent): Promise<WebSocketResult> => {
    const connectionId = event.requestContext.connectionId;
    const reject = refuser(deps, connectionId, what);
    const parsed = parsePresenceRequest(event.body);
    if (!parsed.ok) return reject("invalid_presence", parsed.reason);
    const roomId = parsed.value.roomId;
    const refuse = (code: HubErrorCode, message: string, statusCode?: number) => reject(code, message, statusCode, { room_id: roomId });
    try {
      const row = await getConnection(deps.db, deps.connectionsTable, connectionId);
      if (!row) return refuse("unknown_connection", "this connection is not registered");
      if (!row.rooms.includes(roomId)) return refuse("not_subscribed", `this connection is not subscribed to room ${JSON.stringify(roomId)}`);
      await sendControlFrame(deps.management, connectionId, await answer(parsed.value), deps.log);
      return { statusCode: 200, body: what };
    } catch (err) {
      deps.log.error(`${what} failed`, { connection_id: connectionId, room_id: roomId, ...describeError(err) });
      return refuse("presence_failed", `the room's ${what} could not be read; try again`, 500);
    }
  };
}

export function createPresenceHandler(deps: PresenceDeps) {
  return createRoomReadHandler(deps, "presence", async (request) => {
    const page = await readPresence(deps.db, deps.presence.presenceTable, request.roomId, { after: request.after, limit: request.limit });
    return controlFrame("hub.presence", { room_id: request.roomId, ...page, ...keepAliveOf(deps) });
  });
}

export function presenceFromEnvironment(source: HandlerSource = lambdaSource("presence")) {
  const deps = presenceFrom(source);
  if (!deps) throw new Error("the presence route needs PRESENCE_TABLE");
  return createPresenceHandler(deps);
}

