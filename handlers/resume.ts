/**
 * `resume` route (docs/protocol.md#resume): `{"action":"resume","room_id":"acme","after":41}` or
 * `"last":20`. Sends this connection the stored frames of the room's stream in seq order,
 * at most 1,000, then `hub.resumed`. Frames are the stored bytes, the same a live client got.
 *
 * Posts go one after another (each awaited): API Gateway keeps the order of one
 * connection's posts only that way. Answers with `hub.error` for a malformed request
 * (`invalid_resume`), a room the connection is not subscribed to (`not_subscribed`), a
 * hub whose streams are off (`streams_off`, `history.retentionHours` 0), and a connection
 * whose replay budget is spent (`resume_throttled`, core/replayBudget.ts: frames per
 * connection per window, with `retry_after_ms`). Refusals of a readable request name its room,
 * so a client resuming several rooms knows which one to ask again.
 *
 * The budget is charged before the frames are read, for as many as will be sent: the head is
 * read first (one small consistent Query), then the charge (one conditional UpdateItem on the
 * connection row), then at most that many frames. A window with fewer frames left than asked
 * for gives a short page, answered `too_many` like any page, so the client asks for the rest.
 */
import type { PostDeps } from "../core/connections";
import { postWithRetries } from "../core/connections";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { describeError } from "../core/log";
import { controlFrame, fail, normalizeId, parseJsonObject, type ErrorAbout, type Parsed, type ResumedInfo } from "../core/messages";
import type { HubErrorCode } from "../core/errorCodes";
import { sendControlFrame, sendErrorFrame } from "../core/reply";
import { chargeReplay, DEFAULT_REPLAY_BUDGET, type ReplayBudget } from "../core/replayBudget";
import { getConnection } from "../core/tables";
import { fanoutFrom, lambdaSource, presenceFrom, type HandlerSource } from "./dependencies";
import { keepAliveOf, type PresenceDeps } from "../core/presence";
import { headSeq, MAX_FRAMES_PER_READ, readStream, subscribedStreams, type StreamSettings } from "../core/streams";

export interface ResumeDeps extends PostDeps {
  /** Unset or retention 0: streams are off. */
  streams?: StreamSettings;
  /** Frames per connection per window (default DEFAULT_REPLAY_BUDGET); at least MAX_FRAMES_PER_READ. */
  replayBudget?: ReplayBudget;
  now?: () => number;
  /** Presence on: `hub.resumed` tells `keep_alive_ms`, as `hub.subscribed` does (a one-room token's client never subscribes, but resumes its room on open). */
  presence?: PresenceDeps;
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
  const budget = deps.replayBudget ?? DEFAULT_REPLAY_BUDGET;
  if (!(Number.isSafeInteger(budget.frames) && budget.frames >= MAX_FRAMES_PER_READ && budget.windowSeconds > 0)) {
    throw new RangeError(`replayBudget: frames must be a whole number of at least ${MAX_FRAMES_PER_READ} (one page) and windowSeconds positive`);
  }
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    let about: ErrorAbout | undefined;
    const reject = async (code: HubErrorCode, message: string, statusCode = 400, extra?: ErrorAbout): Promise<WebSocketResult> => {
      deps.log.info("resume rejected", { connection_id: connectionId, code });
      await sendErrorFrame(deps.management, connectionId, code, message, deps.log, about || extra ? { ...about, ...extra } : undefined);
      return { statusCode, body: code };
    };
    const parsed = parseResumeRequest(event.body);
    if (!parsed.ok) return reject(parsed.code, parsed.reason);
    const { roomId } = parsed.value;
    // Every later refusal names the room. Never `unknown_connection`: that code also answers a
    // subscribe, and a client would take it, by the room, for its subscribe's answer.
    about = { room_id: roomId };
    const streams = deps.streams;
    if (!streams || streams.retentionHours <= 0) return reject("streams_off", "this hub keeps no history (history.retentionHours is 0)");

    let who;
    try {
      // The row, not the authorizer's context: rooms change after $connect.
      who = await getConnection(deps.db, deps.connectionsTable, connectionId);
    } catch (err) {
      deps.log.error("connection row lookup failed", { connection_id: connectionId, ...describeError(err) });
      return reject("resume_failed", "the resume could not be served; try again", 500);
    }
    if (!who) {
      about = undefined;
      return reject("unknown_connection", "this connection is not registered");
    }
    if (!subscribedStreams(who).includes(roomId)) return reject("not_subscribed", `this connection is not subscribed to room ${JSON.stringify(roomId)}`);

    try {
      const head = await headSeq(deps.db, streams.streamsTable, roomId);
      const after = parsed.value.last !== undefined ? Math.max(0, head - parsed.value.last) : (parsed.value.after ?? 0);
      const wanted = Math.min(MAX_FRAMES_PER_READ, Math.max(0, head - after));
      const charge = await chargeReplay(deps.db, deps.connectionsTable, connectionId, wanted, who.replay, budget, (deps.now ?? Date.now)());
      if (!charge.ok) {
        return reject("resume_throttled", `this connection was sent its ${budget.frames} replayed frames for this ${budget.windowSeconds} s window; resume again in ${charge.retryAfterMs} ms`, 429, {
          retry_after_ms: charge.retryAfterMs,
        });
      }
      // Nothing to send (or nothing allowed): the head is the answer; no frame read.
      const read = charge.frames > 0 ? await readStream(deps.db, streams.streamsTable, roomId, { after, limit: charge.frames }) : { frames: [], lastSeq: head, gone: false, truncated: false, after, inFlight: false };
      for (const stored of read.frames) {
        const outcome = await postWithRetries(deps, connectionId, deps.management.prepare(stored.frame));
        if (outcome !== "delivered") {
          deps.log.warn("resume cut short", { connection_id: connectionId, room_id: roomId, seq: stored.seq, outcome });
          if (outcome === "gone") return { statusCode: 410, body: "resume cut short" };
          // Best effort (the posts are failing): a client that hears it asks again sooner than its timeout.
          return reject("resume_failed", "the replay could not be posted; try again", 500);
        }
      }
      const info: ResumedInfo = { room_id: roomId, after: read.after, last_seq: read.lastSeq, recovered: true, ...(read.inFlight ? { in_flight: true as const } : {}), ...keepAliveOf(deps.presence) };
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
  const fanout = fanoutFrom(source);
  return createResumeHandler({ ...fanout, presence: presenceFrom(source, fanout.management) });
}
