/** A deliver handler for worker-pool tests: a record whose body is "hang" never finishes. */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";

export function createHangingDeliver(): (event: SQSEvent) => Promise<SQSBatchResponse> {
  return (event) => (event.Records.some((r) => r.body === "hang") ? new Promise<never>(() => undefined) : Promise.resolve({ batchItemFailures: [] }));
}
