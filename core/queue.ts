/** Sending bodies to the queue in batches SQS accepts (chunk bodies: core/chunks.ts). */
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { byteLength } from "./messages";

/** SendMessageBatch takes at most 10 entries... */
const SQS_BATCH_ENTRIES = 10;
/** ...and at most 1 MiB of bodies in all (the sum of the entries' payloads). */
export const SQS_BATCH_BYTES = 1024 * 1024;

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
