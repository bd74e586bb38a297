/** Both DynamoDB tables, from the schemas the local hub uses too (core/schema.ts). */
import * as aws from "@pulumi/aws";
import { authTable, budgetTable, connectionsTable, presenceTable, streamsTable, type TableSchema } from "../../core/schema";
import { create, type HubContext } from "./context";

export interface HubTables {
  connections: aws.dynamodb.Table;
  auth: aws.dynamodb.Table;
  /** Room streams (docs/protocol.md#room-streams). */
  streams: aws.dynamodb.Table;
  /** Presence (core/presence.ts): only when `presence` is on. */
  presence?: aws.dynamodb.Table;
  /** The `@connections` budget's windows (core/budget.ts): throwaway counters, never protected. */
  budget: aws.dynamodb.Table;
}

export function buildTables(ctx: HubContext): HubTables {
  const { settings } = ctx;
  const table = (key: string, schema: TableSchema, keep = settings.protectData) =>
    create(
      ctx,
      aws.dynamodb.Table,
      ctx.transform.table,
      key,
      {
        billingMode: "PAY_PER_REQUEST",
        hashKey: schema.hashKey,
        rangeKey: schema.rangeKey,
        attributes: schema.attributes.map((a) => ({ name: a.name, type: a.type })),
        globalSecondaryIndexes: schema.globalIndexes.map((index) => ({
          name: index.name,
          hashKey: index.hashKey,
          projectionType: index.nonKeyAttributes.length ? "INCLUDE" : "KEYS_ONLY",
          nonKeyAttributes: index.nonKeyAttributes.length ? [...index.nonKeyAttributes] : undefined,
        })),
        ttl: { attributeName: schema.ttlAttribute, enabled: true },
        serverSideEncryption: { enabled: true },
        pointInTimeRecovery: { enabled: keep },
        deletionProtectionEnabled: keep,
        tags: ctx.tags,
      },
      { protect: keep },
    );
  return {
    connections: table("connections", connectionsTable),
    auth: table("auth", authTable),
    streams: table("streams", streamsTable),
    ...(settings.presence ? { presence: table("presence-members", presenceTable) } : {}),
    budget: table("budget", budgetTable, false),
  };
}
