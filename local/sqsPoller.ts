/**
 * Plays Lambda's SQS event source mapping: long-polls the queue, hands batches to the
 * deliver handler, deletes only the records it did not report as failures. Failed records
 * become visible again after the visibility timeout, and the queue's redrive policy moves
 * them to the dead-letter queue after maxReceiveCount receives.
 *
 * Nothing here may wait forever: one await that never settles would stop a poller loop for
 * good, silently (the SQS client had no request timeout, and an invocation none). So every
 * SQS call is cut after its own deadline, an invocation is cut like Lambda's timeout (its
 * batch is not deleted and comes back after the visibility timeout; on the hub's thread the
 * handler can only be abandoned, in a worker thread local/deliverPool.ts ends it), and a loop
 * logs each failure and polls again.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type Message } from "@aws-sdk/client-sqs";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../core/aws";
import { describeError, type Logger } from "../core/log";

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  /** Given Lambda's context too: what is left of the invocation's time (`invocationTimeoutMs`). */
  handler: (event: SQSEvent, context: { getRemainingTimeInMillis(): number }) => Promise<SQSBatchResponse>;
  batchSize: number;
  /** Concurrent pollers, like the mapping's maximum concurrency. */
  concurrency: number;
  /** Long-poll wait; shorter makes stop() quicker. */
  waitTimeSeconds: number;
  /**
   * An invocation still running after this is cut, like a Lambda's timeout: its whole batch
   * counts as failed. Keep it under the queue's visibility timeout. Default 30 s, the deliver
   * Lambda's default timeout.
   */
  invocationTimeoutMs?: number;
  /** Cut for one SQS call beyond a long poll's own wait. Default DEFAULT_REQUEST_TIMEOUT_MS. */
  requestTimeoutMs?: number;
  /**
   * A record the handler reported failed (batchItemFailures) is visible again after this many
   * seconds (ChangeMessageVisibility) instead of the queue's whole visibility timeout, so its
   * retries, and the dead-letter queue after maxReceiveCount receives, come within seconds.
   * Unset: after the visibility timeout, as Lambda's event source mapping does. A batch whose
   * invocation threw or timed out always waits the visibility timeout (it may still be running).
   */
  retryDelaySeconds?: number;
  log: Logger;
}

export const DEFAULT_INVOCATION_TIMEOUT_MS = 30_000;
/** Pause after a failed poll, so a queue that is down is not hammered. */
const RETRY_PAUSE_MS = 500;

class InvocationTimeout extends Error {
  override name = "InvocationTimeout";
}

/** `work` or a rejection after `ms`, whichever comes first; the timer never outlives it. */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new InvocationTimeout(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
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

  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const invocationTimeoutMs = options.invocationTimeoutMs ?? DEFAULT_INVOCATION_TIMEOUT_MS;

  /**
   * One SQS call, aborted by stop() or after its deadline (the socket is destroyed), whatever
   * the client's own timeouts are: the poller is given its client.
   */
  function sqsCall<T>(send: (abortSignal: AbortSignal) => Promise<T>, ms: number, what: string): Promise<T> {
    const cut = new AbortController();
    const onStop = () => cut.abort();
    abort.signal.addEventListener("abort", onStop, { once: true });
    const timer = setTimeout(() => cut.abort(new InvocationTimeout(`${what} took longer than ${ms} ms`)), ms);
    return withDeadline(send(cut.signal), ms + 1_000, what).finally(() => {
      clearTimeout(timer);
      abort.signal.removeEventListener("abort", onStop);
    });
  }

  async function pollOnce(): Promise<void> {
    const received = await sqsCall(
      (abortSignal) =>
        options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: options.batchSize,
            WaitTimeSeconds: options.waitTimeSeconds,
            MessageSystemAttributeNames: ["All"],
          }),
          { abortSignal },
        ),
      options.waitTimeSeconds * 1000 + requestTimeoutMs,
      "ReceiveMessage",
    );
    const messages = received.Messages ?? [];
    if (messages.length === 0) return;
    batches++;
    const records = messages.map((m) => toRecord(m, options));
    let failed: Set<string>;
    let handled = false;
    try {
      const endsAt = Date.now() + invocationTimeoutMs;
      const context = { getRemainingTimeInMillis: () => Math.max(0, endsAt - Date.now()) };
      const response = await withDeadline(Promise.resolve().then(() => options.handler({ Records: records }, context)), invocationTimeoutMs, "deliver invocation");
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      handled = true;
    } catch (err) {
      // A thrown or timed-out handler fails the whole batch, as with Lambda; the records
      // come back when their visibility timeout ends.
      const why = err instanceof InvocationTimeout ? "deliver invocation timed out" : "deliver handler threw";
      options.log.error(`${why}; the batch will be retried`, { ...describeError(err), records: records.length });
      failed = new Set(records.map((r) => r.messageId));
    }
    const retry = options.retryDelaySeconds;
    const reported = retry === undefined || !handled ? [] : records.filter((r) => failed.has(r.messageId));
    if (reported.length > 0) {
      const changed = await sqsCall(
        (abortSignal) =>
          options.sqs.send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: options.queueUrl,
              Entries: reported.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle, VisibilityTimeout: retry })),
            }),
            { abortSignal },
          ),
        requestTimeoutMs,
        "ChangeMessageVisibilityBatch",
      ).catch((err: unknown) => ({ Failed: [{ error: err }] }));
      // Not changed: they come back after the visibility timeout instead.
      if (changed.Failed?.length) options.log.warn("retry delay not set for some failed records", { failed: changed.Failed.length });
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    if (done.length > 0) {
      const deleted = await sqsCall(
        (abortSignal) =>
          options.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: options.queueUrl,
              Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
            }),
            { abortSignal },
          ),
        requestTimeoutMs,
        "DeleteMessageBatch",
      );
      // Not deleted: delivered again after the visibility timeout (the frame's id lets clients drop it).
      if (deleted.Failed?.length) options.log.warn("queue delete failed for some records", { failed: deleted.Failed.length });
    }
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      try {
        await pollOnce();
      } catch (err) {
        if (stopped) return;
        options.log.warn("queue poll failed; retrying", describeError(err));
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
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
