/** The WebSocket route handlers: $connect, $disconnect, sendMessage and $default. */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConnectionsApi } from "../core/connections";
import { KEEP_ALIVE_ROUTE_KEY } from "../core/keepAlive";
import { CONNECTION_ROW_TTL_SECONDS } from "../core/schema";
import { getAuthRow, getConnection } from "../core/tables";
import { createConnectHandler } from "../handlers/connect";
import { createDefaultHandler } from "../handlers/default";
import { createDisconnectHandler } from "../handlers/disconnect";
import { createSendMessageHandler } from "../handlers/sendMessage";
import { routeEvent } from "./support/events";
import { capturingLogger } from "./support/logs";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { testNotifier } from "./support/notifier";
import { seedConnections } from "./support/seed";
import { startDynamo, type Dynamo } from "./support/services";

let dynamo: Dynamo;
let management: StandaloneConnectionsEmulator;
const { log } = capturingLogger();

beforeAll(async () => {
  [dynamo, management] = await Promise.all([startDynamo(), startConnectionsEmulator()]);
});
afterAll(async () => {
  await Promise.all([management?.stop(), dynamo?.stop()]);
});

const alice = { user_id: "alice", room_id: "lobby" };

/** Issues a token as an app would and returns the auth row's generation the authorizer would pass on. */
async function issuedGeneration(userId: string, roomId: string): Promise<string> {
  const notifier = testNotifier(dynamo, management, { jwtSecret: "routes-secret", passcode: "routes-passcode" });
  await notifier.issueToken({ userId, roomId });
  return (await getAuthRow(dynamo.client, dynamo.authTable, userId, roomId))!.generation;
}

describe("$connect and $disconnect", () => {
  it("writes the row with room, user, connected_at, seen_at (liveness) and a TTL past API Gateway's 2 h limit, then deletes it", async () => {
    const now = Date.now();
    const connect = createConnectHandler({ db: dynamo.client, connectionsTable: dynamo.connectionsTable, authTable: dynamo.authTable, log, now: () => now });
    const generation = await issuedGeneration(alice.user_id, alice.room_id);
    expect(await connect(routeEvent("$connect", "conn-a", { authorizer: { ...alice, generation } }))).toMatchObject({ statusCode: 200 });
    const row = await getConnection(dynamo.client, dynamo.connectionsTable, "conn-a");
    const expiresAt = Math.floor(now / 1000) + CONNECTION_ROW_TTL_SECONDS;
    expect(row).toEqual({ connectionId: "conn-a", userId: "alice", rooms: ["lobby"], grants: ["lobby"], authKey: "lobby", connectedAt: now, seenAt: now, expiresAt, generation });
    expect(CONNECTION_ROW_TTL_SECONDS).toBeGreaterThan(2 * 3600);
    // Its room's and its user channel's memberships, with the row's owner and expiry (core/rooms.ts).
    const item = async (key: string) => (await dynamo.client.send(new GetItemCommand({ TableName: dynamo.connectionsTable, Key: { connection_id: { S: key } }, ConsistentRead: true }))).Item;
    expect(await item("conn-a#lobby")).toEqual({ connection_id: { S: "conn-a#lobby" }, room_id: { S: "lobby" }, user_id: { S: "alice" }, connected_at: { N: String(now) }, expires_at: { N: String(expiresAt) } });
    expect(await item("conn-a#user:alice")).toMatchObject({ room_id: { S: "user:alice" }, user_id: { S: "alice" } });
    expect((await item("conn-a"))?.room_id).toBeUndefined(); // the row itself is in no room's index

    const disconnect = createDisconnectHandler({ db: dynamo.client, connectionsTable: dynamo.connectionsTable, log });
    expect(await disconnect(routeEvent("$disconnect", "conn-a"))).toMatchObject({ statusCode: 200 });
    for (const key of ["conn-a", "conn-a#lobby", "conn-a#user:alice"]) expect(await item(key), key).toBeUndefined();
  });

  it("refuses a connect that carries no authorizer context, and writes nothing", async () => {
    const connect = createConnectHandler({ db: dynamo.client, connectionsTable: dynamo.connectionsTable, authTable: dynamo.authTable, log });
    expect(await connect(routeEvent("$connect", "conn-b"))).toMatchObject({ statusCode: 403 });
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "conn-b")).toBeUndefined();
  });
});

describe("sendMessage and $default", () => {
  const deps = () => ({ db: dynamo.client, management: createConnectionsApi(management.endpoint), connectionsTable: dynamo.connectionsTable, log });

  it("broadcasts data to the sender's room with the sender as user_id", async () => {
    await seedConnections(dynamo.client, dynamo.connectionsTable, [
      { connectionId: "s1", roomId: "chat", userId: "alice" },
      { connectionId: "s2", roomId: "chat", userId: "bob" },
      { connectionId: "s3", roomId: "elsewhere", userId: "carol" },
    ]);
    management.received.clear();
    const send = createSendMessageHandler(deps());
    const result = await send(routeEvent("sendMessage", "s1", { body: JSON.stringify({ action: "sendMessage", data: { type: "chat", data: "hi" } }), authorizer: { user_id: "alice", room_id: "chat" } }));
    expect(result.statusCode).toBe(200);
    expect([...management.received.keys()].sort()).toEqual(["s1", "s2"]);
    const frame = JSON.parse(management.received.get("s2")![0]);
    expect(frame).toMatchObject({ room_id: "chat", user_id: "alice", data: { type: "chat", data: "hi" } });
    expect(frame.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("falls back to the connection row when the event has no authorizer context", async () => {
    management.received.clear();
    const send = createSendMessageHandler(deps());
    await send(routeEvent("sendMessage", "s2", { body: JSON.stringify({ action: "sendMessage", data: "from bob" }) }));
    expect(JSON.parse(management.received.get("s1")![0])).toMatchObject({ user_id: "bob", data: "from bob" });
  });

  it("answers a malformed message with a hub.error frame to the sender only", async () => {
    const send = createSendMessageHandler(deps());
    for (const [body, code] of [
      ["not json", "invalid_json"],
      [JSON.stringify({ action: "sendMessage" }), "missing_data"],
      [JSON.stringify(["sendMessage"]), "invalid_body"],
    ]) {
      management.received.clear();
      const result = await send(routeEvent("sendMessage", "s1", { body, authorizer: { user_id: "alice", room_id: "chat" } }));
      expect(result.statusCode).toBe(400);
      expect([...management.received.keys()]).toEqual(["s1"]);
      expect(JSON.parse(management.received.get("s1")![0])).toMatchObject({ user_id: null, data: { type: "hub.error", data: { code } } });
    }
  });

  it("$default tells the sender the action is unknown", async () => {
    management.received.clear();
    const fallback = createDefaultHandler({ management: createConnectionsApi(management.endpoint), log, clientMessagesAllowed: true });
    await fallback(routeEvent("$default", "s2", { body: JSON.stringify({ action: "dance" }) }));
    expect([...management.received.keys()]).toEqual(["s2"]);
    expect(JSON.parse(management.received.get("s2")![0]).data).toMatchObject({ type: "hub.error", data: { code: "unknown_action" } });
    // The hint names every route a client can use.
    const hint: string = JSON.parse(management.received.get("s2")![0]).data.data.message;
    for (const action of ["subscribe", "unsubscribe", "resume", "sendMessage"]) expect(hint).toContain(`"${action}"`);
  });

  it("$default does not special-case the keep-alive: the ping route answers it before any Lambda, so a ping here is an unknown action", async () => {
    management.received.clear();
    const fallback = createDefaultHandler({ management: createConnectionsApi(management.endpoint), log, clientMessagesAllowed: true });
    expect(await fallback(routeEvent("$default", "s2", { body: JSON.stringify({ action: KEEP_ALIVE_ROUTE_KEY }) }))).toMatchObject({ statusCode: 400 });
    expect(JSON.parse(management.received.get("s2")![0]).data).toMatchObject({ type: "hub.error", data: { code: "unknown_action" } });
  });
});
