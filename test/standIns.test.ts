/**
 * The local stand-ins are at least as strict as AWS at every limit the hub relies on, and the
 * hub stays inside each limit as AWS measures it (ARCHITECTURE.md "AWS limits and the
 * stand-ins"): SQS's character set, API Gateway's 8 KB authorizer result, DynamoDB's 400 KB
 * item in UTF-8 bytes, and the local HTTP server after a refused body. One hub for the file.
 */
import * as http from "http";
import { GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, SendMessageBatchCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import * as bcrypt from "bcryptjs";
import { sqsClient } from "../core/aws";
import type { HubEvent } from "../core/hubEvents";
import { grantsAuthKey, normalizeGrants } from "../core/rooms";
import { createAuthRow, getAuthRow } from "../core/tables";
import {
  authorizerResultBytes,
  defaultPasscode,
  deriveTokenSecret,
  MAX_AUTHORIZER_RESULT_BYTES,
  MAX_TOKEN_LENGTH,
  newGeneration,
  signConnectToken,
  WORST_CASE_METHOD_ARN,
} from "../core/tokens";
import { createAuthorizerHandler } from "../handlers/authorizer";
import { authorizerEvent } from "./support/events";
import { capturingLogger } from "./support/logs";
import { sharedTestHub } from "./support/sharedHub";
import { until } from "./support/wait";
import { openClient, type WsClient } from "./support/wsClient";

const shared = sharedTestHub({ maxRoomsPerConnection: 1000 });

async function connect(token: string): Promise<WsClient> {
  const client = await openClient(`${shared.hub.websocketUrl}?token=${encodeURIComponent(token)}`);
  shared.clients.push(client);
  return client;
}

/** Notification frames (not the hub's control frames) a client got so far. */
const notifications = (client: WsClient) => client.frames.filter((f) => f.room_id !== null && f.origin === "app");

describe("SQS's character set: any well-formed Unicode publishes", () => {
  it("the local SQS takes every character SQS takes (emoji included) and refuses each one SQS refuses", async () => {
    const sqs = sqsClient({ endpoint: shared.hub.sqsEndpoint, region: shared.hub.region, credentials: shared.hub.credentials });
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "charset-probe" }));
    const taken = ["🎉 export ready", "\u{10FFFF}", "\u{10000}", "\uE000\uFFFD\uD7FF", "\t\n\r ", "日本語"];
    const refused = ["\uFFFE", "\uFFFF", "a\uD800b", "\uDFFF", "\u0000", "\u0008", "\u001F", "ok \uFFFF"];
    const outcome = async (body: string) =>
      sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body })).then(
        () => "taken",
        (err: Error) => (/InvalidMessageContents/.test(err.name) ? "refused" : err.name),
      );
    expect(await Promise.all(taken.map(outcome))).toEqual(taken.map(() => "taken"));
    expect(await Promise.all(refused.map(outcome))).toEqual(refused.map(() => "refused"));
    // The batch action applies the same rule to each entry.
    const batch = await sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries: [...taken, "\uFFFF"].map((body, i) => ({ Id: String(i), MessageBody: body })) }));
    expect([batch.Successful?.length, batch.Failed?.map((f) => [f.Id, f.Code])]).toEqual([taken.length, [[String(taken.length), "InvalidMessageContents"]]]);
  });

  it("publish, publishToUser and a room named with an emoji each deliver one frame holding exactly what was published, U+FFFE and U+FFFF too", async () => {
    const { notifier } = shared.hub;
    const room = "party 🎉";
    const member = await connect(await notifier.issueToken({ userId: "guest 🎈", roomId: room }));
    const texts = ["🎉 export ready", "U+FFFE \uFFFE and U+FFFF \uFFFF", "astral \u{10FFFF}"];
    const ids: string[] = [];
    for (const data of texts) ids.push((await notifier.publish({ roomId: room, userId: "app ✓", data })).messageId);
    ids.push((await notifier.publishToUser({ userId: "guest 🎈", data: { type: "dm", data: "🎁" } })).messageId);
    await until(() => notifications(member).length >= 4);
    // A standard queue: delivery order is not publish order.
    const byId = (a: unknown[], b: unknown[]) => String(a[0]).localeCompare(String(b[0]));
    expect(notifications(member).map((f) => [f.id, f.room_id, f.data]).sort(byId)).toEqual(
      [...texts.map((data, i) => [ids[i], room, data]), [ids[3], "user:guest 🎈", { type: "dm", data: "🎁" }]].sort(byId),
    );
    // The stored stream holds the same values (the replayed bytes are the live bytes).
    expect((await notifier.history({ roomId: room })).map((f) => f.data).sort()).toEqual([...texts].sort());
  });

  it("publishBatch of 10 with emoji, U+FFFE and U+FFFF items delivers all 10 frames, none lost", async () => {
    const { notifier } = shared.hub;
    const member = await connect(await notifier.issueToken({ userId: "batch-reader", roomId: "batch-unicode" }));
    const items = Array.from({ length: 10 }, (_, i) => ({ roomId: "batch-unicode", data: i === 4 ? "🎉 #4" : i === 7 ? "\uFFFE #7" : i === 9 ? "\uFFFF #9" : `plain #${i}` }));
    const { messageIds } = await notifier.publishBatch(items);
    expect(messageIds).toHaveLength(10);
    await until(() => notifications(member).length >= 10);
    expect(notifications(member).map((f) => f.data).sort()).toEqual(items.map((item) => item.data).sort());
  });

  it("the demo's Publish answers 200 for an emoji and the frame arrives", async () => {
    const { notifier, httpUrl } = shared.hub;
    const member = await connect(await notifier.issueToken({ userId: "demo-reader", roomId: "demo 🎉" }));
    const answer = await postJson(new URL("/demo/publish", httpUrl), { roomId: "demo 🎉", data: { type: "note", data: "🎉 from the demo" } });
    expect(answer.status, answer.body).toBe(200);
    await until(() => notifications(member).length === 1);
    expect(notifications(member)[0].data).toEqual({ type: "note", data: "🎉 from the demo" });
  });
});

describe("API Gateway's 8 KB authorizer result: every token issueToken issues connects", () => {
  /** 100 grants, each a number and `k` copies of `ch`: `"` and `\\` cost 4 bytes each in the result, 2 in the token. */
  const grantsOf = (ch: string, k: number) => Array.from({ length: 100 }, (_, i) => `${String(i).padStart(2, "0")}${ch.repeat(k)}`);
  const normalized = (rooms: string[]) => {
    const grants = normalizeGrants(rooms, "rooms");
    if (!grants.ok) throw new Error(grants.reason);
    return grants.value;
  };
  const longUser = (tag: string) => `${tag}-${"u".repeat(240)}`;
  /** How many characters the token would be, whatever its secret: issueToken's first check. */
  const tokenLength = (userId: string, rooms: string[]) => signConnectToken({ userId, grants: rooms, secret: "0".repeat(64), exp: 2e9 }, "s").length;

  it("issueToken refuses, naming the 8 KB limit, tokens short enough to pass its length check whose result would be 10–12 KB, and writes no row", async () => {
    const { notifier } = shared.hub;
    const refusals: string[] = [];
    for (const [ch, k] of [['"', 24], ["\\", 25]] as const) {
      const userId = longUser(`quoted-${k}`);
      const rooms = grantsOf(ch, k);
      expect(tokenLength(userId, normalized(rooms))).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
      refusals.push(await notifier.issueToken({ userId, rooms }).then(() => "issued", (err: Error) => err.message));
      expect(await getAuthRow(shared.db, shared.hub.authTableName, userId, grantsAuthKey(normalized(rooms)))).toBeUndefined();
    }
    expect(refusals).toEqual([
      expect.stringMatching(/^issueToken: a connect with this token would make an authorizer result of 11\d{3} bytes, more than the 8192 API Gateway takes \(8 KB/),
      expect.stringMatching(/^issueToken: a connect with this token would make an authorizer result of 11\d{3} bytes, more than the 8192 API Gateway takes \(8 KB/),
    ]);
  });

  it("the largest token issueToken allows (quotes, the costliest character) connects on the local hub, and its result with the longest deployed methodArn fits 8 KB", async () => {
    const { notifier, websocketUrl, jwtSecret } = shared.hub;
    // The most quotes per grant that issueToken still takes, found by asking it.
    let largest: { token: string; k: number } | undefined;
    for (let k = 10; ; k++) {
      const token = await notifier.issueToken({ userId: longUser(`largest-${k}`), rooms: grantsOf('"', k) }).catch(() => undefined);
      if (!token) break;
      largest = { token, k };
    }
    expect(largest!.k).toBeGreaterThanOrEqual(15);
    // What its authorizer returns, measured as API Gateway measures, with the longest ARN a deployment can have.
    const authorize = createAuthorizerHandler({ db: shared.db, authTable: shared.hub.authTableName, jwtSecret: async () => jwtSecret, log: capturingLogger().log });
    const result = await authorize(authorizerEvent({ token: largest!.token }));
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: "Allow" });
    const worst = { ...result, policyDocument: { ...result.policyDocument, Statement: [{ ...result.policyDocument.Statement[0], Resource: WORST_CASE_METHOD_ARN }] } };
    expect(authorizerResultBytes(worst)).toBeLessThanOrEqual(MAX_AUTHORIZER_RESULT_BYTES);
    expect(authorizerResultBytes(worst)).toBeGreaterThan(MAX_AUTHORIZER_RESULT_BYTES - 500); // the bound is tight, not a wide margin
    // And it connects (the header way: it is longer than a URL may be).
    const client = await openClient(websocketUrl, { protocols: ["notification-hub", largest!.token] });
    shared.clients.push(client);
    expect(client.ws.protocol).toBe("notification-hub");
  });

  it("the local API Gateway answers 500 to an authorizer result over 8 KB and runs no $connect, as AWS does", async () => {
    const { websocketUrl, jwtSecret, passcode } = shared.hub;
    // A token the issuer no longer makes, minted by hand as an older issuer would have.
    const userId = longUser("minted");
    const grants = normalized(grantsOf('"', 24));
    const authKey = grantsAuthKey(grants);
    const generation = newGeneration();
    const secret = deriveTokenSecret(passcode ?? defaultPasscode(jwtSecret), userId, authKey, generation);
    const exp = Math.floor(Date.now() / 1000) + 600;
    expect(await createAuthRow(shared.db, shared.hub.authTableName, { userId, authKey, tokenHash: await bcrypt.hash(secret, 4), generation, expiresAt: exp })).toBe(true);
    const token = signConnectToken({ userId, grants, secret, exp }, jwtSecret);
    expect(token.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    const events: HubEvent[] = [];
    const stop = shared.hub.onEvent((event) => events.push(event));
    try {
      const refused = await openClient(websocketUrl, { protocols: ["notification-hub", token] }).then(
        (client) => (shared.clients.push(client), 101),
        (err: { status?: number }) => err.status,
      );
      expect(refused).toBe(500);
      // The authorizer allowed it; API Gateway could not use the answer, so $connect never ran.
      expect(events.filter((e) => e.type === "connect.allowed" && e.userId === userId)).toHaveLength(1);
      expect(events.filter((e) => e.type === "connected" && e.userId === userId)).toHaveLength(0);
    } finally {
      stop();
    }
  });
});

/** An item's size as DynamoDB measures it: UTF-8 bytes of each attribute name and value (numbers at their most). */
function dynamoItemBytes(item: Record<string, AttributeValue>): number {
  const utf8 = (text: string) => Buffer.byteLength(text, "utf8");
  const value = (v: AttributeValue): number => {
    if (v.S !== undefined) return utf8(v.S);
    if (v.N !== undefined) return 21;
    if (v.SS) return v.SS.reduce((n, x) => n + utf8(x), 0);
    if (v.L) return 3 + v.L.reduce((n, x) => n + 1 + value(x), 0);
    if (v.M) return 3 + dynamoItemBytes(v.M) + Object.keys(v.M).length;
    if (v.B) return v.B.length;
    return 1;
  };
  return Object.entries(item).reduce((n, [name, v]) => n + utf8(name) + value(v), 0);
}

describe("DynamoDB's 400 KB item, measured in UTF-8 bytes: rows fit it", () => {
  const ITEM_LIMIT = 400 * 1024;

  it("the local DynamoDB measures items and keys in UTF-8 bytes: it takes exactly 400 KB and refuses one byte more, a 410 KB CJK item and a 2,100-byte CJK key", async () => {
    const table = shared.hub.connectionsTableName;
    const put = (item: Record<string, AttributeValue>) =>
      shared.db.send(new PutItemCommand({ TableName: table, Item: item })).then(
        () => "taken",
        (err: Error) => err.name + ": " + err.message,
      );
    // connection_id (13) + "size-probe" (10) + v (1) + the value.
    const fill = ITEM_LIMIT - 13 - 10 - 1;
    expect(await put({ connection_id: { S: "size-probe" }, v: { S: "a".repeat(fill) } })).toBe("taken");
    expect(await put({ connection_id: { S: "size-probe" }, v: { S: "a".repeat(fill + 1) } })).toMatch(/^ValidationException: Item size has exceeded the maximum allowed size/);
    // 136,600 UTF-16 units (what dynalite counted) are 409,800 UTF-8 bytes.
    expect(await put({ connection_id: { S: "cjk-probe" }, v: { S: "漢".repeat(136_600) } })).toMatch(/^ValidationException: Item size has exceeded/);
    // A name counts in UTF-8 too.
    expect(await put({ connection_id: { S: "name-probe" }, ["名".repeat(100)]: { S: "a".repeat(ITEM_LIMIT - 13 - 10 - 200) } })).toMatch(/^ValidationException: Item size has exceeded/);
    // Growing an item past the limit with UpdateItem is refused as DynamoDB refuses it.
    const grow = await shared.db
      .send(new UpdateItemCommand({ TableName: table, Key: { connection_id: { S: "size-probe" } }, UpdateExpression: "SET w = :w", ExpressionAttributeValues: { ":w": { S: "漢" } } }))
      .then(() => "taken", (err: Error) => err.name + ": " + err.message);
    expect(grow).toMatch(/^ValidationException: Item size to update has exceeded the maximum allowed size/);
    // A partition key is at most 2,048 bytes: 700 CJK characters are 2,100.
    expect(await put({ connection_id: { S: "漢".repeat(700) } })).toMatch(/^ValidationException: .*Size of hashkey has exceeded the maximum size limit/);
  });

  it("with maxRoomsPerConnection 1000, 600 subscribes to 256-character CJK rooms: each answered once, subscribed until the row is full, then too_many_rooms; none subscribe_failed; the row stays within 400 KB in UTF-8", async () => {
    const { notifier } = shared.hub;
    let connectionId: string | undefined;
    const stop = shared.hub.onEvent((e) => {
      if (e.type === "connected" && e.userId === "many-rooms") connectionId = e.connectionId;
    });
    const client = await connect(await notifier.issueToken({ userId: "many-rooms", rooms: ["*"] })).finally(stop);
    const rooms = Array.from({ length: 600 }, (_, i) => String(i).padStart(3, "0") + "漢".repeat(253));
    expect(rooms.every((room) => room.length === 256)).toBe(true);
    const answerOf = (room: string) =>
      client.next((f) => f.room_id === null && (f.data?.type === "hub.subscribed" || f.data?.type === "hub.error") && f.data?.data?.room_id === room, 30_000);
    const answers: string[] = [];
    // In windows, well inside the stage's burst.
    for (let at = 0; at < rooms.length; at += 50) {
      const window = rooms.slice(at, at + 50);
      for (const room of window) client.ws.send(JSON.stringify({ action: "subscribe", room_id: room }));
      for (const frame of await Promise.all(window.map(answerOf))) answers.push(frame.data.type === "hub.subscribed" ? "subscribed" : frame.data.data.code);
    }
    const count = (what: string) => answers.filter((a) => a === what).length;
    expect(answers).toHaveLength(600);
    expect([count("subscribe_failed"), count("subscribed") + count("too_many_rooms")]).toEqual([0, 600]);
    // 762 bytes a room: the row fills a little past 500 rooms.
    expect(count("subscribed")).toBeGreaterThan(500);
    expect(count("too_many_rooms")).toBeGreaterThan(50);
    const refusal = client.frames.find((f) => f.data?.data?.code === "too_many_rooms");
    expect(refusal?.data.data.message).toMatch(/fill its row \(DynamoDB's 400 KB item, in UTF-8 bytes\)/);
    // The row, measured as DynamoDB measures it.
    const { Item } = await shared.db.send(new GetItemCommand({ TableName: shared.hub.connectionsTableName, Key: { connection_id: { S: connectionId! } }, ConsistentRead: true }));
    expect(Item!.rooms.SS).toHaveLength(count("subscribed"));
    expect(dynamoItemBytes(Item!)).toBeLessThanOrEqual(ITEM_LIMIT);
  });
});

describe("local HTTP: a refused body never leaves its keep-alive connection stuck", () => {
  /** Requests in order over one keep-alive connection at most at a time; each answer's status, or "no answer". */
  async function overOneConnection(requests: { method: string; path: string; body?: string }[]) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const statuses: (number | string)[] = [];
    try {
      for (const { method, path, body } of requests) {
        statuses.push(
          await new Promise<number | string>((resolve) => {
            const request = http.request(new URL(path, shared.hub.httpUrl), { method, agent, headers: { "content-type": "application/json" } }, (response) => {
              response.resume();
              response.on("end", () => resolve(response.statusCode ?? 0));
            });
            request.on("socket", (socket) => sockets.add(socket));
            // An answer that never comes is what this test is about: give up after 5 s and say so.
            request.setTimeout(5_000, () => (request.destroy(), resolve("no answer")));
            request.on("error", () => resolve("no answer"));
            request.end(body);
          }),
        );
      }
    } finally {
      agent.destroy();
    }
    return statuses;
  }

  const big = JSON.stringify({ userId: "x", roomId: "r", pad: "p".repeat(600 * 1024) });

  it("after the demo's token endpoint refuses a 600 KB body, the next requests on that connection are answered (3 of 3)", async () => {
    expect(await overOneConnection([{ method: "POST", path: "/demo/token", body: big }, { method: "GET", path: "/health" }, { method: "GET", path: "/health" }])).toEqual([400, 200, 200]);
  });

  it("after the console's publish refuses a 600 KB raw body, the next requests are answered (3 of 3)", async () => {
    const raw = JSON.stringify({ mode: "raw", body: "b".repeat(600 * 1024) });
    expect(await overOneConnection([{ method: "POST", path: "/console/api/publish", body: raw }, { method: "GET", path: "/health" }, { method: "POST", path: "/demo/token", body: big }, { method: "GET", path: "/health" }])).toEqual([400, 200, 400, 200]);
  });
});

/** One POST of a JSON body on a fresh connection. */
function postJson(url: URL, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST", headers: { "content-type": "application/json", host: url.host } }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
    });
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}
