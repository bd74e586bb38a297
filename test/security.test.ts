/**
 * The promises, each as a test against the local hub with its real parts: no one gets in
 * who should not, bad input hurts only its sender, and nothing is lost under faults.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { ReceiveMessageCommand, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { dynamoClient, sqsClient } from "../core/aws";
import { createLogger } from "../core/log";
import { getConnection, roomPages } from "../core/tables";
import { startLocalHub, type LocalHub } from "../local";
import { startTestHub, type TestHub } from "../local/testing";
import { badTokenCases } from "./support/badTokens";
import { recordingObserver } from "./support/hubEvents";
import { until } from "./support/wait";

type Frame = { id?: string; data?: { type?: string; data?: unknown }; message?: string };

interface Client {
  ws: WebSocket;
  frames: Frame[];
  closed: Promise<number>;
  ids(): string[];
}

function open(url: string, headers?: Record<string, string>): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const frames: Frame[] = [];
    const closed = new Promise<number>((done) => ws.on("close", (code) => done(code)));
    ws.on("message", (data) => frames.push(JSON.parse(data.toString()) as Frame));
    ws.on("open", () => resolve({ ws, frames, closed, ids: () => frames.map((f) => f.id ?? "") }));
    ws.on("unexpected-response", (_req, res) => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode })));
    ws.on("error", reject);
  });
}

async function connectAs(hub: LocalHub, userId: string, roomId: string): Promise<Client> {
  return open(`${hub.websocketUrl}?token=${await hub.notifier.issueToken({ userId, roomId })}`);
}

async function roomConnections(hub: LocalHub, roomId: string) {
  const rows = [];
  for await (const page of roomPages(dynamoClient({ endpoint: hub.dynamodbEndpoint }), hub.connectionsTableName, roomId)) rows.push(...page.connections);
  return rows;
}

function capture() {
  const lines: string[] = [];
  return { logger: createLogger({}, (line) => lines.push(line), "debug"), lines, text: () => lines.join("\n") };
}

describe("auth through the hub", () => {
  const logs = capture();
  const events = recordingObserver();
  let hub: LocalHub;
  beforeAll(async () => {
    hub = await startLocalHub({ port: 0, bcryptCost: 4, logger: logs.logger });
    hub.onEvent(events.observe);
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it("refuses every kind of bad token with 401/403, writes no row, logs no token", async () => {
    const db = dynamoClient({ endpoint: hub.dynamodbEndpoint });
    const cases = await badTokenCases({ notifier: hub.notifier, jwtSecret: hub.jwtSecret, passcode: hub.passcode, db, authTable: hub.authTableName, prefix: "e2e" });
    expect(cases.length).toBeGreaterThanOrEqual(20);
    let refused = 0;
    let refusedByHeader = 0;
    for (const { name, query, headers } of cases) {
      const url = query ? `${hub.websocketUrl}?${new URLSearchParams(query)}` : hub.websocketUrl;
      const status = await open(url, headers).then(
        (client) => (client.ws.close(), 101),
        (err: { status?: number }) => err.status ?? -1,
      );
      // 414: a URL over API Gateway's 4,096 characters is refused before any authorizer, and
      // 400 a protocol list ws would refuse.
      expect(url.length > 4096 ? [414] : headers?.["Sec-WebSocket-Protocol"] !== undefined ? [400] : [401, 403], `${name}: ${status}`).toContain(status);
      refused++;
      // The same token the header way (the browser client's default). One that is not a
      // valid protocol name (spaces, non-ASCII, empty) is a 400 before the authorizer runs.
      if (typeof query?.token !== "string") continue;
      const byHeader = await open(hub.websocketUrl, { "Sec-WebSocket-Protocol": `notification-hub, ${query.token}` }).then(
        (client) => (client.ws.close(), 101),
        (err: { status?: number }) => err.status ?? -1,
      );
      expect([400, 403], `${name} in Sec-WebSocket-Protocol: ${byHeader}`).toContain(byHeader);
      refusedByHeader++;
    }
    const rows = await db.send(new ScanCommand({ TableName: hub.connectionsTableName }));
    expect(rows.Count).toBe(0);
    // Neither the log nor the hub events (what the console shows) hold a token.
    const text = logs.text();
    const eventText = JSON.stringify(events.events);
    for (const { name, secrets } of cases) {
      for (const secret of secrets.filter((s) => s.length > 8)) {
        expect(text, name).not.toContain(secret);
        expect(eventText, name).not.toContain(secret);
      }
    }
    expect(events.ofType("connect.allowed")).toEqual([]);
    expect(events.ofType("connect.denied").length).toBeGreaterThan(0);
    console.log(`SUMMARY auth (local hub): ${cases.length} bad tokens tried, ${refused} refused with 400/401/403/414 (and ${refusedByHeader} again in Sec-WebSocket-Protocol, refused with 400/403), 0 rows written, 0 tokens in ${logs.lines.length} log lines`);
  });
});

describe("bad input from clients", () => {
  let hub: LocalHub;
  beforeAll(async () => {
    hub = await startLocalHub({ port: 0, bcryptCost: 4, limits: { throttle: { burstLimit: 20, rateLimit: 10 } } });
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it("answers the sender alone, and leaves the other clients' service intact", async () => {
    const [sender, bystander] = await Promise.all([connectAs(hub, "noisy", "shared"), connectAs(hub, "quiet", "shared")]);
    const results: string[] = [];
    sender.ws.send("{not json");
    sender.ws.send(JSON.stringify({ action: "deleteEverything" }));
    sender.ws.send(JSON.stringify({ action: "sendMessage" }));
    await until(() => sender.frames.filter((f) => f.data?.type === "hub.error").length === 3);
    const codes = sender.frames.filter((f) => f.data?.type === "hub.error").map((f) => (f.data?.data as { code: string }).code);
    expect(codes.sort()).toEqual(["invalid_json", "missing_data", "unknown_action"]);
    results.push("malformed JSON, unknown action, missing data → hub.error to the sender");

    const oversize = await connectAs(hub, "noisy", "shared");
    oversize.ws.send("z".repeat(64 * 1024));
    expect(await oversize.closed).toBe(1009);
    const binary = await connectAs(hub, "noisy", "shared");
    binary.ws.send(Buffer.from([0xde, 0xad]), { binary: true });
    expect(await binary.closed).toBe(1003);
    results.push("oversize frame → 1009, binary frame → 1003");

    // A flood: 200 messages at once against a stage limit of 20 burst, 10/s.
    for (let i = 0; i < 200; i++) sender.ws.send(JSON.stringify({ action: "sendMessage", data: { type: "flood", data: i } }));
    await until(() => sender.frames.filter((f) => f.message === "Too Many Requests").length >= 150);
    const throttled = sender.frames.filter((f) => f.message === "Too Many Requests").length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const floodSeen = bystander.frames.filter((f) => f.data?.type === "flood").length;
    expect(floodSeen).toBeLessThanOrEqual(40);
    results.push(`flood of 200 → ${throttled} throttled at the stage, ${floodSeen} broadcast`);

    // Everyone else is unaffected: no error frames, and notifications still arrive.
    const { messageId } = await hub.notifier.publish({ roomId: "shared", data: { type: "after", data: "still here" } });
    await until(() => bystander.ids().includes(messageId) && sender.ids().includes(messageId));
    expect(bystander.frames.filter((f) => f.data?.type === "hub.error" || f.message)).toEqual([]);
    console.log(`SUMMARY client input: 6 kinds of bad input tried, 6 answered to the sender only, bystander lost 0\n  ${results.join("\n  ")}`);
    sender.ws.close();
    bystander.ws.close();
  });
});

describe("bad input from apps", () => {
  const events = recordingObserver();
  let hub: LocalHub;
  beforeAll(async () => {
    // The rejected records' log lines stay out of the test output.
    hub = await startLocalHub({ port: 0, bcryptCost: 4, logger: capture().logger, queue: { visibilityTimeoutSeconds: 1, maxReceiveCount: 2, waitTimeSeconds: 1 } });
    hub.onEvent(events.observe);
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it("is refused by the SDK before sending; sent raw, it ends in the dead-letter queue while the good records deliver", async () => {
    const bad: [string, unknown][] = [
      ["missing room", { data: 1 }],
      ["empty room", { roomId: "", data: 1 }],
      ["room of the wrong type", { roomId: ["a"], data: 1 }],
      ["user of the wrong type", { roomId: "r", userId: { id: 1 }, data: 1 }],
      ["no data", { roomId: "r" }],
      ["oversize data", { roomId: "r", data: "x".repeat(129 * 1024) }],
    ];
    for (const [name, input] of bad) await expect(hub.notifier.publish(input as never), name).rejects.toThrow(/publish: /);

    const client = await connectAs(hub, "reader", "apps");
    const raw = [
      { Id: "good1", MessageBody: JSON.stringify({ room_id: "apps", data: { type: "ok", data: 1 } }) },
      { Id: "bad1", MessageBody: "<xml>not json</xml>" },
      { Id: "bad2", MessageBody: JSON.stringify({ user_id: "u", data: 1 }) },
      { Id: "bad3", MessageBody: JSON.stringify({ room_id: true, data: 1 }) },
      { Id: "bad4", MessageBody: JSON.stringify({ room_id: "apps", data: "y".repeat(180 * 1024) }) },
      { Id: "good2", MessageBody: JSON.stringify({ room_id: "apps", data: { type: "ok", data: 2 } }) },
    ];
    const sqs = sqsClient({ endpoint: hub.sqsEndpoint });
    const sent = await sqs.send(new SendMessageBatchCommand({ QueueUrl: hub.queueUrl, Entries: raw }));
    const idOf = (entry: string) => sent.Successful?.find((s) => s.Id === entry)?.MessageId;
    await until(() => client.ids().includes(idOf("good1")!) && client.ids().includes(idOf("good2")!));

    const dead: string[] = [];
    await until(async () => {
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: hub.deadLetterQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      dead.push(...(got.Messages ?? []).map((m) => m.MessageId ?? ""));
      return dead.length >= 4;
    });
    expect(dead.sort()).toEqual(["bad1", "bad2", "bad3", "bad4"].map(idOf).sort());
    const rejected = events.ofType("record.rejected");
    for (const entry of ["bad1", "bad2", "bad3", "bad4"]) expect(rejected.find((r) => r.messageId === idOf(entry))?.reason, entry).toBeTruthy();
    expect(rejected.filter((r) => r.messageId === idOf("good1") || r.messageId === idOf("good2"))).toEqual([]);
    console.log(`SUMMARY app input: ${bad.length} bad notifications refused by the SDK; 4 bad raw records dead-lettered with reported reasons, 2 good delivered, lost 0`);
    client.ws.close();
  });
});

describe("faults", () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub({ port: 0, bcryptCost: 4, queue: { visibilityTimeoutSeconds: 1, maxReceiveCount: 10, waitTimeSeconds: 1 } }, { faultInjection: true });
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it("loses nothing through 410s, 429s, 500s and a DynamoDB outage", async () => {
    const clients = await Promise.all(["a", "b", "c"].map((u) => connectAs(hub, u, "faulty")));
    const ids = (await roomConnections(hub, "faulty")).map((c) => c.connectionId);
    const db = dynamoClient({ endpoint: hub.dynamodbEndpoint });
    const results: string[] = [];

    // A row whose client is gone (its $disconnect never ran): 410, and the row goes.
    await db.send(
      new PutItemCommand({
        TableName: hub.connectionsTableName,
        Item: { connection_id: { S: "ghost" }, room_id: { S: "faulty" }, user_id: { S: "ghost" }, connected_at: { N: "0" }, expires_at: { N: String(Math.floor(Date.now() / 1000) + 600) } },
      }),
    );
    const first = await hub.notifier.publish({ roomId: "faulty", data: { type: "n", data: 1 } });
    await until(() => clients.every((c) => c.ids().includes(first.messageId)));
    await until(async () => (await getConnection(db, hub.connectionsTableName, "ghost")) === undefined);
    results.push("410 Gone: stale row removed, live clients served");

    // Throttled twice, then fine: retried inside the invocation.
    hub.faults!.failPosts(ids[0], 429, 2);
    // Failing past every retry: handed back through the queue, delivered on the next pass.
    hub.faults!.failPosts(ids[1], 500, 4);
    const second = await hub.notifier.publish({ roomId: "faulty", data: { type: "n", data: 2 } });
    await until(() => clients.every((c) => c.ids().includes(second.messageId)));
    results.push("429 ×2 retried with backoff; 500 ×4 requeued and delivered");

    // DynamoDB unreachable while a batch is handled: records fail, SQS redelivers, all arrive once it is back.
    hub.faults!.cutDynamo();
    const during = await Promise.all([3, 4, 5].map((n) => hub.notifier.publish({ roomId: "faulty", data: { type: "n", data: n } })));
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(clients[0].ids().filter((id) => during.some((d) => d.messageId === id))).toEqual([]);
    hub.faults!.restoreDynamo();
    await until(() => clients.every((c) => during.every((d) => c.ids().includes(d.messageId))), 30_000);
    results.push("DynamoDB cut mid-batch: 3 records failed, redelivered and delivered after it returned");

    const expected = [first, second, ...during].map((m) => m.messageId);
    let duplicates = 0;
    for (const client of clients) {
      const got = client.ids().filter((id) => expected.includes(id));
      expect(new Set(got)).toEqual(new Set(expected));
      duplicates += got.length - new Set(got).size;
    }
    console.log(`SUMMARY faults: 4 faults injected, ${expected.length} notifications × ${clients.length} clients, lost 0, duplicates ${duplicates} (same id)\n  ${results.join("\n  ")}`);
    for (const client of clients) client.ws.close();
  });

  it("keeps rows, tokens and secrets across a restart with --data-dir", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-data-"));
    const first = await startLocalHub({ port: 0, bcryptCost: 4, dataDir });
    const token = await first.notifier.issueToken({ userId: "persist", roomId: "kept" });
    await dynamoClient({ endpoint: first.dynamodbEndpoint }).send(
      new PutItemCommand({ TableName: first.connectionsTableName, Item: { connection_id: { S: "kept-row" }, room_id: { S: "kept" }, user_id: { S: "persist" } } }),
    );
    const secret = first.jwtSecret;
    await first.stop();

    const second = await startLocalHub({ port: 0, bcryptCost: 4, dataDir });
    try {
      expect(second.jwtSecret).toBe(secret);
      expect(await getConnection(dynamoClient({ endpoint: second.dynamodbEndpoint }), second.connectionsTableName, "kept-row")).toMatchObject({ rooms: ["kept"] });
      const client = await open(`${second.websocketUrl}?token=${token}`);
      client.ws.close();
      console.log("SUMMARY restart: token, auth row, connection row and secrets survived a restart with --data-dir");
    } finally {
      await second.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("load with faults", () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub({ port: 0, bcryptCost: 4, queue: { visibilityTimeoutSeconds: 30, concurrency: 4, waitTimeSeconds: 1 } }, { faultInjection: true });
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it("500 clients, 5% killed during the run, 50 notifications: every survivor gets every one", async () => {
    const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => hub.notifier.issueToken({ userId: `load-${i}`, roomId: "load" })));
    const clients: Client[] = [];
    for (let start = 0; start < 500; start += 50) {
      clients.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => open(`${hub.websocketUrl}?token=${tokens[(start + i) % 50]}`)))));
    }
    const killed = new Set(Array.from({ length: 25 }, (_, i) => clients[i * 20]));
    const sent: string[] = [];
    for (let wave = 0; wave < 5; wave++) {
      const batch = await hub.notifier.publishBatch(Array.from({ length: 10 }, (_, i) => ({ roomId: "load", data: { type: "load", data: wave * 10 + i } })));
      sent.push(...batch.messageIds);
      if (wave === 1) {
        for (const client of killed) client.ws.terminate(); // vanish mid-run, no close frame
        const live = (await roomConnections(hub, "load")).map((c) => c.connectionId);
        for (const id of live.slice(0, 10)) hub.faults!.failPosts(id, 429, 3);
        for (const id of live.slice(10, 15)) hub.faults!.failPosts(id, 500, 5);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const survivors = clients.filter((c) => !killed.has(c));
    // Every survivor has every sent id. Each frame is looked at once, as it comes: rescanning
    // 475 clients' frames every 25 ms took CPU from the hub, which runs in this process.
    const wanted = new Set(sent);
    const progress = new Map(survivors.map((c) => [c, { seen: 0, got: new Set<string>() }]));
    const hasAll = (c: Client) => {
      const p = progress.get(c)!;
      for (; p.seen < c.frames.length; p.seen++) if (wanted.has(c.frames[p.seen].id ?? "")) p.got.add(c.frames[p.seen].id!);
      return p.got.size === wanted.size;
    };
    await until(() => survivors.every(hasAll), 120_000);
    let duplicates = 0;
    let deliveries = 0;
    for (const client of survivors) {
      const got = client.ids().filter((id) => sent.includes(id));
      deliveries += new Set(got).size;
      duplicates += got.length - new Set(got).size;
      // A duplicate is the same frame again: same id, same content, so clients can drop it.
      const byId = new Map<string, string>();
      for (const frame of client.frames) {
        const text = JSON.stringify(frame);
        if (frame.id && byId.has(frame.id)) expect(byId.get(frame.id)).toBe(text);
        if (frame.id) byId.set(frame.id, text);
      }
    }
    expect(deliveries).toBe(survivors.length * sent.length);
    console.log(
      `SUMMARY load with faults: 500 clients, ${killed.size} killed, 50 notifications, 15 connections with injected 429/500s; ${deliveries} of ${survivors.length * sent.length} deliveries to survivors, lost 0, duplicates ${duplicates} (dedupable by id)`,
    );
    for (const client of survivors) client.ws.close();
  }, 240_000); // 500 sockets, each connect a bcrypt check and a SigV4-verified post per delivery: minutes on a busy 2-core machine
});
