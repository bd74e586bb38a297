// @ts-check
/**
 * Room streams on the client's side (README "Room streams"): frames carry `seq`, consecutive
 * per room. Each Room (client/rooms.mjs) keeps its last seq, the frames that came ahead of it
 * and its gap timer; this module hands subscribers each frame once and in seq order. A frame
 * ahead of the next expected seq waits until the missing ones arrive (live or replayed); a gap
 * that stays open asks the hub for a resume; a gap the hub cannot fill (`recovered: false`)
 * goes to onGap and the buffer is handed out past it. A tombstone (`{"seq":N,"room_id":R,"skip":true}`,
 * a seq whose writer died) counts in sequence and reaches no subscriber.
 */
import { callApp } from "./connection.mjs";

/** @typedef {import("./index.mjs").HubFrame} HubFrame */
/** @typedef {import("./index.mjs").GapInfo} GapInfo */
/** @typedef {import("./rooms.mjs").Room} Room */
/** @typedef {{ room_id: string, after: number, last_seq: number, recovered: boolean, reason?: string }} ResumedInfo */

/** How long a seq gap may stay open (a frame overtaken by the next one) before asking for a resume. */
export const GAP_WAIT_MS = 300;

export class Streams {
  #deps;

  /**
   * @param {{
   *   dispatch: (frame: HubFrame) => void,
   *   connection: import("./connection.mjs").Connection,
   *   gapWaitMs: number,
   *   onGap: ((gap: GapInfo) => void) | undefined,
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
   * A frame of a room's stream (a room not left).
   * @param {Room} room
   * @param {HubFrame} frame
   */
  onFrame(room, frame) {
    const seq = /** @type {number} */ (frame.seq);
    const last = room.lastSeq;
    if (last === undefined && !room.resuming) {
      room.advance(seq);
      this.#hand(frame);
      return;
    }
    if (last !== undefined && seq <= last) return; // seen (redelivered, or replayed and live)
    room.buffer ??= new Map();
    room.buffer.set(seq, frame);
    if (last !== undefined) this.drain(room);
  }

  /**
   * Hands subscribers every buffered frame that is next in line.
   * @param {Room} room
   */
  drain(room) {
    const buffer = room.buffer;
    if (!buffer) return;
    for (;;) {
      const last = room.lastSeq ?? 0;
      for (const seq of buffer.keys()) if (seq <= last) buffer.delete(seq);
      const next = buffer.get(last + 1);
      if (!next) break;
      buffer.delete(last + 1);
      room.advance(last + 1);
      this.#hand(next);
    }
    if (buffer.size === 0) {
      room.buffer = undefined;
      clearTimeout(room.gapTimer);
      room.gapTimer = undefined;
    } else if (!room.resuming && !room.gapTimer) {
      // A gap: the missing frame may just be late (another delivery overtook it); if it stays
      // missing, the stream has it (stored before sent): ask for it.
      room.gapTimer = setTimeout(() => {
        room.gapTimer = undefined;
        if (room.buffer?.size) this.resume(room);
      }, this.#deps.gapWaitMs);
    }
  }

  /**
   * Asks for the frames after the last one this room handed out (or, with none yet, where the stream stands).
   * @param {Room} room
   */
  resume(room) {
    if (!this.#deps.connection.isOpen) return; // resumed on the next open
    const after = room.lastSeq;
    // Frames wait in the buffer only while a resume can fill the gap before them.
    if (after !== undefined) room.resuming = true;
    this.#deps.connection.sendNow(after === undefined ? { action: "resume", room_id: room.id, last: 0 } : { action: "resume", room_id: room.id, after });
  }

  /**
   * @param {Room} room
   * @param {ResumedInfo} info
   */
  onResumed(room, info) {
    room.resuming = false;
    if (room.left) return; // asked before the room was left
    if (room.lastSeq === undefined && info.recovered) {
      // The baseline for a client that has seen nothing yet: later frames follow last_seq.
      room.advance(info.last_seq);
    } else if (info.reason === "too_many") {
      // A page of 1,000 arrived; ask for the next one.
      this.drain(room);
      if ((room.lastSeq ?? 0) < info.last_seq) this.resume(room);
      return;
    } else if (!info.recovered) {
      /** @type {GapInfo} */
      const gap = { roomId: room.id, after: info.after, lastSeq: info.last_seq, reason: info.reason ?? "unknown" };
      callApp(this.#deps.onGap, gap);
      callApp(room.onGap, gap);
      // A stream that started over (everything expired) counts from its new head.
      if ((room.lastSeq ?? 0) > info.last_seq) room.advance(info.last_seq);
      this.#flushPast(room);
      if ((room.lastSeq ?? 0) < info.last_seq) room.advance(info.last_seq);
    }
    this.drain(room);
  }

  /**
   * Gives up on a gap the hub cannot fill: everything buffered goes out in seq order.
   * @param {Room} room
   */
  #flushPast(room) {
    const buffer = room.buffer;
    room.buffer = undefined;
    for (const seq of [...(buffer?.keys() ?? [])].sort((a, b) => a - b)) {
      if (seq <= (room.lastSeq ?? 0)) continue;
      room.advance(seq);
      this.#hand(/** @type {HubFrame} */ (buffer?.get(seq)));
    }
  }
}
