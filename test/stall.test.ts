/**
 * Delivery never stalls silently. The root cause of the quick start hub that "stopped
 * delivering" under a loaded `npm test`: a deliver posting to a connection between its
 * $connect's PutItem and the gateway opening it gets 410 (as on AWS), and deleted the row of
 * the connection about to open; the client then sat connected and unreachable, nothing logged.
 * Around it, every place that could wait forever: the poller's SQS calls, the SDK clients,
 * an invocation that never settles (in-process or in a worker thread).
 */
import * as net from "net";
import * as path from "path";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient, sqsClient } from "../core/aws";
import { getConnection } from "../core/tables";
import { startLocalHub, type LocalHub } from "../local";
import { startDeliverPool } from "../local/deliverPool";
import { startSqsPoller } from "../local/sqsPoller";
import { recordingObserver } from "./support/hubEvents";
import { capturingLogger } from "./support/logs";
import { startSqs, type Sqs } from "./support/services";
import { localEnvironment } from "../local/handlers";

/** Polls `check` until it holds; generous bounds, no timing asserted. */
async function until(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A TCP server that accepts and never answers: a peer that stopped responding. */
async function blackHole(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A proxy that can swallow requests (suspend) instead of forwarding them: SQS under a hang. */
async function suspendableProxy(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  let suspended = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => sockets.delete(socket));
    }
    client.on("data", (chunk: Buffer) => {
      if (!suspended) upstream.write(chunk);
    });
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    suspend: (on: boolean) => void (suspended = on),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("a connection still opening", () => {
  let hub: LocalHub;
  const events = recordingObserver();
  beforeAll(async () => {
    hub = await startLocalHub({ port: 0, bcryptCost: 4, logger: capturingLogger().log });
    hub.onEvent(events.observe);
  }, 60_000);
  afterAll(() => hub?.stop());

  it("keeps its row when a deliver's post answers 410 before the gateway has opened it", async () => {
    const db = dynamoClient({ endpoint: hub.dynamodbEndpoint });
    // What $connect has just written, while the gateway has not opened the connection yet.
    await db.send(
      new PutItemCommand({
        TableName: hub.connectionsTableName,
        Item: {
          connection_id: { S: "opening-conn" },
          room_id: { S: "handshake" },
          user_id: { S: "reader" },
          connected_at: { N: String(Date.now()) },
          expires_at: { N: String(Math.floor(Date.now() / 1000) + 600) },
        },
      }),
    );
    const { messageId } = await hub.notifier.publish({ roomId: "handshake", data: { type: "n", data: 1 } });
    const delivered = () => events.ofType("record.delivered").find((o) => o.notificationId === messageId);
    await until(() => delivered() !== undefined, "the deliver of the published message");
    expect(delivered()!.gone).toBe(1); // the gateway answered 410, as API Gateway does before $connect completes
    expect(await getConnection(db, hub.connectionsTableName, "opening-conn")).toBeDefined();
    expect(events.ofType("post.gone")).toEqual([{ type: "post.gone", connectionId: "opening-conn", row: "kept" }]);
    console.log("SUMMARY stall: a 410 during a client's handshake keeps its row (it used to be deleted, leaving the client connected and unreachable)");
  });
});

describe("the queue poller", () => {
  let sqs: Sqs;
  let client: SQSClient;
  const stops: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    sqs = await startSqs();
    client = sqsClient({ endpoint: sqs.endpoint, region: "us-east-1" });
  });
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });
  afterAll(() => sqs?.stop());

  function poller(name: string, handler: (event: SQSEvent) => Promise<SQSBatchResponse>, extra: { sqs?: SQSClient; requestTimeoutMs?: number; invocationTimeoutMs?: number } = {}) {
    const queue = sqs.createQueue(name, { VisibilityTimeout: "1" });
    const capture = capturingLogger();
    const running = startSqsPoller({
      sqs: extra.sqs ?? client,
      queueUrl: queue.queueUrl,
      queueArn: queue.queueArn,
      region: "us-east-1",
      handler,
      batchSize: 1,
      concurrency: 1,
      waitTimeSeconds: 1,
      invocationTimeoutMs: extra.invocationTimeoutMs,
      requestTimeoutMs: extra.requestTimeoutMs,
      log: capture.log,
    });
    stops.push(() => running.stop());
    const send = (body: string) => client.send(new SendMessageCommand({ QueueUrl: queue.queueUrl, MessageBody: body }));
    return { capture, send };
  }

  it("cuts an invocation that never settles, like Lambda's timeout; its record comes back and the poller goes on", async () => {
    const handled: string[] = [];
    let calls = 0;
    const { capture, send } = poller("stuck-invocation", (event) => {
      if (calls++ === 0) return new Promise<never>(() => undefined); // awaits something that never answers
      handled.push(...event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`));
      return Promise.resolve({ batchItemFailures: [] });
    }, { invocationTimeoutMs: 500 });
    await send("first");
    await until(() => handled.includes("first#2"), "the cut batch's record, received again");
    await send("second");
    await until(() => handled.includes("second#1"), "the next message");
    expect(capture.text()).toContain("deliver invocation timed out; the batch will be retried");
  }, 60_000);

  it("cuts SQS calls that get no answer, logs each, and polls on when SQS answers again", async () => {
    const proxy = await suspendableProxy(sqs.endpoint);
    stops.push(proxy.stop);
    const handled: string[] = [];
    proxy.suspend(true);
    const { capture, send } = poller(
      "suspended-sqs",
      async (event) => {
        handled.push(...event.Records.map((r) => r.body));
        return { batchItemFailures: [] };
      },
      { sqs: sqsClient({ endpoint: proxy.endpoint, region: "us-east-1" }), requestTimeoutMs: 300 },
    );
    await until(() => capture.lines.filter((l) => l.includes("queue poll failed; retrying")).length >= 2, "two logged poll failures");
    proxy.suspend(false);
    await send("after the hang");
    await until(() => handled.includes("after the hang"), "delivery after SQS answers again");
  }, 60_000);
});

describe("SDK clients", () => {
  it("cut a DynamoDB or SQS request that gets no answer instead of waiting forever", async () => {
    const hole = await blackHole();
    try {
      const db = dynamoClient({ endpoint: hole.endpoint, region: "us-east-1", timeoutMs: 200 });
      await expect(db.send(new PutItemCommand({ TableName: "t", Item: { connection_id: { S: "x" } } }))).rejects.toMatchObject({ name: "TimeoutError" });
      const queue = sqsClient({ endpoint: hole.endpoint, region: "us-east-1", timeoutMs: 200 });
      await expect(queue.send(new SendMessageCommand({ QueueUrl: `${hole.endpoint}/000000000000/q`, MessageBody: "x" }))).rejects.toMatchObject({ name: "TimeoutError" });
      db.destroy();
      queue.destroy();
    } finally {
      await hole.stop();
    }
  }, 60_000);
});

describe("the deliver worker pool", () => {
  it("replaces a worker whose invocation never settles, and the next invocation runs", async () => {
    const capture = capturingLogger();
    const pool = startDeliverPool(
      1,
      {
        env: localEnvironment({
          dynamodbEndpoint: "http://127.0.0.1:9",
          sqsEndpoint: "http://127.0.0.1:9",
          managementEndpoint: "http://127.0.0.1:9/local",
          queueUrl: "http://127.0.0.1:9/000000000000/q",
          connectionsTable: "connections",
          authTable: "auth",
          jwtSecret: "unused",
          allowClientMessages: true,
        }),
        deliverModule: { path: path.join(__dirname, "support/hangingDeliver.ts"), exportName: "createHangingDeliver" },
      },
      capture.log,
      { timeoutMs: 500 },
    );
    const event = (body: string) => ({ Records: [{ messageId: body, body }] }) as unknown as SQSEvent;
    try {
      await expect(pool.invoke(event("ok"))).resolves.toEqual({ batchItemFailures: [] });
      await expect(pool.invoke(event("hang"))).rejects.toThrow(/took longer than/);
      await expect(pool.invoke(event("ok"))).resolves.toEqual({ batchItemFailures: [] });
      expect(capture.text()).toContain("deliver invocation timed out; its worker is replaced");
    } finally {
      await pool.stop();
    }
  }, 90_000);
});
