/** Putting work back on the queue: chunks of big rooms and connections whose posts kept failing. */
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { byteLength, MAX_QUEUE_BODY_BYTES, type ChunkBody, type Notification } from "./messages";

/** SendMessageBatch takes at most 10 entries... */
const SQS_BATCH_ENTRIES = 10;
/** ...and at most 1 MiB of bodies in all (the sum of the entries' payloads). */
export const SQS_BATCH_BYTES = 1024 * 1024;

export function chunkBody(notification: Notification, connectionIds: string[]): string {
  const body: ChunkBody = {
    kind: "chunk",
    id: notification.id,
    room_id: notification.roomId,
    user_id: notification.userId,
    origin: notification.origin,
    data: notification.data,
    connection_ids: connectionIds,
  };
  return JSON.stringify(body);
}

/**
 * Chunk bodies for these connection lists, each list halved until its body fits in one SQS
 * message. Every chunk carries the data, so a notification near 128 KB leaves room for only
 * some thousands of ids per body.
 */
export function chunkBodies(notification: Notification, chunks: string[][]): string[] {
  const bodies: string[] = [];
  const pending = [...chunks].reverse();
  while (pending.length > 0) {
    const ids = pending.pop()!;
    if (ids.length === 0) continue;
    const body = chunkBody(notification, ids);
    if (byteLength(body) <= MAX_QUEUE_BODY_BYTES) {
      bodies.push(body);
      continue;
    }
    if (ids.length === 1) throw new RangeError(`a chunk for one connection is ${byteLength(body)} bytes; SQS takes ${MAX_QUEUE_BODY_BYTES}`);
    const half = Math.ceil(ids.length / 2);
    pending.push(ids.slice(half), ids.slice(0, half));
  }
  return bodies;
}

/** Groups bodies into batches of at most 10 entries and 1 MiB, in order. */
export function batchesOf(bodies: string[]): string[][] {
  const batches: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const body of bodies) {
    const size = byteLength(body);
    if (current.length > 0 && (current.length >= SQS_BATCH_ENTRIES || bytes + size > SQS_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(body);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Sends bodies in batches SQS accepts; entries SQS refuses are sent once more, then it throws. */
export async function sendBodies(sqs: SQSClient, queueUrl: string, bodies: string[]): Promise<void> {
  for (const batch of batchesOf(bodies)) {
    let entries = batch.map((body, i) => ({ Id: String(i), MessageBody: body }));
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
  return (notification: Notification, chunks: string[][]) => sendBodies(sqs, queueUrl, chunkBodies(notification, chunks));
}
