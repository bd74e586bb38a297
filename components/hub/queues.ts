/**
 * The notification queue, the bulk queue (the big-room lane: chunks of rooms bigger than
 * `largeRoomChunkSize`, consumed through their own mapping and concurrency) and the one
 * dead-letter queue both redrive to, so one alarm watches every undelivered notification.
 */
import * as aws from "@pulumi/aws";
import { childName, create, NAME_LIMITS, physicalName, type HubContext } from "./context";

export interface HubQueues {
  queue: aws.sqs.Queue;
  bulkQueue: aws.sqs.Queue;
  deadLetterQueue: aws.sqs.Queue;
}

export function buildQueues(ctx: HubContext): HubQueues {
  const { settings } = ctx;
  const deadLetterQueue = create(ctx, aws.sqs.Queue, ctx.transform.queue, "dead-letters", {
    name: physicalName(childName(ctx, "dead-letters"), NAME_LIMITS.queue),
    messageRetentionSeconds: 14 * 24 * 3600,
    sqsManagedSseEnabled: true,
    tags: ctx.tags,
  });
  const consumed = (key: string) =>
    create(ctx, aws.sqs.Queue, ctx.transform.queue, key, {
      name: physicalName(childName(ctx, key), NAME_LIMITS.queue),
      visibilityTimeoutSeconds: settings.visibilityTimeoutSeconds,
      receiveWaitTimeSeconds: 20,
      messageRetentionSeconds: 4 * 24 * 3600,
      sqsManagedSseEnabled: true,
      redrivePolicy: deadLetterQueue.arn.apply((arn) => JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: settings.maxReceiveCount })),
      tags: ctx.tags,
    });
  return { queue: consumed("notifications"), bulkQueue: consumed("bulk-notifications"), deadLetterQueue };
}
