/**
 * Many rooms on one connection (issue 14, CONTRACT section 10), on the local hub with real
 * `ws` connections: subscribe / unsubscribe and their refusals, delivery to exactly the rooms
 * a connection is in and its user channel, resume per subscribed room, sendMessage's room_id,
 * and a connection's items gone after $disconnect and after a 410.
 */
import { DeleteItemCommand, GetItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient } from "../core/aws";
import { membershipKey, userChannel } from "../core/rooms";
import { ROOM_INDEX_NAME } from "../core/schema";
import { putConnection } from "../core/tables";
import { startTestHub, type TestHub } from "../local/testing";
import { until } from "./support/wait";
import { closeAll, openClient, type Frame, type WsClient } from "./support/wsClient";

let hub: TestHub;
let db: ReturnType<typeof dynamoClient>;
const clients: WsClient[] = [];

beforeAll(async () => {
  hub = await startTestHub({ port: 0, bcryptCost: 4, queue: { waitTimeSeconds: 1 } }, {});
  db = dynamoClient({ endpoint: hub.dynamodbEndpoint });
});
afterAll(async () => {
  await closeAll(clients.map((c) => c.ws));
  await hub?.stop();
});

type Control = { type: string; data: Record<string, unknown> };
const control = (frame: Frame) => frame.data as Control;
const isControl = (type: string, room?: string) => (frame: Frame) => frame.user_id === null && control(frame)?.type === type && (room === undefined || control(frame).data?.room_id === room);
const isError = (code: string) => (frame: Frame) => isControl("hub.error")(frame) && control(frame).data.code === code;

/** Connects with a seed token (one room), or a token granting `rooms`. */
async function connect(userId: string, grant: { roomId: string } | { rooms: string[] }): Promise<WsClient> {
  const token = await (hub.notifier.issueToken as (input: unknown) => Promise<string>)({ userId, ...grant });
  const client = await openClient(`${hub.websocketUrl}?token=${token}`);
  clients.push(client);
  return client;
}

/** Sends a route frame and waits for the first frame (after `from`) that `match` accepts. */
async function ask(client: WsClient, frame: Record<string, unknown>, match: (frame: Frame) => boolean): Promise<Frame> {
  const from = client.frames.length;
  client.ws.send(JSON.stringify(frame));
  return client.next((f) => client.frames.indexOf(f) >= from && (match(f) || isControl("hub.error")(f)));
}

/** The connection id behind a client: its user channel's membership, read from the room index. */
async function connectionIdsOf(userId: string): Promise<string[]> {
  const result = await db.send(
    new QueryCommand({ TableName: hub.connectionsTableName, IndexName: ROOM_INDEX_NAME, KeyConditionExpression: "room_id = :r", ExpressionAttributeValues: { ":r": { S: userChannel(userId) } } }),
  );
  return (result.Items ?? []).map((item) => item.connection_id.S!.split("#")[0]);
}

/** Every item of the connections table that belongs to a connection: its row and its memberships in `rooms`. */
async function itemsOf(connectionId: string, rooms: string[]): Promise<string[]> {
  const keys = [connectionId, ...rooms.map((room) => membershipKey(connectionId, room))];
  const found: string[] = [];
  for (const key of keys) {
    const result = await db.send(new GetItemCommand({ TableName: hub.connectionsTableName, Key: { connection_id: { S: key } }, ConsistentRead: true }));
    if (result.Item) found.push(key);
  }
  return found;
}

const dataOf = (client: WsClient, room: string) => client.frames.filter((f) => f.room_id === room).map((f) => f.data);

describe("subscribe and unsubscribe with a seed token", () => {
  it("answers subscribed for its own room and user channel, forbidden for others, and unsubscribe stops delivery", async () => {
    const ann = await connect("ann", { roomId: "lobby" });
    expect(control(await ask(ann, { action: "subscribe", room_id: "lobby" }, isControl("hub.subscribed")))).toEqual({ type: "hub.subscribed", data: { room_id: "lobby", last_seq: 0 } });
    expect(control(await ask(ann, { action: "subscribe", room_id: "user:ann" }, isControl("hub.subscribed")))).toMatchObject({ data: { room_id: "user:ann" } });
    const other = control(await ask(ann, { action: "subscribe", room_id: "kitchen" }, isControl("hub.subscribed")));
    expect(other).toMatchObject({ type: "hub.error", data: { code: "forbidden" } });
    expect(control(await ask(ann, { action: "subscribe", room_id: "user:bob" }, isControl("hub.subscribed")))).toMatchObject({ data: { code: "forbidden" } });
    const bad = control(await ask(ann, { action: "subscribe", room_id: "" }, isControl("hub.subscribed")));
    expect(bad).toMatchObject({ data: { code: "invalid_subscribe" } });
    expect(bad.data.message).toMatch(/room_id/);
    const leaveOwn = control(await ask(ann, { action: "unsubscribe", room_id: "user:ann" }, isControl("hub.unsubscribed")));
    expect(leaveOwn).toMatchObject({ data: { code: "invalid_subscribe" } });
    expect(leaveOwn.data.message).toMatch(/user channel/);

    await hub.notifier.publish({ roomId: "lobby", data: "one" });
    await hub.notifier.publishToUser({ userId: "ann", data: "for ann" });
    await until(() => dataOf(ann, "lobby").length === 1 && dataOf(ann, "user:ann").length === 1);
    expect(control(await ask(ann, { action: "unsubscribe", room_id: "lobby" }, isControl("hub.unsubscribed")))).toEqual({ type: "hub.unsubscribed", data: { room_id: "lobby" } });
    // Bob, still in the lobby, sees "two" arrive; a frame to ann's channel after that one
    // shares her socket's order with anything the same fan-out would have posted her.
    const bob = await connect("bob", { roomId: "lobby" });
    await hub.notifier.publish({ roomId: "lobby", data: "two" });
    await until(() => dataOf(bob, "lobby").includes("two"));
    await hub.notifier.publishToUser({ userId: "ann", data: "after two" });
    await until(() => dataOf(ann, "user:ann").length === 2);
    expect(dataOf(ann, "lobby")).toEqual(["one"]);
    // Idempotent: leaving again answers the same; rejoining the granted room works.
    expect(control(await ask(ann, { action: "unsubscribe", room_id: "lobby" }, isControl("hub.unsubscribed")))).toMatchObject({ type: "hub.unsubscribed" });
    expect(control(await ask(ann, { action: "subscribe", room_id: "lobby" }, isControl("hub.subscribed")))).toEqual({ type: "hub.subscribed", data: { room_id: "lobby", last_seq: 2 } });
  });
});

describe("a connection's items", () => {
  it("are all gone after $disconnect: row, room membership, user channel membership", async () => {
    const before = new Set(await connectionIdsOf("dora"));
    const dora = await connect("dora", { roomId: "porch" });
    const [id] = (await connectionIdsOf("dora")).filter((c) => !before.has(c));
    expect(await itemsOf(id, ["porch", "user:dora"])).toEqual([id, membershipKey(id, "porch"), membershipKey(id, "user:dora")]);
    dora.ws.close();
    await dora.closed;
    await until(async () => (await itemsOf(id, ["porch", "user:dora"])).length === 0);
  });

  it("are all gone after a post answers 410, and an orphaned membership goes with the post through it", async () => {
    // A connection API Gateway no longer has (its socket died without $disconnect) and a
    // membership left by a subscribe that raced its $disconnect.
    const connectedAt = Date.now() - 60_000; // past the handshake grace
    await putConnection(db, hub.connectionsTableName, { connectionId: "ghost", userId: "gus", rooms: ["attic", "cellar"], grants: ["attic", "cellar"], connectedAt, generation: "g", authKey: "attic" });
    await putConnection(db, hub.connectionsTableName, { connectionId: "orphan", userId: "olga", rooms: ["attic"], grants: ["attic"], connectedAt, generation: "g", authKey: "attic" });
    await db.send(new DeleteItemCommand({ TableName: hub.connectionsTableName, Key: { connection_id: { S: "orphan" } } }));
    expect(await itemsOf("ghost", ["attic", "cellar", "user:gus"])).toHaveLength(4);
    expect(await itemsOf("orphan", ["attic", "user:olga"])).toEqual([membershipKey("orphan", "attic"), membershipKey("orphan", "user:olga")]);

    const watcher = await connect("walt", { roomId: "attic" });
    await hub.notifier.publish({ roomId: "attic", data: "creak" });
    await until(() => dataOf(watcher, "attic").length === 1);
    await until(async () => (await itemsOf("ghost", ["attic", "cellar", "user:gus"])).length === 0);
    // The orphan's membership of the room the post came through; its user channel's waits for its TTL.
    await until(async () => (await itemsOf("orphan", ["attic"])).length === 0);
  });
});
