/**
 * Many rooms on one connection (docs/protocol.md#rooms-and-user-channels), on the local hub with real
 * `ws` connections: subscribe / unsubscribe and their refusals, delivery to exactly the rooms
 * a connection is in and its user channel, resume per subscribed room, sendMessage's room_id,
 * and a connection's items gone after $disconnect and after a 410.
 */
import { DeleteItemCommand, GetItemCommand, PutItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { sqsClient } from "../core/aws";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { chunkBody, parseQueueBody } from "../core/chunks";
import { createLogger } from "../core/log";
import { frameFor, serializeFrame } from "../core/messages";
import { grantsAuthKey, membershipKey, userChannel } from "../core/rooms";
import { createConnectHandler } from "../handlers/connect";
import { startLocalHub } from "../local";
import { localEnvironment } from "../local/handlers";
import { routeEvent } from "./support/events";
import { ROOM_INDEX_NAME } from "../core/schema";
import { addRoom, getConnection, getConnections, putConnection, removeConnection } from "../core/tables";
import { until } from "./support/wait";
import { sharedTestHub } from "./support/sharedHub";
import { openClient, type Frame, type WsClient } from "./support/wsClient";

const shared = sharedTestHub();

type Control = { type: string; data: Record<string, unknown> };
const control = (frame: Frame) => frame.data as Control;
const isControl = (type: string, room?: string) => (frame: Frame) => frame.user_id === null && control(frame)?.type === type && (room === undefined || control(frame).data?.room_id === room);
const isError = (code: string) => (frame: Frame) => isControl("hub.error")(frame) && control(frame).data.code === code;

/** Connects with a seed token (one room), or a token granting `rooms`. */
async function connect(userId: string, grant: { roomId: string } | { rooms: string[] }): Promise<WsClient> {
  const token = await (shared.hub.notifier.issueToken as (input: unknown) => Promise<string>)({ userId, ...grant });
  const client = await openClient(`${shared.hub.websocketUrl}?token=${token}`);
  shared.clients.push(client);
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
  const result = await shared.db.send(
    new QueryCommand({ TableName: shared.hub.connectionsTableName, IndexName: ROOM_INDEX_NAME, KeyConditionExpression: "room_id = :r", ExpressionAttributeValues: { ":r": { S: userChannel(userId) } } }),
  );
  return (result.Items ?? []).map((item) => item.connection_id.S!.split("#")[0]);
}

/** Every item of the connections table that belongs to a connection: its row and its memberships in `rooms`. */
async function itemsOf(connectionId: string, rooms: string[]): Promise<string[]> {
  const keys = [connectionId, ...rooms.map((room) => membershipKey(connectionId, room))];
  const found: string[] = [];
  for (const key of keys) {
    const result = await shared.db.send(new GetItemCommand({ TableName: shared.hub.connectionsTableName, Key: { connection_id: { S: key } }, ConsistentRead: true }));
    if (result.Item) found.push(key);
  }
  return found;
}

const dataOf = (client: WsClient, room: string) => client.frames.filter((f) => f.room_id === room).map((f) => f.data);

describe("one connection in 100 rooms", () => {
  it("gets exactly the notifications of its 100 rooms and its user channel; the 101st room, ungranted rooms and other users' channels are refused", async () => {
    const max = await connect("max", { rooms: ["r/*", "solo"] });
    const rooms = Array.from({ length: 100 }, (_, i) => `r/${i}`);
    const from = max.frames.length;
    for (const room of rooms) max.ws.send(JSON.stringify({ action: "subscribe", room_id: room }));
    await until(() => max.frames.slice(from).filter(isControl("hub.subscribed")).length === 100 || max.frames.slice(from).some(isControl("hub.error")));
    expect(max.frames.slice(from).filter(isControl("hub.error")).map(control)).toEqual([]);
    expect(new Set(max.frames.slice(from).map((f) => control(f).data.room_id))).toEqual(new Set(rooms));

    const refusal = async (room: string, code: string) => {
      const answer = await ask(max, { action: "subscribe", room_id: room }, isControl("hub.subscribed", room));
      expect(isError(code)(answer), `${room}: ${JSON.stringify(answer)}`).toBe(true);
      return control(answer).data.message as string;
    };
    expect(await refusal("r/100", "too_many_rooms")).toMatch(/100 rooms \(maxRoomsPerConnection\)/);
    expect(await refusal("solo", "too_many_rooms")).toMatch(/maxRoomsPerConnection/); // granted, but full
    expect(await refusal("q/1", "forbidden")).toMatch(/does not grant/);
    expect(await refusal("user:mia", "forbidden")).toMatch(/does not grant/);
    // A room it is in, and its own channel, which is not counted: subscribed again, nothing new.
    expect(control(await ask(max, { action: "subscribe", room_id: "r/7" }, isControl("hub.subscribed", "r/7")))).toMatchObject({ type: "hub.subscribed" });
    expect(control(await ask(max, { action: "subscribe", room_id: "user:max" }, isControl("hub.subscribed", "user:max")))).toMatchObject({ type: "hub.subscribed" });

    // Mia is in the rooms max was refused, so their deliveries are seen to happen.
    const mia = await connect("mia", { rooms: ["r/100", "q/1", "solo"] });
    for (const room of ["r/100", "q/1", "solo"]) await ask(mia, { action: "subscribe", room_id: room }, isControl("hub.subscribed", room));
    await shared.hub.notifier.publishBatch([
      ...rooms.map((room) => ({ roomId: room, data: room })),
      { roomId: "r/100", data: "r/100" },
      { roomId: "q/1", data: "q/1" },
      { roomId: "solo", data: "solo" },
      { toUserId: "max", data: "to max" },
      { toUserId: "mia", data: "to mia" },
    ]);
    await until(() => mia.frames.filter((f) => f.origin === "app").length === 4);
    await until(() => max.frames.filter((f) => f.origin === "app").length >= 101);
    // Anything still on its way to max was posted before this one reached the same socket.
    await shared.hub.notifier.publishToUser({ userId: "max", data: "marker" });
    await until(() => max.frames.some((f) => f.data === "marker"));
    const got = max.frames.filter((f) => f.origin === "app" && f.data !== "marker");
    expect(got.map((f) => f.data).sort()).toEqual([...rooms, "to max"].sort());
    for (const frame of got) expect(frame.room_id).toBe(frame.data === "to max" ? "user:max" : frame.data);
    expect(mia.frames.filter((f) => f.origin === "app").map((f) => f.data).sort()).toEqual(["q/1", "r/100", "solo", "to mia"]);

    // Leaving one makes room for another, and the left room's frames stop.
    await ask(max, { action: "unsubscribe", room_id: "r/0" }, isControl("hub.unsubscribed", "r/0"));
    expect(control(await ask(max, { action: "subscribe", room_id: "solo" }, isControl("hub.subscribed", "solo")))).toMatchObject({ data: { room_id: "solo", last_seq: 1 } });

    // After $disconnect, none of its 101 memberships nor its row is left.
    const [id] = await connectionIdsOf("max");
    const all = ["solo", ...rooms.slice(1), "user:max"];
    expect(await itemsOf(id, all)).toHaveLength(all.length + 1);
    max.ws.close();
    await max.closed;
    await until(async () => (await itemsOf(id, [...all, "r/0"])).length === 0);
  });
});

describe("subscribe and unsubscribe with a seed token", () => {
  it("answers subscribed for its own room and user channel, forbidden for others, and unsubscribe stops delivery", async () => {
    const ann = await connect("ann", { roomId: "lobby" });
    expect(control(await ask(ann, { action: "subscribe", room_id: "lobby" }, isControl("hub.subscribed")))).toEqual({ type: "hub.subscribed", data: { room_id: "lobby", last_seq: 0 } });
    expect(control(await ask(ann, { action: "subscribe", room_id: "user:ann" }, isControl("hub.subscribed")))).toMatchObject({ data: { room_id: "user:ann" } });
    expect(isError("forbidden")(await ask(ann, { action: "subscribe", room_id: "kitchen" }, isControl("hub.subscribed")))).toBe(true);
    // The refusal names its room, so a client with several subscribes in flight can match it.
    expect(control(await ask(ann, { action: "subscribe", room_id: "user:bob" }, isControl("hub.subscribed")))).toMatchObject({ data: { code: "forbidden", room_id: "user:bob" } });
    const bad = control(await ask(ann, { action: "subscribe", room_id: "" }, isControl("hub.subscribed")));
    expect(bad).toMatchObject({ data: { code: "invalid_subscribe" } });
    expect(bad.data.message).toMatch(/room_id/);
    const leaveOwn = control(await ask(ann, { action: "unsubscribe", room_id: "user:ann" }, isControl("hub.unsubscribed")));
    expect(leaveOwn).toMatchObject({ data: { code: "invalid_subscribe" } });
    expect(leaveOwn.data.message).toMatch(/user channel/);

    await shared.hub.notifier.publish({ roomId: "lobby", data: "one" });
    await shared.hub.notifier.publishToUser({ userId: "ann", data: "for ann" });
    await until(() => dataOf(ann, "lobby").length === 1 && dataOf(ann, "user:ann").length === 1);
    expect(control(await ask(ann, { action: "unsubscribe", room_id: "lobby" }, isControl("hub.unsubscribed")))).toEqual({ type: "hub.unsubscribed", data: { room_id: "lobby" } });
    // Bob, still in the lobby, sees "two" arrive; a frame to ann's channel after that one
    // shares her socket's order with anything the same fan-out would have posted her.
    const bob = await connect("bob", { roomId: "lobby" });
    await shared.hub.notifier.publish({ roomId: "lobby", data: "two" });
    await until(() => dataOf(bob, "lobby").includes("two"));
    await shared.hub.notifier.publishToUser({ userId: "ann", data: "after two" });
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
    await putConnection(shared.db, shared.hub.connectionsTableName, { connectionId: "ghost", userId: "gus", rooms: ["attic", "cellar"], grants: ["attic", "cellar"], connectedAt, generation: "g", authKey: "attic" });
    await putConnection(shared.db, shared.hub.connectionsTableName, { connectionId: "orphan", userId: "olga", rooms: ["attic"], grants: ["attic"], connectedAt, generation: "g", authKey: "attic" });
    await shared.db.send(new DeleteItemCommand({ TableName: shared.hub.connectionsTableName, Key: { connection_id: { S: "orphan" } } }));
    expect(await itemsOf("ghost", ["attic", "cellar", "user:gus"])).toHaveLength(4);
    expect(await itemsOf("orphan", ["attic", "user:olga"])).toEqual([membershipKey("orphan", "attic"), membershipKey("orphan", "user:olga")]);

    const watcher = await connect("walt", { roomId: "attic" });
    await shared.hub.notifier.publish({ roomId: "attic", data: "creak" });
    await until(() => dataOf(watcher, "attic").length === 1);
    await until(async () => (await itemsOf("ghost", ["attic", "cellar", "user:gus"])).length === 0);
    // The orphan's membership of the room the post came through; its user channel's waits for its TTL.
    await until(async () => (await itemsOf("orphan", ["attic"])).length === 0);
  });
});

describe("resume and sendMessage across a connection's rooms", () => {
  it("resumes a subscribed room and the user channel, and answers not_subscribed for any other stream", async () => {
    await shared.hub.notifier.publish({ roomId: "deck", data: "d1" });
    await shared.hub.notifier.publishToUser({ userId: "rita", data: "r1" });
    const seen = await connect("sam", { roomId: "deck" }); // watches the stream head move
    await shared.hub.notifier.publish({ roomId: "deck", data: "d2" });
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

describe("rows read by key, many at once (getConnections: the console's list)", () => {
  it("reads rows of 1,000 long room ids each past a BatchGetItem response's size cap, in slices of 100, and skips ids with no row", async () => {
    const table = shared.hub.connectionsTableName;
    const connectedAt = Date.now();
    // 40 rows of ~200 KB: dynalite stops a response near 1.4 MB and hands the rest back unprocessed.
    const rooms = Array.from({ length: 1_000 }, (_, i) => `wide/${String(i).padStart(4, "0")}/${"r".repeat(190)}`);
    const ids = Array.from({ length: 40 }, (_, i) => `wide-${i}`);
    for (const id of ids) {
      await shared.db.send(
        new PutItemCommand({ TableName: table, Item: { connection_id: { S: id }, user_id: { S: "wanda" }, rooms: { SS: rooms }, connected_at: { N: String(connectedAt) }, expires_at: { N: String(Math.floor(connectedAt / 1000) + 3600) } } }),
      );
    }
    const missing = Array.from({ length: 70 }, (_, i) => `nobody-${i}`);
    const rows = await getConnections(shared.db, table, [...ids, ...missing]);
    expect([...rows.keys()].sort()).toEqual([...ids].sort());
    for (const row of rows.values()) expect(row.rooms.length).toBe(1_000);
    await Promise.all(ids.map((id) => shared.db.send(new DeleteItemCommand({ TableName: table, Key: { connection_id: { S: id } } }))));
  });
});

describe("rows written before many rooms (seed rows: room_id on the row)", () => {
  it("read as one room, take subscribes without a second item for their own room, and are removed whole", async () => {
    const connectedAt = Date.now() - 60_000;
    await shared.db.send(
      new PutItemCommand({
        TableName: shared.hub.connectionsTableName,
        Item: { connection_id: { S: "legacy-1" }, room_id: { S: "hall" }, user_id: { S: "lena" }, connected_at: { N: String(connectedAt) }, expires_at: { N: String(Math.floor(connectedAt / 1000) + 3600) } },
      }),
    );
    expect(await getConnection(shared.db, shared.hub.connectionsTableName, "legacy-1")).toEqual({
      connectionId: "legacy-1",
      userId: "lena",
      rooms: ["hall"],
      grants: ["hall"],
      seedRoomId: "hall",
      connectedAt,
      expiresAt: Math.floor(connectedAt / 1000) + 3600,
    });
    expect(await addRoom(shared.db, shared.hub.connectionsTableName, "legacy-1", "hall", 100)).toEqual({ ok: true });
    expect(await itemsOf("legacy-1", ["hall"])).toEqual(["legacy-1"]); // it is the hall's member itself
    expect(await addRoom(shared.db, shared.hub.connectionsTableName, "legacy-1", "annex", 100)).toEqual({ ok: true });
    expect((await getConnection(shared.db, shared.hub.connectionsTableName, "legacy-1"))?.rooms.sort()).toEqual(["annex", "hall"]);
    expect(await removeConnection(shared.db, shared.hub.connectionsTableName, "legacy-1")).toBe("removed");
    expect(await itemsOf("legacy-1", ["hall", "annex"])).toEqual([]);
    expect(await removeConnection(shared.db, shared.hub.connectionsTableName, "legacy-1")).toBe("absent");
  });
});

describe("upgrade and race paths", () => {
  it("delivers a chunk an older deliver requeued with membership keys to the connections behind them, once each", async () => {
    const nora = await connect("nora", { roomId: "yard" });
    const [id] = await connectionIdsOf("nora");
    const notification = { id: "old-deliver-1", roomId: "yard", userId: "app", origin: "app" as const, data: "requeued" };
    const frame = serializeFrame(frameFor(notification, 1));
    // What a deliver from before many rooms wrote: the room index's keys as connection ids.
    const body = chunkBody(notification, frame, [membershipKey(id, "yard"), membershipKey(id, userChannel("nora"))]);
    expect(parseQueueBody(body, "m-1")).toMatchObject({ ok: true, value: { connectionIds: [id] } });
    await sqsClient({ endpoint: shared.hub.sqsEndpoint }).send(new SendMessageCommand({ QueueUrl: shared.hub.queueUrl, MessageBody: body }));
    await until(() => dataOf(nora, "yard").includes("requeued"));
    await shared.hub.notifier.publishToUser({ userId: "nora", data: "marker" });
    await until(() => dataOf(nora, "user:nora").includes("marker"));
    expect(dataOf(nora, "yard")).toEqual(["requeued"]);
  });

  it("a $connect refused after its write (token revoked meanwhile) leaves neither row nor memberships", async () => {
    const connect = createConnectHandler({ db: shared.db, connectionsTable: shared.hub.connectionsTableName, authTable: shared.hub.authTableName, log: createLogger({}, undefined, "error") });
    const context = { user_id: "vic", room_id: "", grants: JSON.stringify(["v/*"]), auth_key: grantsAuthKey(["v/*"]), generation: "revoked" };
    expect(await connect(routeEvent("$connect", "refused-1", { authorizer: context }))).toMatchObject({ statusCode: 403 });
    expect(await itemsOf("refused-1", ["user:vic"])).toEqual([]);
    const seed = { user_id: "vic", room_id: "v/1", generation: "revoked" };
    expect(await connect(routeEvent("$connect", "refused-2", { authorizer: seed }))).toMatchObject({ statusCode: 403 });
    expect(await itemsOf("refused-2", ["v/1", "user:vic"])).toEqual([]);
  });
});

describe("maxRoomsPerConnection on the local hub", () => {
  it("is refused out of range before anything starts, and reaches the subscribe handler's environment", async () => {
    for (const bad of [0, 1001, 1.5]) await expect(startLocalHub({ port: 0, maxRoomsPerConnection: bad })).rejects.toThrow(/maxRoomsPerConnection must be a whole number from 1 to 1000/);
    const env = localEnvironment({ ...localConfig, maxRoomsPerConnection: 3 });
    expect(env.MAX_ROOMS_PER_CONNECTION).toBe("3");
    expect(localEnvironment(localConfig).MAX_ROOMS_PER_CONNECTION).toBeUndefined(); // the handler's default, 100
  });
});

const localConfig = {
  dynamodbEndpoint: "http://127.0.0.1:1",
  sqsEndpoint: "http://127.0.0.1:1",
  managementEndpoint: "http://127.0.0.1:1/local",
  queueUrl: "http://127.0.0.1:1/q",
  connectionsTable: "c",
  authTable: "a",
  jwtSecret: "s",
  allowClientMessages: true,
};
