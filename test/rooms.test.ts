/**
 * Many rooms on one connection (issue 14, CONTRACT section 10), on the local hub with real
 * `ws` connections: subscribe / unsubscribe and their refusals, delivery to exactly the rooms
 * a connection is in and its user channel, resume per subscribed room, sendMessage's room_id,
 * and a connection's items gone after $disconnect and after a 410.
 */
import { DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient } from "../core/aws";
import { membershipKey, userChannel } from "../core/rooms";
import { ROOM_INDEX_NAME } from "../core/schema";
import { addRoom, getConnection, putConnection, removeConnection } from "../core/tables";
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
    expect(isError("forbidden")(await ask(ann, { action: "subscribe", room_id: "kitchen" }, isControl("hub.subscribed")))).toBe(true);
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

describe("resume and sendMessage across a connection's rooms", () => {
  it("resumes a subscribed room and the user channel, and answers not_subscribed for any other stream", async () => {
    await hub.notifier.publish({ roomId: "deck", data: "d1" });
    await hub.notifier.publishToUser({ userId: "rita", data: "r1" });
    const seen = await connect("sam", { roomId: "deck" }); // watches the stream head move
    await hub.notifier.publish({ roomId: "deck", data: "d2" });
    await until(() => dataOf(seen, "deck").includes("d2"));
    const rita = await connect("rita", { roomId: "deck" });
    const resumed = (room: string) => ask(rita, { action: "resume", room_id: room, after: 0 }, isControl("hub.resumed", room));
    expect(control(await resumed("deck"))).toMatchObject({ data: { room_id: "deck", last_seq: 2, recovered: true } });
    expect(dataOf(rita, "deck")).toEqual(["d1", "d2"]);
    expect(control(await resumed("user:rita"))).toMatchObject({ data: { room_id: "user:rita", last_seq: 1, recovered: true } });
    expect(dataOf(rita, "user:rita")).toEqual(["r1"]);
    for (const room of ["galley", "user:sam"]) expect(isError("not_subscribed")(await resumed(room)), room).toBe(true);
  });

  it("sends to the named room it is in, its one room without room_id, and never to a user channel or a room it left", async () => {
    const tom = await connect("tom", { roomId: "bridge" });
    const una = await connect("una", { roomId: "bridge" });
    const send = (frame: Record<string, unknown>) => ask(tom, { action: "sendMessage", ...frame }, (f) => f.origin === "client" && f.user_id === "tom");
    expect(await send({ data: "no room named" })).toMatchObject({ room_id: "bridge", data: "no room named" });
    expect(await send({ room_id: "bridge", data: "named" })).toMatchObject({ room_id: "bridge", data: "named" });
    await until(() => dataOf(una, "bridge").length === 2);
    const refusal = async (frame: Record<string, unknown>, code: string) => {
      const answer = await send(frame);
      expect(isError(code)(answer), JSON.stringify(answer)).toBe(true);
      return control(answer).data.message as string;
    };
    expect(await refusal({ room_id: "user:una", data: "psst" }, "forbidden")).toMatch(/user channel/);
    expect(await refusal({ room_id: "user:tom", data: "me" }, "forbidden")).toMatch(/user channel/);
    expect(await refusal({ room_id: "engine", data: "x" }, "forbidden")).toMatch(/not subscribed/);
    expect(await refusal({ room_id: true, data: "x" }, "invalid_message")).toMatch(/room_id/);
    await ask(tom, { action: "unsubscribe", room_id: "bridge" }, isControl("hub.unsubscribed"));
    expect(await refusal({ data: "to nowhere" }, "invalid_message")).toMatch(/room_id is required/);
    expect(await refusal({ room_id: "bridge", data: "left" }, "forbidden")).toMatch(/not subscribed/);
    expect(dataOf(una, "user:una")).toEqual([]);
  });
});

describe("rows written before many rooms (seed rows: room_id on the row)", () => {
  it("read as one room, take subscribes without a second item for their own room, and are removed whole", async () => {
    const connectedAt = Date.now() - 60_000;
    await db.send(
      new PutItemCommand({
        TableName: hub.connectionsTableName,
        Item: { connection_id: { S: "legacy-1" }, room_id: { S: "hall" }, user_id: { S: "lena" }, connected_at: { N: String(connectedAt) }, expires_at: { N: String(Math.floor(connectedAt / 1000) + 3600) } },
      }),
    );
    expect(await getConnection(db, hub.connectionsTableName, "legacy-1")).toEqual({
      connectionId: "legacy-1",
      userId: "lena",
      rooms: ["hall"],
      grants: ["hall"],
      seedRoomId: "hall",
      connectedAt,
      expiresAt: Math.floor(connectedAt / 1000) + 3600,
    });
    expect(await addRoom(db, hub.connectionsTableName, "legacy-1", "hall", 100)).toEqual({ ok: true });
    expect(await itemsOf("legacy-1", ["hall"])).toEqual(["legacy-1"]); // it is the hall's member itself
    expect(await addRoom(db, hub.connectionsTableName, "legacy-1", "annex", 100)).toEqual({ ok: true });
    expect((await getConnection(db, hub.connectionsTableName, "legacy-1"))?.rooms.sort()).toEqual(["annex", "hall"]);
    expect(await removeConnection(db, hub.connectionsTableName, "legacy-1")).toBe("removed");
    expect(await itemsOf("legacy-1", ["hall", "annex"])).toEqual([]);
    expect(await removeConnection(db, hub.connectionsTableName, "legacy-1")).toBe("absent");
  });
});
