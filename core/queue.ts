/** Sending bodies to the queue in batches SQS accepts (chunk bodies: core/chunks.ts). */
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { byteLength, queueBodyRefusal, queueSafeJson } from "./messages";

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

/**
 * How many times in all an entry SQS refuses is sent before the sender gives up: one budget
 * for every SQS batch this codebase sends (chunks, requeues, the SDK's publishBatch).
 */
export const SQS_SEND_ATTEMPTS = 3;

/**
 * The one SQS batch sender: JSON bodies go in batches SQS accepts (10 entries, 1 MiB), in order,
 * each checked first (queueSafeJson, queueBodyRefusal: one that SQS would refuse sends nothing);
 * entries SQS refuses are resent up to SQS_SEND_ATTEMPTS sends in all, then it throws,
 * prefixed with `label`, saying how many were refused. `delaySeconds`: SQS keeps them hidden that long. Returns the message ids in the order
 * of `bodies`.
 */
export async function sendBatches(sqs: Pick<SQSClient, "send">, queueUrl: string, jsonBodies: string[], label = "SQS", delaySeconds?: number): Promise<string[]> {
  // Everything SQS would refuse for one entry is refused here for all, before anything is sent:
  // characters go escaped (bodies are JSON texts), and a body over the limit stops the lot.
  const bodies = jsonBodies.map(queueSafeJson);
  bodies.forEach((body, i) => {
    const refusal = queueBodyRefusal(body);
    if (refusal) throw new RangeError(`${label}[${i}]: ${refusal}; nothing was sent`);
  });
  const messageIds = new Array<string>(bodies.length);
  let offset = 0;
  for (const batch of batchesOf(bodies)) {
    // Ids index into `bodies`, so a resend keeps each entry's place in the result.
    let entries = batch.map((body, i) => ({ Id: String(offset + i), MessageBody: body, ...(delaySeconds ? { DelaySeconds: delaySeconds } : {}) }));
    offset += batch.length;
    for (let attempt = 1; entries.length > 0; attempt++) {
      const result = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      for (const ok of result.Successful ?? []) if (ok.Id && ok.MessageId) messageIds[Number(ok.Id)] = ok.MessageId;
      const failed = new Set((result.Failed ?? []).map((f) => f.Id));
      if (failed.size > 0 && attempt >= SQS_SEND_ATTEMPTS) {
        const first = result.Failed?.[0];
        throw new Error(`${label}: SQS refused ${failed.size} message(s) (${first?.Code ?? "unknown"}: ${first?.Message ?? ""}); the others were sent`);
      }
      entries = entries.filter((e) => failed.has(e.Id));
    }
  }
  return messageIds;
}
