/**
 * Many rooms per connection (docs/protocol.md#rooms-and-user-channels), on the local hub in its own process (clients here):
 * - subscribe round trip: `{"action":"subscribe","room_id":…}` → `hub.subscribed`, N one after
 *   another on one connection, then the same N spread over several connections at once;
 * - delivery to a room of C connections that are each in 20 rooms, against a room
 *   of C connections with the seed's one-room token (today's model), in the same run on the
 *   same hub, messages alternated: time from SendMessage to the last receipt, and the items the
 *   deliver handler read (DynamoDB's count, from its summary).
 *
 *   node -r ts-node/register/transpile-only bench/rooms.ts [--quick] [--json]
 */
import { parseArgs } from "util";
import type { WebSocket } from "ws";
import { dynamoClient } from "../core/aws";
import { mapWithConcurrency } from "../core/fanout";
import { DEFAULT_MAX_ROOMS_PER_CONNECTION } from "../core/rooms";
import { addRoom, roomPages } from "../core/tables";
import { openClient, type Frame } from "../test/support/wsClient";
import { ClientPool, median, note, percentile, progress, startHubProcess, type HubProcess } from "./lib";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "boolean" } }, strict: true });
const quick = values.quick ?? false;
const SIZE = quick
  ? { subscribes: 100, concurrentConnections: 5, members: 200, roomsEach: 20, messages: 3 }
  : { subscribes: 500, concurrentConnections: 10, members: 1_000, roomsEach: 20, messages: 5 };
/** The component's default `maxRoomsPerConnection`: a connection unsubscribes before it passes it. */
const MAX_ROOMS = 100;

/** A token granting rooms by pattern (docs/protocol.md#tokens). */
function issueRoomsToken(hub: HubProcess, userId: string, rooms: string[]): Promise<string> {
  return hub.notifier.issueToken({ userId, rooms, ttlSeconds: 3 * 3600 });
}

const isReply = (type: string, roomId: string) => (frame: Frame) => frame.data?.type === type && frame.data?.data?.room_id === roomId;

/** Sends one client action and waits for its answer; a `hub.error` fails the run with its code. */
async function roundTrip(client: Awaited<ReturnType<typeof openClient>>, action: "subscribe" | "unsubscribe", roomId: string): Promise<number> {
  const type = action === "subscribe" ? "hub.subscribed" : "hub.unsubscribed";
  const started = process.hrtime.bigint();
  const answer = client.next((f) => isReply(type, roomId)(f) || f.data?.type === "hub.error", 30_000);
  client.ws.send(JSON.stringify({ action, room_id: roomId }));
  const frame = await answer;
  if (frame.data?.type === "hub.error") throw new Error(`${action} ${roomId}: hub.error ${JSON.stringify(frame.data.data)}`);
  // Answers are matched by room; drop them so `next` does not scan a growing list.
  client.frames.length = 0;
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/** `count` subscribes on one connection, one after another, unsubscribing before the room cap. */
async function subscribeSeries(hub: HubProcess, userId: string, prefix: string, count: number): Promise<number[]> {
  const client = await openWithRetry(`${hub.info.websocketUrl}?token=${await issueRoomsToken(hub, userId, [`${prefix}/*`])}`, { perMessageDeflate: false });
  const times: number[] = [];
  const held: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      if (held.length >= MAX_ROOMS - 1) await roundTrip(client, "unsubscribe", held.shift()!);
      const room = `${prefix}/${i}`;
      times.push(await roundTrip(client, "subscribe", room));
      held.push(room);
    }
  } finally {
    client.ws.close();
  }
  return times;
}

async function subscribeScenario(hub: HubProcess) {
  console.error(`\n[rooms] subscribe round trip: ${SIZE.subscribes} in series, then ${SIZE.subscribes} over ${SIZE.concurrentConnections} connections at once`);
  const series = await subscribeSeries(hub, "sub-series", "series", SIZE.subscribes);
  const perConnection = Math.ceil(SIZE.subscribes / SIZE.concurrentConnections);
  const concurrent = (
    await Promise.all(Array.from({ length: SIZE.concurrentConnections }, (_, c) => subscribeSeries(hub, `sub-concurrent-${c}`, `concurrent-${c}`, perConnection)))
  ).flat();
  const figures = {
    sequential: { n: series.length, p50: percentile(series, 50), p99: percentile(series, 99) },
    concurrent: { n: concurrent.length, connections: SIZE.concurrentConnections, p50: percentile(concurrent, 50), p99: percentile(concurrent, 99) },
  };
  note(`subscribe → hub.subscribed: series p50 ${figures.sequential.p50.toFixed(1)} / p99 ${figures.sequential.p99.toFixed(1)} ms; ` + `${SIZE.concurrentConnections} at once p50 ${figures.concurrent.p50.toFixed(1)} / p99 ${figures.concurrent.p99.toFixed(1)} ms`);
  return figures;
}

/** Opens a client, trying again (up to 3 times) when a loaded machine times out the handshake. */
async function openWithRetry(url: string, options: Parameters<typeof openClient>[1]) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openClient(url, options);
    } catch (err) {
      if (attempt >= 3) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}

/**
 * C connections in the target room, receipts recorded per notification. `manyRooms`: each
 * connection has a rooms token and subscribes to the target through the subscribe route, then
 * joins 19 more rooms, shared (connection i is in rooms i+1..i+19 of C), so every room of the
 * index holds as many memberships as the target: the table holds C × 20, and delivery must
 * read only C. Those 19 go through the subscribe handler's own table function (core/tables.ts
 * addRoom: the row's room set, then the membership item), without a WebSocket round trip each:
 * 19,000 round trips take most of an hour on this 2-core machine, and what delivery reads is
 * the items, not how they were written. Without `manyRooms`: the seed's one-room token
 * (room_id = target), today's model. Both pools are built by this same code.
 */
async function roomPool(hub: HubProcess, target: string, manyRooms: boolean): Promise<ClientPool> {
  const pool = new ClientPool();
  const users = Math.min(100, SIZE.members);
  const tokens = await mapWithConcurrency(Array.from({ length: users }, (_, i) => i), 8, (i) =>
    manyRooms ? issueRoomsToken(hub, `${target}-user-${i}`, [target, `${target}-other/*`]) : hub.notifier.issueToken({ userId: `${target}-user-${i}`, roomId: target, ttlSeconds: 3 * 3600 }),
  );
  let ready = 0;
  await mapWithConcurrency(Array.from({ length: SIZE.members }, (_, i) => i), 16, async (i) => {
    const seen = new Set<string>();
    const client = await openWithRetry(`${hub.info.websocketUrl}?token=${tokens[i % users]}`, {
      perMessageDeflate: false,
      onFrame: (frame, at) => {
        if (frame.id === undefined || frame.room_id !== target) return;
        if (seen.has(frame.id)) return void pool.duplicates++;
        seen.add(frame.id);
        pool.receipts.set(frame.id, [...(pool.receipts.get(frame.id) ?? []), at]);
      },
    });
    if (manyRooms) await roundTrip(client, "subscribe", target);
    client.frames.length = 0;
    pool.sockets.push(client.ws as WebSocket);
    ready++;
    if (ready % 100 === 0 || ready === SIZE.members) progress(manyRooms ? `connections subscribed to ${target}` : "one-room connections (seed token)", ready, SIZE.members);
  });
  if (manyRooms) {
    const db = dynamoClient({ endpoint: hub.info.dynamodbEndpoint, region: hub.info.region, credentials: hub.info.credentials });
    const members: string[] = [];
    for await (const page of roomPages(db, hub.info.connectionsTableName, target)) members.push(...page.connections.map((c) => c.connectionId));
    if (members.length !== SIZE.members) throw new Error(`${target} holds ${members.length} connections, expected ${SIZE.members}`);
    const joins = members.flatMap((connectionId, i) => Array.from({ length: SIZE.roomsEach - 1 }, (_, k) => ({ connectionId, roomId: `${target}-other/${(i + k + 1) % SIZE.members}` })));
    let done = 0;
    await mapWithConcurrency(joins, 32, async ({ connectionId, roomId }) => {
      const added = await addRoom(db, hub.info.connectionsTableName, connectionId, roomId, DEFAULT_MAX_ROOMS_PER_CONNECTION);
      if (!added.ok) throw new Error(`${connectionId} could not join ${roomId}: ${added.reason}`);
      if (++done % 2_000 === 0 || done === joins.length) progress(`more rooms joined (${SIZE.roomsEach - 1} per connection)`, done, joins.length);
    });
  }
  return pool;
}

async function measure(hub: HubProcess, pool: ClientPool, roomId: string) {
  const { messageId, sentAt } = await hub.publish(roomId, { type: "bench", data: { sentAt: Date.now() } });
  const { received, lastAt } = await pool.waitFor(messageId, 120_000);
  const deadline = Date.now() + 5_000;
  while (!hub.metrics.some((m) => m.id === messageId) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  const metrics = hub.metrics.filter((m) => m.id === messageId);
  return { ms: lastAt - sentAt, lost: pool.sockets.length - received, itemsRead: metrics.reduce((sum, m) => sum + (m.items_read ?? 0), 0) };
}

async function deliveryScenario(hub: HubProcess) {
  console.error(`\n[rooms] delivery to ${SIZE.members} connections in ${SIZE.roomsEach} rooms each vs ${SIZE.members} one-room connections`);
  const single = await roomPool(hub, "one-room", false);
  const multi = await roomPool(hub, "many-rooms", true);
  const runs = { single: [] as Awaited<ReturnType<typeof measure>>[], multi: [] as Awaited<ReturnType<typeof measure>>[] };
  try {
    for (let i = 0; i < SIZE.messages; i++) {
      runs.single.push(await measure(hub, single, "one-room"));
      runs.multi.push(await measure(hub, multi, "many-rooms"));
    }
  } finally {
    await Promise.all([single.close(), multi.close()]);
  }
  const figure = (list: typeof runs.single) => ({
    ms: median(list.map((r) => r.ms)),
    itemsRead: median(list.map((r) => r.itemsRead)),
    lost: list.reduce((sum, r) => sum + r.lost, 0),
    duplicates: 0,
  });
  const figures = {
    members: SIZE.members,
    roomsEach: SIZE.roomsEach,
    messages: SIZE.messages,
    oneRoom: { ...figure(runs.single), duplicates: single.duplicates },
    manyRooms: { ...figure(runs.multi), duplicates: multi.duplicates },
    ratio: 0,
  };
  figures.ratio = Math.round((figures.manyRooms.ms / figures.oneRoom.ms) * 100) / 100;
  note(
    `last receipt (median of ${SIZE.messages}): ${SIZE.roomsEach} rooms each ${figures.manyRooms.ms} ms, one room ${figures.oneRoom.ms} ms (${figures.ratio}×); ` +
      `items read ${figures.manyRooms.itemsRead} vs ${figures.oneRoom.itemsRead}; lost ${figures.manyRooms.lost} / ${figures.oneRoom.lost}`,
  );
  return figures;
}

export interface RoomsFigures {
  date: string;
  quick: boolean;
  subscribe: Awaited<ReturnType<typeof subscribeScenario>>;
  delivery: Awaited<ReturnType<typeof deliveryScenario>>;
}

async function main() {
  const hub = await startHubProcess({ mode: "ours" });
  try {
    const subscribe = await subscribeScenario(hub);
    const delivery = await deliveryScenario(hub);
    const result: RoomsFigures = { date: new Date().toISOString(), quick, subscribe, delivery };
    if (values.json) process.stdout.write(JSON.stringify(result) + "\n");
    else console.log(JSON.stringify(result, null, 2));
  } finally {
    await hub.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
