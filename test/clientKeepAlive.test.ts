/**
 * The browser client's keep-alive (client/index.mjs) on a fake clock, with no hub in the
 * process: its timers would run on the fake clock too. How often it pings, and that the
 * interval leaves room under API Gateway's idle timeout; that a ping keeps a connection
 * open and runs no handler is test/localHub.test.ts.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { KEEP_ALIVE_ROUTE_KEY } from "../core/keepAlive";
import { API_GATEWAY_LIMITS } from "../local/gateway/limits";
type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });

let connect: ClientModule["connect"];
beforeAll(async () => {
  ({ connect } = await import("../client/index.mjs"));
});

/** A token (unchecked by the client) whose claims name the user kim. */
const kimToken = `e30.${Buffer.from(JSON.stringify({ user_id: "kim" })).toString("base64url")}.sig`;

describe("browser client keep-alive", () => {
  /** A socket that opens at once and records what the client sends, with the fake clock's time. */
  function recordingSocket() {
    const sent: { at: number; frame: { action?: string } }[] = [];
    const sockets: { onmessage?: (event: MessageEvent) => void }[] = [];
    class RecordingSocket {
      static readonly OPEN = 1;
      readyState = 0;
      onopen?: () => void;
      onmessage?: (event: MessageEvent) => void;
      onclose?: () => void;
      onerror?: () => void;
      constructor() {
        sockets.push(this);
        queueMicrotask(() => {
          this.readyState = RecordingSocket.OPEN;
          this.onopen?.();
        });
      }
      send(text: string) {
        sent.push({ at: Date.now(), frame: JSON.parse(text) as { action?: string } });
      }
      close() {}
    }
    /** A control frame from the hub, as the socket would deliver it. */
    const receive = (type: string, data: Record<string, unknown>) =>
      sockets.at(-1)?.onmessage?.({ data: JSON.stringify({ id: `h-${type}`, room_id: null, user_id: null, data: { type, data } }) } as MessageEvent);
    return { WebSocket: RecordingSocket as unknown as typeof globalThis.WebSocket, pings: () => sent.filter((s) => s.frame.action === KEEP_ALIVE_ROUTE_KEY), receive };
  }
  const HOUR_MS = 60 * 60_000;
  /** Chrome's intensive throttling runs a hidden tab's chained timers on minute-aligned wake-ups: up to 60 s late. */
  const TIMER_LATENESS_MS = 60_000;
  /** A ping held up by TCP retransmits on a poor link. */
  const NETWORK_DELAY_MS = 30_000;

  afterEach(() => {
    vi.useRealTimers();
  });

  /** The pings a client sends in an hour of fake time after it opened, as [ms after open]. */
  async function pingsInAnHour(extra: { keepAliveMs?: number } = {}) {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
    const socket = recordingSocket();
    const client = connect({ url: "ws://hub.test", token: kimToken, WebSocket: socket.WebSocket, ...extra });
    try {
      await vi.advanceTimersByTimeAsync(0);
      expect(client.state).toBe("open");
      const openedAt = Date.now();
      await vi.advanceTimersByTimeAsync(HOUR_MS);
      return socket.pings().map((p) => p.at - openedAt);
    } finally {
      client.close();
    }
  }

  it("pings every 8 minutes by default, the hub's own ping route, and the gap plus a throttled timer and a slow network stays under API Gateway's idle timeout", async () => {
    const pings = await pingsInAnHour();
    // Counted on a fake clock: 8, 16, ... 56 minutes.
    expect(pings).toEqual([1, 2, 3, 4, 5, 6, 7].map((n) => n * 8 * 60_000));
    const gaps = pings.map((at, i) => at - (i === 0 ? 0 : pings[i - 1]));
    for (const gap of gaps) expect(gap + TIMER_LATENESS_MS + NETWORK_DELAY_MS).toBeLessThan(API_GATEWAY_LIMITS.idleTimeoutMs);
    // The largest whole-minute interval that does: one more minute would not.
    expect(9 * 60_000 + TIMER_LATENESS_MS + NETWORK_DELAY_MS).toBeGreaterThan(API_GATEWAY_LIMITS.idleTimeoutMs);
  });

  it("keeps the keepAliveMs option", async () => {
    expect(await pingsInAnHour({ keepAliveMs: 20 * 60_000 })).toEqual([20, 40, 60].map((n) => n * 60_000));
  });

  it("with presence on, adopts the smallest keep_alive_ms the hub tells (hub.subscribed, hub.occupancy) and pings that often from then on", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
    const socket = recordingSocket();
    const client = connect({ url: "ws://hub.test", token: kimToken, WebSocket: socket.WebSocket });
    try {
      await vi.advanceTimersByTimeAsync(0);
      const openedAt = Date.now();
      socket.receive("hub.subscribed", { room_id: "lobby", last_seq: 0, keep_alive_ms: 45_000 });
      await vi.advanceTimersByTimeAsync(10 * 60_000);
      // A bigger value told later changes nothing; the smallest wins.
      socket.receive("hub.occupancy", { room_id: "lobby", connections: 1, users: 1, keep_alive_ms: 120_000 });
      await vi.advanceTimersByTimeAsync(5 * 60_000);
      const pings = socket.pings().map((p) => p.at - openedAt);
      expect(pings).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 45_000));
    } finally {
      client.close();
    }
  });

  it("with presence on and a one-room token (no subscribe, so no hub.subscribed), adopts keep_alive_ms from hub.resumed", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });
    const socket = recordingSocket();
    const client = connect({ url: "ws://hub.test", token: kimToken, WebSocket: socket.WebSocket });
    try {
      await vi.advanceTimersByTimeAsync(0);
      const openedAt = Date.now();
      socket.receive("hub.resumed", { room_id: "lobby", after: 0, last_seq: 0, recovered: true, keep_alive_ms: 45_000 });
      await vi.advanceTimersByTimeAsync(10 * 60_000);
      const pings = socket.pings().map((p) => p.at - openedAt);
      expect(pings).toEqual(Array.from({ length: 13 }, (_, i) => (i + 1) * 45_000));
    } finally {
      client.close();
    }
  });
});
