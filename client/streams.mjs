// @ts-check
/**
 * Room streams on the client's side (docs/protocol.md "Room streams"): frames carry `seq`, consecutive
 * per room. Each Room (client/rooms.mjs) keeps its last seq, the frames that came ahead of it,
 * its resume on the wire and the timer of its next one; this module hands subscribers each
 * frame once and in seq order. A frame ahead of the next expected seq waits until the missing
 * ones arrive (live or replayed); a gap that stays open asks the hub for a resume.
 *
 * Every gap ends, whatever the hub does:
 * - a resume that fails (`hub.error` such as `resume_failed`, or no answer in resumeTimeoutMs)
 *   is sent again after a backoff that doubles (minBackoffMs up to maxBackoffMs); one refused
 *   `resume_throttled` waits at least the hub's `retry_after_ms`. After RESUME_ATTEMPTS
 *   failures in a row (RESUME_THROTTLED_ATTEMPTS refusals for the budget), or at once for a
 *   refusal that cannot pass (`not_subscribed`, ...), the client gives up on the gap: onGap,
 *   then the buffer is handed out past it;
 * - frames the hub's answer says it sent but that never came (`recovered: true` below its
 *   `last_seq`) are a gap no resume fills: onGap (`not_replayed`), and on past it, no second resume;
 * - a frame that was waiting when the resume went and is beyond the head the hub read is not in
 *   the stream (the hub stores a frame before it sends it): dropped, onInvalidFrame (`beyond_head`),
 *   unless the answer says a seq is still in flight (`in_flight`): then it waits for the next resume;
 * - the buffer holds at most maxBufferedFrames per room: past it, onGap (`buffer_full`) and the
 *   buffer is handed out past the gap.
 * A gap the hub cannot fill (`recovered: false`) goes to onGap and the buffer is handed out past it.
 * A tombstone (`{"seq":N,"room_id":R,"skip":true}`, a seq whose writer died) counts in
 * sequence and reaches no subscriber.
 */
import { backoffDelay, callApp } from "./connection.mjs";
import { isTemporary } from "./codes.mjs";

/** @typedef {import("./index.mjs").HubFrame} HubFrame */
/** @typedef {import("./index.mjs").GapInfo} GapInfo */
/** @typedef {import("./index.mjs").HubErrorData} HubErrorData */
/** @typedef {import("./index.mjs").InvalidFrame} InvalidFrame */
/** @typedef {import("./rooms.mjs").Room} Room */
/** @typedef {{ room_id: string, after: number, last_seq: number, recovered: boolean, reason?: string, in_flight?: boolean }} ResumedInfo */

/** How long a seq gap may stay open (a frame overtaken by the next one) before asking for a resume. */
export const GAP_WAIT_MS = 300;
/** How long a resume may go unanswered (a replay whose posts failed sends nothing) before it counts as failed. */
export const RESUME_TIMEOUT_MS = 10_000;
/** Failed resumes in a row for one room before the client gives up on its gap. */
export const RESUME_ATTEMPTS = 6;
/** `resume_throttled` refusals in a row for one room before the client gives up on its gap (each waits out the hub's window). */
export const RESUME_THROTTLED_ATTEMPTS = 60;
/** Frames one room may hold ahead of a gap. */
export const MAX_BUFFERED_FRAMES = 5_000;

export class Streams {
  #deps;

  /**
   * @param {{
   *   dispatch: (frame: HubFrame) => void,
   *   connection: import("./connection.mjs").Connection,
   *   gapWaitMs: number,
   *   resumeTimeoutMs: number,
   *   maxBufferedFrames: number,
   *   onGap: ((gap: GapInfo) => void) | undefined,
   *   onInvalidFrame: ((invalid: InvalidFrame) => void) | undefined,
   * }} deps
   */
  constructor(deps) {
    this.#deps = deps;
  }

  /**
   * Hands a frame to subscribers, unless it is a tombstone: a seq that holds no notification.
   * @param {HubFrame} frame
   */
  #hand(frame) {
    if (/** @type {{ skip?: unknown }} */ (frame).skip !== true) this.#deps.dispatch(frame);
  }

  /**
   * A frame of a room's stream (a room not left), its seq a whole number from 1 (index.mjs checks).
   * @param {Room} room
   * @param {HubFrame} frame
   */
  onFrame(room, frame) {
    const seq = /** @type {number} */ (frame.seq);
    const last = room.lastSeq;
    if (last === undefined && room.resume?.after === undefined) {
      room.advance(seq);
      this.#hand(frame);
      return;
    }
    if (last !== undefined && seq <= last) return; // seen (redelivered, or replayed and live)
    room.buffer ??= new Map();
    room.buffer.set(seq, frame);
    if (room.buffer.size > this.#deps.maxBufferedFrames) return this.#giveUp(room, "buffer_full");
    if (last !== undefined) this.drain(room);
  }

  /**
   * Hands subscribers every buffered frame that is next in line; a gap left open gets its resume
   * timer (the gap wait, or the backoff after failed resumes).
   * @param {Room} room
   */
  drain(room) {
    const buffer = room.buffer;
    if (!buffer) return;
    let handed = false;
    for (;;) {
      const last = room.lastSeq ?? 0;
      for (const seq of buffer.keys()) if (seq <= last) buffer.delete(seq);
      const next = buffer.get(last + 1);
      if (!next) break;
      buffer.delete(last + 1);
      room.advance(last + 1);
      this.#hand(next);
      handed = true;
    }
    if (buffer.size === 0) {
      room.buffer = undefined;
      // In seq order with nothing ahead: no gap is known, so no resume is owed.
      if (handed) this.#settled(room);
    } else if (room.resume?.after === undefined && !room.gapTimer) {
      // A gap: the missing frame may just be late (another delivery overtook it); if it stays
      // missing, the stream has it (stored before sent): ask for it.
      this.#resumeLater(room, room.resumeFailures === 0 ? this.#deps.gapWaitMs : backoffDelay(room.resumeFailures - 1, this.#deps.connection.backoff));
    }
  }

  /**
   * Asks for the frames after the last one this room handed out (or, with none yet, where the stream stands).
   * @param {Room} room
   */
  resume(room) {
    clearTimeout(room.gapTimer);
    room.gapTimer = undefined;
    if (!this.#deps.connection.isOpen) return; // resumed on the next open
    const after = room.lastSeq;
    clearTimeout(room.resume?.timer);
    // Frames wait in the buffer only while a resume can fill the gap before them.
    room.resume = {
      after,
      handedBefore: after ?? 0,
      waiting: new Set(room.buffer?.keys() ?? []),
      timer: after === undefined ? undefined : setTimeout(() => this.#onNoAnswer(room), this.#deps.resumeTimeoutMs),
    };
    this.#deps.connection.sendNow(after === undefined ? { action: "resume", room_id: room.id, last: 0 } : { action: "resume", room_id: room.id, after });
  }

  /**
   * @param {Room} room
   * @param {ResumedInfo} info
   */
  onResumed(room, info) {
    const asked = room.resume;
    // Answers carry no request id; `after` is the one asked (or, for `last: 0`, the head). Another is a late answer of an earlier resume.
    const answers = asked !== undefined && (asked.after === undefined || asked.after === info.after);
    if (answers) {
      clearTimeout(asked.timer);
      room.resume = undefined;
    }
    if (room.left) return; // asked before the room was left
    if (room.lastSeq === undefined) {
      // The baseline for a client that has seen nothing yet: later frames follow last_seq.
      if (info.recovered) room.advance(info.last_seq);
      return this.drain(room);
    }
    if (info.after > info.last_seq) {
      // The stream started over (everything expired): what waited was of the old one; the new one counts from its head.
      this.#reportGap(room, { roomId: room.id, after: info.after, lastSeq: info.last_seq, reason: info.reason ?? "retention_exceeded" });
      this.#handOutPast(room, Infinity);
      room.advance(info.last_seq);
      return this.#settled(room);
    }
    if (answers && asked.after !== undefined && !info.in_flight) {
      // Waiting when the resume went, beyond the head the hub then read: not in the stream.
      // Unless a seq below the stream's newest is still in flight: then last_seq stops before
      // it, frames beyond it are real, and the gap is asked for again later.
      for (const seq of asked.waiting) {
        const frame = seq > info.last_seq ? room.buffer?.get(seq) : undefined;
        if (!frame) continue;
        room.buffer?.delete(seq);
        callApp(this.#deps.onInvalidFrame, { reason: "beyond_head", frame, roomId: room.id });
      }
    }
    this.drain(room);
    const last = room.lastSeq;
    if (last < info.last_seq) {
      if (info.reason === "too_many") {
        // A page arrived: ask for the next one. A page that brought nothing counts as a failed resume.
        if (!answers) return; // a late page: the resume on the wire, or the one due, goes on from here
        if (last > asked.handedBefore) {
          room.resumeFailures = 0;
          return this.resume(room);
        }
        return this.#failed(room, "not_replayed");
      }
      if (!info.recovered) {
        this.#reportGap(room, { roomId: room.id, after: info.after, lastSeq: info.last_seq, reason: info.reason ?? "unknown" });
        this.#handOutPast(room, info.last_seq);
      } else if (last >= info.after) {
        // The hub says it sent every frame up to last_seq, and some never came: no resume brings them.
        this.#reportGap(room, { roomId: room.id, after: last, lastSeq: info.last_seq, reason: "not_replayed" });
        this.#handOutPast(room, info.last_seq);
      }
    }
    if (!answers) return this.drain(room);
    // Everything up to the hub's head is settled. A resume that moved nothing on while a gap stays open still counts as failed.
    if ((room.lastSeq ?? 0) > asked.handedBefore || !room.buffer) {
      room.resumeFailures = 0;
    } else {
      room.resumeFailures++;
      clearTimeout(room.gapTimer); // the next one waits the backoff, not the gap wait
      room.gapTimer = undefined;
    }
    if (room.resumeFailures >= RESUME_ATTEMPTS) return this.#giveUp(room, "resume_failed");
    this.drain(room);
  }

  /**
   * A `hub.error` answering this room's resume.
   * @param {Room} room
   * @param {HubErrorData} error
   */
  onResumeError(room, error) {
    const asked = room.resume;
    if (!asked) return; // not on the wire any more (timed out, or the socket ended)
    clearTimeout(asked.timer);
    room.resume = undefined;
    if (room.left || asked.after === undefined) return; // a baseline: the first frame sets it
    const temporary = typeof error.temporary === "boolean" ? error.temporary : isTemporary(error.code);
    if (!temporary) return this.#giveUp(room, String(error.code));
    this.#failed(room, String(error.code), error.code === "resume_throttled" ? error.retry_after_ms : undefined);
  }

  /** @param {Room} room */
  #onNoAnswer(room) {
    const asked = room.resume;
    if (!asked) return;
    room.resume = undefined;
    if (!room.left) this.#failed(room, "timeout");
  }

  /**
   * A resume did not fill the gap: ask again after a backoff, or give up after too many.
   * @param {Room} room
   * @param {string} code
   * @param {unknown} [retryAfterMs] the hub's wait (resume_throttled)
   */
  #failed(room, code, retryAfterMs) {
    const backoff = this.#deps.connection.backoff;
    if (code === "resume_throttled") {
      room.resumeThrottled++;
      if (room.resumeThrottled >= RESUME_THROTTLED_ATTEMPTS) return this.#giveUp(room, "resume_failed");
      const wait = typeof retryAfterMs === "number" && Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? Math.min(retryAfterMs, 10 * backoff.maxBackoffMs) : backoff.maxBackoffMs;
      // Jittered: every resume refused in one window must not all come back at its end together.
      return this.#resumeLater(room, wait + Math.floor(Math.random() * Math.max(backoff.minBackoffMs, wait / 2)));
    }
    room.resumeFailures++;
    if (room.resumeFailures >= RESUME_ATTEMPTS) return this.#giveUp(room, "resume_failed");
    this.#resumeLater(room, backoffDelay(room.resumeFailures - 1, backoff));
  }

  /**
   * @param {Room} room
   * @param {number} delayMs
   */
  #resumeLater(room, delayMs) {
    clearTimeout(room.gapTimer);
    room.gapTimer = setTimeout(() => {
      room.gapTimer = undefined;
      if (!room.left) this.resume(room);
    }, delayMs);
  }

  /**
   * Gives up on the room's gap: onGap, then everything buffered goes out in seq order.
   * @param {Room} room
   * @param {string} reason
   */
  #giveUp(room, reason) {
    const after = room.lastSeq ?? 0;
    const newest = Math.max(after, ...(room.buffer?.keys() ?? []));
    this.#reportGap(room, { roomId: room.id, after, lastSeq: newest, reason });
    this.#handOutPast(room, Infinity);
    this.#settled(room);
  }

  /**
   * No gap owed: the resume timer goes and the failure counts start again.
   * @param {Room} room
   */
  #settled(room) {
    clearTimeout(room.gapTimer);
    room.gapTimer = undefined;
    room.resumeFailures = 0;
    room.resumeThrottled = 0;
    this.drain(room);
  }

  /**
   * @param {Room} room
   * @param {GapInfo} gap
   */
  #reportGap(room, gap) {
    callApp(this.#deps.onGap, gap);
    callApp(room.onGap, gap);
  }

  /**
   * Hands out, in seq order, the buffered frames up to `upTo`, past any gap, and moves the last
   * seq to `upTo` (when finite) or to the last frame handed out.
   * @param {Room} room
   * @param {number} upTo
   */
  #handOutPast(room, upTo) {
    const buffer = room.buffer;
    for (const seq of [...(buffer?.keys() ?? [])].sort((a, b) => a - b)) {
      if (seq > upTo) break;
      const frame = /** @type {HubFrame} */ (buffer?.get(seq));
      buffer?.delete(seq);
      if (seq <= (room.lastSeq ?? 0)) continue;
      room.advance(seq);
      this.#hand(frame);
    }
    if (!room.buffer?.size) {
      // Nothing ahead any more: the gap this timer waited on is settled.
      room.buffer = undefined;
      clearTimeout(room.gapTimer);
      room.gapTimer = undefined;
    }
    if (Number.isFinite(upTo) && (room.lastSeq ?? 0) < upTo) room.advance(upTo);
  }
}
