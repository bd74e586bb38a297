/**
 * `sendMessage` route: `{"action":"sendMessage","room_id":"acme","data":...}` from a client is
 * broadcast to that room, one the connection is subscribed to, with `user_id` = the sender.
 * Without `room_id`, the connection's one room (the seed's client); never a user channel,
 * where only the app speaks. A malformed or refused frame gets a `hub.error` frame back to the
 * sender only. A frame with a `ref` gets an answer either way: `hub.sent` (stored and sent, with
 * its id and seq) or `hub.error` naming the ref (docs/protocol.md#sendmessage).
 *
 * The budget (core/budget.ts): the posts take the priority lane, and stop at a deadline set
 * from what is left of the invocation, at most API Gateway's 29 s integration timeout, less
 * the margin deliver keeps too. Without it a big room under a busy budget held its posts back
 * past the timeout: the answer was lost, and a Lambda timeout lost what was not yet posted.
 * Connections not posted to by then (and those still throttled) go back on the notification
 * queue as one chunk with the stored frame (same id, same seq), after a short delay, for
 * deliver to post; they count as sent, never as a failure, and never reach the dead-letter
 * queue because the budget was busy.
 */
import * as crypto from "crypto";
import { DEFERRED_DELAY_SECONDS, postDeadline } from "../core/budget";
import { INTEGRATION_TIMEOUT_MS, type InvocationContext, type WebSocketEvent, type WebSocketResult } from "../core/events";
import { fanOutToRoom, type FanoutDeps } from "../core/fanout";
import { describeError } from "../core/log";
import { checkFrameSize, controlFrame, parseClientMessage, type Notification, type SentInfo } from "../core/messages";
import type { HubErrorCode } from "../core/errorCodes";
import { sendControlFrame, sendErrorFrame } from "../core/reply";
import { isUserChannel } from "../core/rooms";
import { frameToSend } from "../core/streams";
import { getConnection, type ConnectionRow } from "../core/tables";
import { fanoutFrom, lambdaSource, type HandlerSource } from "./dependencies";

/** The room a frame goes to: the named one if the connection is in it, else its only room. */
function targetRoom(row: ConnectionRow, named: string | undefined): { ok: true; roomId: string } | { ok: false; code: HubErrorCode; message: string } {
  if (named !== undefined) {
    if (isUserChannel(named)) return { ok: false, code: "forbidden", message: "room_id must not be a user channel: only the app publishes to users" };
    if (!row.rooms.includes(named)) return { ok: false, code: "forbidden", message: `this connection is not subscribed to room ${JSON.stringify(named)}` };
    return { ok: true, roomId: named };
  }
  if (row.rooms.length === 1) return { ok: true, roomId: row.rooms[0] };
  return {
    ok: false,
    code: "invalid_message",
    message: `room_id is required: this connection is in ${row.rooms.length} rooms; name one of them (subscribe first if it is in none)`,
  };
}

export function createSendMessageHandler(deps: FanoutDeps): (event: WebSocketEvent, context?: InvocationContext) => Promise<WebSocketResult> {
  return async (event, context) => {
    // API Gateway stops waiting after 29 s whatever the Lambda's own timeout; both count from about now.
    const deadline = postDeadline(Math.min(context?.getRemainingTimeInMillis() ?? INTEGRATION_TIMEOUT_MS, INTEGRATION_TIMEOUT_MS));
    const connectionId = event.requestContext.connectionId;
    const parsed = parseClientMessage(event.body);
    const ref = parsed.ref;
    const reject = async (code: HubErrorCode, message: string): Promise<WebSocketResult> => {
      deps.log.info("client message rejected", { connection_id: connectionId, code });
      await sendErrorFrame(deps.management, connectionId, code, message, deps.log, ref === undefined ? undefined : { ref });
      return { statusCode: 400, body: code };
    };
    if (!parsed.ok) return reject(parsed.code, parsed.reason);

    // The row, not the authorizer's context: rooms change after $connect.
    const who = await getConnection(deps.db, deps.connectionsTable, connectionId).catch((err: unknown) => {
      deps.log.error("connection row lookup failed", { connection_id: connectionId, ...describeError(err) });
      return null;
    });
    if (who === null) return reject("delivery_failed", "the message could not be delivered; try again");
    if (!who) return reject("unknown_connection", "this connection is not registered");
    const target = targetRoom(who, parsed.value.roomId);
    if (!target.ok) return reject(target.code, target.message);
    const { userId } = who;
    const { roomId } = target;

    // Only `data` comes from the client; id, room, sender and origin are the hub's.
    const notification: Notification = { id: crypto.randomUUID(), roomId, userId, origin: "client", data: parsed.value.data };
    const size = checkFrameSize(notification);
    if (!size.ok) return reject(size.code, size.reason);

    try {
      // Stored in the room's stream (origin "client") before anyone gets it, like the app's frames.
      const { frame, seq } = await frameToSend(deps.db, deps.streams, notification);
      const result = await fanOutToRoom({ ...deps, lane: "priority", deadline }, notification, frame);
      if (result.failed.length > 0) {
        if (!deps.enqueueChunks) return reject("delivery_incomplete", `${result.failed.length} connection(s) did not receive the message`);
        // Only the budget held these back: give it a moment before deliver tries again.
        const delaySeconds = result.deferred.length === result.failed.length ? DEFERRED_DELAY_SECONDS : undefined;
        await deps.enqueueChunks(notification, [result.failed], frame, { lane: "priority", delaySeconds });
      }
      deps.log.info("client message delivered", {
        connection_id: connectionId,
        room_id: roomId,
        message_id: notification.id,
        seq,
        delivered: result.delivered,
        gone: result.gone,
        retried_via_queue: result.failed.length,
        deferred: result.deferred.length,
        handed_off: result.handedOff,
      });
      if (ref !== undefined) {
        const sent: SentInfo = { ref, room_id: roomId, id: notification.id, ...(seq !== undefined ? { seq } : {}) };
        await sendControlFrame(deps.management, connectionId, controlFrame("hub.sent", sent), deps.log);
      }
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
