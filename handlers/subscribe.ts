/**
 * `subscribe` route (docs/protocol.md#subscribe): `{"action":"subscribe","room_id":"x"}` adds a room
 * to this connection, checked against the grants its token carried (the authorizer's context:
 * no authorizer call, no token read). Answers `hub.subscribed` {room_id, last_seq} (the
 * stream's head, 0 with streams off or empty, so the client knows where live frames start), or
 * `hub.error`: `invalid_subscribe` (bad room_id), `forbidden` (not granted, or another user's
 * channel), `too_many_rooms` (past maxRoomsPerConnection, the user channel not counted, or room
 * ids that would make the connection row pass DynamoDB's 400 KB item in UTF-8 bytes).
 * Idempotent: subscribing twice answers the same and writes nothing new.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { optionalNumberEnv, ENV } from "../core/aws";
import type { ConnectionsApi } from "../core/connections";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { connectionIdentity } from "../core/identity";
import { describeError, type Logger } from "../core/log";
import { controlFrame } from "../core/messages";
import type { HubErrorCode } from "../core/errorCodes";
import { refuser, sendControlFrame } from "../core/reply";
import { DEFAULT_MAX_ROOMS_PER_CONNECTION, maySubscribe, parseRoomRequest, userChannel } from "../core/rooms";
import { headSeq, type StreamSettings } from "../core/streams";
import { addRoom, getConnection } from "../core/tables";
import { hasPresence, keepAliveOf, presenceJoin, presenceLeave, type PresenceDeps } from "../core/presence";
import { dynamoFrom, lambdaSource, managementFrom, presenceFrom, requireVar, streamsFrom, type HandlerSource } from "./dependencies";

export interface SubscribeDeps {
  db: DynamoDBClient;
  connectionsTable: string;
  management: ConnectionsApi;
  log: Logger;
  /** Rooms per connection, the user channel not counted. Default 100. */
  maxRooms?: number;
  /** Unset or retention 0: streams are off and `last_seq` is 0. */
  streams?: StreamSettings;
  /** Presence on: the room gains the connection, after `hub.subscribed` (the subscriber sees its own join); then the row is read again (GetItem, consistent), so a `$disconnect` that ran meanwhile leaves no ghost. */
  presence?: PresenceDeps;
}

export function createSubscribeHandler(deps: SubscribeDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  const maxRooms = deps.maxRooms ?? DEFAULT_MAX_ROOMS_PER_CONNECTION;
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    const reject = refuser(deps, connectionId, "subscribe");
    const parsed = parseRoomRequest(event.body, "invalid_subscribe");
    if (!parsed.ok) return reject(parsed.code, parsed.reason);
    const roomId = parsed.value;
    // The answer names the room, so a client with several subscribes in flight can match it.
    const refuse = (code: HubErrorCode, message: string, statusCode?: number) => reject(code, message, statusCode, { room_id: roomId });
    try {
      const who = await connectionIdentity(deps, event);
      if (!who) return refuse("unknown_connection", "this connection is not registered");
      if (!maySubscribe(who.userId, who.grants, roomId)) return refuse("forbidden", `this connection's token does not grant room ${JSON.stringify(roomId)}`);
      // Its own user channel: every connection is in it from $connect on; nothing to write.
      if (roomId !== userChannel(who.userId)) {
        const added = await addRoom(deps.db, deps.connectionsTable, connectionId, roomId, maxRooms);
        if (!added.ok && added.reason === "too_many_rooms") {
          return refuse("too_many_rooms", `this connection is already in ${maxRooms} rooms (maxRoomsPerConnection); unsubscribe from one first`);
        }
        if (!added.ok && added.reason === "row_full") {
          return refuse("too_many_rooms", "this connection's room ids fill its row (DynamoDB's 400 KB item, in UTF-8 bytes); unsubscribe from one first");
        }
        if (!added.ok) return refuse("unknown_connection", "this connection is not registered");
      }
      const streams = deps.streams;
      const lastSeq = streams && streams.retentionHours > 0 ? await headSeq(deps.db, streams.streamsTable, roomId) : 0;
      await sendControlFrame(deps.management, connectionId, controlFrame("hub.subscribed", { room_id: roomId, last_seq: lastSeq, ...keepAliveOf(deps.presence) }), deps.log);
      if (deps.presence && hasPresence(roomId)) {
        const member = { roomId, userId: who.userId, connectionId };
        await presenceJoin(deps.presence, member);
        // A $disconnect between the room's write and this join removed the row and left the rooms
        // before this connection was in them: its leave found nothing. Looked at after the join, a
        // row still there means any $disconnect comes later and finds the join; a row gone means
        // the leave is this route's (`closed`, the grace counted as for any close).
        if (!(await getConnection(deps.db, deps.connectionsTable, connectionId))) await presenceLeave(deps.presence, member, "closed");
      }
      deps.log.info("subscribed", { connection_id: connectionId, room_id: roomId, last_seq: lastSeq });
      return { statusCode: 200, body: "Subscribed" };
    } catch (err) {
      deps.log.error("subscribe failed", { connection_id: connectionId, room_id: roomId, ...describeError(err) });
      return refuse("subscribe_failed", "the subscription could not be made; try again", 500);
    }
  };
}

export function subscribeFromEnvironment(source: HandlerSource = lambdaSource("subscribe")) {
  const management = managementFrom(source);
  return createSubscribeHandler({
    db: dynamoFrom(source),
    connectionsTable: requireVar(source, "connectionsTable"),
    management,
    presence: presenceFrom(source, management),
    log: source.log,
    maxRooms: optionalNumberEnv(ENV.maxRoomsPerConnection, DEFAULT_MAX_ROOMS_PER_CONNECTION, source.env),
    streams: streamsFrom(source),
  });
}
