/**
 * User channels and many rooms on the local hub (docs/protocol.md#rooms-and-user-channels), as apps and browsers meet them:
 * publishToUser reaches every tab of that user, in whatever room, and nobody else, also across a
 * reconnect (the client resumes the user channel); the browser client's join/leave, and its
 * re-join + resume of every room after a reconnect. One hub for the file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalHub, type LocalHub } from "../local";
import { gatedWebSocket, roomRequestsInFlight } from "./support/clientSocket";
import { roomRows } from "./support/seed";
import { until } from "./support/wait";
import { openClient } from "./support/wsClient";
type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });
type Frame = { id: string; room_id: string | null; user_id: string | null; seq?: number; data: { type: string; data: unknown } };

let hub: LocalHub;
let connect: ClientModule["connect"];
beforeAll(async () => {
  ({ connect } = await import("../client/index.mjs"));
  // Three rooms per connection, so the limit is reached in a few joins.
  hub = await startLocalHub({ port: 0, bcryptCost: 4, maxRoomsPerConnection: 3 });
}, 60_000);
afterAll(async () => {
  await hub?.stop();
});

/** A tab of a user in a room (a seed token), keeping every frame. */
async function tab(userId: string, roomId: string) {
  const token = await hub.notifier.issueToken({ userId, roomId });
  const client = await openClient(`${hub.websocketUrl}?token=${encodeURIComponent(token)}`);
  return { ws: client.ws, of: (type: string) => client.frames.filter((f) => f.data?.type === type) as Frame[] };
}

describe("publishToUser", () => {
  it("reaches every tab of that user across rooms, stored in the user's stream, and nobody else", async () => {
    const annInA = await tab("ann", "room-a");
    const annInB = await tab("ann", "room-b");
    const bobInA = await tab("bob", "room-a");
    try {
      const { messageId } = await hub.notifier.publishToUser({ userId: "ann", senderId: "billing", data: { type: "dm", data: "your export is ready" } });
      await until(() => annInA.of("dm").length === 1 && annInB.of("dm").length === 1);
      const expected = { id: messageId, room_id: "user:ann", user_id: "billing", origin: "app", seq: 1, data: { type: "dm", data: "your export is ready" } };
      expect(annInA.of("dm")).toEqual([expected]);
      expect(annInB.of("dm")).toEqual([expected]);
      // Bob's own channel works, and by the time his arrives ann's delivery is long done.
      await hub.notifier.publishBatch([{ toUserId: "bob", data: { type: "dm", data: "for bob" } }]);
      await until(() => bobInA.of("dm").length === 1);
      expect(bobInA.of("dm").map((f) => [f.room_id, f.data.data])).toEqual([["user:bob", "for bob"]]);
      expect(annInA.of("dm")).toHaveLength(1);
      expect(await hub.notifier.history({ roomId: "user:ann" })).toEqual([expected]);
      // A room publish still reaches the room only, and no one may publish into user: as a room.
      await expect(hub.notifier.publish({ roomId: "user:ann", data: 1 })).rejects.toThrow(/roomId must not start with "user:".*toUserId/);
    } finally {
      for (const t of [annInA, annInB, bobInA]) t.ws.close();
    }
  });

  it("survives a reconnect: the client resumes the user channel and hands each frame over once, in order", async () => {
    const gate = gatedWebSocket();
    const client = connect({
      url: hub.websocketUrl,
      getToken: () => hub.notifier.issueToken({ userId: "cat", roomId: "cat-room" }),
      WebSocket: gate.WebSocket,
      minBackoffMs: 20,
      maxBackoffMs: 100,
    });
    const mine: Frame[] = [];
    client.subscribe("dm", (_data, frame) => mine.push(frame as Frame), { userChannel: true });
    try {
      // The user channel's baseline comes from the resume the client sends on connect.
      await until(() => client.lastSeq("user:cat") !== undefined);
      await hub.notifier.publishToUser({ userId: "cat", data: { type: "dm", data: 1 } });
      await until(() => mine.length === 1);
      gate.cut();
      for (let i = 2; i <= 6; i++) await hub.notifier.publishToUser({ userId: "cat", data: { type: "dm", data: i } });
      await until(async () => (await hub.notifier.history({ roomId: "user:cat", last: 1 }))[0]?.seq === 6);
      gate.restore();
      await until(() => mine.length >= 6);
      await hub.notifier.publishToUser({ userId: "cat", data: { type: "dm", data: 7 } });
      await until(() => mine.length >= 7);
      expect(mine.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(mine.map((f) => f.data.data)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    } finally {
      client.close();
    }
  });
});

describe("the browser client's many rooms", () => {
  const rooms = ["team", "proj/a", "proj/b"];

  it("join/leave/subscribe by room; after a reconnect it re-joins every room and resumes each, and the user channel, once and in order", async () => {
    const gate = gatedWebSocket();
    const client = connect({
      url: hub.websocketUrl,
      getToken: () => hub.notifier.issueToken({ userId: "dan", rooms: ["team", "proj/*"] }),
      WebSocket: gate.WebSocket,
      minBackoffMs: 20,
      maxBackoffMs: 100,
    });
    const all: Frame[] = [];
    const teamOnly: Frame[] = [];
    const gaps: unknown[] = [];
    client.subscribe("n", (_data, frame) => all.push(frame as Frame));
    client.subscribe("n", (_data, frame) => teamOnly.push(frame as Frame), { room: "team" });
    const seqsOf = (room: string) => all.filter((f) => f.room_id === room).map((f) => f.seq);
    const publish = async (roomId: string, n: number) => {
      for (let i = 0; i < n; i++) await hub.notifier.publish({ roomId, data: { type: "n", data: i } });
    };
    try {
      expect(await client.join("team", { onGap: (gap) => gaps.push(gap) })).toEqual({ room_id: "team", last_seq: 0 });
      // Asked for together, refusals among them (outside the grants, another user's channel): each answer reaches its own join.
      const settled = await Promise.allSettled([client.join("secret"), client.join("proj/a"), client.join("user:ann"), client.join("proj/b")]);
      expect(settled.map((r) => (r.status === "fulfilled" ? r.value.room_id : (r.reason as { code: string }).code))).toEqual(["forbidden", "proj/a", "forbidden", "proj/b"]);
      expect(settled[2]).toMatchObject({ reason: { roomId: "user:ann" } });
      // They were in flight together (pipelined), never two of one room.
      expect(roomRequestsInFlight(gate.wire)).toBe(4);
      expect(client.rooms).toEqual(rooms);
      // Past maxRoomsPerConnection (3 here).
      await expect(client.join("proj/c")).rejects.toMatchObject({ code: "too_many_rooms", roomId: "proj/c" });
      expect(client.rooms).toEqual(rooms);

      await publish("team", 2);
      await publish("proj/a", 1);
      await until(() => all.length === 3);
      expect(teamOnly.map((f) => f.room_id)).toEqual(["team", "team"]);

      // Left: the hub drops the membership, and the room's frames no longer reach the app.
      await client.leave("proj/a");
      expect(client.rooms).toEqual(["team", "proj/b"]);
      expect(await roomRows(hub.dynamodbEndpoint, hub.connectionsTableName, "proj/a")).toEqual([]);

      // Away while the rooms and the user channel get notifications.
      gate.cut();
      await publish("team", 3);
      await publish("proj/b", 2);
      await publish("proj/a", 1);
      await hub.notifier.publishToUser({ userId: "dan", data: { type: "n", data: "dm" } });
      const stored = async (room: string, seq: number) => ((await hub.notifier.history({ roomId: room, last: 1 }))[0]?.seq ?? 0) >= seq;
      await until(async () => (await stored("team", 5)) && (await stored("proj/b", 2)) && (await stored("user:dan", 1)));
      gate.restore();
      await until(() => seqsOf("team").length === 5 && seqsOf("proj/b").length === 2 && seqsOf("user:dan").length === 1);
      // Live again in every joined room after the re-join.
      await publish("proj/b", 1);
      await until(() => seqsOf("proj/b").length === 3);
      expect(seqsOf("team")).toEqual([1, 2, 3, 4, 5]);
      expect(seqsOf("proj/b")).toEqual([1, 2, 3]);
      expect(seqsOf("user:dan")).toEqual([1]);
      expect(seqsOf("proj/a")).toEqual([1]);
      expect(teamOnly.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(client.rooms).toEqual(["team", "proj/b"]);
      expect(gaps).toEqual([]);

      // A member's message to one of its rooms (the hub needs room_id: the connection is in two).
      const chats: Frame[] = [];
      client.subscribe("chat", (_data, frame) => chats.push(frame as Frame), { room: "proj/b", clientFrames: true });
      client.send({ type: "chat", data: "hi proj/b" }, { room: "proj/b" });
      await until(() => chats.length === 1);
      expect(chats[0]).toMatchObject({ room_id: "proj/b", user_id: "dan", origin: "client", seq: 4 });

      // An error about something else (a send to a room it is not in: forbidden, no room) never answers a join.
      client.send({ type: "chat", data: "lost" }, { room: "nowhere" });
      expect(await client.join("proj/c")).toMatchObject({ room_id: "proj/c" });
      expect(client.rooms).toEqual(["team", "proj/b", "proj/c"]);
      // The user channel cannot be left (the hub would refuse it too).
      await expect(client.leave("user:dan")).rejects.toMatchObject({ code: "invalid_subscribe" });
      // A leave whose answer dies with the socket is done: the next connection starts without the room.
      const leaving = client.leave("proj/c");
      gate.cut();
      await leaving;
      gate.restore();
      expect(client.rooms).toEqual(["team", "proj/b"]);
    } finally {
      client.close();
    }
  });

  it("join and leave need no awaiting: one request per room on the wire, and the hub ends with the app's last call", async () => {
    const gate = gatedWebSocket();
    const client = connect({ url: hub.websocketUrl, getToken: () => hub.notifier.issueToken({ userId: "eve", rooms: ["flip/*"] }), WebSocket: gate.WebSocket });
    const got: Frame[] = [];
    client.subscribe("n", (_data, frame) => got.push(frame as Frame));
    const members = async (room: string) => (await roomRows(hub.dynamodbEndpoint, hub.connectionsTableName, room)).length;
    try {
      await until(() => client.state === "open");
      // The hub may run an unsubscribe before the subscribe sent just ahead of it: the client never sends it then.
      const first = client.join("flip/a");
      const leaveA = client.leave("flip/a");
      const again = client.join("flip/a");
      const joinB = client.join("flip/b");
      const leaveB = client.leave("flip/b");
      await expect(first).rejects.toMatchObject({ code: "left", roomId: "flip/a" });
      await expect(joinB).rejects.toMatchObject({ code: "left", roomId: "flip/b" });
      expect(await again).toMatchObject({ room_id: "flip/a" });
      await Promise.all([leaveA, leaveB]);
      expect(client.rooms).toEqual(["flip/a"]);
      const sent = (room: string) => gate.wire.filter((e) => e.dir === "out" && e.frame.room_id === room).map((e) => e.frame.action);
      expect(sent("flip/a")).toEqual(["subscribe"]);
      expect(sent("flip/b")).toEqual(["subscribe", "unsubscribe"]);
      roomRequestsInFlight(gate.wire);
      expect(await members("flip/a")).toBe(1);
      expect(await members("flip/b")).toBe(0);

      // flip/b's notification goes first; flip/a's, published after it, arrives and flip/b's never does.
      await hub.notifier.publish({ roomId: "flip/b", data: { type: "n", data: "left" } });
      await hub.notifier.publish({ roomId: "flip/a", data: { type: "n", data: "joined" } });
      await until(() => got.length === 1);
      expect(got.map((f) => [f.room_id, f.data.data])).toEqual([["flip/a", "joined"]]);
    } finally {
      client.close();
    }
  });
});
