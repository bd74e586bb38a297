/**
 * The hub's EventBridge bus of lifecycle events (docs/protocol.md#lifecycle-events), when
 * `presence` is on: source `notification-hub`, detail-types connection.opened/closed,
 * member.joined/left, room.occupied/vacated. A bus of its own, not the account's default
 * one: an app's rules on it see only this hub's events, and only the hub's emitting functions
 * may put events on it (events:PutEvents on its ARN, handlers/manifest.ts LIFECYCLE_GRANTS).
 * The app subscribes with rules on `eventBusName` (API destinations reach webhooks).
 */
import * as aws from "@pulumi/aws";
import { create, type HubContext } from "./context";

export function buildEventBus(ctx: HubContext): aws.cloudwatch.EventBus {
  return create(ctx, aws.cloudwatch.EventBus, ctx.transform.eventBus, "events", {
    description: "notification-hub lifecycle events (source notification-hub)",
    tags: ctx.tags,
  });
}
