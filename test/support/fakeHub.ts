/**
 * A fake hub for the browser client's tests (client/index.mjs): no Lambdas, no sockets, every
 * frame in the test's hands, so a test can order what a real hub would leave to chance.
 *
 * The hub as API Gateway runs it: every request a Lambda of its own, finishing in any order (the
 * test picks which). Rooms r0 and r1 are granted, r2 is not. It fails the test if a room gets a
 * second request while one is unanswered, the rule the client keeps, unless the client gave
 * the first up (`giveUp()`, before its timeout runs): that one may still run late and answer.
 * `drop()` ends the connection as API Gateway would: its memberships and unanswered requests die with it.
 * `$connect` puts each connection in `connectRooms` (the token's room, the user's channel).
 *
 * Streams as the hub keeps them: every frame of `frame()` and `miss()` is stored, and a resume is
 * answered by replaying the stored frames after `after` (or the newest `last`) and `hub.resumed`,
 * unless `resumeWith` says otherwise for that request (a failure, no answer, a wrong answer).
 */
export type FakeResumeOutcome =
  | "replay"
  /** No answer at all: the replay's posts failed (the handler returns 500 and sends nothing). */
  | "silent"
  /** `hub.error` with this code; `named`: with the room (this hub's handler), else without (an older one). */
  | { error: string; named?: boolean; retry_after_ms?: number }
  /** `hub.resumed` with these fields over the true ones, after replaying the stored frames unless `replay` is false. */
  | { resumed: { after?: number; last_seq?: number; recovered?: boolean; reason?: string; in_flight?: boolean }; replay?: boolean };

export function reorderingHub(connectRooms: string[] = []) {
  const members = new Set<string>();
  /** Each room's last seq, as `hub.subscribed` reports it. */
  const heads = new Map<string, number>();
  /** Each room's stored frames by seq. */
  const stored = new Map<string, Map<number, object>>();
  const resumes: string[] = [];
  let resumeWith: (request: { room: string; after?: number; last?: number }, index: number) => FakeResumeOutcome = () => "replay";
  const unanswered: { action: string; room: string; late?: boolean }[] = [];
  const sent: string[] = [];
  let violation: string | undefined;
  let socket: FakeSocket | undefined;
  let sockets = 0;
  let refusals = 0;
  const send = (frame: object) => socket?.onmessage?.({ data: JSON.stringify(frame) } as MessageEvent);
  const answer = (type: string, data: object) => send({ room_id: null, user_id: null, data: { type, data } });
  /** The `pick`-th unanswered request, taken off. A late one's answer may be taken for a newer one of its room (no request ids), which the client then no longer waits for. */
  const take = (pick: number) => {
    const [request] = unanswered.splice(pick % unanswered.length, 1);
    if (request.late) for (const other of unanswered) if (other.room === request.room) other.late = true;
    return request;
  };
  const resume = (room: string, after: number | undefined, last: number | undefined, outcome: FakeResumeOutcome) => {
    if (outcome === "silent") return;
    if (typeof outcome === "object" && "error" in outcome) {
      const { error, named, ...extra } = outcome;
      return answer("hub.error", { ...(named ? { room_id: room } : {}), code: error, message: error, ...extra });
    }
    const head = heads.get(room) ?? 0;
    const from = last !== undefined ? Math.max(0, head - last) : (after ?? 0);
    const frames = [...(stored.get(room) ?? new Map<number, object>())].filter(([seq]) => seq > from).sort(([a], [b]) => a - b);
    if (outcome === "replay" || outcome.replay !== false) for (const [, frame] of frames.slice(0, 1000)) send(frame);
    const info = { room_id: room, after: from, last_seq: head, recovered: true, ...(head - from > 1000 ? { recovered: false, reason: "too_many" } : {}) };
    answer("hub.resumed", outcome === "replay" ? info : { ...info, ...outcome.resumed });
  };
  const store = (room: string, seq: number) => {
    const frame = { id: `${room}#${seq}`, room_id: room, user_id: null, origin: "app", seq, data: { type: "n", data: seq } };
    heads.set(room, Math.max(heads.get(room) ?? 0, seq));
    const frames = stored.get(room) ?? new Map<number, object>();
    frames.set(seq, frame);
    stored.set(room, frames);
    return frame;
  };
  class FakeSocket {
    static readonly OPEN = 1;
    readyState = 0;
    onopen?: () => void;
    onmessage?: (event: MessageEvent) => void;
    onclose?: () => void;
    onerror?: () => void;
    constructor() {
      socket = this;
      sockets++;
      if (refusals > 0) {
        // A refused handshake: the browser shows it only as a close before open.
        refusals--;
        queueMicrotask(() => {
          this.readyState = 3;
          if (socket === this) socket = undefined;
          this.onclose?.();
        });
        return;
      }
      for (const room of connectRooms) members.add(room);
      // Opens once the client has set its handlers, as a browser's socket does.
      queueMicrotask(() => {
        this.readyState = FakeSocket.OPEN;
        this.onopen?.();
      });
    }
    send(text: string) {
      const { action, room_id: room, after, last } = JSON.parse(text) as { action: string; room_id: string; after?: number; last?: number };
      if (action === "resume") {
        const outcome = resumeWith({ room, after, last }, resumes.length);
        resumes.push(`${room} after ${after ?? "none"}`);
        return queueMicrotask(() => resume(room, after, last, outcome));
      }
      // The hub refuses every one (invalid_subscribe): the client must know not to ask.
      if (action === "unsubscribe" && room.startsWith("user:")) violation ??= `unsubscribe ${room} sent`;
      if (unanswered.some((r) => r.room === room && !r.late)) violation ??= `${action} ${room} sent while a request for it was unanswered`;
      unanswered.push({ action, room });
      sent.push(`${action} ${room}`);
    }
    close() {}
  }
  return {
    WebSocket: FakeSocket as unknown as typeof globalThis.WebSocket,
    members,
    sent,
    resumes,
    /** The oldest unanswered request's answer is lost on the way (a failed post): the client hears nothing. */
    lose() {
      unanswered.shift();
    },
    /** Every unanswered request is slow: the client will time it out, and it may still run later. */
    giveUp() {
      for (const request of unanswered) request.late = true;
    },
    /** The `pick`-th unanswered request fails with `code` (naming its room, as the handlers do). */
    fail(pick: number, code: string) {
      const { room } = take(pick);
      answer("hub.error", { room_id: room, code, message: code });
    },
    /** The `pick`-th unanswered request, if a subscribe, fails part way (`wrote`: after the membership was written); else it finishes. */
    breakSubscribe(pick: number, wrote: boolean) {
      const { action, room } = unanswered[pick % unanswered.length];
      if (action !== "subscribe") return this.finish(pick);
      if (wrote) members.add(room);
      this.fail(pick, "subscribe_failed");
    },
    /** A frame of a room's stream, as the deliver Lambda stores and posts it. */
    frame(room: string, seq: number) {
      send(store(room, seq));
    },
    /** A frame stored in the room's stream whose live post the client never gets. */
    miss(room: string, seq: number) {
      store(room, seq);
    },
    /** Anything down the socket, as the console's "Send..." posts it (text as is; anything else as its JSON). */
    raw(message: unknown) {
      socket?.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) } as MessageEvent);
    },
    /** How each resume (the index-th since the hub started) is answered; default: "replay". */
    set resumeWith(decide: (request: { room: string; after?: number; last?: number }, index: number) => FakeResumeOutcome) {
      resumeWith = decide;
    },
    get sockets() {
      return sockets;
    },
    get pending() {
      return unanswered.length;
    },
    get violation() {
      return violation;
    },
    /** The next `count` handshakes are refused (the socket closes before it opens). */
    refuse(count: number) {
      refusals = count;
    },
    drop() {
      const dropped = socket;
      socket = undefined;
      members.clear();
      unanswered.length = 0;
      if (dropped) dropped.readyState = 3;
      dropped?.onclose?.();
    },
    /** Runs the `pick`-th unanswered request (mod how many there are) to its end. */
    finish(pick: number) {
      const { action, room } = take(pick);
      if (action === "unsubscribe") {
        members.delete(room);
        answer("hub.unsubscribed", { room_id: room });
      } else if (room === "r2") {
        answer("hub.error", { room_id: room, code: "forbidden", message: "not granted" });
      } else {
        members.add(room);
        answer("hub.subscribed", { room_id: room, last_seq: heads.get(room) ?? 0 });
      }
    },
  };
}

/** A token (unchecked by the client) whose claims name the user kim. */
export const kimToken = `e30.${Buffer.from(JSON.stringify({ user_id: "kim" })).toString("base64url")}.sig`;
