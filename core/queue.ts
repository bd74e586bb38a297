/** Putting work back on the queue: chunks of big rooms and connections whose posts kept failing. */
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { ChunkBody, Notification } from "./messages";

/** SendMessageBatch takes at most 10 entries. */
const SQS_BATCH = 10;

export function chunkBody(notification: Notification, connectionIds: string[]): string {
  const body: ChunkBody = {
    kind: "chunk",
    id: notification.id,
    room_id: notification.roomId,
    user_id: notification.userId,
    data: notification.data,
    connection_ids: connectionIds,
  };
  return JSON.stringify(body);
}

/** Sends bodies in batches of 10; entries SQS refuses are sent once more, then it throws. */
export async function sendBodies(sqs: SQSClient, queueUrl: string, bodies: string[]): Promise<void> {
  for (let start = 0; start < bodies.length; start += SQS_BATCH) {
    let entries = bodies.slice(start, start + SQS_BATCH).map((body, i) => ({ Id: String(i), MessageBody: body }));
    for (let attempt = 0; entries.length > 0; attempt++) {
      const result = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      const failed = new Set((result.Failed ?? []).map((f) => f.Id));
      if (failed.size === 0) break;
      if (attempt >= 1) {
        const first = result.Failed?.[0];
        throw new Error(`SQS refused ${failed.size} message(s): ${first?.Code ?? "unknown"} ${first?.Message ?? ""}`.trim());
      }
      entries = entries.filter((e) => failed.has(e.Id));
    }
  }
}

export function chunkEnqueuer(sqs: SQSClient, queueUrl: string) {
  return (notification: Notification, chunks: string[][]) => sendBodies(sqs, queueUrl, chunks.map((ids) => chunkBody(notification, ids)));
}
