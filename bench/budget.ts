/**
 * The @connections budget and the small-message lane (`npm run bench -- --only budget`), on the
 * local hub in its own process (clients here), twice in one run:
 * - "lanes": the hub as it ships: a big room's chunks on the bulk queue with their own workers,
 *   taking at most 80 % of each budget window;
 * - "one queue": the same hub with no bulk queue (`queue.bulkConcurrency: 0`): chunks on the
 *   notification queue, as before, with the same number of workers in all.
 * Each: a broadcast to a room of 10,000 (2,000 with --quick) under a budget of 1,000 posts/s
 * (`delivery.postsPerSecond`, and the emulated account's own rate), and while it runs 50
 * notifications, half to user channels, half to a small room of 25: SendMessage → last
 * recipient's receipt, p50/p99. Lost, dead letters and the 429s the emulated account answered
 * are counted.
 *
 *   node -r ts-node/register/transpile-only bench/budget.ts [--quick] [--json]
 */
import { ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { parseArgs } from "util";
import { sqsClient } from "../core/aws";
import { ClientPool, note, percentile, startHubProcess } from "./lib";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "boolean" } }, strict: true });
const quick = values.quick ?? false;
const SIZE = quick ? { room: 2_000, small: 50, spacingMs: 40 } : { room: 10_000, small: 50, spacingMs: 150 };
const POSTS_PER_SECOND = 1_000;
const WORKERS = 4;
const SMALL_ROOM = 25;

export interface BudgetRun {
  mode: "lanes" | "one queue";
  room: number;
  broadcastMs: number;
  lost: number;
  deadLetters: number;
  throttled: number;
  requests: number;
  peakPerSecond: number;
  small: { n: number; lost: number; p50: number; p99: number; max: number };
}

export interface BudgetFigures {
  date: string;
  quick: boolean;
  postsPerSecond: number;
  workers: number;
  lanes: BudgetRun;
  oneQueue: BudgetRun;
  /** one queue / lanes, for p50 and p99 of the small notifications. */
  ratio: { p50: number; p99: number };
}

async function run(mode: BudgetRun["mode"]): Promise<BudgetRun> {
  console.error(`\n[budget] ${mode}: a room of ${SIZE.room.toLocaleString("en-US")} under ${POSTS_PER_SECOND} posts/s, ${SIZE.small} small notifications during it`);
  const hub = await startHubProcess({
    mode: "ours",
    largeRoomChunkSize: 1_000,
    postsPerSecond: POSTS_PER_SECOND,
    // Lanes: half the workers on each queue; one queue: all of them on it.
    workers: mode === "lanes" ? WORKERS / 2 : WORKERS,
    bulkWorkers: mode === "lanes" ? WORKERS / 2 : 0,
    // The account's budget is the hub's; connecting the bench's clients is not what is measured.
    account: { requestsPerSecond: POSTS_PER_SECOND, newConnectionsPerSecond: 100_000 },
  });
  const sqs = sqsClient({ endpoint: hub.info.sqsEndpoint, region: hub.info.region });
  const send = async (body: object) => {
    const sentAt = Date.now();
    const result = await sqs.send(new SendMessageCommand({ QueueUrl: hub.info.queueUrl, MessageBody: JSON.stringify(body) }));
    return { id: result.MessageId ?? "", sentAt };
  };
  try {
    const big = await ClientPool.connect(hub, "big", SIZE.room, { label: `connecting ${SIZE.room} clients` });
    // One user per client: user channels reach one client each.
    const small = await ClientPool.connect(hub, "small", SMALL_ROOM, { users: SMALL_ROOM });
    const before = hub.usage();
    const broadcast = await send({ room_id: "big", user_id: "bench", data: { type: "broadcast" } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const sent: { id: string; sentAt: number; recipients: number }[] = [];
    for (let i = 0; i < SIZE.small; i++) {
      const toUser = i % 2 === 0;
      const body = toUser ? { to_user_id: `small-user-${i % SMALL_ROOM}`, user_id: "bench", data: { type: "direct", i } } : { room_id: "small", user_id: "bench", data: { type: "small", i } };
      sent.push({ ...(await send(body)), recipients: toUser ? 1 : SMALL_ROOM });
      await new Promise((resolve) => setTimeout(resolve, SIZE.spacingMs));
    }
    const { received, lastAt } = await big.waitFor(broadcast.id, 180_000);
    const deadline = Date.now() + 60_000;
    while (sent.some((s) => small.received(s.id) < s.recipients) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const latencies = sent.filter((s) => small.received(s.id) >= s.recipients).map((s) => Math.max(...small.receipts.get(s.id)!) - s.sentAt);
    // The hub reports its account counts every 500 ms.
    await new Promise((resolve) => setTimeout(resolve, 700));
    const after = hub.usage();
    const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: hub.info.deadLetterQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    const figures: BudgetRun = {
      mode,
      room: SIZE.room,
      broadcastMs: lastAt - broadcast.sentAt,
      lost: SIZE.room - received + big.duplicates,
      deadLetters: dead.Messages?.length ?? 0,
      throttled: (after?.connectionsApi.throttled ?? 0) - (before?.connectionsApi.throttled ?? 0),
      requests: (after?.connectionsApi.requests ?? 0) - (before?.connectionsApi.requests ?? 0),
      peakPerSecond: after?.connectionsApi.peakPerSecond ?? 0,
      small: { n: sent.length, lost: sent.length - latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) },
    };
    note(
      `${mode}: broadcast ${figures.broadcastMs} ms, lost ${figures.lost}, dead letters ${figures.deadLetters}, 429s ${figures.throttled}, peak ${figures.peakPerSecond}/s; ` +
        `small p50 ${figures.small.p50} ms, p99 ${figures.small.p99} ms (lost ${figures.small.lost})`,
    );
    await small.close();
    await big.close();
    return figures;
  } finally {
    await hub.stop();
  }
}

async function main() {
  const lanes = await run("lanes");
  const oneQueue = await run("one queue");
  const figures: BudgetFigures = {
    date: new Date().toISOString(),
    quick,
    postsPerSecond: POSTS_PER_SECOND,
    workers: WORKERS,
    lanes,
    oneQueue,
    ratio: { p50: Number((oneQueue.small.p50 / lanes.small.p50).toFixed(1)), p99: Number((oneQueue.small.p99 / lanes.small.p99).toFixed(1)) },
  };
  if (values.json) process.stdout.write(JSON.stringify(figures) + "\n");
  else console.log(JSON.stringify(figures, null, 2));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
