/** Fan-out and the SQS consumer against dynalite, fauxqs and a fault-injecting @connections API. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { sqsClient } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { DEFAULT_RETRY, type FanoutDeps } from "../core/fanout";
import { chunkEnqueuer } from "../core/chunks";
import { getConnection } from "../core/tables";
import { createDeliverHandler } from "../handlers/deliver";
import { createNotifier } from "../server";
import { sqsEvent, sqsRecord } from "./support/events";
import { recordingObserver } from "./support/hubEvents";
import { capturingLogger } from "./support/logs";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { seedConnections } from "./support/seed";
import { startDynamo, startSqs, type Dynamo, type Sqs } from "./support/services";

let dynamo: Dynamo;
let sqs: Sqs;
let sqsSdk: SQSClient;
let management: StandaloneConnectionsEmulator;
const logs = capturingLogger();
const outcomes = recordingObserver();

function fanoutDeps(overrides: Partial<FanoutDeps> = {}): FanoutDeps {
  return {
    db: dynamo.client,
    management: createConnectionsApi(management.endpoint),
    connectionsTable: dynamo.connectionsTable,
    log: logs.log,
    observe: outcomes.observe,
    retry: { ...DEFAULT_RETRY, baseDelayMs: 1, maxDelayMs: 5 },
    ...overrides,
  };
}


/** What the queue holds; `waitSeconds`: the first receive waits that long (for a delayed message). */
async function receiveAll(queueUrl: string, waitSeconds = 0): Promise<string[]> {
  const bodies: string[] = [];
  for (let first = true; ; first = false) {
    const result = await sqsSdk.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: first ? waitSeconds : 0 }));
    if (!result.Messages?.length) return bodies;
    bodies.push(...result.Messages.map((m) => m.Body ?? ""));
  }
}

beforeAll(async () => {
  [dynamo, sqs, management] = await Promise.all([startDynamo(), startSqs(), startConnectionsEmulator()]);
  sqsSdk = sqsClient({ endpoint: sqs.endpoint, region: "us-east-1" });
  // 10,000 connections: one room of 1,000 among 90 rooms of 100.
  const rows = [];
  for (let i = 0; i < 10_000; i++) {
    const room = i < 1_000 ? "big" : `room-${i % 90}`;
    rows.push({ connectionId: `c${i}`, roomId: room, userId: `u${i % 300}` });
  }
  await seedConnections(dynamo.client, dynamo.connectionsTable, rows);
}, 120_000);

afterAll(async () => {
  await Promise.all([management?.stop(), sqs?.stop(), dynamo?.stop()]);
});

describe("deliver (SQS consumer)", () => {
  it("delivers one message to exactly the 1,000 connections of its room in a table of 10,000", async () => {
    management.received.clear();
    const deliver = createDeliverHandler(fanoutDeps());
    const body = JSON.stringify({ room_id: "big", user_id: "app", data: { type: "backup.done", data: { job: 1 } } });
    const response = await deliver(sqsEvent([sqsRecord(body, "msg-big")]));
    expect(response.batchItemFailures).toEqual([]);
    expect(management.received.size).toBe(1_000);
    for (let i = 0; i < 1_000; i++) {
      const frames = management.received.get(`c${i}`);
      expect(frames, `c${i}`).toHaveLength(1);
      expect(JSON.parse(frames![0])).toEqual({ id: "msg-big", room_id: "big", user_id: "app", origin: "app", data: { type: "backup.done", data: { job: 1 } } });
    }
    const summary = outcomes.ofType("record.delivered").find((o) => o.notificationId === "msg-big")!;
    expect(summary.itemsRead).toBe(1_000); // the room index, not the table
    console.log(`SUMMARY deliver: room of 1,000 in a table of 10,000 -> delivered ${summary.delivered}, items read ${summary.itemsRead}, lost 0`);
  });

  it("removes stale connections on 410 and still delivers to the rest", async () => {
    management.received.clear();
    for (const id of ["c1001", "c1091"]) management.fault(id, { status: 410 });
    const room = "room-11"; // c1001, c1091, ... are in room-11 (i % 90 === 11)
    const deliver = createDeliverHandler(fanoutDeps());
    const response = await deliver(sqsEvent([sqsRecord(JSON.stringify({ room_id: room, data: "hello" }))]));
    expect(response.batchItemFailures).toEqual([]);
    expect(management.received.size).toBe(98);
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "c1001")).toBeUndefined();
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "c1091")).toBeUndefined();
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "c1181")).toBeDefined();
  });

  it("delivers the good records of a batch and reports exactly the bad ones", async () => {
    management.received.clear();
    await seedConnections(dynamo.client, dynamo.connectionsTable, [{ connectionId: "numeric-room", roomId: "22", userId: "u" }]);
    const deliver = createDeliverHandler(fanoutDeps());
    const good = [
      sqsRecord(JSON.stringify({ room_id: "room-20", user_id: "u", data: { type: "a" } }), "good-1"),
      sqsRecord(JSON.stringify({ room_id: "room-21", data: null }), "good-2"),
      sqsRecord(JSON.stringify({ room_id: 22, data: [1, 2, 3] }), "good-3"),
    ];
    const bad = [
      sqsRecord("not json", "bad-json"),
      sqsRecord(JSON.stringify({ user_id: "u", data: 1 }), "bad-no-room"),
      sqsRecord(JSON.stringify({ room_id: { nested: true }, data: 1 }), "bad-room-type"),
      sqsRecord(JSON.stringify({ room_id: "room-20", user_id: ["x"], data: 1 }), "bad-user-type"),
      sqsRecord(JSON.stringify({ room_id: "room-20" }), "bad-no-data"),
      sqsRecord(JSON.stringify({ room_id: "room-20", data: "x".repeat(140 * 1024) }), "bad-oversize"),
      sqsRecord(JSON.stringify([1, 2]), "bad-array"),
    ];
    const response = await deliver(sqsEvent([good[0], bad[0], bad[1], good[1], bad[2], bad[3], bad[4], good[2], bad[5], bad[6]]));
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(bad.map((r) => r.messageId).sort());
    const delivered = new Set([...management.received.values()].flat().map((frame) => JSON.parse(frame).id));
    expect([...delivered].sort()).toEqual(["good-1", "good-2", "good-3"]);
    const rejected = outcomes.ofType("record.rejected");
    for (const record of bad) expect(rejected.find((r) => r.messageId === record.messageId)?.reason, record.messageId).toBeTruthy();
    expect(rejected.filter((r) => good.some((g) => g.messageId === r.messageId))).toEqual([]);
    console.log(`SUMMARY deliver: batch of ${good.length + bad.length} -> ${good.length} delivered, ${bad.length} reported with reasons`);
  });

  it("retries 429 and 500 with backoff and delivers once they pass", async () => {
    management.received.clear();
    management.fault("c1002", { status: 429, times: 2 });
    management.fault("c1092", { status: 500, times: 1 });
    const deliver = createDeliverHandler(fanoutDeps());
    const response = await deliver(sqsEvent([sqsRecord(JSON.stringify({ room_id: "room-12", data: "retry" }))]));
    expect(response.batchItemFailures).toEqual([]);
    expect(management.received.get("c1002")).toHaveLength(1);
    expect(management.received.get("c1092")).toHaveLength(1);
  });

  it("reports the record failed when posts keep failing and there is no queue to retry through", async () => {
    management.received.clear();
    management.fault("c1003", { status: 500, times: 10 });
    const deliver = createDeliverHandler(fanoutDeps());
    const record = sqsRecord(JSON.stringify({ room_id: "room-13", data: "x" }));
    const response = await deliver(sqsEvent([record]));
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: record.messageId }]);
    management.fault("c1003", { status: 500, times: 0 });
  });

  it("puts only the failed connections back on the queue, then delivers them from there", async () => {
    management.received.clear();
    const queue = sqs.createQueue("retry-" + Date.now());
    management.fault("c1004", { status: 429, times: 4 });
    const deps = fanoutDeps({ enqueueChunks: chunkEnqueuer(sqsSdk, queue.queueUrl) });
    const deliver = createDeliverHandler(deps);
    const response = await deliver(sqsEvent([sqsRecord(JSON.stringify({ room_id: "room-14", data: "x" }), "orig")]));
    expect(response.batchItemFailures).toEqual([]);
    // Throttled to the end: the budget was busy, not the connection; the chunk waits a moment on the queue.
    expect(await receiveAll(queue.queueUrl)).toEqual([]);
    const requeued = await receiveAll(queue.queueUrl, 5);
    expect(requeued).toHaveLength(1);
    expect(JSON.parse(requeued[0])).toMatchObject({ kind: "chunk", id: "orig", connection_ids: ["c1004"] });
    const again = await deliver(sqsEvent([sqsRecord(requeued[0])]));
    expect(again.batchItemFailures).toEqual([]);
    expect(management.received.get("c1004")?.map((f) => JSON.parse(f).id)).toEqual(["orig"]);
  });

  it("splits a big room into chunks on the queue that other invocations deliver", async () => {
    management.received.clear();
    const queue = sqs.createQueue("chunks-" + Date.now());
    const deliver = createDeliverHandler(fanoutDeps({ chunkSize: 300, enqueueChunks: chunkEnqueuer(sqsSdk, queue.queueUrl) }));
    const first = await deliver(sqsEvent([sqsRecord(JSON.stringify({ room_id: "big", data: "chunked" }), "chunked")]));
    expect(first.batchItemFailures).toEqual([]);
    expect(management.received.size).toBe(300);
    const chunks = await receiveAll(queue.queueUrl);
    expect(chunks).toHaveLength(3); // 700 more: 300 + 300 + 100
    const rest = await deliver(sqsEvent(chunks.map((body) => sqsRecord(body))));
    expect(rest.batchItemFailures).toEqual([]);
    expect(management.received.size).toBe(1_000);
    for (const frames of management.received.values()) expect(frames.map((f) => JSON.parse(f).id)).toEqual(["chunked"]);
  });
});

describe("publish through the SDK and fauxqs", () => {
  it("publishes the seed's body; the deliver handler takes it from the real queue", async () => {
    management.received.clear();
    const queue = sqs.createQueue("publish-" + Date.now());
    const notifier = createNotifier({
      queueUrl: queue.queueUrl,
      authTableName: dynamo.authTable,
      connectionsTableName: dynamo.connectionsTable,
      managementEndpoint: management.endpoint,
      jwtSecret: "s",
      region: "us-east-1",
      endpoints: { sqs: sqs.endpoint, dynamodb: dynamo.endpoint },
    });
    const { messageId } = await notifier.publish({ roomId: "room-30", userId: "backend", data: { type: "info", data: "hi" } });
    const { messageIds } = await notifier.publishBatch(
      Array.from({ length: 12 }, (_, i) => ({ roomId: "room-31", data: { type: "n", data: i } })),
    );
    expect(messageIds).toHaveLength(12);
    const received = await sqsSdk.send(new ReceiveMessageCommand({ QueueUrl: queue.queueUrl, MaxNumberOfMessages: 10 }));
    const message = received.Messages?.find((m) => m.MessageId === messageId);
    expect(JSON.parse(message!.Body!)).toEqual({ room_id: "room-30", user_id: "backend", data: { type: "info", data: "hi" } });
    const deliver = createDeliverHandler(fanoutDeps());
    const response = await deliver(sqsEvent([sqsRecord(message!.Body!, message!.MessageId!)]));
    expect(response.batchItemFailures).toEqual([]);
    const frame = JSON.parse(management.received.get("c1020")![0]);
    expect(frame).toEqual({ id: messageId, room_id: "room-30", user_id: "backend", origin: "app", data: { type: "info", data: "hi" } });
  });

  it("rejects bad notifications before sending anything", async () => {
    const notifier = createNotifier({
      queueUrl: "http://127.0.0.1:9/none",
      authTableName: "a",
      connectionsTableName: "c",
      managementEndpoint: "http://127.0.0.1:9/x",
      jwtSecret: "s",
      endpoints: { sqs: "http://127.0.0.1:9" },
    });
    await expect(notifier.publish({ roomId: "", data: 1 })).rejects.toThrow(/roomId must not be empty/);
    await expect(notifier.publish({ roomId: { a: 1 } as unknown as string, data: 1 })).rejects.toThrow(/roomId must be a string or a number/);
    await expect(notifier.publish({ roomId: "r", data: undefined })).rejects.toThrow(/data is required/);
    await expect(notifier.publish({ roomId: "r", data: "x".repeat(130 * 1024) })).rejects.toThrow(/limit is 131072/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(notifier.publish({ roomId: "r", data: cyclic })).rejects.toThrow(/not JSON-serializable/);
    await expect(notifier.publishBatch([{ roomId: "r", data: 1 }, { roomId: "", data: 1 }])).rejects.toThrow(/publishBatch\[1\]/);
  });
});

describe("deliver: a presence diff flush the hub queued for itself", () => {
  it("runs flushDiff for its room and counts as done (not in batchItemFailures); a deliver without presence reports it; a publish that merely mentions the kind is a publish", async () => {
    const flushed: string[] = [];
    const deliver = createDeliverHandler({ ...fanoutDeps(), flushDiff: async (roomId) => (flushed.push(roomId), true) });
    const flush = JSON.stringify({ kind: "presence.flush", room_id: "big-room" });
    expect(await deliver(sqsEvent([sqsRecord(flush, "flush-1")]))).toEqual({ batchItemFailures: [] });
    expect(flushed).toEqual(["big-room"]);
    expect(await createDeliverHandler(fanoutDeps())(sqsEvent([sqsRecord(flush, "flush-2")]))).toEqual({ batchItemFailures: [{ itemIdentifier: "flush-2" }] });
    // A notification whose data says "presence.flush" is delivered as any other.
    expect(await deliver(sqsEvent([sqsRecord(JSON.stringify({ room_id: "quiet-room", data: { kind: "presence.flush" } }), "pub-1")]))).toEqual({ batchItemFailures: [] });
    expect(flushed).toEqual(["big-room"]);
  });
});
