/**
 * A `ws` WebSocket for the browser client module (client/index.mjs) that a test can cut off and
 * watch: `cut()` terminates the open socket and sends reconnects to a port nobody listens on
 * until `restore()`, so notifications are published while the client is away for sure; every
 * frame the client sends or gets is logged in order, so a test can check what went over the
 * wire, not just the outcome.
 */
import { WebSocket } from "ws";

/** One frame on the client's wire: `out` as the client sent it, `in` before the client saw it; `socket`: a new socket (frame empty). */
export interface WireEntry {
  dir: "out" | "in" | "socket";
  frame: { action?: string; room_id?: string | null; data?: { type?: string; data?: { room_id?: string } } };
}

/** A frame's JSON; anything else is logged as an empty frame (the client ignores it too). */
function parsed(text: string): WireEntry["frame"] {
  try {
    const frame: unknown = JSON.parse(text);
    return typeof frame === "object" && frame !== null ? frame : {};
  } catch {
    return {};
  }
}

export function gatedWebSocket() {
  /** `closeOnForcedClose`: the hub's forced close (1001, API Gateway's 2 hours) cuts the gate too. */
  const state = { closed: false, sockets: [] as WebSocket[], closeOnForcedClose: false };
  const wire: WireEntry[] = [];
  class Gated extends WebSocket {
    // protocols passed on: the client module sends its token there.
    constructor(url: string, protocols?: string | string[]) {
      super(state.closed ? "ws://127.0.0.1:9/" : url, protocols);
      state.sockets.push(this);
      wire.push({ dir: "socket", frame: {} });
      this.on("close", (code) => {
        if (code === 1001 && state.closeOnForcedClose) state.closed = true;
      });
      this.on("error", () => undefined);
      // Registered before the client's onmessage, so an answer is logged before what the client sends in reply.
      this.on("message", (data) => wire.push({ dir: "in", frame: parsed(String(data)) }));
    }
    override send(data: string, ...rest: unknown[]) {
      wire.push({ dir: "out", frame: parsed(data) });
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  }
  return {
    WebSocket: Gated as unknown as typeof globalThis.WebSocket,
    state,
    wire,
    cut() {
      state.closed = true;
      state.sockets.at(-1)?.terminate();
    },
    restore() {
      state.closed = false;
    },
  };
}

/**
 * Checks the client's rule on a wire log: a room's subscribe/unsubscribe goes out only after
 * the previous one's answer (hub.subscribed / hub.unsubscribed / hub.error naming the room, or
 * the socket's end). Returns the most requests of different rooms that were in flight at once.
 */
export function roomRequestsInFlight(wire: WireEntry[]): number {
  const inFlight = new Set<string>();
  let most = 0;
  wire.forEach(({ dir, frame }, index) => {
    if (dir === "socket") inFlight.clear();
    if (dir === "out" && (frame.action === "subscribe" || frame.action === "unsubscribe")) {
      const room = String(frame.room_id);
      if (inFlight.has(room)) throw new Error(`a second request for room ${room} went out before the first was answered (wire entry ${index})`);
      inFlight.add(room);
      most = Math.max(most, inFlight.size);
    }
    const type = frame.data?.type;
    const about = frame.data?.data?.room_id;
    if (dir === "in" && frame.room_id === null && (type === "hub.subscribed" || type === "hub.unsubscribed" || type === "hub.error") && typeof about === "string") {
      inFlight.delete(about);
    }
  });
  return most;
}
