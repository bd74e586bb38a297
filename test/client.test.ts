/** The browser client module (client/index.mjs), driven with the `ws` package against the local hub. */
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { WebSocket } from "ws";
import { DeleteConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { managementClient } from "../core/aws";
import { startLocalHub, type LocalHub } from "../local";
import { gatedWebSocket, roomRequestsInFlight } from "./support/clientSocket";
import { kimToken, reorderingHub } from "./support/fakeHub";
import { roomRows } from "./support/seed";
import { until } from "./support/wait";
type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });

let hub: LocalHub;
let connect: ClientModule["connect"];
let HubError: ClientModule["HubError"];
beforeAll(async () => {
  // An ES module, as browsers load it; import() keeps it one from this CommonJS test file.
  ({ connect, HubError } = await import("../client/index.mjs"));
  hub = await startLocalHub({ port: 0, bcryptCost: 4 });
});
afterAll(async () => {
  await hub?.stop();
});

const connectionIds = async (roomId: string) => (await roomRows(hub.dynamodbEndpoint, hub.connectionsTableName, roomId)).map((c) => c.connectionId);

describe("browser client", () => {
  it("delivers by type like the seed's subscribers, sends to the room, and drops duplicate ids", async () => {
    const tokens: string[] = [];
    const getToken = async () => {
      const token = await hub.notifier.issueToken({ userId: "kim", roomId: "client-room" });
      tokens.push(token);
      return token;
    };
    const states: string[] = [];
    const client = connect({ url: hub.websocketUrl, getToken, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, onStateChange: (s) => states.push(s) });
    const alerts: unknown[] = [];
    const everything: unknown[] = [];
    // This client's own sendMessage comes back with origin "client": asked for explicitly.
    client.subscribe("alert", (data) => alerts.push(data), { clientFrames: true });
    client.subscribe("*", (data) => everything.push(data), { clientFrames: true });
    client.send({ type: "alert", data: "queued before open" });
    await until(() => client.state === "open");
    await until(() => alerts.length === 1);
    expect(alerts).toEqual(["queued before open"]);

    // The same frame twice (as an SQS redelivery would): handled once.
    const [id] = await connectionIds("client-room");
    const management = managementClient(hub.managementEndpoint, { credentials: hub.credentials });
    const frame = Buffer.from(JSON.stringify({ id: "dup-1", room_id: "client-room", user_id: null, data: { type: "alert", data: "once" } }));
    await management.send(new PostToConnectionCommand({ ConnectionId: id, Data: frame }));
    await management.send(new PostToConnectionCommand({ ConnectionId: id, Data: frame }));
    await hub.notifier.publish({ roomId: "client-room", data: { type: "alert", data: "last" } });
    await until(() => alerts.length === 3);
    expect(alerts).toEqual(["queued before open", "once", "last"]);
    // "*" also gets the hub's answers to the client's own requests: the resumes it sends on
    // connect for the token's room and the user channel.
    expect(everything.filter((data) => !String((data as { type?: string }).type).startsWith("hub."))).toHaveLength(3);
    client.close();
    expect(states.at(-1)).toBe("closed");
  });

  it("reconnects after the server drops it, and fetches a fresh token when the old one is refused", async () => {
    let issued = 0;
    const getToken = async () => {
      issued++;
      return hub.notifier.issueToken({ userId: "lee", roomId: "reconnect" });
    };
    const client = connect({ url: hub.websocketUrl, getToken, minBackoffMs: 20, maxBackoffMs: 100, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
    await until(() => client.state === "open");
    const [first] = await connectionIds("reconnect");
    // Revoked: the live connection is closed and the old token is refused at the next handshake.
    await hub.notifier.revokeToken({ userId: "lee", roomId: "reconnect" });
    await until(async () => (await connectionIds("reconnect")).some((id) => id !== first));
    expect(issued).toBeGreaterThanOrEqual(2);
    await until(() => client.state === "open");

    const [second] = await connectionIds("reconnect");
    await managementClient(hub.managementEndpoint, { credentials: hub.credentials }).send(new DeleteConnectionCommand({ ConnectionId: second }));
    await until(async () => (await connectionIds("reconnect")).some((id) => id !== second));
    const got: unknown[] = [];
    client.subscribe("back", (data) => got.push(data));
    await hub.notifier.publish({ roomId: "reconnect", data: { type: "back", data: 1 } });
    await until(() => got.length === 1);
    client.close();
  });

  it("sends the token in Sec-WebSocket-Protocol by default, never in the URL; tokenIn: \"query\" sends ?token= as the seed did", async () => {
    const opened: { url: string; protocols: unknown; socket: WebSocket }[] = [];
    class Recording extends WebSocket {
      constructor(url: string, protocols?: string[]) {
        super(url, protocols);
        opened.push({ url, protocols, socket: this });
      }
    }
    const Impl = Recording as unknown as typeof globalThis.WebSocket;
    const token = await hub.notifier.issueToken({ userId: "sub", roomId: "client-proto" });
    const byHeader = connect({ url: hub.websocketUrl, token, WebSocket: Impl });
    const got: unknown[] = [];
    byHeader.subscribe("t", (data) => got.push(data));
    await until(() => byHeader.state === "open");
    expect(opened[0]).toMatchObject({ url: hub.websocketUrl, protocols: ["notification-hub", token] });
    expect(opened[0].socket.protocol).toBe("notification-hub");
    await hub.notifier.publish({ roomId: "client-proto", data: { type: "t", data: "header way" } });
    await until(() => got.length === 1);
    byHeader.close();

    const byQuery = connect({ url: hub.websocketUrl, token, tokenIn: "query", WebSocket: Impl });
    await until(() => byQuery.state === "open");
    expect(opened[1].url).toBe(`${hub.websocketUrl}?token=${encodeURIComponent(token)}`);
    expect(opened[1].protocols).toBeUndefined();
    expect(opened[1].socket.protocol).toBe("");
    byQuery.close();
  });

  it("joins 30 rooms at once, 10 requests in flight; a reconnect re-joins them all the same way and resumes each", async () => {
    const gate = gatedWebSocket();
    const client = connect({
      url: hub.websocketUrl,
      getToken: () => hub.notifier.issueToken({ userId: "max", rooms: ["many/*"] }),
      WebSocket: gate.WebSocket,
      minBackoffMs: 20,
      maxBackoffMs: 100,
    });
    const rooms = Array.from({ length: 30 }, (_, i) => `many/${i}`);
    const got: { room_id?: string | null; seq?: number }[] = [];
    client.subscribe("n", (_data, frame) => got.push(frame));
    const answered = (from: number) => gate.wire.slice(from).filter((e) => e.dir === "in" && e.frame.data?.type === "hub.subscribed").length;
    try {
      expect((await Promise.all(rooms.map((room) => client.join(room)))).map((info) => info.room_id)).toEqual(rooms);
      expect(roomRequestsInFlight(gate.wire)).toBe(10);

      // Away while three of the rooms get a notification each.
      gate.cut();
      const away = ["many/0", "many/14", "many/29"];
      for (const roomId of away) await hub.notifier.publish({ roomId, data: { type: "n", data: roomId } });
      await until(async () => (await Promise.all(away.map((roomId) => hub.notifier.history({ roomId, last: 1 })))).every((h) => h.length === 1));
      const reconnectAt = gate.wire.length;
      gate.restore();
      await until(() => got.length === 3 && answered(reconnectAt) === 30);
      expect(got.map((f) => `${f.room_id}#${f.seq}`).sort()).toEqual(away.map((room) => `${room}#1`).sort());
      expect(roomRequestsInFlight(gate.wire)).toBe(10);
      expect(client.rooms).toEqual(rooms);
      // Live again in a room that missed nothing.
      await hub.notifier.publish({ roomId: "many/7", data: { type: "n", data: "live" } });
      await until(() => got.length === 4);
      expect(got[3]).toMatchObject({ room_id: "many/7", seq: 1 });
    } finally {
      client.close();
    }
  });

  it("send() resolves with the hub's hub.sent (the stored id and seq) and rejects with a HubError naming the refusal", async () => {
    const room = "ack-room";
    const client = connect({
      url: hub.websocketUrl,
      getToken: () => hub.notifier.issueToken({ userId: "ack", roomId: room }),
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    });
    const chat: { id?: string; seq?: number }[] = [];
    client.subscribe("chat", (_data, frame) => chat.push(frame), { clientFrames: true });
    try {
      // Sent before the socket opened: it goes on open, and the answer comes back on that socket.
      const sent = await client.send({ type: "chat", data: "hi" });
      expect(sent).toMatchObject({ ref: expect.any(String), room_id: room, id: expect.any(String), seq: 1 });
      await until(() => chat.length === 1);
      expect(chat[0]).toMatchObject({ id: sent.id, seq: sent.seq });
      const second = await client.send({ type: "chat", data: "again" }, { room });
      expect(second.seq).toBe(2);
      expect(second.ref).not.toBe(sent.ref);
      const refused = await client.send({ type: "chat", data: "x" }, { room: "not-mine" }).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(HubError);
      expect(refused).toMatchObject({ name: "HubError", code: "forbidden", temporary: false, hubError: { code: "forbidden" } });
      // A refusal nobody awaits is no unhandled rejection (the test run would fail on one).
      void client.send({ type: "chat", data: "y" }, { room: "not-mine-either" });
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      client.close();
    }
    // What is still waiting when the client closes is rejected with closed.
    const closing = connect({ url: hub.websocketUrl, getToken: () => hub.notifier.issueToken({ userId: "ack", roomId: room }), WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
    const pending = closing.send({ type: "chat", data: "never" });
    closing.close();
    await expect(pending).rejects.toMatchObject({ name: "HubError", code: "closed" });
  });

  it("rejects bad options clearly", () => {
    expect(() => connect({ url: hub.websocketUrl } as never)).toThrow(/token or getToken is required/);
    expect(() => connect({} as never)).toThrow(/url is required/);
    expect(() => connect({ url: hub.websocketUrl, token: "t", tokenIn: "header" as never })).toThrow(/tokenIn must be "protocol" \(the default\) or "query"/);
  });

  it("refuses at once a room id the hub could not read, which its refusal could not name", async () => {
    const client = connect({ url: hub.websocketUrl, token: "t", reconnect: false, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
    try {
      for (const room of ["", "x".repeat(257), "a\nb", "\ud800"]) {
        await expect(client.join(room)).rejects.toMatchObject({ code: "invalid_subscribe", message: expect.stringMatching(/join: room must be a string of 1 to 256 characters/) });
        await expect(client.leave(room)).rejects.toMatchObject({ code: "invalid_subscribe" });
      }
      expect(client.rooms).toEqual([]);
    } finally {
      client.close();
    }
  });
});

describe("browser client against a hub that runs requests in any order", () => {
  // "home" is the token's room and "user:kim" the user's channel: $connect puts every connection in both.
  const call = fc.record({ op: fc.constantFrom("join" as const, "leave" as const), room: fc.constantFrom("r0", "r1", "r2", "home", "user:kim") });
  const step = fc.oneof(
    { arbitrary: call, weight: 4 },
    { arbitrary: fc.record({ op: fc.constant("finish" as const), pick: fc.nat() }), weight: 4 },
    { arbitrary: fc.record({ op: fc.constant("drop" as const) }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant("timeout" as const) }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant("break" as const), pick: fc.nat(), wrote: fc.boolean() }), weight: 1 },
  );
  /** Lets the client's reconnect timer (backoff 0) run. */
  const reopened = async (client: { state: string }) => {
    while (client.state !== "open") await new Promise((resolve) => setTimeout(resolve, 1));
  };

  afterEach(() => {
    vi.useRealTimers();
  });

  it("ends with the hub's memberships and every promise as the app's last call per room said, even when requests time out, run late, or fail part way", async () => {
    // The client's timers (timeouts, backoffs of 0) run when the test moves the clock.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    const joinTimeoutMs = 1000;
    const maxBackoffMs = 40;
    const reopenedNow = async (client: { state: string }) => {
      while (client.state !== "open") await vi.advanceTimersByTimeAsync(1);
    };
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), fc.array(fc.nat()), async (steps, picks) => {
        const hub = reorderingHub(["home", "user:kim"]);
        const client = connect({ url: "ws://hub.test", token: kimToken, room: "home", minBackoffMs: 10, maxBackoffMs, joinTimeoutMs, WebSocket: hub.WebSocket });
        try {
          await reopenedNow(client);
          const last = new Map<string, { op: "join" | "leave"; outcome: Promise<string> }>();
          for (const s of steps) {
            if (s.op === "finish") {
              if (hub.pending > 0) hub.finish(s.pick);
              continue;
            }
            if (s.op === "drop") {
              hub.drop();
              await reopenedNow(client);
              continue;
            }
            if (s.op === "break") {
              if (hub.pending > 0) hub.breakSubscribe(s.pick, s.wrote);
              continue;
            }
            if (s.op === "timeout") {
              // Every request on the wire times out; each may still run (and answer) at a later "finish".
              // (Retries due now go out first, so that none sent in the window times out unmarked.)
              await vi.advanceTimersByTimeAsync(1);
              hub.giveUp();
              await vi.advanceTimersByTimeAsync(joinTimeoutMs - 1);
              continue;
            }
            const promise: Promise<unknown> = s.op === "join" ? client.join(s.room) : client.leave(s.room);
            const outcome = promise.then(() => "ok", (err: { code: string }) => err.code);
            // Refused at once, by the hub's rule: not the app's last word on its channel.
            if (s.op === "leave" && s.room.startsWith("user:")) expect(await outcome).toBe("invalid_subscribe");
            else last.set(s.room, { op: s.op, outcome });
          }
          // Everything runs to its end, late requests included, and re-joins retried after a timeout go again.
          for (let i = 0; ; i++) {
            await vi.advanceTimersByTimeAsync(1);
            if (hub.pending === 0) await vi.advanceTimersByTimeAsync(maxBackoffMs); // a retry's backoff
            if (hub.pending === 0) break;
            hub.finish(picks[i] ?? i);
          }
          expect(hub.violation).toBeUndefined();
          const outcomes = new Map(await Promise.all([...last].map(async ([room, { op, outcome }]) => [room, { op, outcome: await outcome }] as const)));
          for (const [room, { op, outcome }] of outcomes) {
            const allowed = op === "leave" ? ["ok"] : [room === "r2" ? "forbidden" : "ok", "timeout", "subscribe_failed"];
            expect(allowed, `${op} ${room}`).toContain(outcome);
          }
          const wanted = [...outcomes].filter(([, { op, outcome }]) => op === "join" && outcome === "ok").map(([room]) => room);
          expect(new Set(client.rooms)).toEqual(new Set(wanted));
          // A failed join leaves the token's room and the user's channel as $connect made them: never
          // undone. Only after a leave() may the token's room be missing then (nothing asks for it back).
          const home = outcomes.get("home");
          const homeKept = !home || (home.op === "join" && home.outcome === "ok") || (home.op === "join" && hub.members.has("home"));
          expect(hub.members).toEqual(new Set([...wanted, "user:kim", ...(homeKept ? ["home"] : [])]));
        } finally {
          client.close();
        }
      }),
      { numRuns: 200 },
    );
  });

  /** A client (token "t") on a hub of its own, once open. */
  const openClient = async (extra: Omit<Parameters<ClientModule["connect"]>[0], "url" | "WebSocket">, connectRooms?: string[]) => {
    const hub = reorderingHub(connectRooms);
    const client = connect({ url: "ws://hub.test", token: "t", WebSocket: hub.WebSocket, ...extra });
    await reopened(client);
    return { hub, client };
  };

  /** Joins rooms q0, q1, ... and drops the socket: returns once the new one is open, re-joining them (10 on the wire). */
  const rejoining = async (hub: ReturnType<typeof reorderingHub>, client: ReturnType<ClientModule["connect"]>, count: number) => {
    const rooms = Array.from({ length: count }, (_, i) => `q${i}`);
    const joins = rooms.map((room) => client.join(room));
    while (hub.pending > 0) hub.finish(0);
    await Promise.all(joins);
    hub.drop();
    await reopened(client);
    return rooms;
  };

  it("a request with no answer times out without holding its room up: a join is undone in case it was made, a leave is done", async () => {
    const { hub, client } = await openClient({ reconnect: false, joinTimeoutMs: 50 });
    try {
      const lost = client.join("r0");
      hub.lose();
      await expect(lost).rejects.toMatchObject({ code: "timeout", roomId: "r0" });
      expect(hub.sent).toEqual(["subscribe r0", "unsubscribe r0"]);
      hub.finish(0);
      const again = client.join("r0");
      hub.finish(0);
      expect(await again).toEqual({ room_id: "r0", last_seq: 0 });
      const leaving = client.leave("r0");
      hub.lose();
      await leaving;
      expect(client.rooms).toEqual([]);
      // Nothing is held up: the room can be joined again at once.
      const third = client.join("r0");
      hub.finish(0);
      await third;
      expect(hub.sent.slice(2)).toEqual(["subscribe r0", "unsubscribe r0", "subscribe r0"]);
    } finally {
      client.close();
    }
  });

  it("a join given up on that runs late, after its undo, is undone again; its frames never reach the app and its seq is forgotten", async () => {
    const { hub, client } = await openClient({ reconnect: false, joinTimeoutMs: 50 });
    const got: unknown[] = [];
    client.subscribe("n", (data) => got.push(data));
    try {
      const join = client.join("r0");
      hub.frame("r0", 3); // a frame ahead of the slow answer
      hub.giveUp();
      await expect(join).rejects.toMatchObject({ code: "timeout" });
      expect(client.lastSeq("r0")).toBeUndefined(); // no resume for a room the connection is not in
      expect(hub.sent).toEqual(["subscribe r0", "unsubscribe r0"]);
      hub.finish(1); // the undo runs first, on a room not joined yet
      hub.finish(0); // then the slow subscribe: the hub has the room
      hub.frame("r0", 4);
      expect(hub.sent.at(-1)).toBe("unsubscribe r0");
      hub.finish(0);
      expect(hub.members).toEqual(new Set());
      expect(got).toEqual([3]);
    } finally {
      client.close();
    }
  });

  it("a leave given up on that runs after the re-join is repaired, and its late refusal never rejects a newer join", async () => {
    const { hub, client } = await openClient({ reconnect: false, joinTimeoutMs: 50 });
    try {
      const first = client.join("r0");
      hub.finish(0);
      await first;
      const leave = client.leave("r0");
      hub.giveUp();
      await leave;
      const rejoin = client.join("r0");
      expect(hub.sent).toEqual(["subscribe r0", "unsubscribe r0", "subscribe r0"]);
      hub.finish(1); // the re-join runs
      await rejoin;
      hub.finish(0); // then the slow unsubscribe: the hub no longer has the room
      expect(hub.sent.at(-1)).toBe("subscribe r0");
      hub.finish(0);
      expect(hub.members).toEqual(new Set(["r0"]));

      const leaveAgain = client.leave("r0");
      hub.giveUp();
      await leaveAgain;
      const join = client.join("r0");
      hub.fail(0, "unsubscribe_failed"); // the old unsubscribe's late answer: not the subscribe's
      hub.finish(0); // it may have run after the subscribe, so that answer tells nothing: asked again
      expect(hub.sent.at(-1)).toBe("subscribe r0");
      hub.finish(0);
      await expect(join).resolves.toEqual({ room_id: "r0", last_seq: 0 });
      expect(client.rooms).toEqual(["r0"]);
    } finally {
      client.close();
    }
  });

  it("a re-join after a reconnect is retried after a passing failure, and dropped (onRoomLost) only when refused for good", async () => {
    const lost: [string, string][] = [];
    const { hub, client } = await openClient({ minBackoffMs: 0, maxBackoffMs: 0, joinTimeoutMs: 50, onRoomLost: (room, code) => lost.push([room, code]) });
    try {
      const join = client.join("r0");
      hub.finish(0);
      await join;
      hub.drop();
      await reopened(client);
      expect(hub.sent).toEqual(["subscribe r0", "subscribe r0"]);
      hub.fail(0, "subscribe_failed");
      await until(() => hub.sent.length === 3); // tried again
      hub.giveUp();
      await until(() => hub.sent.length === 4); // timed out: tried again
      hub.fail(1, "forbidden"); // the token no longer grants it
      expect(lost).toEqual([["r0", "forbidden"]]);
      expect(client.rooms).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("with reconnect: false a socket's end settles every join, and close() while the token is fetched opens nothing", async () => {
    const { hub, client } = await openClient({ reconnect: false });
    const join = client.join("r0");
    hub.drop();
    await expect(join).rejects.toMatchObject({ code: "closed" });
    await expect(client.join("r1")).rejects.toMatchObject({ code: "closed" });
    expect(client.state).toBe("closed");

    const quiet = reorderingHub();
    let release = (_token: string) => {};
    const fetching = connect({ url: "ws://hub.test", getToken: () => new Promise<string>((resolve) => (release = resolve)), WebSocket: quiet.WebSocket });
    fetching.close();
    release("t");
    await new Promise((resolve) => setImmediate(resolve));
    expect(quiet.sockets).toBe(0);
    expect(fetching.state).toBe("closed");
  });

  it("after a reconnect, leaving a room still queued for its re-join sends nothing, even behind a full window", async () => {
    const { hub, client } = await openClient({ minBackoffMs: 0 });
    try {
      const rooms = await rejoining(hub, client, 12);
      const sent = hub.sent.length;
      expect(hub.pending).toBe(10);
      await client.leave("q11"); // the new connection is not in it: settled at once
      expect(hub.sent.length).toBe(sent);
      while (hub.pending > 0) hub.finish(0);
      expect(hub.members).toEqual(new Set(rooms.slice(0, 11)));
      expect(hub.sent.filter((request) => request.endsWith(" q11"))).toEqual(["subscribe q11"]);
    } finally {
      client.close();
    }
  });

  it("the token's room left while the socket is down is left again on the next connection; a user channel is never left", async () => {
    const { hub, client } = await openClient({ room: "home", minBackoffMs: 0 });
    const got: unknown[] = [];
    client.subscribe("n", (data) => got.push(data));
    try {
      // Refused by the hub's rule even when the token names no user (so no channel is known): no request.
      await expect(client.leave("user:kim")).rejects.toMatchObject({ code: "invalid_subscribe" });
      hub.drop();
      await client.leave("home");
      await reopened(client);
      expect(hub.sent).toEqual(["unsubscribe home"]);
      hub.frame("home", 1);
      hub.finish(0);
      expect(got).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("a failed join of the token's room or of a user channel never leaves it: no unsubscribe, its frames still come", async () => {
    const { hub, client } = await openClient({ token: kimToken, room: "home", minBackoffMs: 0, joinTimeoutMs: 50 }, ["home", "user:kim"]);
    const got: unknown[] = [];
    client.subscribe("n", (data, frame) => got.push(`${frame.room_id}#${data}`));
    try {
      const refused = client.join("home");
      hub.fail(0, "too_many_rooms");
      await expect(refused).rejects.toMatchObject({ code: "too_many_rooms" });
      const slow = client.join("home");
      hub.giveUp();
      await expect(slow).rejects.toMatchObject({ code: "timeout" });
      hub.finish(0); // it runs late
      // Another user's channel (refused) and the own one (timed out): the hub refuses any unsubscribe of them.
      const other = client.join("user:bob");
      hub.fail(0, "forbidden");
      await expect(other).rejects.toMatchObject({ code: "forbidden" });
      const own = client.join("user:kim");
      hub.giveUp();
      await expect(own).rejects.toMatchObject({ code: "timeout" });
      hub.frame("home", 1);
      hub.frame("user:kim", 1);
      hub.drop();
      await reopened(client);
      hub.frame("home", 2);
      expect(hub.sent).toEqual(["subscribe home", "subscribe home", "subscribe user:bob", "subscribe user:kim"]);
      expect(hub.violation).toBeUndefined();
      expect(got).toEqual(["home#1", "user:kim#1", "home#2"]);
      expect(client.rooms).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("a late hub.subscribed for a re-join waiting out its backoff catches the room up: a resume after its last seq", async () => {
    const { hub, client } = await openClient({ minBackoffMs: 1000, maxBackoffMs: 1000, joinTimeoutMs: 50 });
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    // Full jitter draws each backoff from 0 to its ceiling: near the ceiling here, so the re-join really waits it out.
    const random = vi.spyOn(Math, "random").mockReturnValue(0.99);
    try {
      const join = client.join("r0");
      hub.finish(0);
      await join;
      hub.frame("r0", 1);
      hub.drop();
      hub.frame("r0", 2); // published while the socket was down
      await vi.advanceTimersByTimeAsync(1000);
      expect(client.state).toBe("open");
      hub.giveUp(); // the re-join times out, and waits out its backoff
      await vi.advanceTimersByTimeAsync(50);
      hub.finish(0); // then runs late
      expect(hub.resumes).toEqual(["r0 after 1"]);
      await vi.advanceTimersByTimeAsync(1000); // no retry left behind: the hub has the room
      expect(hub.sent).toEqual(["subscribe r0", "subscribe r0"]);
      expect(client.rooms).toEqual(["r0"]);
    } finally {
      random.mockRestore();
      client.close();
    }
  });

  it("a failed unsubscribe is tried again after a backoff, not at once, and the leave resolves once the hub has let go", async () => {
    const { hub, client } = await openClient({ minBackoffMs: 20, maxBackoffMs: 20 });
    try {
      const join = client.join("r0");
      hub.finish(0);
      await join;
      let done = false;
      const leave = client.leave("r0").then(() => (done = true));
      hub.fail(0, "unsubscribe_failed"); // the hub may still count the room against maxRoomsPerConnection
      expect(hub.sent).toEqual(["subscribe r0", "unsubscribe r0"]);
      await until(() => hub.pending === 1);
      expect(done).toBe(false);
      hub.finish(0);
      await leave;
      expect(hub.sent).toEqual(["subscribe r0", "unsubscribe r0", "unsubscribe r0"]);
      expect(hub.members).toEqual(new Set());
    } finally {
      client.close();
    }
  });

  it("past 1,000 left rooms the oldest is forgotten, never the token's room: a leave of it still holds after a reconnect", async () => {
    const { hub, client } = await openClient({ room: "home", minBackoffMs: 0 }, ["home"]);
    try {
      hub.drop();
      await client.leave("home");
      for (let i = 0; i < 1001; i++) await client.leave(`x${i}`); // socket down: nothing sent
      await reopened(client);
      expect(hub.sent).toEqual(["unsubscribe home"]);
    } finally {
      client.close();
    }
  });

  it("an app callback that throws (onRoomLost, onStateChange) stops none of the client's work", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const throws = () => {
      throw new Error("app bug");
    };
    const { hub, client } = await openClient({ minBackoffMs: 0, onRoomLost: throws, onStateChange: throws });
    try {
      await rejoining(hub, client, 11);
      expect(hub.pending).toBe(10);
      hub.fail(0, "forbidden"); // lost: onRoomLost throws; the queued eleventh re-join still goes
      expect(hub.sent.at(-1)).toBe("subscribe q10");
      expect(error).toHaveBeenCalled();
    } finally {
      client.close();
      error.mockRestore();
    }
  });
  it("a reconnect is one connecting, however many handshakes fail, and onStateChange says the state before and why", async () => {
    const changes: string[] = [];
    const onStateChange = (state: string, { previous, reason }: { previous: string; reason: string }) => changes.push(`${previous} -> ${state}: ${reason}`);
    const { hub, client } = await openClient({ minBackoffMs: 0, maxBackoffMs: 0, onStateChange });
    hub.refuse(3); // the next three handshakes are refused
    hub.drop();
    await reopened(client);
    client.close();
    expect(hub.sockets).toBe(5);
    expect(changes).toEqual(["closed -> connecting: connect", "connecting -> open: open", "open -> connecting: socket closed", "connecting -> open: open", "open -> closed: client closed"]);

    // Without reconnect, the socket's end is the last change; a connect that throws says so.
    const once: string[] = [];
    const single = await openClient({ reconnect: false, onStateChange: (state, { previous, reason }) => once.push(`${previous} -> ${state}: ${reason}`) });
    single.hub.drop();
    single.client.close();
    expect(once).toEqual(["closed -> connecting: connect", "connecting -> open: open", "open -> closed: socket closed"]);
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const failing: string[] = [];
      const broken = connect({ url: "ws://hub.test", getToken: () => Promise.reject(new Error("no token")), reconnect: false, WebSocket: reorderingHub().WebSocket, onStateChange: (state, { previous, reason }) => failing.push(`${previous} -> ${state}: ${reason}`) });
      await until(() => broken.state === "closed");
      expect(failing).toEqual(["closed -> connecting: connect", "connecting -> closed: connect failed"]);
    } finally {
      error.mockRestore();
    }
  });

  it("join() rejects with a HubError: the code, whether it is temporary (the hub's table, or the client's for its own codes), the room, the hub's data", async () => {
    const { hub, client } = await openClient({ reconnect: false, joinTimeoutMs: 50 });
    try {
      const refused = client.join("r2");
      hub.finish(0); // r2 is not granted
      const forbidden = await refused.catch((err: unknown) => err);
      expect(forbidden).toBeInstanceOf(HubError);
      expect(forbidden).toBeInstanceOf(Error);
      expect(forbidden).toMatchObject({ name: "HubError", code: "forbidden", temporary: false, room: "r2", roomId: "r2", hubError: { code: "forbidden", room_id: "r2" } });
      const broken = client.join("r0");
      hub.fail(0, "subscribe_failed");
      await expect(broken).rejects.toMatchObject({ name: "HubError", code: "subscribe_failed", temporary: true, room: "r0" });
      const slow = client.join("r1");
      hub.lose();
      await expect(slow).rejects.toMatchObject({ name: "HubError", code: "timeout", temporary: true, room: "r1" });
      hub.finish(0); // the undo
      const cut = client.join("r0");
      hub.drop();
      await expect(cut).rejects.toMatchObject({ name: "HubError", code: "closed", temporary: false, room: "r0" });
    } finally {
      client.close();
    }
    // A hub that says `temporary` itself is believed, even for a code this client does not know.
    expect(new HubError("brand_new", "m", { room: "x", hubError: { code: "brand_new", message: "m", temporary: true } })).toMatchObject({ code: "brand_new", temporary: true, room: "x" });
    expect(new HubError("brand_new", "m")).toMatchObject({ temporary: false, room: undefined });
  });
});

describe("browser client streams against a hub whose resumes fail, lie, or are throttled", () => {
  // Every test counts frames, requests and reports over fake time: the client's timers run only when the test moves the clock.
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A client following the token's room "home" on a fake hub, its baseline (seq 0) taken, frames 1 and 2 handed out. */
  const following = async (extra: Omit<Parameters<ClientModule["connect"]>[0], "url" | "WebSocket" | "token">) => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    const hub = reorderingHub(["home"]);
    const got: number[] = [];
    const gaps: unknown[] = [];
    const invalid: { reason: string; roomId?: string }[] = [];
    const client = connect({
      url: "ws://hub.test",
      token: "t",
      room: "home",
      minBackoffMs: 100,
      maxBackoffMs: 1_000,
      WebSocket: hub.WebSocket,
      onGap: (gap) => gaps.push(gap),
      onInvalidFrame: ({ reason, roomId }) => invalid.push({ reason, roomId }),
      ...extra,
    });
    client.subscribe("n", (data: number) => got.push(data));
    while (client.state !== "open") await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(1); // the baseline resume's answer
    expect(client.lastSeq("home")).toBe(0);
    hub.frame("home", 1);
    hub.frame("home", 2);
    /** Resumes sent for the gap after seq `after`. */
    const resumesAfter = (after: number) => hub.resumes.filter((r) => r === `home after ${after}`).length;
    return { hub, client, got, gaps, invalid, resumesAfter };
  };
  const upTo = (n: number, from = 1) => Array.from({ length: n - from + 1 }, (_, i) => from + i);

  it("a resume that fails (hub.error resume_failed naming no room, or no answer when the replay's posts fail) is sent again after a backoff: 1..7 handed out, none lost, none twice", async () => {
    for (const failure of [{ error: "resume_failed" }, "silent"] as const) {
      const { hub, client, got, gaps, resumesAfter } = await following({});
      try {
        hub.resumeWith = (_request, index) => (index === 1 ? failure : "replay"); // index 0: the baseline
        hub.miss("home", 3);
        for (const seq of [4, 5, 6, 7]) hub.frame("home", seq);
        await vi.advanceTimersByTimeAsync(300); // the gap wait: the resume goes, and fails
        expect(resumesAfter(2)).toBe(1);
        expect(got).toEqual([1, 2]);
        await vi.advanceTimersByTimeAsync(11_000); // its timeout (silent) and the backoff
        expect(resumesAfter(2)).toBe(2);
        expect(got).toEqual(upTo(7));
        expect(gaps).toEqual([]);
        await vi.advanceTimersByTimeAsync(60_000);
        expect(resumesAfter(2) + resumesAfter(7)).toBe(2); // nothing more asked
      } finally {
        client.close();
      }
    }
  });

  it("a gap whose resumes always fail is given up after 6 resumes: onGap once (resume_failed), the frames held handed out, and no resume after that", async () => {
    const { hub, client, got, gaps, resumesAfter } = await following({});
    try {
      hub.resumeWith = (_request, index) => (index === 0 ? "replay" : { error: "resume_failed", named: true });
      hub.miss("home", 3);
      for (const seq of [4, 5, 6, 7]) hub.frame("home", seq);
      await vi.advanceTimersByTimeAsync(10 * 60_000);
      expect(resumesAfter(2)).toBe(6);
      expect(gaps).toEqual([{ roomId: "home", after: 2, lastSeq: 7, reason: "resume_failed" }]);
      expect(got).toEqual([1, 2, 4, 5, 6, 7]);
      hub.frame("home", 8);
      await vi.advanceTimersByTimeAsync(10 * 60_000);
      expect(got).toEqual([1, 2, 4, 5, 6, 7, 8]);
      expect(hub.resumes.length).toBe(1 + 6); // the baseline and the six
    } finally {
      client.close();
    }
  });

  it("frames behind a gap whose resume never answers are held up to maxBufferedFrames (50), then onGap buffer_full and all of them are handed out, none lost after it", async () => {
    const { hub, client, got, gaps } = await following({ maxBufferedFrames: 50 });
    try {
      hub.resumeWith = (_request, index) => (index === 0 ? "replay" : "silent");
      hub.miss("home", 3);
      for (let seq = 4; seq <= 53; seq++) hub.frame("home", seq);
      expect(got).toEqual([1, 2]); // 50 held
      hub.frame("home", 54); // the 51st
      expect(gaps).toEqual([{ roomId: "home", after: 2, lastSeq: 54, reason: "buffer_full" }]);
      expect(got).toEqual([1, 2, ...upTo(54, 4)]);
      for (let seq = 55; seq <= 60; seq++) hub.frame("home", seq);
      expect(got).toEqual([1, 2, ...upTo(60, 4)]);
    } finally {
      client.close();
    }
  });

  it("JSON that is not an object (null, 42, \"x\", []), text that is not JSON and control frames without their data are dropped and reported through onInvalidFrame; the client keeps delivering", async () => {
    const { hub, client, got, invalid } = await following({});
    try {
      for (const message of ["null", "42", '"x"', "[]", "true", "not json", "{", { room_id: null, data: { type: "hub.resumed", data: { room_id: "home" } } }, { room_id: null, data: { type: "hub.subscribed", data: { room_id: "home", last_seq: "9" } } }, { room_id: null, data: { type: "hub.error", data: null } }]) {
        hub.raw(message);
      }
      expect(invalid.map((i) => i.reason)).toEqual(["not_an_object", "not_an_object", "not_an_object", "not_an_object", "not_an_object", "not_json", "not_json", "invalid_control", "invalid_control", "invalid_control"]);
      hub.frame("home", 3);
      expect(got).toEqual([1, 2, 3]);
    } finally {
      client.close();
    }
  });

  it("a frame with seq 2^60 (past 2^53 - 1), 0, -1, 1.5 or \"4\" is dropped (invalid_seq) and sends no resume: 1..3 handed out around them", async () => {
    const { hub, client, got, invalid } = await following({});
    try {
      for (const seq of [2 ** 60, 0, -1, 1.5, "4", 1e400]) hub.raw(`{"id":"x","room_id":"home","user_id":null,"origin":"app","seq":${typeof seq === "string" ? `"${seq}"` : seq === 2 ** 60 ? "1152921504606846976" : seq === Infinity ? "1e400" : seq},"data":{"type":"n","data":-1}}`);
      hub.frame("home", 3);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(got).toEqual([1, 2, 3]);
      expect(invalid.map((i) => i.reason)).toEqual(Array(6).fill("invalid_seq"));
      expect(hub.resumes.length).toBe(1); // the baseline only
    } finally {
      client.close();
    }
  });

  it("a frame far ahead of the stream (seq 2^52) costs one resume: the hub's head shows it is not in the stream, it is dropped (beyond_head), and no resume follows", async () => {
    const { hub, client, got, gaps, invalid, resumesAfter } = await following({});
    try {
      hub.raw({ id: "far", room_id: "home", user_id: null, origin: "app", seq: 2 ** 52, data: { type: "n", data: -1 } });
      await vi.advanceTimersByTimeAsync(60_000);
      expect(resumesAfter(2)).toBe(1);
      expect(invalid).toEqual([{ reason: "beyond_head", roomId: "home" }]);
      hub.frame("home", 3);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(got).toEqual([1, 2, 3]);
      expect(gaps).toEqual([]);
      expect(hub.resumes.length).toBe(2);
    } finally {
      client.close();
    }
  });

  it("a frame beyond the hub's head is kept when the answer says a seq below it is still in flight (in_flight): the late seq arrives and both are handed out in order, nothing dropped", async () => {
    const { hub, client, got, gaps, invalid, resumesAfter } = await following({});
    try {
      // Seq 3 is reserved by a writer still storing it; seq 4 was stored and posted first. Until
      // 3 is stored, the hub's replay stops before it and says so, as core/streams.ts readStream does.
      let threeStored = false;
      hub.resumeWith = (_request, index) => (index >= 1 && !threeStored ? { resumed: { last_seq: 2, in_flight: true }, replay: false } : "replay");
      hub.frame("home", 4);
      // Long enough for the gap's resume and its in_flight answer, short of the retries' end.
      await vi.advanceTimersByTimeAsync(400);
      expect(resumesAfter(2)).toBeGreaterThanOrEqual(1);
      expect(invalid).toEqual([]);
      threeStored = true;
      hub.frame("home", 3);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(got).toEqual([1, 2, 3, 4]);
      expect(gaps).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("a hub that answers recovered: true without the missing frame gets one resume for the gap: onGap not_replayed, the frames after it handed out, no second resume", async () => {
    const { hub, client, got, gaps, resumesAfter } = await following({});
    try {
      hub.resumeWith = (_request, index) => (index === 0 ? "replay" : { resumed: {}, replay: false });
      hub.miss("home", 3);
      for (const seq of [4, 5, 6, 7]) hub.frame("home", seq);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(resumesAfter(2)).toBe(1);
      expect(gaps).toEqual([{ roomId: "home", after: 2, lastSeq: 7, reason: "not_replayed" }]);
      expect(got).toEqual([1, 2, 4, 5, 6, 7]);
      expect(hub.resumes.length).toBe(2);
    } finally {
      client.close();
    }
  });

  it("a resume refused resume_throttled is not sent again before the hub's retry_after_ms (5 s, while the backoff would be 0.1 s), then gets every frame", async () => {
    const { hub, client, got, gaps, resumesAfter } = await following({});
    try {
      hub.resumeWith = (_request, index) => (index === 1 ? { error: "resume_throttled", named: true, retry_after_ms: 5_000 } : "replay");
      hub.miss("home", 3);
      for (const seq of [4, 5, 6, 7]) hub.frame("home", seq);
      await vi.advanceTimersByTimeAsync(300);
      expect(resumesAfter(2)).toBe(1);
      await vi.advanceTimersByTimeAsync(4_999);
      expect(resumesAfter(2)).toBe(1);
      expect(got).toEqual([1, 2]);
      await vi.advanceTimersByTimeAsync(2_501); // the wait's jitter: up to half of it
      expect(resumesAfter(2)).toBe(2);
      expect(got).toEqual(upTo(7));
      expect(gaps).toEqual([]);
    } finally {
      client.close();
    }
  });
});
