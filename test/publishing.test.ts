/**
 * Publishing that is safe to retry and reaches many rooms at once (docs/protocol.md#publishing-from-an-app-backend),
 * on the local hub with its real deliver workers: idempotency keys (SDK and raw queue bodies, in
 * series, racing, redelivered; rooms and user channels; streams on and off) and `room_ids`
 * (1,000 rooms, each once; a redelivered multi-room message). Counts, not times: frames at the
 * clients, frames stored, records delivered, SQS requests sent.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { sqsClient } from "../core/aws";
import type { HubEvent, RecordOutcome } from "../core/hubEvents";
import { keyedMessageId, keyedPublishId, MAX_PUBLISH_ROOMS, roomMessageId } from "../core/messages";
import { deliverFromEnvironment } from "../handlers/deliver";
import { localEnvironment } from "../local/handlers";
import { createNotifier } from "../server";
import { startRecorder } from "./support/awsRecorder";
import { sqsEvent, sqsRecord } from "./support/events";
import { capturingLogger } from "./support/logs";
import { sharedTestHub, type SharedHub } from "./support/sharedHub";
import { until } from "./support/wait";
import { openClient, type Frame, type WsClient } from "./support/wsClient";

const queue = { waitTimeSeconds: 1 };
const on = sharedTestHub({ queue });
const off = sharedTestHub({ queue, history: { retentionHours: 0 } });

/** Every record outcome the hub's deliver workers report, from the start of the file. */
function outcomesOf(shared: SharedHub) {
  const seen: RecordOutcome[] = [];
  let stop: (() => void) | undefined;
  return {
    get all() {
      if (!stop) throw new Error("not listening");
      return seen;
    },
    listen() {
      stop ??= shared.hub.onEvent((event: HubEvent) => {
        if (event.type.startsWith("record.")) seen.push(event as RecordOutcome);
      });
    },
    delivered(id: string) {
      return seen.filter((o) => o.type === "record.delivered" && o.notificationId === id);
    },
  };
}
const onOutcomes = outcomesOf(on);
const offOutcomes = outcomesOf(off);
beforeAll(() => {
  onOutcomes.listen();
  offOutcomes.listen();
});

/** A connection in these rooms (a rooms token for them, then a subscribe each), keeping every frame. */
async function member(shared: SharedHub, userId: string, rooms: string[]): Promise<WsClient> {
  const token = await shared.hub.notifier.issueToken({ userId, rooms });
  const client = await openClient(`${shared.hub.websocketUrl}?token=${encodeURIComponent(token)}`);
  shared.clients.push(client);
  for (const room of rooms) {
    client.ws.send(JSON.stringify({ action: "subscribe", room_id: room }));
    await client.next((f) => f.data?.type === "hub.subscribed" && f.data?.data?.room_id === room);
  }
  return client;
}

/** A tab of a user (a seed token for `room`): in `room` and in its user channel. */
async function tab(shared: SharedHub, userId: string, room: string): Promise<WsClient> {
  const token = await shared.hub.notifier.issueToken({ userId, roomId: room });
  const client = await openClient(`${shared.hub.websocketUrl}?token=${encodeURIComponent(token)}`);
  shared.clients.push(client);
  return client;
}

const notifications = (client: WsClient, type: string) => client.frames.filter((f) => f.data?.type === type) as (Frame & { seq?: number })[];

/** Frames stored in a stream (tombstones included), counted by DynamoDB. */
async function storedCount(shared: SharedHub, streamId: string): Promise<number> {
  const result = await shared.db.send(
    new QueryCommand({ TableName: shared.hub.streamsTableName, KeyConditionExpression: "stream_id = :s", ExpressionAttributeValues: { ":s": { S: streamId } }, Select: "COUNT", ConsistentRead: true }),
  );
  return result.Count ?? 0;
}

/** The hub's queue as an app sending bodies itself. */
async function sendRaw(shared: SharedHub, body: unknown): Promise<string> {
  const sqs = sqsClient({ endpoint: shared.hub.sqsEndpoint, credentials: shared.hub.credentials, region: shared.hub.region });
  const result = await sqs.send(new SendMessageCommand({ QueueUrl: shared.hub.queueUrl, MessageBody: JSON.stringify(body) }));
  return result.MessageId!;
}

let queues = 0;

/**
 * A notifier on a queue of its own that nothing consumes, with every SQS request it makes
 * counted: "nothing queued" is zero requests, and what it did queue can be read back.
 */
async function countingNotifier(shared: SharedHub) {
  const sqs = sqsClient({ endpoint: shared.hub.sqsEndpoint, credentials: shared.hub.credentials, region: shared.hub.region });
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `publishing-unconsumed-${++queues}` }));
  const recorder = await startRecorder(shared.hub.sqsEndpoint, () => [{ action: "sqs", resource: "queue" }]);
  const notifier = createNotifier({ queueUrl: QueueUrl!, region: shared.hub.region, credentials: shared.hub.credentials, endpoints: { sqs: recorder.endpoint } });
  const bodies = async () => {
    const received: Record<string, unknown>[] = [];
    for (;;) {
      const page = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if (!page.Messages?.length) return received;
      received.push(...page.Messages.map((m) => JSON.parse(m.Body!) as Record<string, unknown>));
    }
  };
  return { notifier, requests: () => recorder.requests.length, bodies, stop: recorder.stop };
}

describe("idempotency keys, streams on", () => {
  it("3 publishes with one key, in series: one frame at the client, one in history, one messageId", async () => {
    const client = await tab(on, "ann", "k-series");
    const publish = () => on.hub.notifier.publish({ roomId: "k-series", data: { type: "order", data: 1 }, idempotencyKey: "order-1" });
    const ids = [(await publish()).messageId];
    await until(() => notifications(client, "order").length === 1);
    ids.push((await publish()).messageId, (await publish()).messageId);
    const id = keyedMessageId("k-series", "order-1");
    expect(ids).toEqual([id, id, id]);
    // Every one of the three queue messages was handled (two of them as duplicates).
    await until(() => onOutcomes.delivered(id).length === 3);
    expect(onOutcomes.delivered(id).filter((o) => o.type === "record.delivered" && o.heldBy !== undefined)).toHaveLength(2);
    expect(notifications(client, "order")).toEqual([expect.objectContaining({ id, seq: 1 })]);
    expect((await on.hub.notifier.history({ roomId: "k-series" })).map((f) => [f.id, f.seq])).toEqual([[id, 1]]);
    // A publish with another key (or none) is another notification.
    await on.hub.notifier.publish({ roomId: "k-series", data: { type: "order", data: 2 }, idempotencyKey: "order-2" });
    await until(() => notifications(client, "order").length === 2);
    expect(notifications(client, "order").map((f) => f.seq)).toEqual([1, 2]);
  });

  it("3 publishes with one key racing, one of them a raw SQS body: one frame at the client, one in history", async () => {
    const client = await tab(on, "bob", "k-race");
    const data = { type: "race", data: "once" };
    const [a, b] = await Promise.all([
      on.hub.notifier.publish({ roomId: "k-race", data, idempotencyKey: "race-key" }),
      on.hub.notifier.publish({ roomId: "k-race", data, idempotencyKey: "race-key" }),
      sendRaw(on, { room_id: "k-race", user_id: null, data, idempotency_key: "race-key" }),
    ]);
    const id = keyedMessageId("k-race", "race-key");
    expect([a.messageId, b.messageId]).toEqual([id, id]);
    await until(() => onOutcomes.delivered(id).length === 3);
    expect(notifications(client, "race")).toEqual([expect.objectContaining({ id, seq: 1 })]);
    expect(await storedCount(on, "k-race")).toBe(1);
    expect((await on.hub.notifier.history({ roomId: "k-race" })).map((f) => f.id)).toEqual([id]);
  });

  it("the same key to two rooms is two notifications; to a user channel, through publishToUser and publishBatch, one", async () => {
    const inA = await tab(on, "cat", "k-room-a");
    const inB = await tab(on, "cat", "k-room-b");
    await on.hub.notifier.publish({ roomId: "k-room-a", data: { type: "two" }, idempotencyKey: "shared" });
    await on.hub.notifier.publish({ roomId: "k-room-b", data: { type: "two" }, idempotencyKey: "shared" });
    await until(() => notifications(inA, "two").length === 1 && notifications(inB, "two").length === 1);
    expect(notifications(inA, "two")[0].id).toBe(keyedMessageId("k-room-a", "shared"));
    expect(notifications(inB, "two")[0].id).toBe(keyedMessageId("k-room-b", "shared"));
    expect(keyedMessageId("k-room-a", "shared")).not.toBe(keyedMessageId("k-room-b", "shared"));

    // Cat's two tabs are both in user:cat: each gets the user notification once.
    const first = await on.hub.notifier.publishToUser({ userId: "cat", data: { type: "dm" }, idempotencyKey: "dm-1" });
    const second = await on.hub.notifier.publishToUser({ userId: "cat", data: { type: "dm" }, idempotencyKey: "dm-1" });
    const batch = await on.hub.notifier.publishBatch([
      { toUserId: "cat", data: { type: "dm" }, idempotencyKey: "dm-1" },
      { roomId: "k-room-a", data: { type: "two" }, idempotencyKey: "shared" },
    ]);
    const id = keyedMessageId("user:cat", "dm-1");
    expect([first.messageId, second.messageId, batch.messageIds[0]]).toEqual([id, id, id]);
    expect(batch.messageIds[1]).toBe(keyedMessageId("k-room-a", "shared"));
    await until(() => onOutcomes.delivered(id).length === 3 && onOutcomes.delivered(batch.messageIds[1]).length === 2);
    for (const t of [inA, inB]) expect(notifications(t, "dm").map((f) => [f.id, f.room_id, f.seq])).toEqual([[id, "user:cat", 1]]);
    expect(notifications(inA, "two")).toHaveLength(1);
    expect(await storedCount(on, "user:cat")).toBe(1);
  });

  it("refuses bad keys, naming the rule, with nothing queued; a queue body with one is rejected", async () => {
    const counting = await countingNotifier(on);
    try {
      const bad: [unknown, RegExp][] = [
        ["", /idempotencyKey must not be empty \(1 to 128 visible ASCII characters \(0x21–0x7E\)\)/],
        ["k".repeat(129), /idempotencyKey is 129 characters; the limit is 128/],
        ["two words", /idempotencyKey holds U\+0020 at 3; it may hold only 1 to 128 visible ASCII/],
        ["clé", /idempotencyKey holds U\+00E9 at 2/],
        ["tab\t", /U\+0009/],
        ["🙂", /U\+1F642 at 0/],
        [42, /idempotencyKey must be a string of 1 to 128 visible ASCII characters/],
      ];
      for (const [key, message] of bad) {
        const input = { roomId: "k-bad", data: 1, idempotencyKey: key as string };
        await expect(counting.notifier.publish(input)).rejects.toThrow(message);
        await expect(counting.notifier.publishToUser({ userId: "u", data: 1, idempotencyKey: key as string })).rejects.toThrow(message);
        const batch = counting.notifier.publishBatch([{ roomId: "k-bad", data: 1 }, input]);
        await expect(batch).rejects.toThrow(message);
        await expect(batch).rejects.toThrow(/^publishBatch\[1\]: publish: idempotencyKey /);
        await expect(counting.notifier.publish({ roomIds: ["k-bad", "k-bad-2"], data: 1, idempotencyKey: key as string })).rejects.toThrow(message);
      }
      // The longest key and every visible ASCII character pass.
      expect(counting.requests()).toBe(0);
      await counting.notifier.publish({ roomId: "k-bad", data: 1, idempotencyKey: "~".repeat(128) });
      await counting.notifier.publish({ roomId: "k-bad", data: 1, idempotencyKey: Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i)).join("") });
      expect(counting.requests()).toBe(2);
    } finally {
      await counting.stop();
    }
    const messageId = await sendRaw(on, { room_id: "k-bad", data: 1, idempotency_key: "has space" });
    await until(() => onOutcomes.all.some((o) => o.messageId === messageId));
    expect(onOutcomes.all.find((o) => o.messageId === messageId)).toMatchObject({ type: "record.rejected", code: "invalid_idempotency_key", reason: expect.stringContaining("U+0020") });
  });
});

describe("room_ids: one publish, many rooms", () => {
  it(`${MAX_PUBLISH_ROOMS} rooms: accepted, each stored once with its own seq and id, each member sees it once per room`, async () => {
    const rooms = Array.from({ length: MAX_PUBLISH_ROOMS }, (_, i) => `many/${String(i).padStart(4, "0")}`);
    // A connection in five of the rooms, and a tab in each of five others.
    const multi = await member(on, "dora", rooms.slice(0, 5));
    const tabs = await Promise.all(rooms.slice(500, 505).map((room, i) => tab(on, `tab-${i}`, room)));
    const { messageId } = await on.hub.notifier.publish({ roomIds: rooms, userId: "ops", data: { type: "fleet", data: "deployed" } });
    await until(() => notifications(multi, "fleet").length === 5 && tabs.every((t) => notifications(t, "fleet").length === 1), 120_000);
    const ids = rooms.map((room) => roomMessageId(messageId, room));
    expect(new Set(ids).size).toBe(MAX_PUBLISH_ROOMS);
    expect(notifications(multi, "fleet").map((f) => [f.room_id, f.id, f.seq, f.user_id]).sort()).toEqual(rooms.slice(0, 5).map((room, i) => [room, ids[i], 1, "ops"]));
    tabs.forEach((t, i) => expect(notifications(t, "fleet")).toEqual([expect.objectContaining({ room_id: rooms[500 + i], id: ids[500 + i], seq: 1 })]));
    // One split record, then one delivered record per room.
    await until(() => ids.every((id) => onOutcomes.delivered(id).length === 1), 120_000);
    expect(onOutcomes.all.filter((o) => o.type === "record.split" && o.notificationId === messageId)).toEqual([expect.objectContaining({ rooms: MAX_PUBLISH_ROOMS })]);
    const counts = await Promise.all(rooms.map((room) => storedCount(on, room)));
    expect(counts.filter((n) => n === 1)).toHaveLength(MAX_PUBLISH_ROOMS);
  }, 180_000);

  it(`refuses ${MAX_PUBLISH_ROOMS + 1} rooms, a repeated room, a bad room, and roomIds beside roomId, with nothing queued`, async () => {
    const counting = await countingNotifier(on);
    try {
      const rooms = Array.from({ length: MAX_PUBLISH_ROOMS + 1 }, (_, i) => `r${i}`);
      await expect(counting.notifier.publish({ roomIds: rooms, data: 1 })).rejects.toThrow(new RangeError("publish: roomIds names 1001 rooms; the limit is 1000"));
      await expect(counting.notifier.publish({ roomIds: [], data: 1 })).rejects.toThrow("publish: roomIds must name at least 1 room (at most 1000)");
      await expect(counting.notifier.publish({ roomIds: ["a", "b", "a"], data: 1 })).rejects.toThrow('publish: roomIds[2] repeats roomIds[0] ("a"); each room may be named once');
      await expect(counting.notifier.publish({ roomIds: [42, "42"], data: 1 })).rejects.toThrow('roomIds[1] repeats roomIds[0] ("42")');
      await expect(counting.notifier.publish({ roomIds: ["a", "user:bob"], data: 1 })).rejects.toThrow(/roomIds\[1\] must not start with "user:".*toUserId/);
      await expect(counting.notifier.publish({ roomIds: ["a", "x".repeat(257)], data: 1 })).rejects.toThrow("roomIds[1] is longer than 256 characters");
      await expect(counting.notifier.publish({ roomIds: ["a", "b*"], data: 1 })).rejects.toThrow('roomIds[1] must not contain "*"');
      await expect(counting.notifier.publish({ roomIds: ["a"], roomId: "b", data: 1 } as never)).rejects.toThrow("publish: pass roomIds, roomId or toUserId, only one");
      await expect(counting.notifier.publish({ roomIds: ["a"] } as never)).rejects.toThrow("publish: data is required");
      await expect(counting.notifier.publish({ roomIds: ["a", "b"], data: "x".repeat(140_000) })).rejects.toThrow(/message_too_large|the limit is 131072/);
      await expect(counting.notifier.publishBatch([{ roomIds: ["a"], data: 1 } as never])).rejects.toThrow("publishBatch[0]: publish: roomIds is taken by publish only");
      expect(counting.requests()).toBe(0);
      // Rooms that do not fit one body go in as many as SQS's 256 KiB needs: 1,000 ids of 256 characters and 10 KB of data.
      const long = Array.from({ length: MAX_PUBLISH_ROOMS }, (_, i) => `${String(i).padStart(4, "0")}${"L".repeat(252)}`);
      const { messageId } = await counting.notifier.publish({ roomIds: long, data: { type: "long", data: "d".repeat(10_000) } });
      expect(counting.requests()).toBe(1); // one SendMessageBatch
      const bodies = await counting.bodies();
      expect(bodies).toHaveLength(2);
      for (const body of bodies) expect(Buffer.byteLength(JSON.stringify(body))).toBeLessThanOrEqual(256 * 1024);
      expect(bodies.map((b) => b.message_id)).toEqual([messageId, messageId]);
      expect(bodies.flatMap((b) => b.room_ids as string[]).sort()).toEqual(long);
    } finally {
      await counting.stop();
    }
    // A queue body breaking a rule is rejected whole: no room gets anything.
    const messageId = await sendRaw(on, { room_ids: ["ok-room", "ok-room"], data: 1 });
    await until(() => onOutcomes.all.some((o) => o.messageId === messageId));
    expect(onOutcomes.all.find((o) => o.messageId === messageId)).toMatchObject({ type: "record.rejected", code: "invalid_room_ids", reason: 'room_ids[1] repeats room_ids[0] ("ok-room"); each room may be named once' });
    expect(await storedCount(on, "ok-room")).toBe(0);
  }, 120_000);

  it("a multi-room message delivered twice, and a retry of it with its key: each room stores and shows it once", async () => {
    const rooms = ["redo/a", "redo/b", "redo/c"];
    const client = await member(on, "eve", rooms);
    // The deliver function as SQS invokes it, sending its rooms' bodies to the hub's queue.
    const deliver = deliverFromEnvironment({
      env: localEnvironment({
        dynamodbEndpoint: on.hub.dynamodbEndpoint,
        sqsEndpoint: on.hub.sqsEndpoint,
        managementEndpoint: on.hub.managementEndpoint,
        queueUrl: on.hub.queueUrl,
        connectionsTable: on.hub.connectionsTableName,
        authTable: on.hub.authTableName,
        jwtSecret: on.hub.jwtSecret,
        allowClientMessages: true,
        streams: { streamsTable: on.hub.streamsTableName, retentionHours: 24 },
      }),
      credentials: on.hub.credentials,
      log: capturingLogger().log,
    });
    const record = sqsRecord(JSON.stringify({ room_ids: rooms, user_id: "ops", data: { type: "redo" }, idempotency_key: "redo-1" }), "parent-1");
    expect(await deliver(sqsEvent([record]))).toEqual({ batchItemFailures: [] });
    // SQS delivers it again (at least once), and the app retries through the SDK too.
    expect(await deliver(sqsEvent([{ ...record, attributes: { ...record.attributes, ApproximateReceiveCount: "2" } }]))).toEqual({ batchItemFailures: [] });
    const retry = await on.hub.notifier.publish({ roomIds: rooms, userId: "ops", data: { type: "redo" }, idempotencyKey: "redo-1" });
    expect(retry.messageId).toBe(keyedPublishId("redo-1"));
    const ids = rooms.map((room) => keyedMessageId(room, "redo-1"));
    await until(() => ids.every((id) => onOutcomes.delivered(id).length === 3));
    for (const id of ids) expect(onOutcomes.delivered(id).filter((o) => o.type === "record.delivered" && o.heldBy === undefined)).toHaveLength(1);
    expect(notifications(client, "redo").map((f) => [f.room_id, f.id, f.seq]).sort()).toEqual(rooms.map((room, i) => [room, ids[i], 1]));
    expect(await Promise.all(rooms.map((room) => storedCount(on, room)))).toEqual([1, 1, 1]);
  });
});

describe("without streams (retention 0)", () => {
  it("one key, three publishes (series, racing, raw): one frame; two rooms, two; a redelivered multi-room message, once per room", async () => {
    const client = await member(off, "fay", ["n/a", "n/b"]);
    await off.hub.notifier.publish({ roomId: "n/a", data: { type: "k" }, idempotencyKey: "nk" });
    await until(() => notifications(client, "k").length === 1);
    await Promise.all([
      off.hub.notifier.publish({ roomId: "n/a", data: { type: "k" }, idempotencyKey: "nk" }),
      sendRaw(off, { room_id: "n/a", data: { type: "k" }, idempotency_key: "nk" }),
      off.hub.notifier.publish({ roomId: "n/b", data: { type: "k" }, idempotencyKey: "nk" }),
    ]);
    const idA = keyedMessageId("n/a", "nk");
    const idB = keyedMessageId("n/b", "nk");
    await until(() => offOutcomes.delivered(idA).length === 3 && offOutcomes.delivered(idB).length === 1);
    expect(notifications(client, "k").map((f) => [f.room_id, f.id, f.seq]).sort()).toEqual([
      ["n/a", idA, undefined],
      ["n/b", idB, undefined],
    ]);

    const { messageId } = await off.hub.notifier.publish({ roomIds: ["n/a", "n/b"], data: { type: "m" } });
    const ids = ["n/a", "n/b"].map((room) => roomMessageId(messageId, room));
    await until(() => ids.every((id) => offOutcomes.delivered(id).length === 1));
    // Its rooms' bodies sent again (a redelivered split): duplicates of another message, posted nowhere.
    for (const room of ["n/a", "n/b"]) await sendRaw(off, { room_ids: [room], message_id: messageId, user_id: null, data: { type: "m" } });
    await until(() => ids.every((id) => offOutcomes.delivered(id).length === 2));
    expect(ids.map((id) => offOutcomes.delivered(id).filter((o) => o.type === "record.delivered" && o.heldBy !== undefined).length)).toEqual([1, 1]);
    expect(notifications(client, "m").map((f) => [f.room_id, f.id]).sort()).toEqual([
      ["n/a", ids[0]],
      ["n/b", ids[1]],
    ]);
    expect(await storedCount(off, "n/a")).toBe(0);
  });
});
