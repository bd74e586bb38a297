/**
 * Plays Lambda's SQS event source mapping: long-polls the queue, hands batches to the
 * deliver handler, deletes only the records it did not report as failures. Failed records
 * become visible again after the visibility timeout, and the queue's redrive policy moves
 * them to the dead-letter queue after maxReceiveCount receives.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type Message } from "@aws-sdk/client-sqs";
import { describeError, type Logger } from "../core/log";

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
  batchSize: number;
  /** Concurrent pollers, like the mapping's maximum concurrency. */
  concurrency: number;
  /** Long-poll wait; shorter makes stop() quicker. */
  waitTimeSeconds: number;
  log: Logger;
}

function toRecord(message: Message, options: PollerOptions): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? "1",
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? "local",
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: options.queueArn,
    awsRegion: options.region,
  };
}

export function startSqsPoller(options: PollerOptions) {
  const abort = new AbortController();
  let stopped = false;
  let batches = 0;

  async function pollOnce(): Promise<void> {
    const received = await options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: options.queueUrl,
        MaxNumberOfMessages: options.batchSize,
        WaitTimeSeconds: options.waitTimeSeconds,
        MessageSystemAttributeNames: ["All"],
      }),
      { abortSignal: abort.signal },
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return;
    batches++;
    const records = messages.map((m) => toRecord(m, options));
    let failed: Set<string>;
    try {
      const response = await options.handler({ Records: records });
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      // A thrown handler fails the whole batch, as with Lambda.
      options.log.error("deliver handler threw; the batch will be retried", describeError(err));
      failed = new Set(records.map((r) => r.messageId));
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    if (done.length > 0) {
      await options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: options.queueUrl,
          Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
        }),
      );
    }
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      try {
        await pollOnce();
      } catch (err) {
        if (stopped) return;
        options.log.warn("queue poll failed; retrying", describeError(err));
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  const loops = Array.from({ length: options.concurrency }, loop);
  return {
    get batches() {
      return batches;
    },
    async stop(): Promise<void> {
      stopped = true;
      abort.abort();
      await Promise.allSettled(loops);
    },
  };
}
