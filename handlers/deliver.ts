/**
 * SQS consumer: every record of the batch is delivered or reported. Bad records (not JSON,
 * no room, wrong types, too big) are reported failed with a logged reason, so after
 * maxReceiveCount they rest in the dead-letter queue instead of vanishing. Connections whose
 * posts kept failing go back on the queue as one chunk; a chunk that fails is reported, so
 * SQS redelivers it and finally dead-letters it.
 *
 * The budget (core/budget.ts): records of the bulk queue post in the big-room lane, the
 * others in the priority lane. Posts the budget held back (no token before the invocation's
 * deadline, or still 429 after retries) are `deferred`: they go back on their lane's queue as
 * a chunk with the stored frame (same id, same seq) and the record counts as delivered, so a
 * busy budget never costs a receive, never dead-letters and never loses a notification.
 */
import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { DEFERRED_DELAY_SECONDS, postDeadline } from "../core/budget";
import type { InvocationContext } from "../core/events";
import { fanOutToRoom, mapWithConcurrency, postToConnections, type FanoutDeps, type FanoutResult } from "../core/fanout";
import { errorSummary, observerOf, type DeliverySummary, type RecordOutcome } from "../core/hubEvents";
import { parseQueueBody } from "../core/chunks";
import type { MultiRoomPublish } from "../core/messages";
import { frameToSend, serialPerKey, StreamBusyError } from "../core/streams";
import { bodyEnqueuerFrom, fanoutFrom, lambdaSource, presenceFrom, type HandlerSource } from "./dependencies";
import { diffFlushRoom, flushDiff } from "../core/presence";

/** Records of one batch handled at once; each also posts with bounded concurrency. */
const RECORD_CONCURRENCY = 4;
export type { InvocationContext } from "../core/events";

export type DeliverHandler = (event: SQSEvent, context?: InvocationContext) => Promise<SQSBatchResponse>;

/**
 * The fan-out dependencies; their `observe` is told each record's outcome (`record.delivered`,
 * `record.rejected`, `record.failed`) and each failed or 410 post. Default: a log line each.
 */
export type DeliverDeps = FanoutDeps & {
  /** Sends publish bodies to the notification queue: a multi-room publish goes back as one body per room. */
  enqueueBodies?: (bodies: string[]) => Promise<void>;
  /** With presence on: sends a room's buffered member diff (core/presence.ts flushDiff), for the flushes presence queues for itself. */
  flushDiff?: (roomId: string) => Promise<boolean>;
};

export function createDeliverHandler(deps: DeliverDeps): DeliverHandler {
  const serially = serialPerKey();
  const observe = observerOf(deps);
  // Each room of a multi-room publish becomes a record of its own (its own outcome, its own
  // retries, chunks and budget, as any publish); the rooms' ids and claims make a redelivery of
  // this record or of a room's body a duplicate, not a second notification.
  const split = async (about: { messageId: string; receiveCount: number }, publish: MultiRoomPublish): Promise<RecordOutcome> => {
    if (!deps.enqueueBodies) return { type: "record.rejected", ...about, code: "no_queue", reason: "a publish to several rooms is split through the queue, and this deliver function has no QUEUE_URL" };
    try {
      await deps.enqueueBodies(publish.roomBodies());
    } catch (err) {
      return { type: "record.failed", ...about, cause: "split_failed", roomId: publish.notifications[0].roomId, notificationId: publish.publishId, error: errorSummary(err) };
    }
    return { type: "record.split", ...about, notificationId: publish.publishId, rooms: publish.notifications.length };
  };
  const bulkSuffix = deps.bulkQueueName ? `:${deps.bulkQueueName}` : undefined;
  const deliverRecord = async (record: SQSRecord, deadline: number | undefined): Promise<RecordOutcome> => {
    const lane = bulkSuffix && record.eventSourceARN?.endsWith(bulkSuffix) ? ("bulk" as const) : ("priority" as const);
    const recordDeps: DeliverDeps = { ...deps, lane, deadline };
    const about = { messageId: record.messageId, receiveCount: Number(record.attributes?.ApproximateReceiveCount ?? 1) };
    const flushRoom = diffFlushRoom(record.body ?? "");
    if (flushRoom !== undefined) {
      if (!deps.flushDiff) return { type: "record.rejected", ...about, code: "no_presence", reason: "a presence diff flush, and this deliver function has no presence table" };
      return { type: "record.flushed", ...about, roomId: flushRoom, sent: await deps.flushDiff(flushRoom) };
    }
    const parsed = parseQueueBody(record.body ?? "", record.messageId);
    if (!parsed.ok) return { type: "record.rejected", ...about, code: parsed.code, reason: parsed.reason };
    if (parsed.value.split) return split(about, parsed.value.split);
    const { notification, connectionIds } = parsed.value;
    const isChunk = connectionIds !== undefined;
    const failed = { type: "record.failed" as const, ...about, roomId: notification.roomId, notificationId: notification.id };
    let result: FanoutResult;
    // Store before send: a chunk carries the stored frame; a publish is appended to its
    // room's stream first (a redelivery gets its first seq and bytes back, never a new one).
    let frame = parsed.value.frame;
    let seq: number | undefined;
    let duplicate = false;
    let heldBy: string | undefined;
    let settle: (() => Promise<void>) | undefined;
    // An id that is not this record's own (an idempotency key, a room of a multi-room publish):
    // the claim names this record, so a copy from another queue message stays a duplicate.
    const source = notification.id !== record.messageId ? record.messageId : undefined;
    try {
      if (frame === undefined) ({ frame, seq, duplicate, heldBy, settle } = await serially(notification.roomId, () => frameToSend(deps.db, deps.streams, notification, source)));
      if (heldBy !== undefined) {
        const none = { delivered: 0, gone: 0, failed: 0, handedOff: 0, itemsRead: 0, capacityUnits: 0 };
        return { type: "record.delivered", ...about, notificationId: notification.id, roomId: notification.roomId, chunk: false, ...(seq ? { seq } : {}), redelivered: true, ...none, heldBy, requeued: false };
      }
      result = isChunk ? await postToConnections(recordDeps, notification, connectionIds, frame) : await fanOutToRoom(recordDeps, notification, frame);
      await settle?.();
    } catch (err) {
      return { ...failed, cause: err instanceof StreamBusyError ? "stream_busy" : "delivery_failed", error: errorSummary(err) };
    }
    const summary: DeliverySummary = {
      notificationId: notification.id,
      roomId: notification.roomId,
      chunk: isChunk,
      ...(seq !== undefined ? { seq } : {}),
      redelivered: duplicate,
      delivered: result.delivered,
      gone: result.gone,
      failed: result.failed.length,
      deferred: result.deferred.length,
      handedOff: result.handedOff,
      itemsRead: result.itemsRead,
      capacityUnits: result.capacityUnits,
    };
    if (result.failed.length === 0) return { type: "record.delivered", ...about, ...summary, requeued: false };
    if (isChunk && deps.enqueueChunks && result.deferred.length === result.failed.length) {
      // Only the budget held these back: back on this lane's queue, same frame, no receive spent.
      try {
        await deps.enqueueChunks(notification, [result.deferred], frame, { lane, delaySeconds: DEFERRED_DELAY_SECONDS });
        return { type: "record.delivered", ...about, ...summary, requeued: true };
      } catch (err) {
        return { ...failed, cause: "requeue_failed", summary, error: errorSummary(err) };
      }
    }
    if (!isChunk && deps.enqueueChunks) {
      // Retry only the connections that failed, once more through the queue and its redrive policy.
      try {
        await deps.enqueueChunks(notification, [result.failed], frame, { lane, delaySeconds: result.deferred.length === result.failed.length ? DEFERRED_DELAY_SECONDS : undefined });
        return { type: "record.delivered", ...about, ...summary, requeued: true };
      } catch (err) {
        return { ...failed, cause: "requeue_failed", summary, error: errorSummary(err) };
      }
    }
    return { ...failed, cause: "delivery_incomplete", summary };
  };

  // Whatever one record does (a body no check foresaw, a throwing dependency), it fails
  // alone: the other records of the batch are still delivered and deleted.
  const confined = async (record: SQSRecord, deadline: number | undefined): Promise<RecordOutcome> => {
    let outcome: RecordOutcome;
    try {
      outcome = await deliverRecord(record, deadline);
    } catch (err) {
      const error = errorSummary(err);
      const receiveCount = Number(record?.attributes?.ApproximateReceiveCount ?? 1);
      outcome = { type: "record.rejected", messageId: record?.messageId, receiveCount, code: "unexpected_error", reason: `${error.name}: ${error.message}`, error };
    }
    observe(outcome);
    return outcome;
  };

  return async (event, context) => {
    const records = Array.isArray(event?.Records) ? event.Records : [];
    // Posts not started by then are deferred: the invocation ends in time to requeue them.
    const remaining = context?.getRemainingTimeInMillis?.();
    const deadline = remaining === undefined ? undefined : postDeadline(remaining);
    const outcomes = await mapWithConcurrency(records, RECORD_CONCURRENCY, (record) => confined(record, deadline));
    const batchItemFailures: SQSBatchItemFailure[] = records
      .filter((_, i) => !["record.delivered", "record.split", "record.flushed"].includes(outcomes[i].type))
      .map((record) => ({ itemIdentifier: record.messageId }));
    return { batchItemFailures };
  };
}

export function deliverFromEnvironment(source: HandlerSource = lambdaSource("deliver")): DeliverHandler {
  const fanout = fanoutFrom(source);
  const presence = presenceFrom(source, fanout.management);
  return createDeliverHandler({ ...fanout, enqueueBodies: bodyEnqueuerFrom(source), flushDiff: presence ? (roomId) => flushDiff(presence, roomId) : undefined });
}
