/**
 * `delivery.postsPerSecond` on the local hub, counted by the emulated account (requests, 429s)
 * and by the clients (frames, ids, seqs), not timed:
 * - the budget holds with several deliver workers and both queues busy: no 1 s span above
 *   1.1 × the budget (100 ms windows), no 429, every client gets the notification once;
 * - a 429 storm (an account budget far below what the hub was told it may spend) loses
 *   nothing and dead-letters nothing: throttled posts are retried, then requeued with the same
 *   frame (same id, same seq);
 * - a client's message to a room the budget cannot serve before the route's deadline is
 *   requeued, not lost: sendMessage answers in time, deliver posts the rest with the same
 *   id and seq, every member gets it once, nothing dead-lettered.
 */
import { ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterEach, describe, expect, it } from "vitest";
import { sqsClient } from "../core/aws";
import { mapWithConcurrency } from "../core/fanout";
import type { RecordDelivered } from "../core/hubEvents";
import { startLocalHub, type LocalHub, type LocalHubOptions } from "../local";
import { until } from "./support/wait";
import { closeAll, openClient, type WsClient } from "./support/wsClient";

let hub: LocalHub | undefined;
let clients: WsClient[] = [];
afterEach(async () => {
  await closeAll(clients.map((c) => c.ws));
  clients = [];
  await hub?.stop();
  hub = undefined;
});

async function roomOf(count: number, roomId: string): Promise<WsClient[]> {
  const token = await hub!.notifier.issueToken({ userId: `${roomId}-user`, roomId });
  const opened = await mapWithConcurrency(Array.from({ length: count }, (_, i) => i), 16, () => openClient(`${hub!.websocketUrl}?token=${token}`, { perMessageDeflate: false }));
  clients.push(...opened);
  return opened;
}

async function publish(roomId: string, data: unknown): Promise<string> {
  const sent = await sqsClient({ endpoint: hub!.sqsEndpoint }).send(new SendMessageCommand({ QueueUrl: hub!.queueUrl, MessageBody: JSON.stringify({ room_id: roomId, user_id: "backend", data }) }));
  return sent.MessageId!;
}

async function deadLetters(): Promise<number> {
  const dead = await sqsClient({ endpoint: hub!.sqsEndpoint }).send(new ReceiveMessageCommand({ QueueUrl: hub!.deadLetterQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
  return dead.Messages?.length ?? 0;
}

const framesOf = (room: WsClient[], id: string) => room.map((c) => c.frames.filter((f) => f.id === id));

const base: LocalHubOptions = { port: 0, bcryptCost: 4, largeRoomChunkSize: 100, queue: { waitTimeSeconds: 1, visibilityTimeoutSeconds: 30, maxReceiveCount: 2 } };

describe("the @connections budget", () => {
  it("holds with three deliver workers per queue: no second above 1.1 × postsPerSecond, no 429, nothing lost", async () => {
    hub = await startLocalHub({
      ...base,
      deliverWorkers: 3,
      delivery: { postsPerSecond: 200 },
      limits: { account: { requestsPerSecond: 250, newConnectionsPerSecond: 10_000 } },
    });
    const big = await roomOf(400, "big");
    const small = await roomOf(20, "small");
    const before = hub.accountUsage().connectionsApi.requests;
    // Two big rooms' worth of chunks on the bulk queue's three workers, small messages on the other three.
    const ids = [await publish("big", "one"), await publish("big", "two"), await publish("small", "three")];
    const expected = 2 * big.length + small.length;
    await until(() => framesOf(big, ids[0]).every((f) => f.length > 0) && framesOf(big, ids[1]).every((f) => f.length > 0) && framesOf(small, ids[2]).every((f) => f.length > 0), 60_000);
    const usage = hub.accountUsage().connectionsApi;
    expect(usage.requests - before).toBeGreaterThanOrEqual(expected);
    expect(usage.throttled).toBe(0);
    // 100 ms windows of 20 tokens: any 1 s span holds at most 11 of them.
    expect(usage.peakPerSecond).toBeLessThanOrEqual(220);
    expect(usage.peakPerSecond).toBeGreaterThan(100); // it was spent, not idle
    for (const frames of [...framesOf(big, ids[0]), ...framesOf(big, ids[1]), ...framesOf(small, ids[2])]) expect(frames).toHaveLength(1);
    expect(await deadLetters()).toBe(0);
  }, 120_000);

  it("a 429 storm loses nothing and dead-letters nothing: throttled posts are retried, then requeued with the same id and seq", async () => {
    hub = await startLocalHub({
      ...base,
      delivery: { postsPerSecond: 5_000 },
      // The account has far less than the hub was told it may spend (another API took the rest).
      limits: { account: { requestsPerSecond: 60, requestsBurst: 20, newConnectionsPerSecond: 10_000 } },
    });
    const room = await roomOf(250, "storm");
    const id = await publish("storm", { n: 1 });
    await until(() => framesOf(room, id).every((f) => f.length > 0), 90_000);
    const usage = hub.accountUsage().connectionsApi;
    expect(usage.throttled).toBeGreaterThan(100);
    const frames = framesOf(room, id).flat();
    expect(frames).toHaveLength(room.length); // each exactly once
    expect(new Set(frames.map((f) => (f as { seq?: number }).seq)).size).toBe(1);
    expect(await deadLetters()).toBe(0);
  }, 120_000);

  it("a client message the budget holds back past sendMessage's deadline is requeued with its id and seq: every member gets it once, none dead-lettered", async () => {
    hub = await startLocalHub({
      ...base,
      // The whole room is sendMessage's own (no chunks), so only its deadline stops it.
      largeRoomChunkSize: 1_000,
      delivery: { postsPerSecond: 40 },
      // API Gateway's 29 s, shortened: sendMessage stops taking tokens after half of it (core/budget.ts postDeadline).
      limits: { integrationTimeoutMs: 2_000, account: { newConnectionsPerSecond: 10_000 } },
    });
    const room = await roomOf(120, "chat");
    const requeued: RecordDelivered[] = [];
    hub.onEvent((event) => {
      if (event.type === "record.delivered" && event.chunk && event.roomId === "chat") requeued.push(event);
    });
    room[0].ws.send(JSON.stringify({ action: "sendMessage", room_id: "chat", data: { type: "chat.line", data: "hello" }, ref: "r1" }));
    const sent = await room[0].next((f) => f.data?.type === "hub.sent", 30_000);
    const { id, seq } = sent.data.data as { id: string; seq: number };
    await until(() => framesOf(room, id).every((f) => f.length > 0), 60_000);
    const frames = framesOf(room, id).flat();
    expect(frames).toHaveLength(room.length); // each member exactly once, the sender included
    expect(new Set(frames.map((f) => (f as { seq?: number }).seq))).toEqual(new Set([seq]));
    // About 40 posts fit before the deadline; the rest went through the queue, as one chunk or more.
    const throughQueue = requeued.filter((r) => r.notificationId === id).reduce((n, r) => n + r.delivered, 0);
    expect(throughQueue).toBeGreaterThan(0);
    expect(throughQueue).toBeLessThan(room.length);
    expect(hub.accountUsage().connectionsApi.throttled).toBe(0);
    expect(await deadLetters()).toBe(0);
  }, 120_000);
});
