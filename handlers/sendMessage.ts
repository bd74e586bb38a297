/**
 * `sendMessage` route: `{"action":"sendMessage","data":...}` from a client is broadcast to
 * the sender's room with `user_id` = the sender. A malformed frame gets a `hub.error` frame
 * back to the sender only.
 */
import * as crypto from "crypto";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { connectionIdentity } from "../core/identity";
import { fanOutToRoom, type FanoutDeps } from "../core/fanout";
import { describeError } from "../core/log";
import { checkFrameSize, parseClientMessage, type Notification } from "../core/messages";
import { sendErrorFrame } from "../core/reply";
import { frameToSend } from "../core/streams";
import { fanoutFrom, lambdaSource, type HandlerSource } from "./dependencies";

export function createSendMessageHandler(deps: FanoutDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    const reject = async (code: string, message: string): Promise<WebSocketResult> => {
      deps.log.info("client message rejected", { connection_id: connectionId, code });
      await sendErrorFrame(deps.management, connectionId, code, message, deps.log);
      return { statusCode: 400, body: code };
    };

    const parsed = parseClientMessage(event.body);
    if (!parsed.ok) return reject(parsed.code, parsed.reason);

    const who = await connectionIdentity(deps, event).catch((err: unknown) => {
      deps.log.error("connection row lookup failed", { connection_id: connectionId, ...describeError(err) });
      return null;
    });
    if (who === null) return reject("delivery_failed", "the message could not be delivered; try again");
    if (!who) return reject("unknown_connection", "this connection is not registered");
    const { userId, roomId } = who;

    // Only `data` comes from the client; id, room, sender and origin are the hub's.
    const notification: Notification = { id: crypto.randomUUID(), roomId, userId, origin: "client", data: parsed.value.data };
    const size = checkFrameSize(notification);
    if (!size.ok) return reject(size.code, size.reason);

    try {
      // Stored in the room's stream (origin "client") before anyone gets it, like the app's frames.
      const { frame, seq } = await frameToSend(deps.db, deps.streams, notification);
      const result = await fanOutToRoom(deps, notification, frame);
      if (result.failed.length > 0) {
        if (!deps.enqueueChunks) return reject("delivery_incomplete", `${result.failed.length} connection(s) did not receive the message`);
        await deps.enqueueChunks(notification, [result.failed], frame);
      }
      deps.log.info("client message delivered", {
        connection_id: connectionId,
        room_id: roomId,
        message_id: notification.id,
        seq,
        delivered: result.delivered,
        gone: result.gone,
        retried_via_queue: result.failed.length,
        handed_off: result.handedOff,
      });
      return { statusCode: 200, body: "Data sent" };
    } catch (err) {
      deps.log.error("client message not delivered", { connection_id: connectionId, room_id: roomId, ...describeError(err) });
      return reject("delivery_failed", "the message could not be delivered; try again");
    }
  };
}

export function sendMessageFromEnvironment(source: HandlerSource = lambdaSource("sendMessage")) {
  return createSendMessageHandler(fanoutFrom(source));
}
