/** The browser client module (client/index.mjs), driven with the `ws` package against the local hub. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { DeleteConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { managementClient } from "../core/aws";
import { startLocalHub, type LocalHub } from "../local";
import { gatedWebSocket, roomRequestsInFlight } from "./support/clientSocket";
import { roomRows } from "./support/seed";
import { until } from "./support/wait";
type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });

let hub: LocalHub;
let connect: ClientModule["connect"];
beforeAll(async () => {
  // An ES module, as browsers load it; import() keeps it one from this CommonJS test file.
  ({ connect } = await import("../client/index.mjs"));
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
