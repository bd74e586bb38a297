/**
 * SQS consumer: every record of the batch is delivered or reported. Bad records (not JSON,
 * no room, wrong types, too big) are reported failed with a logged reason, so after
 * maxReceiveCount they rest in the dead-letter queue instead of vanishing. Connections whose
 * posts kept failing go back on the queue as one chunk; a chunk that fails is reported, so
 * SQS redelivers it and finally dead-letters it.
 */
import type { SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { fanOutToRoom, mapWithConcurrency, postToConnections, type FanoutDeps, type FanoutResult } from "../core/fanout";
import { describeError } from "../core/log";
import { parseQueueBody } from "../core/chunks";
import { frameToSend, serialPerKey, StreamBusyError } from "../core/streams";
import { fanoutFrom, lambdaSource, type HandlerSource } from "./dependencies";

/** Records of one batch handled at once; each also posts with bounded concurrency. */
const RECORD_CONCURRENCY = 4;

export type DeliverHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

export function createDeliverHandler(deps: FanoutDeps): DeliverHandler {
  const serially = serialPerKey();
  const deliverRecord = async (record: SQSRecord): Promise<boolean> => {
    const fields = { message_id: record.messageId, receive_count: Number(record.attributes?.ApproximateReceiveCount ?? 1) };
    const parsed = parseQueueBody(record.body ?? "", record.messageId);
    if (!parsed.ok) {
      deps.log.error("record rejected", { ...fields, code: parsed.code, reason: parsed.reason });
      return false;
    }
    const { notification, connectionIds } = parsed.value;
    const isChunk = connectionIds !== undefined;
    let result: FanoutResult;
    // Store before send: a chunk carries the stored frame; a publish is appended to its
    // room's stream first (a redelivery gets its first seq and bytes back, never a new one).
    let frame = parsed.value.frame;
    let seq: number | undefined;
    let duplicate = false;
    try {
      if (frame === undefined) ({ frame, seq, duplicate } = await serially(notification.roomId, () => frameToSend(deps.db, deps.streams, notification)));
      result = isChunk ? await postToConnections(deps, notification, connectionIds, frame) : await fanOutToRoom(deps, notification, frame);
    } catch (err) {
      const busy = err instanceof StreamBusyError;
      deps.log[busy ? "warn" : "error"](busy ? "message being stored by another invocation; retried later" : "delivery failed", {
        ...fields,
        room_id: notification.roomId,
        ...describeError(err),
      });
      return false;
    }
    const summary = {
      ...fields,
      id: notification.id,
      room_id: notification.roomId,
      chunk: isChunk,
      seq,
      redelivered: duplicate || undefined,
      delivered: result.delivered,
      gone: result.gone,
      failed: result.failed.length,
      handed_off: result.handedOff,
      items_read: result.itemsRead,
      capacity_units: result.capacityUnits,
    };
    if (result.failed.length === 0) {
      deps.log.info("delivered", summary);
      return true;
    }
    if (!isChunk && deps.enqueueChunks) {
      // Retry only the connections that failed, once more through the queue and its redrive policy.
      try {
        await deps.enqueueChunks(notification, [result.failed], frame);
        deps.log.warn("delivered; failed connections requeued", summary);
        return true;
      } catch (err) {
        deps.log.error("failed connections not requeued", { ...summary, ...describeError(err) });
        return false;
      }
    }
    deps.log.warn("delivery incomplete; record will be redelivered", summary);
    return false;
  };

  // Whatever one record does (a body no check foresaw, a throwing dependency), it fails
  // alone: the other records of the batch are still delivered and deleted.
  const confined = async (record: SQSRecord): Promise<boolean> => {
    try {
      return await deliverRecord(record);
    } catch (err) {
      deps.log.error("record rejected", { message_id: record?.messageId, code: "unexpected_error", ...describeError(err) });
      return false;
    }
  };

  return async (event) => {
    const records = Array.isArray(event?.Records) ? event.Records : [];
    const outcomes = await mapWithConcurrency(records, RECORD_CONCURRENCY, confined);
    const batchItemFailures: SQSBatchItemFailure[] = records
      .filter((_, i) => !outcomes[i])
      .map((record) => ({ itemIdentifier: record.messageId }));
    return { batchItemFailures };
  };
}

export function deliverFromEnvironment(source: HandlerSource = lambdaSource("deliver")): DeliverHandler {
  return createDeliverHandler(fanoutFrom(source));
}
