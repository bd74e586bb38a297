/** The notification queue and its dead-letter queue. */
import * as aws from "@pulumi/aws";
import { childName, create, NAME_LIMITS, physicalName, type HubContext } from "./context";

export interface HubQueues {
  queue: aws.sqs.Queue;
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
  const queue = create(ctx, aws.sqs.Queue, ctx.transform.queue, "notifications", {
    name: physicalName(childName(ctx, "notifications"), NAME_LIMITS.queue),
    visibilityTimeoutSeconds: settings.visibilityTimeoutSeconds,
    receiveWaitTimeSeconds: 20,
    messageRetentionSeconds: 4 * 24 * 3600,
    sqsManagedSseEnabled: true,
    redrivePolicy: deadLetterQueue.arn.apply((arn) => JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: settings.maxReceiveCount })),
    tags: ctx.tags,
  });
  return { queue, deadLetterQueue };
}
