/**
 * What it costs (README "What it costs"): the billed units of one notification to rooms of
 * 10, 1,000 and 10,000 connections, counted on the local hub, times bench/prices.ts. The
 * deliver function is the real one (handlers/deliver.ts) on two queues of its own (the main
 * and the bulk lane, as the stack has them), with the @connections budget and room streams
 * on, driven by pollers like the event source mapping; the clients are WebSockets.
 *
 * Counted: DynamoDB read and write units (a proxy in front of dynalite asks every request for
 * its ConsumedCapacity and adds up the answers, by table), the deliver function's SQS sends (a
 * recording proxy), the mapping's receives and deletes (one each per batch), invocations,
 * @connections posts (the record outcomes), and the handler's time (an upper bound on billed
 * duration: the local stand-ins answer slower than AWS's).
 *
 * Every room is measured at its size: the room of 10,000 is 10,000 WebSocket clients (a few
 * minutes to connect on a 2-core machine). The hub runs in a process of its own
 * (bench/hubProcess.ts), so the 10,000 sockets of each side fit their process's file limit;
 * the deliver function runs here, where its requests can be counted. `--quick` stands a room
 * of 200 in for the 10,000, with a fiftieth of the chunk size (the same number of chunks, so
 * the same invocations and SQS requests) and what grows with the room (posts, the room's read
 * units, the budget's writes, handler time) multiplied by 50.
 *
 *   node -r ts-node/register/transpile-only bench/cost.ts [--quick] [--json]
 */
import * as http from "http";
import type { AddressInfo } from "net";
import { parseArgs } from "util";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSRecord } from "aws-lambda";
import { dynamoClient, sqsClient } from "../core/aws";
import { mapWithConcurrency } from "../core/fanout";
import type { RecordOutcome } from "../core/hubEvents";
import { createLogger } from "../core/log";
import { DEFAULT_RETENTION_HOURS } from "../core/schema";
import { deliverFromEnvironment } from "../handlers/deliver";
import { handlerEntry } from "../handlers/manifest";
import { localEnvironment } from "../local/handlers";
import type { LocalHubInfo } from "../local";
import { createNotifier } from "../server";
import { startRecorder } from "../test/support/awsRecorder";
import { openClient, type WsClient } from "../test/support/wsClient";
import { connectionMonth, dollarsFor, gbSeconds, managedPerMillionDeliveries, perMillionDeliveries, ZERO_COUNTS, type BilledCounts, type Dollars } from "./costModel";
import { note, progress, startHubProcess } from "./lib";
import { PRICES, ROWS } from "./prices";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "boolean" } }, strict: true });
const quick = values.quick ?? false;
const NOTIFICATIONS = quick ? 2 : 3;
/** Rooms as measured: [label size, connections, chunk size, factor for what grows with the room]. */
const ROOMS: { size: number; connections: number; chunk: number; scale: number }[] = quick
  ? [
      { size: 10, connections: 10, chunk: 1_000, scale: 1 },
      { size: 1_000, connections: 200, chunk: 200, scale: 5 },
      { size: 10_000, connections: 200, chunk: 20, scale: 50 },
    ]
  : [
      { size: 10, connections: 10, chunk: 1_000, scale: 1 },
      { size: 1_000, connections: 1_000, chunk: 1_000, scale: 1 },
      { size: 10_000, connections: 10_000, chunk: 1_000, scale: 1 },
    ];
/** The seed's design Scans the whole connections table per message; priced at this many connections in the table. */
const SEED_TABLE = 10_000;
const POSTS_PER_SECOND = 5_000;

const READ_OPS = new Set(["GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"]);

/** A proxy in front of dynalite that asks each request for its ConsumedCapacity and adds up the answers by table (and operation: bench/sweep.ts counts Scan pages). */
export async function startCapacityProxy(target: string) {
  const upstream = new URL(target);
  const units: { table: string; operation: string; read: number; write: number }[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const operation = String(request.headers["x-amz-target"] ?? "").split(".").pop() ?? "";
      let body = Buffer.concat(chunks);
      try {
        const input = JSON.parse(body.toString("utf8") || "{}") as Record<string, unknown>;
        if (!input.ReturnConsumedCapacity && !operation.startsWith("Describe") && !operation.startsWith("List") && !operation.endsWith("Table")) {
          input.ReturnConsumedCapacity = "TOTAL";
          body = Buffer.from(JSON.stringify(input));
        }
      } catch {
        /* forwarded as is */
      }
      const headers = { ...request.headers, host: upstream.host, "content-length": String(body.length) };
      const forward = http.request({ host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers }, (answer) => {
        const out: Buffer[] = [];
        answer.on("data", (c: Buffer) => out.push(c));
        answer.on("end", () => {
          const text = Buffer.concat(out);
          try {
            const parsed = JSON.parse(text.toString("utf8")) as { ConsumedCapacity?: { TableName?: string; CapacityUnits?: number } | { TableName?: string; CapacityUnits?: number }[] };
            const list = parsed.ConsumedCapacity === undefined ? [] : Array.isArray(parsed.ConsumedCapacity) ? parsed.ConsumedCapacity : [parsed.ConsumedCapacity];
            const read = READ_OPS.has(operation);
            for (const c of list) units.push({ table: c.TableName ?? "", operation, read: read ? (c.CapacityUnits ?? 0) : 0, write: read ? 0 : (c.CapacityUnits ?? 0) });
          } catch {
            /* not JSON: nothing consumed */
          }
          const { "content-length": _length, ...rest } = answer.headers;
          response.writeHead(answer.statusCode ?? 502, { ...rest, "content-length": String(text.length) });
          response.end(text);
        });
      });
      forward.on("error", () => {
        response.writeHead(502);
        response.end();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    units,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Deliverer {
  outcomes: RecordOutcome[];
  invocations: number;
  handlerMs: number;
  /** The mapping's ReceiveMessage and DeleteMessageBatch requests (one each per non-empty batch). */
  mappingRequests: number;
  stop(): Promise<void>;
}

/** The deliver function on a main and a bulk queue, as the stack's two event source mappings run it. */
function startDeliverer(hub: LocalHubInfo, queues: { main: string; bulk: string }, dynamoEndpoint: string, sqsEndpoint: string, chunk: number): Deliverer {
  const state: Deliverer = { outcomes: [], invocations: 0, handlerMs: 0, mappingRequests: 0, stop: async () => undefined };
  const env = localEnvironment({
    dynamodbEndpoint: dynamoEndpoint,
    sqsEndpoint,
    managementEndpoint: hub.managementEndpoint,
    queueUrl: queues.main,
    bulkQueueUrl: queues.bulk,
    budget: { table: hub.budgetTableName, postsPerSecond: POSTS_PER_SECOND },
    connectionsTable: hub.connectionsTableName,
    authTable: hub.authTableName,
    jwtSecret: hub.jwtSecret,
    allowClientMessages: true,
    largeRoomChunkSize: chunk,
    streams: { streamsTable: hub.streamsTableName, retentionHours: DEFAULT_RETENTION_HOURS },
  });
  const handler = deliverFromEnvironment({
    env,
    credentials: hub.credentials,
    log: createLogger({}, () => undefined, "error"),
    observe: (event) => {
      if (event.type.startsWith("record.")) state.outcomes.push(event as RecordOutcome);
    },
  });
  // The pollers reach fauxqs directly; their requests are counted here, one receive and one delete per batch.
  const sqs = sqsClient({ endpoint: hub.sqsEndpoint, credentials: hub.credentials, region: hub.region });
  let stopped = false;
  const loop = async (queueUrl: string) => {
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
          eventSourceARN: `arn:aws:sqs:local:000000000000:${queueUrl.split("/").pop()}`,
          awsRegion: hub.region,
        }),
      );
      const started = process.hrtime.bigint();
      const { batchItemFailures } = await handler({ Records: records });
      state.handlerMs += Number(process.hrtime.bigint() - started) / 1e6;
      state.invocations++;
      const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
      const done = messages.filter((m) => !failed.has(m.MessageId!));
      state.mappingRequests += done.length ? 2 : 1;
      if (done.length) await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
  };
  const loops = [...Array.from({ length: 4 }, () => loop(queues.main)), ...Array.from({ length: 4 }, () => loop(queues.bulk))];
  state.stop = async () => {
    stopped = true;
    await Promise.all(loops);
  };
  return state;
}

async function until(check: () => boolean, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("bench cost: condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface RoomCost {
  size: number;
  measuredConnections: number;
  chunk: number;
  scale: number;
  /** Billed units of one notification (median of the rounds; scaled to `size`). */
  perNotification: BilledCounts;
  /** Where the units came from, per notification, before scaling. */
  measured: { posts: number; invocations: number; appSqs: number; deliverSqs: number; mappingSqs: number; handlerMs: number; readUnitsByTable: Record<string, number>; writeUnitsByTable: Record<string, number> };
  perMillionDeliveries: Dollars;
  seed: { perNotification: BilledCounts; perMillionDeliveries: Dollars };
  managedPerMillionDeliveries: { ably: number; appSyncEvents: number };
}

export interface CostFigures {
  date: string;
  quick: boolean;
  prices: typeof PRICES;
  /** Where each price comes from, and whether it was confirmed for the Region. */
  priceRows?: typeof ROWS;
  /** Wall-clock seconds the scenario took, connecting included. */
  runSeconds?: number;
  deliverMemoryMb: number;
  postsPerSecond: number;
  seedTable: number;
  seedReadUnitsPerConnection: number;
  rooms: RoomCost[];
  connectionMonth: { counts: BilledCounts; dollars: Dollars; perReconnect: BilledCounts; perReconnectSource: string };
}

async function main() {
  const started = Date.now();
  // Its own process (10,000 server sockets); its deliver workers never see the scenario's queues.
  const hubProcess = await startHubProcess({ mode: "ours", workers: 1, bulkWorkers: 1, account: { newConnectionsPerSecond: 10_000 } });
  const hub = hubProcess.info;
  const capacity = await startCapacityProxy(hub.dynamodbEndpoint);
  const sqsSends = await startRecorder(hub.sqsEndpoint, ({ target }) => [{ action: target.split(".").pop() ?? "", resource: "" }]);
  const appSends = await startRecorder(hub.sqsEndpoint, ({ target }) => [{ action: target.split(".").pop() ?? "", resource: "" }]);
  const sqs = sqsClient({ endpoint: hub.sqsEndpoint, credentials: hub.credentials, region: hub.region });
  const deliverMemoryMb = handlerEntry("deliver").memoryMb;
  const tables = { [hub.connectionsTableName]: "connections", [hub.streamsTableName]: "streams", [hub.budgetTableName]: "budget", [hub.authTableName]: "auth" } as Record<string, string>;
  /** Tables whose units grow with the room's size. */
  const growing = new Set(["connections", "budget"]);
  const rooms: RoomCost[] = [];
  let seedReadUnitsPerConnection = 0;
  try {
    for (const room of ROOMS) {
      const roomId = `cost-${room.size}`;
      const queueOf = async (name: string) => (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: "60" } }))).QueueUrl!;
      const queues = { main: await queueOf(`bench-cost-${room.size}`), bulk: await queueOf(`bench-cost-${room.size}-bulk`) };
      const notifier = createNotifier({ queueUrl: queues.main, region: hub.region, credentials: hub.credentials, endpoints: { sqs: appSends.endpoint } });
      // Connect the room: one token per 100 connections (tabs of one user share it).
      const users = Math.ceil(room.connections / 100);
      const tokens = await mapWithConcurrency(Array.from({ length: users }, (_, i) => i), 4, (i) => hubProcess.notifier.issueToken({ userId: `${roomId}-u${i}`, roomId, ttlSeconds: 3600 }));
      const received = new Map<string, number>();
      let opened = 0;
      const clients: WsClient[] = await mapWithConcurrency(Array.from({ length: room.connections }, (_, i) => i), 32, async (i) => {
        const client = await openClient(`${hub.websocketUrl}?token=${encodeURIComponent(tokens[i % users])}`, {
          perMessageDeflate: false,
          keepFrames: false,
          onFrame: (frame) => {
            const type = String((frame.data as { type?: string } | undefined)?.type ?? "");
            received.set(type, (received.get(type) ?? 0) + 1);
          },
        });
        progress(`connecting the room of ${room.size.toLocaleString("en-US")}`, ++opened, room.connections);
        return client;
      });
      note(`room of ${room.size}: ${room.connections} connections, chunk ${room.chunk}`);
      const deliverer = startDeliverer(hub, queues, capacity.endpoint, sqsSends.endpoint, room.chunk);
      const rounds: RoomCost["measured"][] = [];
      try {
        for (let round = -1; round < NOTIFICATIONS; round++) {
          // Round -1 warms the room's stream (its first append reads the head once) and the handler.
          const type = `cost-${room.size}-${round}`;
          const marks = { units: capacity.units.length, sends: sqsSends.requests.length, app: appSends.requests.length, outcomes: deliverer.outcomes.length, invocations: deliverer.invocations, ms: deliverer.handlerMs, mapping: deliverer.mappingRequests };
          await notifier.publish({ roomId, data: { type, data: "x".repeat(200) } });
          await until(() => (received.get(type) ?? 0) >= room.connections);
          // Let the last invocations return and their deletes go out.
          await until(() => deliverer.invocations > marks.invocations && deliverer.outcomes.length > marks.outcomes);
          await new Promise((resolve) => setTimeout(resolve, 1_500));
          if (round < 0) continue;
          const readUnitsByTable: Record<string, number> = {};
          const writeUnitsByTable: Record<string, number> = {};
          for (const u of capacity.units.slice(marks.units)) {
            const name = tables[u.table] ?? u.table;
            if (u.read) readUnitsByTable[name] = (readUnitsByTable[name] ?? 0) + u.read;
            if (u.write) writeUnitsByTable[name] = (writeUnitsByTable[name] ?? 0) + u.write;
          }
          const outcomes = deliverer.outcomes.slice(marks.outcomes);
          rounds.push({
            posts: outcomes.reduce((n, o) => n + (o.type === "record.delivered" ? o.delivered + o.gone + o.failed : 0), 0),
            invocations: deliverer.invocations - marks.invocations,
            appSqs: appSends.requests.length - marks.app,
            deliverSqs: sqsSends.requests.slice(marks.sends).filter((r) => r.action.startsWith("SendMessage")).length,
            mappingSqs: deliverer.mappingRequests - marks.mapping,
            handlerMs: deliverer.handlerMs - marks.ms,
            readUnitsByTable,
            writeUnitsByTable,
          });
        }
      } finally {
        await deliverer.stop();
      }
      // The median round by handler time; the counts are the same in every round.
      const measured = rounds.sort((a, b) => a.handlerMs - b.handlerMs)[Math.floor(rounds.length / 2)];
      const sumUnits = (byTable: Record<string, number>) => Object.entries(byTable).reduce((n, [t, v]) => n + v * (growing.has(t) ? room.scale : 1), 0);
      const perNotification: BilledCounts = {
        lambdaInvocations: measured.invocations,
        lambdaGbSeconds: gbSeconds(measured.handlerMs * room.scale, deliverMemoryMb),
        dynamodbReadUnits: sumUnits(measured.readUnitsByTable),
        dynamodbWriteUnits: sumUnits(measured.writeUnitsByTable),
        sqsRequests: measured.appSqs + measured.deliverSqs + measured.mappingSqs,
        apiGatewayMessages: measured.posts * room.scale,
        connectionMinutes: 0,
      };

      // The seed's design on the same room: one Scan of the whole table per message (priced at SEED_TABLE connections), one invocation, the same posts.
      if (seedReadUnitsPerConnection === 0) {
        const db = dynamoClient({ endpoint: hub.dynamodbEndpoint, region: hub.region, credentials: hub.credentials });
        let units = 0;
        let startKey: Record<string, never> | undefined;
        do {
          const page = await db.send(new ScanCommand({ TableName: hub.connectionsTableName, ExclusiveStartKey: startKey, ReturnConsumedCapacity: "TOTAL" }));
          units += page.ConsumedCapacity?.CapacityUnits ?? 0;
          startKey = page.LastEvaluatedKey as typeof startKey;
        } while (startKey);
        seedReadUnitsPerConnection = units / room.connections;
      }
      const seedCounts: BilledCounts = {
        ...ZERO_COUNTS,
        lambdaInvocations: 1,
        lambdaGbSeconds: perNotification.lambdaGbSeconds,
        dynamodbReadUnits: Math.max(SEED_TABLE, room.size) * seedReadUnitsPerConnection,
        sqsRequests: 3,
        apiGatewayMessages: room.size,
      };
      const figures: RoomCost = {
        size: room.size,
        measuredConnections: room.connections,
        chunk: room.chunk,
        scale: room.scale,
        perNotification,
        measured,
        perMillionDeliveries: perMillionDeliveries(perNotification, room.size, PRICES),
        seed: { perNotification: seedCounts, perMillionDeliveries: perMillionDeliveries(seedCounts, room.size, PRICES) },
        managedPerMillionDeliveries: managedPerMillionDeliveries(room.size, PRICES),
      };
      rooms.push(figures);
      note(
        `room of ${room.size}: per notification ${measured.invocations} invocations, ${measured.posts} posts (×${room.scale}), ${perNotification.dynamodbReadUnits} RRU, ${perNotification.dynamodbWriteUnits} WRU, ${perNotification.sqsRequests} SQS, ${Math.round(measured.handlerMs)} ms; ` +
          `$${figures.perMillionDeliveries.total.toFixed(3)} per million deliveries (seed $${figures.seed.perMillionDeliveries.total.toFixed(3)})`,
      );
      for (const c of clients) c.ws.close();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }

    // One connection-month: minutes, pings every 8 minutes (API Gateway answers them, no Lambda), a reconnect every 2 hours.
    // A reconnect's units, from the handlers' requests (handlers/manifest.ts grants; not measured here):
    // authorizer GetItem (0.5 RRU), $connect BatchWriteItem of the row and one membership (2 WRU) and GetItem (0.5 RRU),
    // $disconnect DeleteItem of the row and its membership (2 WRU); 3 invocations at 100 ms each (an assumption).
    const ms = 100;
    const perReconnect: BilledCounts = {
      ...ZERO_COUNTS,
      lambdaInvocations: 3,
      lambdaGbSeconds: gbSeconds(ms, handlerEntry("authorizer").memoryMb) + gbSeconds(ms, handlerEntry("connect").memoryMb) + gbSeconds(ms, handlerEntry("disconnect").memoryMb),
      dynamodbReadUnits: 1,
      dynamodbWriteUnits: 4,
    };
    const counts = connectionMonth({ keepAliveMinutes: 8, maxConnectionMinutes: 120, perReconnect });
    const figures: CostFigures = {
      date: new Date().toISOString(),
      quick,
      prices: PRICES,
      priceRows: ROWS,
      runSeconds: Math.round((Date.now() - started) / 1000),
      deliverMemoryMb,
      postsPerSecond: POSTS_PER_SECOND,
      seedTable: SEED_TABLE,
      seedReadUnitsPerConnection,
      rooms,
      connectionMonth: {
        counts,
        dollars: dollarsFor(counts, PRICES),
        perReconnect,
        perReconnectSource: "from the handlers' requests, not measured: 1 RRU and 4 WRU, 3 invocations of 100 ms (assumed)",
      },
    };
    note(`connection-month: $${figures.connectionMonth.dollars.total.toFixed(4)}; the scenario took ${figures.runSeconds} s`);
    if (values.json) process.stdout.write(JSON.stringify(figures) + "\n");
    else console.log(JSON.stringify(figures, null, 2));
  } finally {
    await capacity.stop();
    await sqsSends.stop();
    await appSends.stop();
    await hubProcess.stop();
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
