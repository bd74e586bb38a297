/**
 * A `ws` WebSocket for the browser client module (client/index.mjs) that a test can cut off and
 * watch: while cut, reconnects go to a port nobody listens on; every frame the client sends or
 * gets is logged in order, so a test can check what went over the wire, not just the outcome.
 */
import { WebSocket } from "ws";

/** One frame on the client's wire: `out` as the client sent it, `in` before the client saw it; `socket`: a new socket (frame empty). */
export interface WireEntry {
  dir: "out" | "in" | "socket";
  frame: { action?: string; room_id?: string | null; data?: { type?: string; data?: { room_id?: string } } };
}

export function gatedWebSocket() {
  const gate = { closed: false, sockets: [] as WebSocket[] };
  const wire: WireEntry[] = [];
  class Gated extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(gate.closed ? "ws://127.0.0.1:9/" : url, protocols);
      gate.sockets.push(this);
      wire.push({ dir: "socket", frame: {} });
      this.on("error", () => undefined);
      // Registered before the client's onmessage, so an answer is logged before what the client sends in reply.
      this.on("message", (data) => wire.push({ dir: "in", frame: JSON.parse(String(data)) }));
    }
    override send(data: string, ...rest: unknown[]) {
      wire.push({ dir: "out", frame: JSON.parse(data) });
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  }
  return {
    WebSocket: Gated as unknown as typeof globalThis.WebSocket,
    wire,
    cut() {
      gate.closed = true;
      gate.sockets.at(-1)?.terminate();
    },
    restore() {
      gate.closed = false;
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
