/** The browser client module (client/index.mjs), driven with the `ws` package against the local hub. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { DeleteConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { managementClient } from "../core/aws";
import { startLocalHub, type LocalHub } from "../local";
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

  it("rejects bad options clearly", () => {
    expect(() => connect({ url: hub.websocketUrl } as never)).toThrow(/token or getToken is required/);
    expect(() => connect({} as never)).toThrow(/url is required/);
    expect(() => connect({ url: hub.websocketUrl, token: "t", tokenIn: "header" as never })).toThrow(/tokenIn must be "protocol" \(the default\) or "query"/);
  });
});
