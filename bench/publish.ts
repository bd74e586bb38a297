/**
 * Publishing (docs/protocol.md#publishing-from-an-app-backend): what an idempotency key costs,
 * and a 100-room publish against 100 single publishes, in one run on one local hub. Every AWS
 * request is counted by recording proxies: the app's SQS sends, the deliver function's
 * DynamoDB requests (by table) and SQS sends, and its posts (from its record outcomes). The
 * deliver function is the real one (handlers/deliver.ts), driven here from a queue of its own
 * by a poller like the hub's (4 at once, 10 records a batch); the clients are WebSockets.
 *
 *   node -r ts-node/register/transpile-only bench/publish.ts [--quick] [--json]
 */
import { parseArgs } from "util";
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { sqsClient } from "../core/aws";
import { mapWithConcurrency } from "../core/fanout";
import type { RecordOutcome } from "../core/hubEvents";
import { createLogger } from "../core/log";
import { deliverFromEnvironment } from "../handlers/deliver";
import { localEnvironment } from "../local/handlers";
import { startLocalHub, type LocalHub } from "../local";
import { createNotifier, type Notifier } from "../server";
import { startRecorder, type Recorder } from "../test/support/awsRecorder";
import { openClient, type WsClient } from "../test/support/wsClient";
import { median, note } from "./lib";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "boolean" } }, strict: true });
const quick = values.quick ?? false;
const SIZE = quick ? { publishes: 20, rooms: 20, rounds: 1 } : { publishes: 100, rooms: 100, rounds: 3 };

/** Requests by action (and DynamoDB table). */
function counter(recorder: Recorder) {
  let mark = 0;
  return {
    start() {
      mark = recorder.requests.length;
    },
    counts(): Record<string, number> {
      const counts: Record<string, number> = {};
      for (const r of recorder.requests.slice(mark)) counts[r.action + (r.resource ? ` ${r.resource}` : "")] = (counts[`${r.action}${r.resource ? ` ${r.resource}` : ""}`] ?? 0) + 1;
      return counts;
    },
  };
}

const operation = (target: string) => target.split(".").pop() ?? "";
const tableOf = (body: string) => {
  try {
    return String((JSON.parse(body) as { TableName?: string }).TableName ?? "");
  } catch {
    return "";
  }
};

interface Phase {
  /** Requests per publish call (or per notification, as labelled). */
  appSqs: number;
  deliverSqs: number;
  streams: number;
  connections: number;
  posts: number;
  records: number;
  ms: number;
}

interface Deliverer {
  outcomes: RecordOutcome[];
  streamsTable: string;
  connectionsTable: string;
  stop(): Promise<void>;
}

/** The deliver function on a queue of its own, as the event source mapping runs it. */
async function startDeliverer(hub: LocalHub, queueUrl: string, dynamoEndpoint: string, sqsEndpoint: string, retentionHours: number): Promise<Deliverer> {
  const outcomes: RecordOutcome[] = [];
  const env = localEnvironment({
    dynamodbEndpoint: dynamoEndpoint,
    sqsEndpoint,
    managementEndpoint: hub.managementEndpoint,
    queueUrl,
    connectionsTable: hub.connectionsTableName,
    authTable: hub.authTableName,
    jwtSecret: hub.jwtSecret,
    allowClientMessages: true,
    streams: { streamsTable: hub.streamsTableName, retentionHours },
  });
  const handler = deliverFromEnvironment({
    env,
    credentials: hub.credentials,
    log: createLogger({}, () => undefined, "error"),
    observe: (event) => {
      if (event.type.startsWith("record.")) outcomes.push(event as RecordOutcome);
    },
  });
  // The poller reaches fauxqs directly: its receives and deletes are the event source mapping's, not counted.
  const sqs = sqsClient({ endpoint: hub.sqsEndpoint, credentials: hub.credentials, region: hub.region });
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const page = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, AttributeNames: ["All"] }));
      const messages = page.Messages ?? [];
      if (messages.length === 0) continue;
      const records = messages.map(
        (m): SQSRecord => ({
          messageId: m.MessageId!,
          receiptHandle: m.ReceiptHandle!,
          body: m.Body!,
          attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? "1" } as SQSRecord["attributes"],
          messageAttributes: {},
          md5OfBody: "",
          eventSource: "aws:sqs",
          eventSourceARN: "arn:aws:sqs:local:000000000000:bench-publish",
          awsRegion: hub.region,
        }),
      );
      const { batchItemFailures } = await handler({ Records: records });
      const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
      const done = messages.filter((m) => !failed.has(m.MessageId!));
      if (done.length) await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
  };
  const loops = Array.from({ length: 4 }, () => loop());
  return {
    outcomes,
    streamsTable: hub.streamsTableName,
    connectionsTable: hub.connectionsTableName,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function until(check: () => boolean, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("bench publish: condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function main() {
  const hub = await startLocalHub({ port: 0, bcryptCost: 4, logLevel: "error" });
  const dynamoRecorder = await startRecorder(hub.dynamodbEndpoint, ({ target, body }) => [{ action: operation(target), resource: tableOf(body) }]);
  const sqsRecorder = await startRecorder(hub.sqsEndpoint, ({ target }) => [{ action: operation(target), resource: "" }]);
  const sqs = sqsClient({ endpoint: hub.sqsEndpoint, credentials: hub.credentials, region: hub.region });
  const clients: WsClient[] = [];
  try {
    const queueOf = async (name: string) => (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: "30" } }))).QueueUrl!;
    const appRecorder = await startRecorder(hub.sqsEndpoint, ({ target }) => [{ action: operation(target), resource: "" }]);
    const appSends = counter(appRecorder);
    const dynamo = counter(dynamoRecorder);
    const deliverSends = counter(sqsRecorder);
    const notifierFor = (queueUrl: string): Notifier => createNotifier({ queueUrl, region: hub.region, credentials: hub.credentials, endpoints: { sqs: appRecorder.endpoint } });

    // One member per room: posts are counted, not the point.
    const tab = async (room: string) => {
      const token = await hub.notifier.issueToken({ userId: `member-${room}`, roomId: room, ttlSeconds: 3600 });
      const client = await openClient(`${hub.websocketUrl}?token=${encodeURIComponent(token)}`, { perMessageDeflate: false });
      clients.push(client);
      return client;
    };
    const rooms = Array.from({ length: SIZE.rooms }, (_, i) => `bench-room-${String(i).padStart(3, "0")}`);
    const members = await mapWithConcurrency(rooms, 10, tab);
    const keyRoom = members[0];

    /** Runs `work` and counts what it cost once every record it caused is done and every frame arrived. */
    const phase = async (deliverer: Deliverer, expectedRecords: number, expectedFrames: () => boolean, work: () => Promise<unknown>): Promise<Phase & { raw: Record<string, number> }> => {
      const before = deliverer.outcomes.length;
      appSends.start();
      dynamo.start();
      deliverSends.start();
      const started = Date.now();
      await work();
      await until(() => deliverer.outcomes.length - before >= expectedRecords && expectedFrames());
      const ms = Date.now() - started;
      // Let the last records' writes finish (outcomes come after them).
      await new Promise((resolve) => setTimeout(resolve, 200));
      const outcomes = deliverer.outcomes.slice(before);
      const app = appSends.counts();
      const db = dynamo.counts();
      const sent = deliverSends.counts();
      const sum = (counts: Record<string, number>, match: (key: string) => boolean) => Object.entries(counts).reduce((n, [k, v]) => n + (match(k) ? v : 0), 0);
      return {
        appSqs: sum(app, (k) => k.startsWith("SendMessage")),
        deliverSqs: sum(sent, (k) => k.startsWith("SendMessage")),
        streams: sum(db, (k) => k.endsWith(` ${deliverer.streamsTable}`)),
        connections: sum(db, (k) => k.endsWith(` ${deliverer.connectionsTable}`)),
        posts: outcomes.reduce((n, o) => n + (o.type === "record.delivered" ? o.delivered + o.gone + o.failed : 0), 0),
        records: outcomes.length,
        ms,
        raw: { ...Object.fromEntries(Object.entries(db).map(([k, v]) => [`dynamodb ${k}`, v])), ...Object.fromEntries(Object.entries(sent).map(([k, v]) => [`deliver sqs ${k}`, v])) },
      };
    };
    const per = (p: Phase, n: number) => ({
      appSqs: p.appSqs / n,
      deliverSqs: p.deliverSqs / n,
      streams: p.streams / n,
      connections: p.connections / n,
      posts: p.posts / n,
      records: p.records / n,
      msPerPublish: p.ms / n,
    });
    const frames = (client: WsClient, type: string) => client.frames.filter((f) => f.data?.type === type).length;

    // 1. What a key costs: N publishes in series without a key, N with a new key each, then each keyed one again (a retry).
    const keyCost: Record<string, unknown> = {};
    for (const [label, retention] of [
      ["streamsOn", 24],
      ["streamsOff", 0],
    ] as const) {
      const queueUrl = await queueOf(`bench-publish-keys-${label}`);
      const deliverer = await startDeliverer(hub, queueUrl, dynamoRecorder.endpoint, sqsRecorder.endpoint, retention);
      const notifier = notifierFor(queueUrl);
      const n = SIZE.publishes;
      const type = `key-${label}`;
      try {
        const base = frames(keyRoom, type);
        const without = await phase(deliverer, n, () => frames(keyRoom, type) >= base + n, async () => {
          for (let i = 0; i < n; i++) await notifier.publish({ roomId: rooms[0], data: { type, data: i } });
        });
        const withKey = await phase(deliverer, n, () => frames(keyRoom, type) >= base + 2 * n, async () => {
          for (let i = 0; i < n; i++) await notifier.publish({ roomId: rooms[0], data: { type, data: i }, idempotencyKey: `${label}-${i}` });
        });
        const retry = await phase(deliverer, n, () => true, async () => {
          for (let i = 0; i < n; i++) await notifier.publish({ roomId: rooms[0], data: { type, data: i }, idempotencyKey: `${label}-${i}` });
        });
        const extra = frames(keyRoom, type) - base - 2 * n;
        keyCost[label] = { publishes: n, without: per(without, n), withKey: per(withKey, n), retry: per(retry, n), framesFromRetries: extra, raw: { without: without.raw, withKey: withKey.raw, retry: retry.raw } };
        note(
          `key, streams ${label === "streamsOn" ? "on" : "off"}: per publish without ${without.streams / n} streams-table requests, with ${withKey.streams / n}; a retry ${retry.streams / n} and ${retry.posts / n} posts (${extra} frames from retries)`,
        );
      } finally {
        await deliverer.stop();
      }
    }

    // 2. 100 rooms: one publish with roomIds, against 100 publish calls (10 at a time) and one publishBatch of 100; rounds alternated.
    const queueUrl = await queueOf("bench-publish-rooms");
    const deliverer = await startDeliverer(hub, queueUrl, dynamoRecorder.endpoint, sqsRecorder.endpoint, 24);
    const notifier = notifierFor(queueUrl);
    const runs: Record<"multi" | "singles" | "batch", (Phase & { raw: Record<string, number> })[]> = { multi: [], singles: [], batch: [] };
    try {
      // Every room's stream has its counter before the rounds (a stream's first append reads its head once).
      await phase(deliverer, SIZE.rooms, () => members.every((m) => frames(m, "warm-up") >= 1), () => notifier.publishBatch(rooms.map((roomId) => ({ roomId, data: { type: "warm-up" } }))));
      for (let round = 0; round < SIZE.rounds; round++) {
        for (const kind of ["multi", "singles", "batch"] as const) {
          const type = `rooms-${kind}-${round}`;
          const everyone = () => members.every((m) => frames(m, type) >= 1);
          const data = { type, data: "one event, many rooms" };
          const records = kind === "multi" ? SIZE.rooms + 1 : SIZE.rooms;
          runs[kind].push(
            await phase(deliverer, records, everyone, async () => {
              if (kind === "multi") await notifier.publish({ roomIds: rooms, data });
              else if (kind === "batch") await notifier.publishBatch(rooms.map((roomId) => ({ roomId, data })));
              else await mapWithConcurrency(rooms, 10, (roomId) => notifier.publish({ roomId, data }));
            }),
          );
        }
      }
    } finally {
      await deliverer.stop();
    }
    const summary = (list: (Phase & { raw: Record<string, number> })[]) => ({ ...list[0], raw: list[0].raw, ms: median(list.map((p) => p.ms)), msRounds: list.map((p) => p.ms) });
    const roomsFigures = { rooms: SIZE.rooms, rounds: SIZE.rounds, multi: summary(runs.multi), singles: summary(runs.singles), batch: summary(runs.batch) };
    note(
      `${SIZE.rooms} rooms: roomIds ${roomsFigures.multi.appSqs} app + ${roomsFigures.multi.deliverSqs} deliver SQS sends, ${roomsFigures.multi.records} records, ${roomsFigures.multi.ms} ms; ` +
        `publish ×${SIZE.rooms} ${roomsFigures.singles.appSqs} + ${roomsFigures.singles.deliverSqs}, ${roomsFigures.singles.records} records, ${roomsFigures.singles.ms} ms; ` +
        `publishBatch ${roomsFigures.batch.appSqs} + ${roomsFigures.batch.deliverSqs}, ${roomsFigures.batch.ms} ms`,
    );
    const figures = { date: new Date().toISOString(), quick, keyCost, rooms: roomsFigures };
    if (values.json) process.stdout.write(JSON.stringify(figures) + "\n");
    else console.log(JSON.stringify(figures, null, 2));
    await appRecorder.stop();
  } finally {
    for (const c of clients) c.ws.close();
    await dynamoRecorder.stop();
    await sqsRecorder.stop();
    await hub.stop();
  }
}

export type PublishFigures = {
  date: string;
  quick: boolean;
  keyCost: Record<"streamsOn" | "streamsOff", { publishes: number; without: PerPublish; withKey: PerPublish; retry: PerPublish; framesFromRetries: number }>;
  rooms: { rooms: number; rounds: number } & Record<"multi" | "singles" | "batch", Phase & { msRounds: number[] }>;
};
export type PerPublish = { appSqs: number; deliverSqs: number; streams: number; connections: number; posts: number; records: number; msPerPublish: number };

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
