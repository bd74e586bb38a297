/**
 * `unsubscribe` route (docs/protocol.md#unsubscribe): `{"action":"unsubscribe","room_id":"x"}` takes a
 * room off this connection (its row's `rooms` and its membership) and answers
 * `hub.unsubscribed` {room_id}. Idempotent: a room it is not in answers the same. A user
 * channel cannot be left (`invalid_subscribe`): it is how the app reaches the user.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { ConnectionsApi } from "../core/connections";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { describeError, type Logger } from "../core/log";
import { controlFrame } from "../core/messages";
import type { HubErrorCode } from "../core/errorCodes";
import { refuser, sendControlFrame } from "../core/reply";
import { isUserChannel, parseRoomRequest } from "../core/rooms";
import { removeRoom } from "../core/tables";
import { presenceLeave, type PresenceDeps } from "../core/presence";
import { dynamoFrom, lambdaSource, managementFrom, presenceFrom, requireVar, type HandlerSource } from "./dependencies";

export interface UnsubscribeDeps {
  db: DynamoDBClient;
  connectionsTable: string;
  management: ConnectionsApi;
  log: Logger;
  /** Presence on: the room loses the connection (`unsubscribed`: the user leaves at once if it was their last). */
  presence?: PresenceDeps;
}

export function createUnsubscribeHandler(deps: UnsubscribeDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    const reject = refuser(deps, connectionId, "unsubscribe");
    const parsed = parseRoomRequest(event.body, "invalid_subscribe");
    if (!parsed.ok) return reject(parsed.code, parsed.reason);
    const roomId = parsed.value;
    // The answer names the room, so a client with several subscribes in flight can match it.
    const refuse = (code: HubErrorCode, message: string, statusCode?: number) => reject(code, message, statusCode, { room_id: roomId });
    if (isUserChannel(roomId)) return refuse("invalid_subscribe", "room_id names a user channel, which a connection cannot leave: it is how the app reaches its user");
    try {
      const removed = await removeRoom(deps.db, deps.connectionsTable, connectionId, roomId);
      if (!removed.ok) return refuse("unknown_connection", "this connection is not registered");
      await sendControlFrame(deps.management, connectionId, controlFrame("hub.unsubscribed", { room_id: roomId }), deps.log);
      if (deps.presence) {
        // The row's own user (removeRoom's ALL_OLD): no read, whatever the authorizer's context.
        if (removed.userId !== undefined) await presenceLeave(deps.presence, { roomId, userId: removed.userId, connectionId }, "unsubscribed");
      }
      deps.log.info("unsubscribed", { connection_id: connectionId, room_id: roomId });
      return { statusCode: 200, body: "Unsubscribed" };
    } catch (err) {
      deps.log.error("unsubscribe failed", { connection_id: connectionId, room_id: roomId, ...describeError(err) });
      return refuse("unsubscribe_failed", "the room could not be left; try again", 500);
    }
  };
}

export function unsubscribeFromEnvironment(source: HandlerSource = lambdaSource("unsubscribe")) {
  const management = managementFrom(source);
  return createUnsubscribeHandler({
    db: dynamoFrom(source),
    connectionsTable: requireVar(source, "connectionsTable"),
    management,
    presence: presenceFrom(source, management),
    log: source.log,
  });
}
