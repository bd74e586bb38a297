/**
 * Presence on the local hub (the real handlers, dynalite, the API Gateway emulator): who is in a
 * room per user, how many, and the member events, counted. "Nothing happened" is shown by a
 * later event that could only come after it (a marker), never by a sleep.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient } from "../core/aws";
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { batchWrite } from "../core/tables";
import { startLocalHub, type LocalHub } from "../local";
import { WebSocket } from "ws";
import { gatedWebSocket } from "./support/clientSocket";
import { until } from "./support/wait";
import { openClient, type Frame, type WsClient } from "./support/wsClient";
type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });
type MemberChange = import("../client/index.mjs", { with: { "resolution-mode": "import" } }).MemberChange;

let hub: LocalHub;
const clients: WsClient[] = [];
const GRACE_SECONDS = 2;

beforeAll(async () => {
  hub = await startLocalHub({ port: 0, bcryptCost: 4, presence: { enabled: true, graceSeconds: GRACE_SECONDS, sweepSeconds: 0.2, eventMembersLimit: 3 } });
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.ws.terminate();
  await hub?.stop();
});

type Control = { type: string; data: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
const body = (frame: Frame) => frame.data as Control;
const isType = (type: string, room?: string) => (frame: Frame) => body(frame)?.type === type && (room === undefined || body(frame).data?.room_id === room);

async function open(token: string): Promise<WsClient> {
  const client = await openClient(`${hub.websocketUrl}?token=${token}`);
  clients.push(client);
  return client;
}

async function ask(client: WsClient, frame: Record<string, unknown>, type: string): Promise<Control> {
  const from = client.frames.length;
  client.ws.send(JSON.stringify(frame));
  const answer = await client.next((f) => client.frames.indexOf(f) >= from && (isType(type)(f) || isType("hub.error")(f)));
  expect(body(answer).type, JSON.stringify(answer)).toBe(type);
  return body(answer);
}

const token = (userId: string, rooms: string[]) => hub.notifier.issueToken({ userId, rooms });

async function tab(userId: string, room: string, existing?: string): Promise<{ client: WsClient; token: string }> {
  const t = existing ?? (await token(userId, [room]));
  const client = await open(t);
  await ask(client, { action: "subscribe", room_id: room }, "hub.subscribed");
  return { client, token: t };
}

/** Member events as (kind, user) pairs, diffs spread out, in order of arrival. */
function memberEvents(client: WsClient, room: string): string[] {
  return client.frames.flatMap((f) => {
    const { type, data } = body(f) ?? {};
    if (data?.room_id !== room || f.origin !== "hub") return [];
    if (type === "hub.member.joined") return [`joined ${data.user_id}`];
    if (type === "hub.member.left") return [`left ${data.user_id} ${data.reason}`];
    if (type === "hub.presence.diff") return [...data.joined.map((u: string) => `joined ${u}`), ...data.left.map((l: { user_id: string; reason: string }) => `left ${l.user_id} ${l.reason}`)];
    return [];
  });
}
const count = (events: string[], event: string) => events.filter((e) => e === event).length;

describe("presence: two users, three tabs", () => {
  it("is exact per user; one of two tabs closing sends no leave, the last tab one leave, a new user one join, a reconnect within the grace nothing", async () => {
    const room = "lobby";
    const ann1 = await tab("ann", room);
    const ann2 = await tab("ann", room);
    const bob = await tab("bob", room);

    const page = await ask(ann1.client, { action: "presence", room_id: room }, "hub.presence");
    expect(page.data.count).toBe(2);
    expect(page.data.next).toBeNull();
    expect(page.data.members.map((m: { user_id: string; connections: number }) => [m.user_id, m.connections])).toEqual([
      ["ann", 2],
      ["bob", 1],
    ]);
    expect(page.data.members.every((m: { since: number }) => m.since > 0)).toBe(true);
    expect((await ask(bob.client, { action: "occupancy", room_id: room }, "hub.occupancy")).data).toEqual({ room_id: room, connections: 3, users: 2, keep_alive_ms: 45_000 });

    // One of ann's two tabs closes; then bob's only tab: only bob leaves (after the grace).
    ann2.client.ws.close();
    await until(async () => (await ask(bob.client, { action: "occupancy", room_id: room }, "hub.occupancy")).data.connections === 2);
    bob.client.ws.close();
    await until(() => count(memberEvents(ann1.client, room), "left bob closed") === 1);
    // A new user: one join.
    const carl = await tab("carl", room);
    await until(() => count(memberEvents(ann1.client, room), "joined carl") === 1);

    // carl reconnects within the grace (the 2-hour rotation): no leave, no join. dave, who
    // closes after carl came back, is the marker: his leave is decided after carl's would be.
    const dave = await tab("dave", room);
    carl.client.ws.close();
    await carl.client.closed;
    const carlAgain = await tab("carl", room, carl.token);
    dave.client.ws.close();
    await until(() => count(memberEvents(ann1.client, room), "left dave closed") === 1, 20_000);

    const events = memberEvents(ann1.client, room);
    expect(count(events, "joined ann")).toBe(1);
    expect(events.filter((e) => e.startsWith("left ann"))).toEqual([]);
    expect(count(events, "joined bob")).toBe(1);
    expect(count(events, "left bob closed")).toBe(1);
    expect(count(events, "joined carl")).toBe(1);
    expect(events.filter((e) => e.startsWith("left carl"))).toEqual([]);
    expect(count(events, "joined dave")).toBe(1);
    // Hub events carry no seq and are not stored.
    expect(ann1.client.frames.filter((f) => f.origin === "hub").every((f) => !("seq" in f))).toBe(true);

    expect((await ask(carlAgain.client, { action: "occupancy", room_id: room }, "hub.occupancy")).data).toEqual({ room_id: room, connections: 2, users: 2, keep_alive_ms: 45_000 });
    const after = await ask(carlAgain.client, { action: "presence", room_id: room }, "hub.presence");
    expect(after.data.members.map((m: { user_id: string; connections: number }) => [m.user_id, m.connections])).toEqual([
      ["ann", 1],
      ["carl", 1],
    ]);

    // Unsubscribing is a leave at once, with its reason.
    await ask(carlAgain.client, { action: "unsubscribe", room_id: room }, "hub.unsubscribed");
    await until(() => count(memberEvents(ann1.client, room), "left carl unsubscribed") === 1);
  }, 60_000);

  it("refuses a room the connection is not in, and bad requests, with their codes", async () => {
    const { client } = await tab("erin", "erins-room");
    client.ws.send(JSON.stringify({ action: "presence", room_id: "lobby" }));
    expect(body(await client.next(isType("hub.error"))).data).toMatchObject({ code: "not_subscribed", room_id: "lobby" });
    const from = client.frames.length;
    client.ws.send(JSON.stringify({ action: "occupancy", room_id: "erins-room", limit: 0 }));
    expect(body(await client.next((f) => client.frames.indexOf(f) >= from && isType("hub.error")(f))).data.code).toBe("invalid_presence");
  });
});

describe("presence: big rooms", () => {
  it("past eventMembersLimit sends the changes as diffs: every user joins once, in single events or diffs", async () => {
    const room = "crowd";
    const first = await tab("u0", room);
    for (let i = 1; i <= 5; i++) await tab(`u${i}`, room);
    await until(() => [1, 2, 3, 4, 5].every((i) => memberEvents(first.client, room).includes(`joined u${i}`)), 20_000);
    const events = memberEvents(first.client, room);
    for (let i = 0; i <= 5; i++) expect(count(events, `joined u${i}`), `u${i}`).toBe(1);
    // Up to 3 members single events; past them diffs with the room's count.
    const singles = first.client.frames.filter(isType("hub.member.joined", room)).map((f) => body(f).data.user_id);
    expect(singles).toEqual(["u0", "u1", "u2"]);
    const diffs = first.client.frames.filter(isType("hub.presence.diff", room)).map((f) => body(f).data);
    expect(diffs.length).toBeGreaterThanOrEqual(1);
    expect(diffs.at(-1)!.count).toBe(6);
  }, 60_000);

  it("1,500 members page with every member once, count the room's total, through the action and through the SDK (notifier.presence, notifier.occupancy)", async () => {
    const room = "stadium";
    const me = await tab("aaa-me", room);
    // The other 1,499 as presence writes them (member items and the room's counter), in batches: a read test.
    const db = dynamoClient({ endpoint: hub.dynamodbEndpoint, region: hub.region });
    const ids = Array.from({ length: 1_499 }, (_, i) => `member-${String(i).padStart(4, "0")}`);
    const item = (userId: string) => ({ room_id: { S: room }, user_id: { S: userId }, conns: { SS: [`conn-${userId}`] }, since: { N: String(Date.now()) } });
    await batchWrite(db, hub.presenceTableName!, ids.map((userId) => ({ PutRequest: { Item: item(userId) } })));
    await db.send(
      new UpdateItemCommand({ TableName: hub.presenceTableName!, Key: { room_id: { S: room }, user_id: { S: "\u001fcount" } }, UpdateExpression: "ADD #u :n, #c :n", ExpressionAttributeNames: { "#u": "users", "#c": "connections" }, ExpressionAttributeValues: { ":n": { N: String(ids.length) } } }),
    );

    const seen: string[] = [];
    let next: string | null | undefined;
    let pages = 0;
    do {
      const page = await ask(me.client, { action: "presence", room_id: room, ...(next ? { after: next } : {}) }, "hub.presence");
      expect(page.data.count).toBe(1_500);
      expect(page.data.members.length).toBeLessThanOrEqual(1_000);
      seen.push(...page.data.members.map((m: { user_id: string }) => m.user_id));
      next = page.data.next;
      pages++;
    } while (next);
    expect(pages).toBe(2);
    expect(seen.length).toBe(1_500);
    expect(new Set(seen).size).toBe(1_500);
    expect(new Set(seen)).toEqual(new Set(["aaa-me", ...ids]));
    expect((await ask(me.client, { action: "occupancy", room_id: room }, "hub.occupancy")).data).toEqual({ room_id: room, connections: 1_500, users: 1_500, keep_alive_ms: 45_000 });

    // The SDK reads the same pages from the table: 600 a page, three pages, every member once.
    const read: string[] = [];
    let after: string | undefined;
    let sdkPages = 0;
    do {
      const page = await hub.notifier.presence({ roomId: room, after, limit: 600 });
      expect(page.count).toBe(1_500);
      read.push(...page.members.map((m) => m.user_id));
      after = page.next ?? undefined;
      sdkPages++;
    } while (after);
    expect(sdkPages).toBe(3);
    expect(read).toEqual(seen);
    expect(await hub.notifier.occupancy({ roomId: room })).toEqual({ connections: 1_500, users: 1_500 });
    await expect(hub.notifier.presence({ roomId: room, limit: 1_001 })).rejects.toThrow("presence: limit must be a whole number from 1 to 1000");
    await expect(hub.notifier.occupancy({ roomId: "user:someone" })).rejects.toThrow("occupancy: user:someone is a user channel, which has no presence");
  }, 120_000);
});

describe("presence in the browser client (client/presence.mjs)", () => {
  let connect: ClientModule["connect"];
  beforeAll(async () => {
    ({ connect } = await import("../client/index.mjs"));
  });
  const said = (changes: MemberChange[]) =>
    changes.map((c) => (c.type === "reset" ? `reset ${c.count} ${c.members ? c.members.map((m) => m.user_id).sort().join(",") : "(no list)"}` : `${c.type} ${c.user_id} ${c.via}`));

  it("onMember starts with a reset listing who is there, hears joins and leaves, and after a reconnect reads the list again and tells what it missed", async () => {
    const room = "client-lobby";
    const gate = gatedWebSocket();
    const changes: MemberChange[] = [];
    const hubClient = connect({ url: hub.websocketUrl, token: await token("zoe", [room]), WebSocket: gate.WebSocket, minBackoffMs: 20, maxBackoffMs: 100, eventMembersLimit: 3 });
    const bob = await tab("bob2", room);
    await hubClient.join(room);
    // zoe's own join is counted once its subscribe's presence write is done (after hub.subscribed).
    await until(async () => (await hubClient.occupancy(room)).users === 2);
    const stop = hubClient.onMember(room, (change) => changes.push(change));
    await until(() => changes.length >= 1);
    expect(said(changes)[0]).toBe("reset 2 bob2,zoe");
    const carl = await tab("carl2", room);
    await until(() => said(changes).includes("joined carl2 event"));

    // Away: bob leaves and dan joins while the socket is cut; their events are lost.
    gate.cut();
    await until(() => hubClient.state === "connecting");
    await ask(bob.client, { action: "unsubscribe", room_id: room }, "hub.unsubscribed");
    const dan = await tab("dan2", room);
    await until(async () => (await ask(carl.client, { action: "occupancy", room_id: room }, "hub.occupancy")).data.users === 3 - 1 + 1);
    const from = changes.length;
    gate.restore();
    await until(() => said(changes.slice(from)).includes("left bob2 refresh") && said(changes.slice(from)).includes("joined dan2 refresh"), 20_000);
    // One presence read after the reconnect, no occupancy: the room is within eventMembersLimit.
    const reconnected = gate.wire.map((entry, i) => (entry.dir === "socket" ? i : -1)).filter((i) => i >= 0).at(-1)!;
    const asked = gate.wire.slice(reconnected).filter((e) => e.dir === "out" && (e.frame.action === "presence" || e.frame.action === "occupancy"));
    expect(asked.map((e) => e.frame.action)).toEqual(["presence"]);
    const listed = await hubClient.presence(room);
    expect(listed.members.map((m) => m.user_id).sort()).toEqual(["carl2", "dan2", "zoe"]);
    expect(listed.count).toBe(3);

    // A live leave, then no more calls after stop().
    dan.client.ws.close();
    await until(() => said(changes).includes("left dan2 event"), 20_000);
    stop();
    hubClient.close();
  }, 60_000);

  it("a room past eventMembersLimit is read by its count: a reset without a list, and only occupancy after a reconnect", async () => {
    const room = "client-crowd";
    for (const user of ["p1", "p2", "p3", "p4"]) await tab(user, room);
    const gate = gatedWebSocket();
    const changes: MemberChange[] = [];
    const hubClient = connect({ url: hub.websocketUrl, token: await token("zed", [room]), WebSocket: gate.WebSocket, minBackoffMs: 20, maxBackoffMs: 100, eventMembersLimit: 3 });
    await hubClient.join(room);
    // zed's own join is counted once its subscribe's presence write is done.
    await until(async () => (await hubClient.occupancy(room)).users === 5);
    hubClient.onMember(room, (change) => changes.push(change));
    await until(() => changes.some((c) => c.type === "reset"));
    expect(said(changes.filter((c) => c.type === "reset"))).toEqual(["reset 5 (no list)"]);
    gate.cut();
    await until(() => hubClient.state === "connecting");
    const from = gate.wire.length;
    gate.restore();
    await until(() => changes.filter((c) => c.type === "reset").length === 2, 20_000);
    const asked = gate.wire.slice(from).filter((e) => e.dir === "out" && (e.frame.action === "presence" || e.frame.action === "occupancy"));
    expect(asked.map((e) => e.frame.action)).toEqual(["occupancy"]);
    const reset = changes.filter((c) => c.type === "reset").at(-1);
    // Users: zed's old connection is within its grace, the new one may not be written yet (after hub.subscribed).
    expect(reset).toMatchObject({ type: "reset", count: 5, connections: expect.any(Number) });
    expect((reset as { members?: unknown }).members).toBeUndefined();
    // presence() still reads every page when asked.
    expect((await hubClient.presence(room, { limit: 2 })).members.map((m) => m.user_id).sort()).toEqual(["p1", "p2", "p3", "p4", "zed"]);
    hubClient.close();
  }, 60_000);

  it("reads the token's room asked before the socket opened; refuses a room not joined (not_subscribed) and a bad limit, without a request", async () => {
    const hubClient = connect({ url: hub.websocketUrl, getToken: () => hub.notifier.issueToken({ userId: "yan", roomId: "yan-room" }), WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
    // Asked before the token is even fetched: it waits for the connection, which $connect puts in its token's room.
    const listed = await hubClient.presence("yan-room");
    expect(listed.members.map((m) => m.user_id)).toEqual(["yan"]);
    await expect(hubClient.presence("elsewhere")).rejects.toMatchObject({ name: "HubError", code: "not_subscribed" });
    await expect(hubClient.occupancy("elsewhere")).rejects.toMatchObject({ code: "not_subscribed" });
    await expect(hubClient.presence("yan-room", { limit: 0 })).rejects.toThrow(/limit must be a whole number from 1 to 1000/);
    hubClient.close();
    await expect(hubClient.occupancy("yan-room")).rejects.toMatchObject({ code: "closed" });
  });
});

describe("presence off (the default)", () => {
  it("has no presence routes and no presence table", async () => {
    const plain = await startLocalHub({ port: 0, bcryptCost: 4 });
    try {
      expect(plain.presenceTableName).toBeUndefined();
      // The SDK says what is missing, and where it comes from.
      await expect(plain.notifier.presence({ roomId: "r" })).rejects.toThrow(/^presence: presenceTableName is required .*presence: \{ enabled: true \}/);
      await expect(plain.notifier.occupancy({ roomId: "r" })).rejects.toThrow(/^occupancy: presenceTableName is required/);
      const client = await openClient(`${plain.websocketUrl}?token=${await plain.notifier.issueToken({ userId: "u", rooms: ["r"] })}`);
      client.ws.send(JSON.stringify({ action: "presence", room_id: "r" }));
      expect(body(await client.next(isType("hub.error"))).data.code).toBe("unknown_action");
      client.ws.terminate();
    } finally {
      await plain.stop();
    }
  }, 60_000);
});

describe("presence diffs without the sweep (its schedule is a minute or more on AWS)", () => {
  it("the last changes of a burst past eventMembersLimit arrive by the flush the hub queues for itself (deliver), with no sweep run", async () => {
    const quiet = await startLocalHub({ port: 0, bcryptCost: 4, presence: { enabled: true, graceSeconds: GRACE_SECONDS, sweepSeconds: 3600, eventMembersLimit: 2 } });
    const sweeps: string[] = [];
    quiet.onEvent((event) => void (event.type === "sweep.done" && sweeps.push(event.type)));
    const opened: WsClient[] = [];
    try {
      const room = "burst";
      const join = async (userId: string) => {
        const client = await openClient(`${quiet.websocketUrl}?token=${await quiet.notifier.issueToken({ userId, rooms: [room] })}`);
        opened.push(client);
        client.ws.send(JSON.stringify({ action: "subscribe", room_id: room }));
        await client.next(isType("hub.subscribed", room));
        return client;
      };
      const first = await join("v0");
      // A burst: the six join at once, within one diff interval (1 s) on an idle machine, so all
      // but the first diff wait for the interval's end. What this proves holds under any load:
      // no change waits for the sweep. (Without the queued flush it fails on an idle machine:
      // the last changes stay in the buffer for the hour-long sweep.)
      await Promise.all([1, 2, 3, 4, 5, 6].map((i) => join(`v${i}`)));
      await until(() => [1, 2, 3, 4, 5, 6].every((i) => memberEvents(first, room).includes(`joined v${i}`)), 30_000);
      for (let i = 1; i <= 6; i++) expect(count(memberEvents(first, room), `joined v${i}`), `v${i}`).toBe(1);
      expect(sweeps).toEqual([]);
    } finally {
      for (const client of opened) client.ws.terminate();
      await quiet.stop();
    }
  }, 90_000);
});
