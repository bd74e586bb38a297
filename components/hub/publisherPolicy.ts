/** The IAM managed policy an app backend attaches to publish, issue and revoke tokens. */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ROOM_INDEX_NAME } from "../../core/schema";
import { policyDocument } from "../policies";
import { childName, create, NAME_LIMITS, physicalName, type HubContext } from "./context";
import { secretReadStatements, type HubSecret } from "./secret";
import type { HubTables } from "./tables";

export function buildPublisherPolicy(ctx: HubContext, tables: HubTables, queue: aws.sqs.Queue, secret: HubSecret, deleteConnections: pulumi.Output<string>) {
  return create(
    ctx,
    aws.iam.Policy,
    ctx.transform.publisherPolicy,
    "publisher",
    {
      name: physicalName(childName(ctx, "publisher"), NAME_LIMITS.policy),
      description: "Publish notifications and issue/revoke connect tokens for one notification hub",
      policy: policyDocument([
        { Action: ["sqs:SendMessage"], Resource: [queue.arn] },
        // Query: revokeToken({ userId }) lists every token row of the user (one partition).
        { Action: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"], Resource: [tables.auth.arn] },
        // Revocation closes the user's live connections in the room.
        { Action: ["dynamodb:Query"], Resource: [pulumi.interpolate`${tables.connections.arn}/index/${ROOM_INDEX_NAME}`] },
        // GetItem: the second look of a revocation spares connections made with a newer token.
        { Action: ["dynamodb:GetItem", "dynamodb:DeleteItem"], Resource: [tables.connections.arn] },
        { Action: ["execute-api:ManageConnections"], Resource: [deleteConnections] },
        // Presence on: revokeToken marks the row revoked (`revoked_at`, nothing else, nothing read back) before closing it.
        ...(tables.presence
          ? [
              {
                Action: ["dynamodb:UpdateItem"],
                Resource: [tables.connections.arn],
                Condition: { "ForAllValues:StringEquals": { "dynamodb:Attributes": ["connection_id", "revoked_at"] }, StringEqualsIfExists: { "dynamodb:ReturnValues": ["NONE"] } },
              },
              // notifier.presence (a Query of the room's members, GetItem of its counter) and notifier.occupancy (that GetItem).
              { Action: ["dynamodb:GetItem", "dynamodb:Query"], Resource: [tables.presence.arn] },
            ]
          : []),
        // notifier.history reads room streams.
        { Action: ["dynamodb:Query"], Resource: [tables.streams.arn] },
        // Backends may read the signing secret from its parameter instead of the stack output.
        ...secretReadStatements(secret),
      ]),
      tags: ctx.tags,
    },
  );
}
