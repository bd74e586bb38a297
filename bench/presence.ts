/**
 * Presence (docs/protocol.md#presence) at room sizes a test cannot afford, on local hubs in
 * their own processes with real WebSocket members:
 * - member event latency in a room of 1,000 (quick: 200): a member subscribes or unsubscribes
 *   (the moment it sends the request) → each other member's receipt of `hub.member.joined` /
 *   `hub.member.left`, with eventMembersLimit 2,000 so every change is a single event; and the
 *   same changes as diffs with the default limit (100), joins arriving at 10 a second;
 * - posts per join: counted by the emulated account (every `@connections` request) in a room of
 *   100 (single events) and of 1,000 (diffs), and for 10,000 from the rule the hub follows;
 * - a presence read of 10,000 members through the SDK (notifier.presence, every page), and occupancy;
 * - the sweep's cost per 10,000 connections (quick: 1,000), measured with 10,000 real sockets,
 *   ghosts whose `$disconnect` was dropped and late tabs (bench/sweep.ts, a third hub; about 4
 *   minutes, quick 2.5).
 * Filling a room of 1,000 one join at a time would itself cost ~500,000 posts (each join to
 * everyone already there): the room's counter is held past the limit while the members connect,
 * so their joins go to a diff buffer that is then dropped and the counter set right
 * (fillQuietly), before anything is measured.
 *
 *   node -r ts-node/register/transpile-only bench/presence.ts [--quick] [--json]
 */
import { parseArgs } from "util";
import { DeleteItemCommand, PutItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { dynamoClient } from "../core/aws";
import { mapWithConcurrency } from "../core/fanout";
import { batchWrite } from "../core/tables";
import { openClient, type Frame, type WsClient } from "../test/support/wsClient";
import { median, note, percentile, progress, startHubProcess, type HubProcess } from "./lib";
import { measureSweep, type SweepFigures } from "./sweep";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "boolean" } }, strict: true });
const quick = values.quick ?? false;
const SIZE = quick ? { members: 200, changes: 5, diffJoins: 10, read: 2_000 } : { members: 1_000, changes: 20, diffJoins: 30, read: 10_000 };
const HELD = 1_000_000;
const S = (value: string) => ({ S: value });

export interface PresenceFigures {
  members: number;
  singles: { eventMembersLimit: number; changes: number; joinP50: number; joinP99: number; leaveP50: number; leaveP99: number; lastReceiptMedian: number; lost: number };
  diffs: { eventMembersLimit: number; joins: number; joinsPerSecond: number; p50: number; p99: number; diffsReceived: number; postsPerJoin: number; lost: number };
  postsPerJoin: { members: number; how: string; measured?: number; rule: number }[];
  read: { members: number; pages: number; ms: number; occupancyMs: number };
  /** bench/sweep.ts: what the sweep's runs read, ask and remove, and a run a minute's dollars per 10,000 connections. */
  sweepPer10kConnections: SweepFigures;
}

/** A member: its socket, and when each (event type, user) reached it. */
interface Member {
  client: WsClient;
  seen: Map<string, number>;
}

const key = (type: string, user: string) => `${type} ${user}`;

/** Records member events, diffs spread into their changes, by (type, user). */
function recordEvents(seen: Map<string, number>) {
  return (frame: Frame, at: number) => {
    if (frame.origin !== "hub") return;
    const { type, data } = (frame.data ?? {}) as { type?: string; data?: Record<string, unknown> };
    if (type === "hub.member.joined" || type === "hub.member.left") seen.set(key(type, String(data?.user_id)), at);
    if (type === "hub.presence.diff") {
      seen.set(key("diff", String(seen.size)), at);
      for (const user of (data?.joined as string[]) ?? []) seen.set(key("hub.member.joined", user), at);
      for (const left of (data?.left as { user_id: string }[]) ?? []) seen.set(key("hub.member.left", left.user_id), at);
    }
  };
}

async function open(hub: HubProcess, token: string, seen: Map<string, number>): Promise<WsClient> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await openClient(`${hub.info.websocketUrl}?token=${token}`, { perMessageDeflate: false, keepFrames: false, onFrame: recordEvents(seen) });
    } catch (err) {
      // The emulated account admits 500 new connections a second: a refused handshake waits and tries again.
      if (attempt >= 20) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 + attempt * 100));
    }
  }
}

/**
 * `count` members in `room`, each a user of its own connected with a token for the room
 * ($connect makes it a member), without the N² announcements of filling it one by one.
 */
async function fillQuietly(hub: HubProcess, room: string, count: number): Promise<Member[]> {
  const table = hub.info.presenceTableName!;
  const db = dynamoClient({ endpoint: hub.info.dynamodbEndpoint, region: hub.info.region });
  const counter = (users: number) =>
    db.send(new UpdateItemCommand({ TableName: table, Key: { room_id: S(room), user_id: S("\u001fcount") }, UpdateExpression: "ADD #u :u", ExpressionAttributeNames: { "#u": "users" }, ExpressionAttributeValues: { ":u": { N: String(users) } } }));
  await counter(HELD);
  await db.send(new PutItemCommand({ TableName: table, Item: { room_id: S(room), user_id: S("\u001fdiff"), flushed_at: { N: String(Date.now()) } } }));
  const tokens = await mapWithConcurrency(Array.from({ length: count }, (_, i) => i), 8, (i) => hub.notifier.issueToken({ userId: `${room}-m${i}`, roomId: room, ttlSeconds: 3 * 3600 }));
  let opened = 0;
  const members = await mapWithConcurrency(tokens, 32, async (token) => {
    const seen = new Map<string, number>();
    const client = await open(hub, token, seen);
    if (++opened % 250 === 0 || opened === count) progress(`connecting ${count} members to ${room}`, opened, count);
    return { client, seen };
  });
  // Every member's join written (the counter shows them), then the counter set right and the buffered diff dropped.
  const { users } = await waitFor(async () => hub.notifier.occupancy({ roomId: room }), (o) => o.users >= HELD + count, 60_000);
  await counter(-HELD);
  await db.send(new DeleteItemCommand({ TableName: table, Key: { room_id: S(room), user_id: S("\u001fdiff") } }));
  await db.send(new DeleteItemCommand({ TableName: table, Key: { room_id: S("\u001fdiffs"), user_id: S(room) } }));
  note(`${room}: ${users - HELD} members, filled without announcing`);
  return members;
}

/**
 * The hub goes first, killed: closing a thousand members while it runs would run a thousand
 * $disconnects at once against one dynalite (timeouts in its log, nothing measured).
 */
async function stopQuietly(hub: HubProcess, sockets: { client: WsClient }[]) {
  await hub.stop({ kill: true });
  for (const { client } of sockets) client.ws.terminate();
}

async function waitFor<T>(read: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Users outside the room with a token for it, connected (a rooms token's $connect joins no room), ready to subscribe. */
async function joiners(hub: HubProcess, room: string, count: number, prefix: string) {
  return mapWithConcurrency(Array.from({ length: count }, (_, i) => i), 8, async (i) => {
    const user = `${prefix}${i}`;
    const token = await hub.notifier.issueToken({ userId: user, rooms: [room], ttlSeconds: 3600 });
    const client = await open(hub, token, new Map());
    return { user, client };
  });
}

/** Latencies (ms) from `sentAt` to each member's receipt of (type, user); missing receipts counted. */
function latencies(members: Member[], type: string, user: string, sentAt: number) {
  const times = members.map((m) => m.seen.get(key(type, user)));
  const got = times.filter((t): t is number => t !== undefined);
  return { ms: got.map((t) => t - sentAt), missing: times.length - got.length, last: got.length ? Math.max(...got) - sentAt : NaN };
}

const everyoneHas = (members: Member[], type: string, user: string) => members.every((m) => m.seen.has(key(type, user)));
/** Posts the emulated account admitted so far (its report comes every 500 ms: read after it settles). */
async function postsSoFar(hub: HubProcess): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  return hub.usage()?.connectionsApi.requests ?? NaN;
}

async function singleEvents(): Promise<Pick<PresenceFigures, "singles" | "read"> & { members: number }> {
  const limit = 2_000;
  console.error(`\n[presence] single events in a room of ${SIZE.members} (eventMembersLimit ${limit}); a presence read of ${SIZE.read.toLocaleString("en-US")}`);
  const hub = await startHubProcess({ mode: "ours", bcryptCost: 4, presence: { enabled: true, graceSeconds: 5, sweepSeconds: 1, eventMembersLimit: limit }, account: { newConnectionsPerSecond: 1_000 } });
  const sockets: { client: WsClient }[] = [];
  try {
    const room = "presence-singles";
    const members = await fillQuietly(hub, room, SIZE.members);
    const movers = await joiners(hub, room, SIZE.changes, "mover-");
    const join: number[] = [];
    const leave: number[] = [];
    const lastReceipts: number[] = [];
    let lost = 0;
    for (const [i, { user, client }] of movers.entries()) {
      for (const [action, type, into] of [["subscribe", "hub.member.joined", join], ["unsubscribe", "hub.member.left", leave]] as const) {
        const sentAt = Date.now();
        client.ws.send(JSON.stringify({ action, room_id: room }));
        await waitFor(() => everyoneHas(members, type, user), (done) => done, 30_000);
        const result = latencies(members, type, user, sentAt);
        into.push(...result.ms);
        lastReceipts.push(result.last);
        lost += result.missing;
      }
      progress("joins and leaves", i + 1, movers.length);
    }
    const singles = {
      eventMembersLimit: limit,
      changes: SIZE.changes,
      joinP50: percentile(join, 50),
      joinP99: percentile(join, 99),
      leaveP50: percentile(leave, 50),
      leaveP99: percentile(leave, 99),
      lastReceiptMedian: median(lastReceipts),
      lost,
    };
    note(`singles: join p50 ${singles.joinP50} / p99 ${singles.joinP99} ms, leave p50 ${singles.leaveP50} / p99 ${singles.leaveP99} ms; last receipt median ${singles.lastReceiptMedian} ms; lost ${lost}`);
    sockets.push(...members, ...movers);

    // A presence read of SIZE.read members, as presence writes them (member items and the counter).
    const readRoom = "presence-read";
    const db = dynamoClient({ endpoint: hub.info.dynamodbEndpoint, region: hub.info.region });
    const ids = Array.from({ length: SIZE.read }, (_, i) => `reader-${String(i).padStart(5, "0")}`);
    await batchWrite(db, hub.info.presenceTableName!, ids.map((id) => ({ PutRequest: { Item: { room_id: S(readRoom), user_id: S(id), conns: { SS: [`c-${id}`] }, since: { N: String(Date.now()) } } } })));
    await db.send(new UpdateItemCommand({ TableName: hub.info.presenceTableName!, Key: { room_id: S(readRoom), user_id: S("\u001fcount") }, UpdateExpression: "ADD #u :n, #c :n", ExpressionAttributeNames: { "#u": "users", "#c": "connections" }, ExpressionAttributeValues: { ":n": { N: String(SIZE.read) } } }));
    const reads: { ms: number; pages: number }[] = [];
    const occupancies: number[] = [];
    for (let round = 0; round < 3; round++) {
      const started = process.hrtime.bigint();
      let after: string | undefined;
      let pages = 0;
      let seen = 0;
      do {
        const page = await hub.notifier.presence({ roomId: readRoom, after });
        seen += page.members.length;
        after = page.next ?? undefined;
        pages++;
      } while (after);
      if (seen !== SIZE.read) throw new Error(`presence read ${seen} members of ${SIZE.read}`);
      reads.push({ ms: Number(process.hrtime.bigint() - started) / 1e6, pages });
      const occupancyStarted = process.hrtime.bigint();
      await hub.notifier.occupancy({ roomId: readRoom });
      occupancies.push(Number(process.hrtime.bigint() - occupancyStarted) / 1e6);
    }
    const read = { members: SIZE.read, pages: reads[0].pages, ms: Math.round(median(reads.map((r) => r.ms))), occupancyMs: Number(median(occupancies).toFixed(1)) };
    note(`presence read of ${SIZE.read}: ${read.pages} pages, ${read.ms} ms (median of 3); occupancy ${read.occupancyMs} ms`);
    return { members: SIZE.members, singles, read };
  } finally {
    await stopQuietly(hub, sockets);
  }
}

async function batched(): Promise<Pick<PresenceFigures, "diffs" | "postsPerJoin">> {
  const limit = 100;
  console.error(`\n[presence] diffs in a room of ${SIZE.members} (eventMembersLimit ${limit}, joins at 10/s); posts per join in a room of 100`);
  // The sweep at AWS's shortest schedule (a minute): the diffs must come by their own flush, not by the sweep.
  const hub = await startHubProcess({ mode: "ours", bcryptCost: 4, presence: { enabled: true, graceSeconds: 5, sweepSeconds: 60, eventMembersLimit: limit }, account: { newConnectionsPerSecond: 1_000 } });
  const sockets: { client: WsClient }[] = [];
  try {
    // A room of 100: single events (100 ≤ the limit), each join to everyone.
    const small = "presence-100";
    const smallMembers = await fillQuietly(hub, small, 99);
    const smallMovers = await joiners(hub, small, 5, "small-");
    const before = await postsSoFar(hub);
    for (const { user, client } of smallMovers) {
      client.ws.send(JSON.stringify({ action: "subscribe", room_id: small }));
      await waitFor(() => everyoneHas(smallMembers, "hub.member.joined", user), (done) => done, 30_000);
      client.ws.send(JSON.stringify({ action: "unsubscribe", room_id: small }));
      await waitFor(() => everyoneHas(smallMembers, "hub.member.left", user), (done) => done, 30_000);
    }
    // Less the answers to the requests themselves (hub.subscribed, hub.unsubscribed): one post each.
    const smallPosts = ((await postsSoFar(hub)) - before - 2 * smallMovers.length) / (2 * smallMovers.length);
    note(`room of 100: ${smallPosts.toFixed(1)} posts per change (join or leave)`);
    sockets.push(...smallMembers, ...smallMovers);

    // A room of SIZE.members: joins at 10 a second come as diffs.
    const room = "presence-diffs";
    const members = await fillQuietly(hub, room, SIZE.members);
    const movers = await joiners(hub, room, SIZE.diffJoins, "crowd-");
    const start = await postsSoFar(hub);
    const sent: { user: string; at: number }[] = [];
    for (const { user, client } of movers) {
      sent.push({ user, at: Date.now() });
      client.ws.send(JSON.stringify({ action: "subscribe", room_id: room }));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor(() => movers.every(({ user }) => everyoneHas(members, "hub.member.joined", user)), (done) => done, 60_000);
    const posts = (await postsSoFar(hub)) - start - movers.length;
    const all: number[] = [];
    let lost = 0;
    for (const { user, at } of sent) {
      const result = latencies(members, "hub.member.joined", user, at);
      all.push(...result.ms);
      lost += result.missing;
    }
    const diffsReceived = median(members.map((m) => [...m.seen.keys()].filter((k) => k.startsWith("diff ")).length));
    const diffs = { eventMembersLimit: limit, joins: movers.length, joinsPerSecond: 10, p50: percentile(all, 50), p99: percentile(all, 99), diffsReceived, postsPerJoin: Number((posts / movers.length).toFixed(1)), lost };
    note(`diffs: ${diffs.joins} joins at 10/s → ${diffsReceived} diffs per member; join → receipt p50 ${diffs.p50} / p99 ${diffs.p99} ms; ${diffs.postsPerJoin} posts per join; lost ${lost}`);
    sockets.push(...members, ...movers);

    // The rule (core/presence.ts announce, diffInterval): N posts per change up to the limit; past
    // it one diff to N members per max(1 s, N/1,000 s), whatever the joins in that interval.
    const perJoinAt10 = (n: number) => (n <= limit ? n : n / Math.max(1, 10 * Math.max(1, Math.ceil(n / 1_000))));
    const postsPerJoin = [
      { members: 100, how: "single events", measured: Number(smallPosts.toFixed(1)), rule: perJoinAt10(100) },
      { members: SIZE.members, how: "diffs, joins at 10/s", measured: diffs.postsPerJoin, rule: perJoinAt10(SIZE.members) },
      { members: 10_000, how: "diffs, joins at 10/s (one diff per 10 s)", rule: perJoinAt10(10_000) },
    ];
    return { diffs, postsPerJoin };
  } finally {
    await stopQuietly(hub, sockets);
  }
}

async function main() {
  const first = await singleEvents();
  const second = await batched();
  const sweep = await measureSweep(quick);
  const figures: PresenceFigures = { members: first.members, singles: first.singles, diffs: second.diffs, postsPerJoin: second.postsPerJoin, read: first.read, sweepPer10kConnections: sweep };
  process.stdout.write((values.json ? JSON.stringify(figures) : JSON.stringify(figures, null, 2)) + "\n");
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
