/**
 * Presence under races and partial failures (core/presence.ts, handlers/subscribe.ts,
 * handlers/disconnect.ts, core/connections.ts): each test makes one interleaving or one failed
 * request happen on purpose, with the handlers' own code over dynalite and a fake `@connections`,
 * and counts what is left (member items, counters, pending items, lifecycle events). No timers:
 * the grace is 0 or the clock is passed in.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DeleteItemCommand, QueryCommand, UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { ConnectionsApi, PreparedFrame } from "../core/connections";
import { postWithRetries } from "../core/connections";
import { createLogger } from "../core/log";
import { flushDiff, presenceJoin, presenceLeave, readOccupancy, readPresence, settlePendingLeaves, type LifecycleEvent, type PresenceDeps } from "../core/presence";
import { CONNECTION_ROW_TTL_SECONDS } from "../core/schema";
import { getConnection, putConnection } from "../core/tables";
import { createDisconnectHandler } from "../handlers/disconnect";
import { sweepConnections } from "../core/liveness";
import { createSubscribeHandler } from "../handlers/subscribe";
import { routeEvent } from "./support/events";
import { startDynamo, type Dynamo } from "./support/services";

const PRESENCE_TABLE = "races-presence";
const quiet = createLogger({}, () => undefined);

let dynamo: Dynamo;
beforeAll(async () => {
  dynamo = await startDynamo({ connectionsTable: "races-connections", authTable: "races-auth", presenceTable: PRESENCE_TABLE });
}, 60_000);
afterAll(() => dynamo?.stop());

/** A fake `@connections`: every post answers `status(id, text)` (200 by default). */
function fakeManagement(status: (connectionId: string, text: string) => Promise<number> | number = () => 200): ConnectionsApi {
  return {
    endpoint: "fake",
    prepare: (text: string) => ({ body: Buffer.from(text), text, sha256: "", contentLength: String(Buffer.byteLength(text)) }),
    sign: () => Promise.reject(new Error("not used")),
    post: async (id: string, frame: PreparedFrame) => ({ status: await status(id, frame.text ?? "") }),
    destroy: () => undefined,
  } as unknown as ConnectionsApi;
}

/** A client whose requests matching `fails` throw, as a throttled or timed-out DynamoDB call does; the rest go through. */
function failing(db: DynamoDBClient, fails: (input: Record<string, any>) => boolean): DynamoDBClient { // eslint-disable-line @typescript-eslint/no-explicit-any
  return { send: (command: { input: Record<string, unknown> }) => (fails(command.input) ? Promise.reject(Object.assign(new Error("injected"), { name: "ProvisionedThroughputExceededException" })) : db.send(command as never)) } as unknown as DynamoDBClient;
}

let events: LifecycleEvent[];
beforeEach(() => {
  events = [];
});
function presenceDeps(options: { graceMs?: number; now?: () => number; db?: DynamoDBClient; management?: ConnectionsApi } = {}): PresenceDeps {
  return {
    db: options.db ?? dynamo.client,
    management: options.management ?? fakeManagement(),
    connectionsTable: dynamo.connectionsTable,
    log: quiet,
    emit: async (batch) => void events.push(...batch),
    now: options.now,
    presence: { presenceTable: PRESENCE_TABLE, graceMs: options.graceMs ?? 0, eventMembersLimit: 100 },
  };
}
const kinds = () => events.map((e) => `${e.detailType}${e.detail.reason ? ` ${e.detail.reason}` : ""}`);
const addConnection = (connectionId: string, userId: string, rooms: string[], connectedAt = Date.now()) =>
  putConnection(dynamo.client, dynamo.connectionsTable, { connectionId, userId, rooms, grants: ["*"], connectedAt, generation: "g", authKey: "*" });
/** Pending leaves of one room (other tests' leaves decided at once leave theirs for the sweep to drop). */
async function pendingItems(roomId: string): Promise<number> {
  let count = 0;
  for (let shard = 0; shard < 8; shard++) {
    const page = await dynamo.client.send(new QueryCommand({ TableName: PRESENCE_TABLE, KeyConditionExpression: "room_id = :p", ExpressionAttributeValues: { ":p": { S: `\u001fpending\u001f${shard}` } }, ConsistentRead: true }));
    count += (page.Items ?? []).filter((item) => item.user_id?.S?.split("\u001f")[1] === roomId).length;
  }
  return count;
}

describe("presence: a subscribe racing its connection's $disconnect", () => {
  it("a $disconnect between the room's write and the presence join leaves no ghost: joined, then left closed, the room empty", async () => {
    await addConnection("race-1", "sue", []);
    const presence = presenceDeps();
    const disconnect = createDisconnectHandler({ db: dynamo.client, connectionsTable: dynamo.connectionsTable, log: quiet, observe: () => undefined, presence });
    // The socket closes right as hub.subscribed is posted: $disconnect runs before the route joins presence.
    const management = fakeManagement(async (id, text) => {
      if (text.includes("hub.subscribed")) await disconnect(routeEvent("$disconnect", id));
      return 200;
    });
    const subscribe = createSubscribeHandler({ db: dynamo.client, connectionsTable: dynamo.connectionsTable, management, log: quiet, presence: { ...presence, management } });
    expect(await subscribe(routeEvent("subscribe", "race-1", { body: JSON.stringify({ action: "subscribe", room_id: "race-room" }) }))).toMatchObject({ statusCode: 200 });

    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "race-1")).toBeUndefined();
    expect(kinds()).toEqual(["connection.closed closed", "member.joined", "room.occupied", "member.left closed", "room.vacated"]);
    expect(await readOccupancy(dynamo.client, PRESENCE_TABLE, "race-room")).toEqual({ users: 0, connections: 0 });
    expect((await readPresence(dynamo.client, PRESENCE_TABLE, "race-room")).members).toEqual([]);
  });
});

describe("presence: a removal whose membership deletes fail", () => {
  const failMembershipDeletes = (db: DynamoDBClient) => failing(db, (input) => "Key" in input && !("UpdateExpression" in input) && !("Item" in input) && String(input.Key?.connection_id?.S ?? "").includes("#"));

  it("$disconnect: the row is gone, so its rooms lose it anyway (member.left closed), and the failure is still reported (500)", async () => {
    await addConnection("dc-1", "tia", ["dc-room"]);
    const presence = presenceDeps();
    await presenceJoin(presence, { roomId: "dc-room", userId: "tia", connectionId: "dc-1" });
    const reported: string[] = [];
    const disconnect = createDisconnectHandler({ db: failMembershipDeletes(dynamo.client), connectionsTable: dynamo.connectionsTable, log: quiet, observe: (e) => void reported.push(e.type), presence });
    expect(await disconnect(routeEvent("$disconnect", "dc-1"))).toMatchObject({ statusCode: 500 });
    expect(reported).toEqual(["disconnect.failed"]);
    expect(kinds()).toEqual(["member.joined", "room.occupied", "connection.closed closed", "member.left closed", "room.vacated"]);
    expect(await readOccupancy(dynamo.client, PRESENCE_TABLE, "dc-room")).toEqual({ users: 0, connections: 0 });
  });

  it("a 410: the row it removed loses its rooms (the post path's hook runs) even when the membership deletes fail", async () => {
    await addConnection("gone-1", "ugo", ["gone-room"], Date.now() - 60_000);
    const presence = presenceDeps();
    await presenceJoin(presence, { roomId: "gone-room", userId: "ugo", connectionId: "gone-1" });
    const removedRows: string[] = [];
    const outcome = await postWithRetries(
      {
        db: failMembershipDeletes(dynamo.client),
        management: fakeManagement(() => 410),
        connectionsTable: dynamo.connectionsTable,
        log: quiet,
        observe: () => undefined,
        removed: async (row) => {
          removedRows.push(row.connectionId);
          await presenceLeave(presence, { roomId: "gone-room", userId: row.userId, connectionId: row.connectionId }, "timed_out");
        },
      },
      "gone-1",
      fakeManagement().prepare("{}"),
    );
    expect(outcome).toBe("gone");
    expect(removedRows).toEqual(["gone-1"]);
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "gone-1")).toBeUndefined();
    expect(await readOccupancy(dynamo.client, PRESENCE_TABLE, "gone-room")).toEqual({ users: 0, connections: 0 });
  });
});

describe("presence: a leave stopped between its pending item and its mark", () => {
  const isMark = (input: Record<string, unknown>) => String(input.UpdateExpression ?? "").startsWith("SET leaving_at");

  it("is still decided by the sweep: the pending item is written first, so settlePendingLeaves finds the unmarked member and decides it", async () => {
    const t0 = Date.now();
    const presence = presenceDeps({ graceMs: 30_000, now: () => t0 });
    await presenceJoin(presence, { roomId: "crash-room", userId: "vik", connectionId: "crash-1" });
    // The Lambda stops (a timeout, a crash) as it writes the mark.
    await expect(presenceLeave({ ...presence, db: failing(dynamo.client, isMark) }, { roomId: "crash-room", userId: "vik", connectionId: "crash-1" }, "closed")).rejects.toThrow("injected");
    expect(await pendingItems("crash-room")).toBe(1);
    // The grace is over: the sweep decides the leave once; the next run has nothing left.
    const later = presenceDeps({ graceMs: 30_000, now: () => t0 + 31_000 });
    expect(await settlePendingLeaves(later)).toBe(1);
    expect(await settlePendingLeaves(later)).toBe(0);
    expect(kinds()).toEqual(["member.joined", "room.occupied", "member.left closed", "room.vacated"]);
    expect(await readOccupancy(dynamo.client, PRESENCE_TABLE, "crash-room")).toEqual({ users: 0, connections: 0 });
    expect(await pendingItems("crash-room")).toBe(0);
  });

  it("an orphan pending item (a connection came back before the mark) decides nothing: no leave, the member stays, the item is gone", async () => {
    const t0 = Date.now();
    const presence = presenceDeps({ graceMs: 30_000, now: () => t0 });
    await presenceJoin(presence, { roomId: "back-room", userId: "wes", connectionId: "back-1" });
    // A second tab joins between the pending item and the mark: the mark's condition fails.
    const racing = failing(dynamo.client, () => false);
    const db = {
      send: async (command: { input: Record<string, unknown> }) => {
        if (isMark(command.input)) await presenceJoin(presence, { roomId: "back-room", userId: "wes", connectionId: "back-2" });
        return racing.send(command as never);
      },
    } as unknown as DynamoDBClient;
    expect(await presenceLeave({ ...presence, db }, { roomId: "back-room", userId: "wes", connectionId: "back-1" }, "closed")).toBe("stays");
    expect(await settlePendingLeaves(presenceDeps({ graceMs: 30_000, now: () => t0 + 31_000 }))).toBe(0);
    expect(kinds()).toEqual(["member.joined", "room.occupied"]);
    expect((await readPresence(dynamo.client, PRESENCE_TABLE, "back-room")).members).toEqual([expect.objectContaining({ user_id: "wes", connections: 1 })]);
    expect(await pendingItems("back-room")).toBe(0);
  });
});

describe("presence: reads past a member's expiry", () => {
  it("readPresence lists no member item past its expires_at (TTL deletes it up to days later)", async () => {
    const presence = presenceDeps();
    await presenceJoin(presence, { roomId: "ttl-room", userId: "xia", connectionId: "ttl-1" });
    await presenceJoin(presence, { roomId: "ttl-room", userId: "yul", connectionId: "ttl-2" });
    // yul's item outlived its TTL: DynamoDB has not deleted it yet.
    const expired = Math.floor(Date.now() / 1000) - 60;
    await dynamo.client.send(
      new UpdateItemCommand({ TableName: PRESENCE_TABLE, Key: { room_id: { S: "ttl-room" }, user_id: { S: "yul" } }, UpdateExpression: "SET expires_at = :t", ExpressionAttributeValues: { ":t": { N: String(expired) } } }),
    );
    expect((await readPresence(dynamo.client, PRESENCE_TABLE, "ttl-room")).members.map((m) => m.user_id)).toEqual(["xia"]);
    // Read as of before its expiry, it is there: the filter is the clock, nothing else.
    const before = (expired - CONNECTION_ROW_TTL_SECONDS) * 1000;
    expect((await readPresence(dynamo.client, PRESENCE_TABLE, "ttl-room", { now: before })).members.map((m) => m.user_id)).toEqual(["xia", "yul"]);
    await dynamo.client.send(new DeleteItemCommand({ TableName: PRESENCE_TABLE, Key: { room_id: { S: "ttl-room" }, user_id: { S: "yul" } } }));
  });
});

describe("presence: the sweep closing a dead connection", () => {
  /** A connection in `roomId` that pinged at its told rate (45 s) and went silent `silentMs` ago. */
  async function toldAndSilent(connectionId: string, userId: string, roomId: string, silentMs: number): Promise<void> {
    const seenAt = Date.now() - silentMs;
    await addConnection(connectionId, userId, [roomId], seenAt - 90_000);
    await dynamo.client.send(
      new UpdateItemCommand({
        TableName: dynamo.connectionsTable,
        Key: { connection_id: { S: connectionId } },
        UpdateExpression: "SET seen_at = :s, prev_seen_at = :p",
        ExpressionAttributeValues: { ":s": { N: String(seenAt) }, ":p": { N: String(seenAt - 45_000) } },
      }),
    );
  }

  it("a DELETE whose $disconnect removes the row first (as it may on AWS) still leaves with timed_out, not closed: the sweep marks the row before it closes it", async () => {
    const presence = presenceDeps();
    await toldAndSilent("swept-1", "zed", "swept-room", 10 * 60_000);
    await presenceJoin(presence, { roomId: "swept-room", userId: "zed", connectionId: "swept-1" });
    const disconnect = createDisconnectHandler({ db: dynamo.client, connectionsTable: dynamo.connectionsTable, log: quiet, observe: () => undefined, presence });
    let deletes = 0;
    // API Gateway closes the connection and runs its $disconnect before the DELETE's answer reaches the sweep.
    const management = Object.assign(fakeManagement(), {
      get: async () => ({ status: 200 }),
      delete: async (id: string) => {
        if (id === "swept-1") {
          deletes++;
          await disconnect(routeEvent("$disconnect", id));
        }
        return { status: 204 };
      },
    });
    const result = await sweepConnections({ ...presence, management }, { keepAliveMs: 45_000, confirmsPerSecond: 100 });
    expect(deletes).toBe(1);
    // Joined before the sweep; then each event once, every reason timed_out (no "closed").
    expect(kinds().filter((k) => !k.startsWith("member.joined") && !k.startsWith("room.occupied")).sort()).toEqual(["connection.closed timed_out", "member.left timed_out", "room.vacated"]);
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "swept-1")).toBeUndefined();
    // The sweep found the row gone after its DELETE: $disconnect removed it, so the sweep counts no removal of its own.
    expect(result.closed).toBe(0);
  });

  it("the Scan reads no new page past half the time to its deadline: scanComplete false, the rows past it wait; a run with time reads them all", async () => {
    const presence = presenceDeps();
    for (const n of [1, 2, 3]) await toldAndSilent(`cut-${n}`, `cut-user-${n}`, "cut-room", 10 * 60_000);
    const management = Object.assign(fakeManagement(), { get: async () => ({ status: 410 }), delete: async () => ({ status: 410 }) });
    const cut = await sweepConnections({ ...presence, management }, { keepAliveMs: 45_000, confirmsPerSecond: 100, segments: 1, scanPageItems: 1, deadline: Date.now() });
    expect(cut).toMatchObject({ scanComplete: false, scanned: 1 });
    const whole = await sweepConnections({ ...presence, management }, { keepAliveMs: 45_000, confirmsPerSecond: 100, segments: 1, scanPageItems: 1 });
    expect(whole.scanComplete).toBe(true);
    for (const n of [1, 2, 3]) expect(await getConnection(dynamo.client, dynamo.connectionsTable, `cut-${n}`)).toBeUndefined();
  });
});

describe("presence: a big room's diff buffer", () => {
  /** A room past eventMembersLimit (1 here): its changes go to the diff buffer; the first flush goes out at once, the rest within its interval wait. */
  function bigRoom(scheduled: { roomId: string; delaySeconds: number }[]) {
    const presence = presenceDeps();
    return { ...presence, presence: { ...presence.presence, eventMembersLimit: 1 }, scheduleFlush: async (roomId: string, delaySeconds: number) => void scheduled.push({ roomId, delaySeconds }) };
  }
  const diffsOf = (room: string) => posted.filter((p) => p.includes('"hub.presence.diff"') && p.includes(`"room_id":"${room}"`)).map((p) => JSON.parse(p).data.data);
  let posted: string[];
  beforeEach(() => {
    posted = [];
  });
  /** Records what `watcher` (one connection of the room) is posted. */
  function recordingManagement(watcher: string): ConnectionsApi {
    return fakeManagement((id, text) => {
      if (id === watcher) posted.push(text);
      return 200;
    });
  }

  it("a join and a leave of one user within one interval cancel out: the room hears of neither; a leave and a rejoin likewise", async () => {
    const scheduled: { roomId: string; delaySeconds: number }[] = [];
    const deps = { ...bigRoom(scheduled), management: recordingManagement("buf-1") };
    const room = "buffer-room";
    for (const [user, id] of [["b-ann", "buf-1"], ["b-bo", "buf-2"], ["b-cy", "buf-3"]]) {
      await addConnection(id, user, [room]);
      await presenceJoin(deps, { roomId: room, userId: user, connectionId: id });
    }
    // Every join told (the interval over); a new interval starts with an empty buffer.
    await flushDiff({ ...deps, now: () => Date.now() + 60_000 }, room);
    // Within the next interval dee joins and leaves, and cy leaves and comes back.
    await addConnection("buf-4", "b-dee", [room]);
    await presenceJoin(deps, { roomId: room, userId: "b-dee", connectionId: "buf-4" });
    expect(await presenceLeave(deps, { roomId: room, userId: "b-dee", connectionId: "buf-4" }, "unsubscribed")).toBe("left");
    expect(await presenceLeave(deps, { roomId: room, userId: "b-cy", connectionId: "buf-3" }, "unsubscribed")).toBe("left");
    await presenceJoin(deps, { roomId: room, userId: "b-cy", connectionId: "buf-3" });
    const before = diffsOf(room).length;
    // The interval ends: the flush finds nothing to tell.
    expect(await flushDiff({ ...deps, now: () => Date.now() + 120_000 }, room)).toBe(false);
    expect(diffsOf(room).length).toBe(before);
    expect(diffsOf(room).flatMap((d) => [...d.joined, ...d.left.map((l: { user_id: string }) => l.user_id)])).not.toContain("b-dee");
  });

  it("changes within an interval schedule one flush, for when the interval ends; the flush sends them all and the next interval schedules again", async () => {
    const scheduled: { roomId: string; delaySeconds: number }[] = [];
    const deps = { ...bigRoom(scheduled), management: recordingManagement("fl-0") };
    const room = "flush-room";
    await addConnection("fl-0", "f-0", [room]);
    await presenceJoin(deps, { roomId: room, userId: "f-0", connectionId: "fl-0" });
    for (let i = 1; i <= 4; i++) {
      await addConnection(`fl-${i}`, `f-${i}`, [room]);
      await presenceJoin(deps, { roomId: room, userId: `f-${i}`, connectionId: `fl-${i}` });
    }
    // f-1's diff went out at once; f-2..f-4 wait: one flush scheduled, at most one interval (1 s for 5 members) away.
    expect(scheduled).toEqual([{ roomId: room, delaySeconds: 1 }]);
    expect(diffsOf(room).map((d) => d.joined)).toEqual([["f-1"]]);
    // Deliver runs the flush when the message comes (the interval over).
    expect(await flushDiff({ ...deps, now: () => Date.now() + 1_000 }, room)).toBe(true);
    expect(diffsOf(room).map((d) => d.joined)).toEqual([["f-1"], ["f-2", "f-3", "f-4"]]);
    // A change in the next interval schedules again (the flush took the claim away).
    await addConnection("fl-5", "f-5", [room]);
    await presenceJoin(deps, { roomId: room, userId: "f-5", connectionId: "fl-5" });
    expect(scheduled.length).toBe(2);
  });
});
