/**
 * Presence that stays true when `$disconnect` never comes (core/liveness.ts), on the local hub
 * with shortened timers: the emulator drops chosen connections' `$disconnect` (a test hook, as
 * API Gateway may; or every close's, with the public `dropDisconnect: 1`), and the sweep, a 410
 * or a revocation must still end the user's membership with the right reason. Counted in events and sweep runs, never in seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { dynamoClient } from "../core/aws";
import type { HubEvent, SweepDone } from "../core/hubEvents";
import { deadAfterMs, MAX_CONNECTION_AGE_MS, staleAfterMs, sweepConnections } from "../core/liveness";
import type { ConnectionsApi } from "../core/connections";
import type { LifecycleEvent } from "../core/presence";
import { createLogger } from "../core/log";
import { getConnection, markRevoked, putConnection, roomPages } from "../core/tables";
import { startDynamo } from "./support/services";
import { startTestHub, type TestHub } from "../local/testing";
import { startLocalHub } from "../local";
import { until } from "./support/wait";
import { openClient, type Frame, type WsClient } from "./support/wsClient";

type Control = { type: string; data: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
const body = (frame: Frame) => frame.data as Control;
const isType = (type: string) => (frame: Frame) => body(frame)?.type === type;

/** One timeline per hub: member events as a watcher got them, and sweep runs, in order of arrival. */
type Entry = { kind: "frame"; event: string } | { kind: "sweep"; sweep: SweepDone };

const KEEP_ALIVE_SECONDS = 0.6;
const SWEEP_SECONDS = 0.2;

function memberEvent(frame: Frame, room: string): string | undefined {
  const { type, data } = body(frame) ?? {};
  if (frame.origin !== "hub" || data?.room_id !== room) return undefined;
  if (type === "hub.member.joined") return `joined ${data.user_id}`;
  if (type === "hub.member.left") return `left ${data.user_id} ${data.reason}`;
  return undefined;
}

/** A hub whose chosen users' `$disconnect` is dropped (or whose connections go half-open), and what its watchers saw. */
async function hubWith(presence: { keepAliveSeconds: number; graceSeconds: number }) {
  const dropped = new Set<string>();
  const halfOpen = new Set<string>();
  const hub: TestHub = await startTestHub(
    { port: 0, bcryptCost: 4, presence: { enabled: true, sweepSeconds: SWEEP_SECONDS, eventMembersLimit: 10, ...presence } },
    { dropDisconnect: ({ userId }) => userId !== undefined && dropped.has(userId), halfOpen: ({ userId }) => userId !== undefined && halfOpen.has(userId) },
  );
  const timeline: Entry[] = [];
  const events: HubEvent[] = [];
  hub.onEvent((event) => {
    events.push(event);
    if (event.type === "sweep.done") timeline.push({ kind: "sweep", sweep: event });
  });
  const clients: WsClient[] = [];
  async function tab(userId: string, room: string, options: { watch?: boolean; seed?: boolean } = {}): Promise<WsClient> {
    const token = options.seed ? await hub.notifier.issueToken({ userId, roomId: room }) : await hub.notifier.issueToken({ userId, rooms: [room] });
    const client = await openClient(`${hub.websocketUrl}?token=${token}`, {
      onFrame: options.watch ? (frame) => void ((e) => e && timeline.push({ kind: "frame", event: e }))(memberEvent(frame, room)) : undefined,
    });
    clients.push(client);
    client.ws.send(JSON.stringify({ action: "subscribe", room_id: room }));
    await client.next(isType("hub.subscribed"));
    return client;
  }
  const seen = (event: string) => timeline.some((e) => e.kind === "frame" && e.event === event);
  const stop = async () => {
    for (const client of clients) client.ws.terminate();
    await hub.stop();
  };
  return { hub, dropped, halfOpen, timeline, events, tab, seen, stop };
}

describe("presence liveness: the sweep finds connections whose $disconnect never came", () => {
  let h: Awaited<ReturnType<typeof hubWith>>;
  beforeAll(async () => {
    h = await hubWith({ keepAliveSeconds: KEEP_ALIVE_SECONDS, graceSeconds: 0.1 });
  }, 60_000);
  afterAll(() => h?.stop());

  it("tells clients how often to ping: keep_alive_ms in hub.subscribed, hub.resumed (a one-room token's client only resumes), hub.presence and hub.occupancy", async () => {
    const client = await h.tab("kai", "lobby");
    expect(body(client.frames.find(isType("hub.subscribed"))!).data.keep_alive_ms).toBe(KEEP_ALIVE_SECONDS * 1000);
    for (const action of ["resume", "presence", "occupancy"]) {
      client.ws.send(JSON.stringify({ action, room_id: "lobby", ...(action === "resume" ? { last: 0 } : {}) }));
      expect(body(await client.next(isType(action === "resume" ? "hub.resumed" : `hub.${action}`))).data.keep_alive_ms, action).toBe(KEEP_ALIVE_SECONDS * 1000);
    }
  });

  it("a dropped $disconnect ends in hub.member.left timed_out to the remaining member, within ceil(stale / sweep) + 2 sweep runs", async () => {
    const room = "haunted";
    await h.tab("wendy", room, { watch: true });
    const gus = await h.tab("gus", room);
    await until(() => h.seen("joined gus"));
    h.dropped.add("gus");
    const from = h.timeline.length;
    gus.ws.close();
    await gus.closed;
    await until(() => h.seen("left gus timed_out"), 30_000);

    const after = h.timeline.slice(from);
    const leftAt = after.findIndex((e) => e.kind === "frame" && e.event === "left gus timed_out");
    const sweepsBefore = after.slice(0, leftAt).filter((e) => e.kind === "sweep").length;
    // Stale after keepAlive + slack; the sweep that starts after that finds it, and one sweep may have been in flight at the close.
    const bound = Math.ceil(staleAfterMs(KEEP_ALIVE_SECONDS * 1000) / (SWEEP_SECONDS * 1000)) + 2;
    expect(sweepsBefore, JSON.stringify(after.map((e) => (e.kind === "sweep" ? "sweep" : e.event)))).toBeLessThanOrEqual(bound);
    // Once, with that reason only; and a sweep reported removing it.
    const leaves = h.timeline.filter((e) => e.kind === "frame" && e.event.startsWith("left gus"));
    expect(leaves.map((e) => (e.kind === "frame" ? e.event : ""))).toEqual(["left gus timed_out"]);
    // The run that removed it says so (its sweep.done may come after the leave it posted).
    await until(() => h.timeline.slice(from).some((e) => e.kind === "sweep" && e.sweep.removed >= 1));
  }, 60_000);

  it("a live connection whose pings are only late is not removed: @connections GET says alive (confirmed_at, not seen_at)", async () => {
    const room = "sleepy";
    await h.tab("walt", room, { watch: true });
    // lou never pings (a hidden tab whose timers are throttled): a suspect at every stale period.
    const lou = await h.tab("lou", room);
    await until(() => h.seen("joined lou"));
    const from = h.timeline.length;
    const staleSweeps = Math.ceil(staleAfterMs(KEEP_ALIVE_SECONDS * 1000) / (SWEEP_SECONDS * 1000));
    // Enough runs for lou to go stale and be confirmed alive at least twice.
    await until(() => h.timeline.slice(from).filter((e) => e.kind === "sweep" && e.sweep.alive > 0).length >= 2 && h.timeline.slice(from).filter((e) => e.kind === "sweep").length >= 2 * staleSweeps + 2, 30_000);
    expect(h.timeline.filter((e) => e.kind === "frame" && e.event.startsWith("left lou"))).toEqual([]);
    lou.ws.send(JSON.stringify({ action: "occupancy", room_id: room }));
    expect(body(await lou.next(isType("hub.occupancy"))).data).toMatchObject({ users: 2, connections: 2 });
  }, 60_000);

  it("a half-open connection (GET says 200) whose client pinged at its told rate is closed and leaves with timed_out within ceil(deadAfter / sweep) + 2 sweep runs; a told client that keeps pinging stays", async () => {
    const room = "asleep";
    await h.tab("wren", room, { watch: true });
    const hal = await h.tab("hal", room);
    const pia = await h.tab("pia", room);
    await until(() => h.seen("joined hal") && h.seen("joined pia"));
    // Both follow keep_alive_ms: a ping right after hub.subscribed (its interval since $connect is well under 2 × keepAlive).
    const db = dynamoClient({ endpoint: h.hub.dynamodbEndpoint, region: h.hub.region, credentials: h.hub.credentials });
    const ids = new Map<string, string>();
    for await (const page of roomPages(db, h.hub.connectionsTableName, room)) for (const c of page.connections) if (c.userId) ids.set(c.userId, c.connectionId);
    const pinged = async (userId: string) => {
      const item = (await db.send(new GetItemCommand({ TableName: h.hub.connectionsTableName, Key: { connection_id: { S: ids.get(userId)! } } }))).Item;
      return Number(item?.prev_seen_at?.N ?? 0) > 0;
    };
    for (const client of [hal, pia]) client.ws.send(JSON.stringify({ action: "ping" }));
    await until(async () => (await pinged("hal")) && (await pinged("pia")));
    // pia keeps pinging: once per sweep run, well inside her told rate.
    const keepPinging = (event: HubEvent) => event.type === "sweep.done" && pia.ws.readyState === pia.ws.OPEN && pia.ws.send(JSON.stringify({ action: "ping" }));
    h.hub.onEvent(keepPinging);
    // hal's laptop sleeps: no close reaches the gateway, no $disconnect, GET keeps answering 200.
    h.halfOpen.add("hal");
    const from = h.timeline.length;
    hal.ws.terminate();
    await until(() => h.seen("left hal timed_out"), 30_000);

    const after = h.timeline.slice(from);
    const leftAt = after.findIndex((e) => e.kind === "frame" && e.event === "left hal timed_out");
    const sweepsBefore = after.slice(0, leftAt).filter((e) => e.kind === "sweep").length;
    const bound = Math.ceil(deadAfterMs(KEEP_ALIVE_SECONDS * 1000) / (SWEEP_SECONDS * 1000)) + 2;
    expect(sweepsBefore, JSON.stringify(after.map((e) => (e.kind === "sweep" ? "sweep" : e.event)))).toBeLessThanOrEqual(bound);
    // Removed by a DELETE (GET never said 410), once; its connection.closed says timed_out.
    await until(() => h.timeline.slice(from).some((e) => e.kind === "sweep" && e.sweep.closed >= 1));
    expect(h.timeline.filter((e) => e.kind === "frame" && e.event.startsWith("left hal")).length).toBe(1);
    // pia, pinging all along, is still there: a few more runs, then the room's count.
    const runs = h.timeline.filter((e) => e.kind === "sweep").length;
    await until(() => h.timeline.filter((e) => e.kind === "sweep").length >= runs + 3);
    expect(h.timeline.filter((e) => e.kind === "frame" && e.event.startsWith("left pia"))).toEqual([]);
    pia.ws.send(JSON.stringify({ action: "occupancy", room_id: room }));
    expect(body(await pia.next(isType("hub.occupancy"))).data).toMatchObject({ users: 2, connections: 2 });
  }, 60_000);

  it("a ping writes seen_at on the connection's row, as the ping route's DynamoDB integration does on AWS", async () => {
    const pat = await h.tab("pat", "pings");
    const db = dynamoClient({ endpoint: h.hub.dynamodbEndpoint, region: h.hub.region, credentials: h.hub.credentials });
    let id: string | undefined;
    for await (const page of roomPages(db, h.hub.connectionsTableName, "pings")) id ??= page.connections.find((c) => c.userId === "pat")?.connectionId;
    const before = (await getConnection(db, h.hub.connectionsTableName, id!))!;
    expect(before.seenAt).toBe(before.connectedAt); // $connect wrote it
    // A ping, then a marker only the route handlers answer: the gateway handled the ping's write first or meanwhile.
    pat.ws.send(JSON.stringify({ action: "ping" }));
    await until(async () => ((await getConnection(db, h.hub.connectionsTableName, id!))?.seenAt ?? 0) > before.connectedAt);
    // The ping got no answer of its own.
    expect(pat.frames.filter((f) => !isType("hub.subscribed")(f) && !memberEvent(f, "pings"))).toEqual([]);
  });

  it("a revoked connection whose $disconnect never came leaves with revoked (the sweep removes a marked row without asking)", async () => {
    const room = "vault";
    await h.tab("vera", room, { watch: true });
    await h.tab("vic", room);
    await until(() => h.seen("joined vic"));
    h.dropped.add("vic");
    await h.hub.notifier.revokeToken({ userId: "vic" });
    await until(() => h.seen("left vic revoked"), 30_000);
    expect(h.timeline.filter((e) => e.kind === "frame" && e.event.startsWith("left vic")).length).toBe(1);
  }, 60_000);
});

describe("presence liveness: the local hub's public dropDisconnect option", () => {
  it("the public dropDisconnect: 1 runs no $disconnect for a close (no disconnected event), and the sweep ends the member with timed_out: the watcher's frame, member.left and connection.closed on the bus; the console says the option is on", async () => {
    // Not a test hook: the option a user turns on (`notification-hub dev --drop-disconnect 1`).
    const hub = await startLocalHub({
      port: 0,
      bcryptCost: 4,
      logger: createLogger({ service: "test" }, undefined, "error"),
      dropDisconnect: 1,
      presence: { enabled: true, sweepSeconds: SWEEP_SECONDS, keepAliveSeconds: KEEP_ALIVE_SECONDS, graceSeconds: 0.1, eventMembersLimit: 10 },
    });
    const events: HubEvent[] = [];
    /** gil's endings on the bus: `member.left timed_out`, `connection.closed timed_out`. */
    const endings: string[] = [];
    hub.onEvent((event) => events.push(event));
    hub.onLifecycleEvent(({ "detail-type": type, detail }) => {
      if (detail.user_id === "gil" && (type === "member.left" || type === "connection.closed")) endings.push(`${type} ${String(detail.reason)}`);
    });
    const clients: WsClient[] = [];
    const join = async (userId: string, onFrame?: (frame: Frame) => void) => {
      const client = await openClient(`${hub.websocketUrl}?token=${await hub.notifier.issueToken({ userId, rooms: ["ghosts"] })}`, { onFrame });
      clients.push(client);
      client.ws.send(JSON.stringify({ action: "subscribe", room_id: "ghosts" }));
      await client.next(isType("hub.subscribed"));
      return client;
    };
    try {
      const seen: string[] = [];
      await join("wes", (frame) => void ((e) => e && seen.push(e))(memberEvent(frame, "ghosts")));
      const gil = await join("gil");
      await until(() => seen.includes("joined gil"));
      const gilId = events.flatMap((e) => (e.type === "connected" && e.userId === "gil" ? [e.connectionId] : []))[0];
      gil.ws.close();
      await gil.closed;
      await until(() => seen.includes("left gil timed_out"), 30_000);
      // Once, with that reason; on the bus too, connection.closed included; and not one $disconnect ran.
      expect(seen.filter((e) => e.startsWith("left gil"))).toEqual(["left gil timed_out"]);
      await until(() => endings.length >= 2);
      expect(endings.sort()).toEqual(["connection.closed timed_out", "member.left timed_out"]);
      await until(() => events.some((e) => e.type === "sweep.done" && e.removed >= 1));
      expect(events.filter((e) => e.type === "disconnected")).toEqual([]);
      // The console says the option is on, and that gil's close had no $disconnect.
      const state = (await (await fetch(new URL("/console/api/state", hub.httpUrl))).json()) as { hub: { dropDisconnect: number }; events: { kind: string; fields: Record<string, unknown> }[] };
      expect(state.hub.dropDisconnect).toBe(1);
      expect(state.events.filter((e) => e.kind === "disconnected" && e.fields.connection_id === gilId)).toEqual([
        expect.objectContaining({ fields: expect.objectContaining({ disconnect_dropped: true }) }),
      ]);
    } finally {
      for (const client of clients) client.ws.terminate();
      await hub.stop();
    }
  }, 60_000);
});

describe("presence liveness: revocations and 410s leave at once, without the sweep's liveness pass", () => {
  // keepAlive 60 s: no connection goes stale while these run, so only revocation and 410 can end a membership.
  let h: Awaited<ReturnType<typeof hubWith>>;
  beforeAll(async () => {
    h = await hubWith({ keepAliveSeconds: 60, graceSeconds: 0.2 });
  }, 60_000);
  afterAll(() => h?.stop());

  it("revokeToken sends hub.member.left revoked: a room's token, and every token of a user", async () => {
    const room = "board";
    await h.tab("ada", room, { watch: true });
    await h.tab("rita", room, { seed: true });
    await h.tab("uma", room);
    await until(() => h.seen("joined rita") && h.seen("joined uma"));
    await h.hub.notifier.revokeToken({ userId: "rita", roomId: room });
    await until(() => h.seen("left rita revoked"));
    await h.hub.notifier.revokeToken({ userId: "uma" });
    await until(() => h.seen("left uma revoked"));
    const leaves = h.timeline.flatMap((e) => (e.kind === "frame" && e.event.startsWith("left") ? [e.event] : []));
    // Each once, with its reason (from the $disconnect of the marked row, or the sweep if it got there first: both say revoked).
    expect(leaves).toEqual(["left rita revoked", "left uma revoked"]);
  }, 60_000);

  it("a 410 during a post removes the connection and leaves with timed_out", async () => {
    const room = "mail";
    await h.tab("otto", room, { watch: true });
    const danClient = await h.tab("dan", room);
    await until(() => h.seen("joined dan"));
    const db = dynamoClient({ endpoint: h.hub.dynamodbEndpoint, region: h.hub.region, credentials: h.hub.credentials });
    let dan: string | undefined;
    for await (const page of roomPages(db, h.hub.connectionsTableName, room)) dan ??= page.connections.find((c) => c.userId === "dan")?.connectionId;
    // dan's row is older than the handshake grace (a 410 then removes it); his socket closes and API Gateway never says so.
    await db.send(
      new UpdateItemCommand({ TableName: h.hub.connectionsTableName, Key: { connection_id: { S: dan! } }, UpdateExpression: "SET connected_at = :t", ExpressionAttributeValues: { ":t": { N: String(Date.now() - 60_000) } } }),
    );
    h.dropped.add("dan");
    danClient.ws.close();
    await danClient.closed;
    expect(await getConnection(db, h.hub.connectionsTableName, dan!)).toBeDefined(); // a ghost row
    await h.hub.notifier.publish({ roomId: room, data: { type: "mail.new" } });
    await until(() => h.seen("left dan timed_out"), 30_000);
    expect(h.events).toContainEqual(expect.objectContaining({ type: "post.gone", connectionId: dan, row: "removed" }));
    expect(h.timeline.filter((e) => e.kind === "frame" && e.event.startsWith("left dan")).length).toBe(1);
    // post.gone with row "removed" says the 410 path removed dan's row, so no sweep did. (Not "no sweep
    // removed anything": under load, other tests' rows in this hub go stale and a sweep may remove them.)
  }, 60_000);
  it("a 410 for a row revokeToken marked (its close raced the post) leaves with revoked at once, and its connection.closed says revoked", async () => {
    const room = "safe";
    const closed: unknown[] = [];
    const unlisten = h.hub.onLifecycleEvent((event) => {
      if (event["detail-type"] === "connection.closed") closed.push(event.detail);
    });
    await h.tab("sal", room, { watch: true });
    const rexClient = await h.tab("rex", room);
    await until(() => h.seen("joined rex"));
    const db = dynamoClient({ endpoint: h.hub.dynamodbEndpoint, region: h.hub.region, credentials: h.hub.credentials });
    let rex: string | undefined;
    for await (const page of roomPages(db, h.hub.connectionsTableName, room)) rex ??= page.connections.find((c) => c.userId === "rex")?.connectionId;
    // revokeToken's mark is written, its close lands, $disconnect never comes; a post already on its way meets the 410.
    await db.send(new UpdateItemCommand({ TableName: h.hub.connectionsTableName, Key: { connection_id: { S: rex! } }, UpdateExpression: "SET connected_at = :t", ExpressionAttributeValues: { ":t": { N: String(Date.now() - 60_000) } } }));
    expect(await markRevoked(db, h.hub.connectionsTableName, rex!, Date.now())).toBe(true);
    h.dropped.add("rex");
    rexClient.ws.close();
    await rexClient.closed;
    await h.hub.notifier.publish({ roomId: room, data: { type: "vault.opened" } });
    await until(() => h.timeline.some((e) => e.kind === "frame" && e.event.startsWith("left rex")), 30_000);
    expect(h.timeline.flatMap((e) => (e.kind === "frame" && e.event.startsWith("left rex") ? [e.event] : []))).toEqual(["left rex revoked"]);
    await until(() => closed.some((d) => (d as { connection_id?: string }).connection_id === rex));
    unlisten();
    expect(closed.filter((d) => (d as { connection_id?: string }).connection_id === rex)).toEqual([expect.objectContaining({ reason: "revoked", user_id: "rex" })]);
  }, 60_000);
});

describe("presence liveness: the sweep's share of the @connections budget", () => {
  it("asks at most maxConfirmsPerRun suspects a run, oldest first, the rest next run; never asks past 2 hours; 410 removes, 200 confirms", async () => {
    const dynamo = await startDynamo({ connectionsTable: "live-connections", authTable: "live-auth", presenceTable: "live-presence" });
    try {
      const now = Date.now();
      const keepAliveMs = 45_000;
      // 6 suspects (seen 2..7 minutes ago), one fresh connection, one past API Gateway's 2 hours; c2 and c5 are gone.
      const add = (id: string, connectedAt: number) => putConnection(dynamo.client, dynamo.connectionsTable, { connectionId: id, userId: `u-${id}`, rooms: ["r"], grants: ["r"], connectedAt, generation: "g", authKey: "r" });
      for (let i = 2; i <= 7; i++) await add(`c${i}`, now - i * 60_000);
      await add("fresh", now - 1_000);
      await add("ancient", now - MAX_CONNECTION_AGE_MS - 60_000);
      const asked: string[] = [];
      const gone = new Set(["c2", "c5"]);
      const management = {
        endpoint: "fake",
        prepare: () => ({ body: Buffer.alloc(0), sha256: "", contentLength: "0" }),
        sign: () => Promise.reject(new Error("not used")),
        post: () => Promise.resolve({ status: 200 }),
        get: (id: string) => {
          asked.push(id);
          return Promise.resolve({ status: gone.has(id) ? 410 : 200 });
        },
        delete: () => Promise.reject(new Error("nothing here pings at a told rate")),
        destroy: () => undefined,
      } as ConnectionsApi;
      const deps = {
        db: dynamo.client,
        management,
        connectionsTable: dynamo.connectionsTable,
        log: createLogger({}, () => undefined),
        presence: { presenceTable: "live-presence", graceMs: 30_000, eventMembersLimit: 100, keepAliveMs },
      };
      const settings = { keepAliveMs, confirmsPerSecond: 1_000, maxConfirmsPerRun: 4 };

      const first = await sweepConnections(deps, settings);
      expect(first).toMatchObject({ suspects: 7, removed: 2, alive: 3, deferred: 2 }); // ancient + c5 removed; c7, c6, c5, c4 asked
      expect(asked).toEqual(["c7", "c6", "c5", "c4"]); // oldest first, 4 of them; ancient never asked
      expect(await getConnection(dynamo.client, dynamo.connectionsTable, "ancient")).toBeUndefined();
      expect(await getConnection(dynamo.client, dynamo.connectionsTable, "c5")).toBeUndefined();
      const c7 = await dynamo.client.send(new GetItemCommand({ TableName: dynamo.connectionsTable, Key: { connection_id: { S: "c7" } } }));
      expect(Number(c7.Item!.confirmed_at.N)).toBeGreaterThanOrEqual(now); // alive: confirmed, not asked again within a stale period
      expect(Number(c7.Item!.seen_at.N)).toBe(now - 7 * 60_000); // only pings move seen_at

      // The next run asks the two that waited (the confirmed ones are not suspects within a stale period).
      asked.length = 0;
      const second = await sweepConnections(deps, settings);
      expect(asked.sort()).toEqual(["c2", "c3"]);
      expect(second).toMatchObject({ suspects: 2, removed: 1, alive: 1, deferred: 0 });
      expect(await getConnection(dynamo.client, dynamo.connectionsTable, "fresh")).toBeDefined();
    } finally {
      await dynamo.stop();
    }
  });

  it("closes (DELETE) and removes with timed_out a connection silent past 2 × keepAlive + slack after pinging at its told rate, though GET says 200; a late told one, a bare 8-minute one and one in no room are asked; nothing starts past the deadline", async () => {
    const dynamo = await startDynamo({ connectionsTable: "told-connections", authTable: "told-auth", presenceTable: "told-presence" });
    try {
      const now = Date.now();
      const keepAliveMs = 45_000;
      expect(deadAfterMs(keepAliveMs)).toBe(120_000);
      // [id, rooms, seen_at, prev_seen_at]: what the pings left on each row.
      const rows: [string, string[], number, number][] = [
        ["halfopen", ["r"], now - deadAfterMs(keepAliveMs) - 1_000, now - deadAfterMs(keepAliveMs) - 46_000], // pinged every 45 s, then nothing: GET still says 200
        ["late", ["r"], now - 100_000, now - 160_000], // a throttled hidden tab: 60 s apart, now late, not dead
        ["bare", ["r"], now - 7 * 60_000, now - 15 * 60_000], // its own 8-minute keep-alive: never held to 45 s
        ["once", ["r"], now - 200_000, 0], // one ping on a row with no seen_at before: not known to follow
        ["lonely", [], now - 5 * 60_000, now - 13 * 60_000], // in no room: still owes its connection.closed
      ];
      for (const [id, rooms, seenAt, prevSeenAt] of rows) {
        await putConnection(dynamo.client, dynamo.connectionsTable, { connectionId: id, userId: `u-${id}`, rooms, grants: ["r"], connectedAt: now - 20 * 60_000, generation: "g", authKey: "r" });
        await dynamo.client.send(
          new UpdateItemCommand({ TableName: dynamo.connectionsTable, Key: { connection_id: { S: id } }, UpdateExpression: "SET seen_at = :s, prev_seen_at = :p", ExpressionAttributeValues: { ":s": { N: String(seenAt) }, ":p": { N: String(prevSeenAt) } } }),
        );
      }
      const gone = new Set(["lonely"]);
      const requests: string[] = [];
      const management = {
        endpoint: "fake",
        prepare: () => ({ body: Buffer.alloc(0), sha256: "", contentLength: "0" }),
        sign: () => Promise.reject(new Error("not used")),
        post: () => Promise.resolve({ status: 200 }),
        get: (id: string) => (requests.push(`GET ${id}`), Promise.resolve({ status: gone.has(id) ? 410 : 200 })), // half-open answers 200
        delete: (id: string) => (requests.push(`DELETE ${id}`), Promise.resolve({ status: 204 })),
        destroy: () => undefined,
      } as ConnectionsApi;
      const emitted: LifecycleEvent[] = [];
      const deps = {
        db: dynamo.client,
        management,
        connectionsTable: dynamo.connectionsTable,
        log: createLogger({}, () => undefined),
        now: () => now,
        emit: (events: LifecycleEvent[]) => Promise.resolve(void emitted.push(...events)),
        presence: { presenceTable: "told-presence", graceMs: 30_000, eventMembersLimit: 100, keepAliveMs },
      };
      const settings = { keepAliveMs, confirmsPerSecond: 1_000 };

      // Past its deadline a run starts nothing: all five wait for the next.
      expect(await sweepConnections(deps, { ...settings, deadline: Date.now() - 1 })).toMatchObject({ suspects: 5, removed: 0, deferred: 5 });
      expect(requests).toEqual([]);

      const run = await sweepConnections(deps, settings);
      expect(run).toMatchObject({ suspects: 5, removed: 2, closed: 1, alive: 3, deferred: 0 });
      expect(requests.sort()).toEqual(["DELETE halfopen", "GET bare", "GET late", "GET lonely", "GET once"]);
      for (const id of ["halfopen", "lonely"]) expect(await getConnection(dynamo.client, dynamo.connectionsTable, id), id).toBeUndefined();
      for (const id of ["late", "bare", "once"]) expect((await getConnection(dynamo.client, dynamo.connectionsTable, id))?.seenAt, id).toBe(rows.find((r) => r[0] === id)![2]);
      expect(emitted.filter((e) => e.detailType === "connection.closed").map((e) => [e.detail.connection_id, e.detail.reason]).sort()).toEqual([
        ["halfopen", "timed_out"],
        ["lonely", "timed_out"],
      ]);

      // Confirmed alive within the stale period: the next run asks nobody.
      requests.length = 0;
      expect(await sweepConnections(deps, settings)).toMatchObject({ suspects: 0, removed: 0 });
      expect(requests).toEqual([]);
    } finally {
      await dynamo.stop();
    }
  });
});
