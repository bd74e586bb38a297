/**
 * The one SQS batch sender (core/queue.ts sendBatches), used by the deliver path's chunks and
 * requeues and by the SDK's publishBatch: same limits, same retry budget, same error.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { buildPublishBody, MAX_QUEUE_BODY_BYTES, queueSafeJson, SQS_REFUSED_CHARACTER } from "../core/messages";
import { sendBatches, SQS_BATCH_BYTES, SQS_SEND_ATTEMPTS } from "../core/queue";
import { createNotifier } from "../server";

type Entry = { Id: string; MessageBody: string };

/** An SQS stand-in that refuses the entries `refuse` picks, and records every batch it was sent. */
function fakeSqs(refuse: (entry: Entry, call: number) => boolean = () => false) {
  const calls: Entry[][] = [];
  const client = {
    async send(command: SendMessageBatchCommand) {
      const entries = (command.input.Entries ?? []) as Entry[];
      calls.push(entries);
      const call = calls.length;
      const failed = entries.filter((e) => refuse(e, call));
      return {
        Successful: entries.filter((e) => !failed.includes(e)).map((e) => ({ Id: e.Id, MessageId: `m-${e.MessageBody.slice(0, 8)}-${call}` })),
        Failed: failed.map((e) => ({ Id: e.Id, Code: "InternalError", Message: "try again", SenderFault: false })),
      };
    },
  };
  return { client: client as unknown as SQSClient, calls };
}

describe("sendBatches: the one SQS batch sender", () => {
  it("keeps each batch within 10 entries and 1 MiB, and returns ids in the order of the bodies", async () => {
    const { client, calls } = fakeSqs();
    const bodies = Array.from({ length: 23 }, (_, i) => `${String(i).padStart(8, "0")}${"x".repeat(120 * 1024)}`);
    const ids = await sendBatches(client, "q", bodies);
    for (const batch of calls) {
      expect(batch.length).toBeLessThanOrEqual(10);
      expect(batch.reduce((n, e) => n + Buffer.byteLength(e.MessageBody), 0)).toBeLessThanOrEqual(SQS_BATCH_BYTES);
    }
    expect(calls.flat().map((e) => e.MessageBody)).toEqual(bodies);
    expect(ids).toEqual(bodies.map((b) => expect.stringContaining(`m-${b.slice(0, 8)}-`)));
  });

  it("resends only the refused entries, keeping their place in the result", async () => {
    const { client, calls } = fakeSqs((e, call) => call === 1 && (e.Id === "1" || e.Id === "3"));
    const ids = await sendBatches(client, "q", ["aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd"]);
    expect(calls.map((c) => c.map((e) => e.Id))).toEqual([["0", "1", "2", "3"], ["1", "3"]]);
    expect(ids).toEqual(["m-aaaaaaaa-1", "m-bbbbbbbb-2", "m-cccccccc-1", "m-dddddddd-2"]);
  });

  it(`gives up after ${SQS_SEND_ATTEMPTS} sends of a refused entry, naming the caller and the count`, async () => {
    const { client, calls } = fakeSqs((e) => e.Id === "0");
    await expect(sendBatches(client, "q", ["a", "b"], "publishBatch")).rejects.toThrow(
      /^publishBatch: SQS refused 1 message\(s\) \(InternalError: try again\); the others were sent$/,
    );
    expect(calls).toHaveLength(SQS_SEND_ATTEMPTS);
  });

  it("is what the SDK's publishBatch sends with: ten near-limit notifications never go in one over-size batch", async () => {
    const notifier = createNotifier({ queueUrl: "http://127.0.0.1:9/q", region: "us-east-1", endpoints: { sqs: "http://127.0.0.1:9" } });
    const { client, calls } = fakeSqs();
    // The SDK's SQS client is private; reach it through the one method publishBatch calls.
    const { SQSClient: Real } = await import("@aws-sdk/client-sqs");
    const original = Real.prototype.send;
    Real.prototype.send = function (this: unknown, command: SendMessageBatchCommand) {
      return client.send(command as never) as never;
    } as typeof original;
    try {
      const data = "y".repeat(127 * 1024);
      const { messageIds } = await notifier.publishBatch(Array.from({ length: 10 }, (_, i) => ({ roomId: `r${i}`, data })));
      expect(messageIds).toHaveLength(10);
      expect(calls.length).toBeGreaterThan(1);
      for (const batch of calls) expect(batch.reduce((n, e) => n + Buffer.byteLength(e.MessageBody), 0)).toBeLessThanOrEqual(SQS_BATCH_BYTES);
    } finally {
      Real.prototype.send = original;
    }
  });
});

describe("what SQS refuses never reaches it", () => {
  it("a body SQS would refuse for its size stops the whole call: no batch is sent", async () => {
    const { client, calls } = fakeSqs();
    const bodies = Array.from({ length: 10 }, (_, i) => JSON.stringify({ room_id: "r", data: i === 9 ? "z".repeat(MAX_QUEUE_BODY_BYTES) : i }));
    await expect(sendBatches(client, "q", bodies, "publishBatch")).rejects.toThrow(/^publishBatch\[9\]: the body is \d+ bytes; queue bodies are limited to 262144; nothing was sent$/);
    expect(calls).toHaveLength(0);
  });

  it("U+FFFE, U+FFFF (data and room ids, publish bodies and chunk bodies) go as JSON escapes: every sent body is one SQS takes, and parses back to the same value", async () => {
    const { client, calls } = fakeSqs();
    const values = [{ room_id: "r\uFFFE", data: "\uFFFF end" }, { room_id: "r", frame_base64: "AA==", connection_ids: ["c"] }, { room_id: "🎉", data: ["\uFFFE", { "\uFFFF": 1 }] }];
    await sendBatches(client, "q", values.map((v) => JSON.stringify(v)));
    const sent = calls.flat().map((e) => e.MessageBody);
    expect(sent.filter((body) => SQS_REFUSED_CHARACTER.test(body))).toEqual([]);
    expect(sent.map((body) => JSON.parse(body))).toEqual(values);
    // The SDK's publish body too, before it is sent.
    const body = buildPublishBody({ roomId: "r", data: "\uFFFF" });
    expect([SQS_REFUSED_CHARACTER.test(body), JSON.parse(body).data]).toEqual([false, "\uFFFF"]);
  });

  it("queueSafeJson keeps the meaning of any JSON text and leaves no character SQS refuses (property)", () => {
    const anyText = fc.string({ unit: "binary", maxLength: 60 });
    fc.assert(
      fc.property(fc.oneof(anyText, fc.dictionary(anyText, anyText, { maxKeys: 4 }), fc.array(anyText, { maxLength: 4 })), (value) => {
        const safe = queueSafeJson(JSON.stringify(value));
        expect(SQS_REFUSED_CHARACTER.test(safe)).toBe(false);
        expect(JSON.parse(safe)).toEqual(value);
        expect(queueSafeJson(safe)).toBe(safe);
      }),
      { numRuns: 500 },
    );
  });
});
