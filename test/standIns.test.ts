/**
 * The local stand-ins are at least as strict as AWS at every limit the hub relies on, and the
 * hub stays inside each limit as AWS measures it (ARCHITECTURE.md "AWS limits and the
 * stand-ins"): SQS's character set, API Gateway's 8 KB authorizer result, DynamoDB's 400 KB
 * item in UTF-8 bytes, and the local HTTP server after a refused body. One hub for the file.
 */
import * as http from "http";
import { CreateQueueCommand, SendMessageBatchCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { sqsClient } from "../core/aws";
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
