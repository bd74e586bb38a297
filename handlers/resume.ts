/**
 * `resume` route (docs/protocol.md#resume): `{"action":"resume","room_id":"acme","after":41}` or
 * `"last":20`. Sends this connection the stored frames of the room's stream in seq order,
 * at most 1,000, then `hub.resumed`. Frames are the stored bytes, the same a live client got.
 *
 * Posts go one after another (each awaited): API Gateway keeps the order of one
 * connection's posts only that way. Answers with `hub.error` for a malformed request
 * (`invalid_resume`), a room the connection is not subscribed to (`not_subscribed`), and a
 * hub whose streams are off (`streams_off`, `history.retentionHours` 0).
 */
import type { PostDeps } from "../core/connections";
import { postWithRetries } from "../core/connections";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { describeError } from "../core/log";
import { controlFrame, fail, normalizeId, parseJsonObject, type Parsed, type ResumedInfo } from "../core/messages";
import type { HubErrorCode } from "../core/errorCodes";
import { sendControlFrame, sendErrorFrame } from "../core/reply";
import { getConnection } from "../core/tables";
import { fanoutFrom, lambdaSource, type HandlerSource } from "./dependencies";
import { MAX_FRAMES_PER_READ, readStream, subscribedStreams, type StreamSettings } from "../core/streams";

export interface ResumeDeps extends PostDeps {
  /** Unset or retention 0: streams are off. */
  streams?: StreamSettings;
}

export interface ResumeRequest {
  roomId: string;
  after?: number;
  last?: number;
}

const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Validates a resume frame; messages name the key and the allowed range. */
export function parseResumeRequest(body: string | null | undefined): Parsed<ResumeRequest, "invalid_json" | "invalid_resume"> {
  const object = parseJsonObject(body ?? "", "the message", "invalid_resume");
  if (!object.ok) return object;
  const parsed = object.value;
  const room = normalizeId(parsed.room_id, "room_id");
  if (!room.ok) return fail("invalid_resume", room.reason);
  const { after, last } = parsed;
  if ((after === undefined) === (last === undefined)) return fail("invalid_resume", 'send exactly one of "after" (the last seq you have) or "last" (how many of the newest)');
  if (after !== undefined && (!Number.isSafeInteger(after) || (after as number) < 0 || (after as number) > MAX_SEQ)) {
    return fail("invalid_resume", `after must be a whole number from 0 to ${MAX_SEQ}`);
  }
  if (last !== undefined && (!Number.isSafeInteger(last) || (last as number) < 0 || (last as number) > MAX_FRAMES_PER_READ)) {
    return fail("invalid_resume", `last must be a whole number from 0 to ${MAX_FRAMES_PER_READ}`);
  }
  return { ok: true, value: { roomId: room.value, after: after as number | undefined, last: last as number | undefined } };
}

export function createResumeHandler(deps: ResumeDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    const reject = async (code: HubErrorCode, message: string, statusCode = 400): Promise<WebSocketResult> => {
      deps.log.info("resume rejected", { connection_id: connectionId, code });
      await sendErrorFrame(deps.management, connectionId, code, message, deps.log);
      return { statusCode, body: code };
    };
    const parsed = parseResumeRequest(event.body);
    if (!parsed.ok) return reject(parsed.code, parsed.reason);
    const streams = deps.streams;
    if (!streams || streams.retentionHours <= 0) return reject("streams_off", "this hub keeps no history (history.retentionHours is 0)");
    const { roomId } = parsed.value;

    let who;
    try {
      // The row, not the authorizer's context: rooms change after $connect.
      who = await getConnection(deps.db, deps.connectionsTable, connectionId);
    } catch (err) {
      deps.log.error("connection row lookup failed", { connection_id: connectionId, ...describeError(err) });
      return reject("resume_failed", "the resume could not be served; try again", 500);
    }
    if (!who) return reject("unknown_connection", "this connection is not registered");
    if (!subscribedStreams(who).includes(roomId)) return reject("not_subscribed", `this connection is not subscribed to room ${JSON.stringify(roomId)}`);

    try {
      const read = await readStream(deps.db, streams.streamsTable, roomId, { after: parsed.value.after, last: parsed.value.last });
      for (const stored of read.frames) {
        const outcome = await postWithRetries(deps, connectionId, deps.management.prepare(stored.frame));
        if (outcome !== "delivered") {
          deps.log.warn("resume cut short", { connection_id: connectionId, room_id: roomId, seq: stored.seq, outcome });
          return { statusCode: outcome === "gone" ? 410 : 500, body: "resume cut short" };
        }
      }
      const info: ResumedInfo = { room_id: roomId, after: read.after, last_seq: read.lastSeq, recovered: true };
      // A stream that restarted (everything expired, seq began again) is a gap too.
      if (read.gone || read.after > read.lastSeq) Object.assign(info, { recovered: false, reason: "retention_exceeded" });
      else if (read.truncated) Object.assign(info, { recovered: false, reason: "too_many" });
      await sendControlFrame(deps.management, connectionId, controlFrame("hub.resumed", info), deps.log);
      deps.log.info("resumed", { connection_id: connectionId, room_id: roomId, after: read.after, last_seq: read.lastSeq, sent: read.frames.length, reason: info.reason });
      return { statusCode: 200, body: "Resumed" };
    } catch (err) {
      deps.log.error("resume failed", { connection_id: connectionId, room_id: roomId, ...describeError(err) });
      return reject("resume_failed", "the resume could not be served; try again", 500);
    }
  };
}

export function resumeFromEnvironment(source: HandlerSource = lambdaSource("resume")) {
  // What a resume needs of the fan-out dependencies: db, post path, connections table, streams.
  return createResumeHandler(fanoutFrom(source));
}
