/**
 * One definition of each DynamoDB table. The Pulumi component and the local hub both build
 * their tables from these objects, so a key or index renamed here is renamed everywhere.
 */

export interface AttributeDefinition {
  name: string;
  type: "S" | "N";
}

export interface GlobalIndexDefinition {
  name: string;
  hashKey: string;
  /** Non-key attributes copied into the index; the keys are always there. */
  nonKeyAttributes: string[];
}

export interface TableSchema {
  hashKey: string;
  rangeKey?: string;
  attributes: AttributeDefinition[];
  ttlAttribute: string;
  globalIndexes: GlobalIndexDefinition[];
}

/** Live WebSocket connections: one row per connection, found by room through the GSI. */
export const connectionsTable = {
  hashKey: "connection_id",
  attributes: [
    { name: "connection_id", type: "S" },
    { name: "room_id", type: "S" },
  ],
  ttlAttribute: "expires_at",
  globalIndexes: [
    // user_id rides along so revocation can pick one user's connections out of a room
    // without a read per connection.
    { name: "room_id-index", hashKey: "room_id", nonKeyAttributes: ["user_id"] },
  ],
} as const satisfies TableSchema;

/** Issued token secrets: one bcrypt hash per (user, room), the second factor of a token. */
export const authTable = {
  hashKey: "user_id",
  rangeKey: "room_id",
  attributes: [
    { name: "user_id", type: "S" },
    { name: "room_id", type: "S" },
  ],
  ttlAttribute: "expires_at",
  globalIndexes: [],
} as const satisfies TableSchema;

/**
 * Room streams (docs/protocol.md#room-streams): one partition per stream (a room id, or `user:{id}`),
 * sorted by `seq`. A frame item holds the exact frame text clients got (`frame`), its
 * `message_id` and `expires_at` (a tombstone: `skip` and no `message_id`). The same table holds
 * each message's claim and each stream's seq counter under keys no stream id can take (see
 * core/streams.ts), so exactly-once needs no second table.
 */
export const streamsTable = {
  hashKey: "stream_id",
  rangeKey: "seq",
  attributes: [
    { name: "stream_id", type: "S" },
    { name: "seq", type: "N" },
  ],
  ttlAttribute: "expires_at",
  globalIndexes: [],
} as const satisfies TableSchema;

/**
 * Presence (core/presence.ts), only when the component's `presence` is on: one partition per
 * room, one item per member user (sort key `user_id`), plus the room's counter and diff buffer
 * under sort keys no id can take, and the sweep's pending leaves in partitions of their own.
 */
export const presenceTable = {
  hashKey: "room_id",
  rangeKey: "user_id",
  attributes: [
    { name: "room_id", type: "S" },
    { name: "user_id", type: "S" },
  ],
  ttlAttribute: "expires_at",
  globalIndexes: [],
} as const satisfies TableSchema;

/**
 * The hub's `@connections` budget (core/budget.ts): one item per 100 ms window, `posts#{window}`,
 * counting the tokens handed out in it; TTL removes them an hour later.
 */
export const budgetTable = {
  hashKey: "bucket",
  attributes: [{ name: "bucket", type: "S" }],
  ttlAttribute: "expires_at",
  globalIndexes: [],
} as const satisfies TableSchema;

/** Default `history.retentionHours`; 0 turns streams off. */
export const DEFAULT_RETENTION_HOURS = 24;

export const ROOM_INDEX_NAME = connectionsTable.globalIndexes[0].name;

/** API Gateway closes every WebSocket after 2 h; rows outlive that by a margin, then TTL sweeps them. */
export const CONNECTION_ROW_TTL_SECONDS = 2 * 60 * 60 + 10 * 60;

/** Input for DynamoDB CreateTable (used by the local hub and tests; Pulumi maps the same schema). */
export function createTableInput(tableName: string, schema: TableSchema) {
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST" as const,
    AttributeDefinitions: schema.attributes.map((a) => ({ AttributeName: a.name, AttributeType: a.type })),
    KeySchema: [
      { AttributeName: schema.hashKey, KeyType: "HASH" as const },
      ...(schema.rangeKey ? [{ AttributeName: schema.rangeKey, KeyType: "RANGE" as const }] : []),
    ],
    GlobalSecondaryIndexes: schema.globalIndexes.length
      ? schema.globalIndexes.map((index) => ({
          IndexName: index.name,
          KeySchema: [{ AttributeName: index.hashKey, KeyType: "HASH" as const }],
          Projection: index.nonKeyAttributes.length
            ? { ProjectionType: "INCLUDE" as const, NonKeyAttributes: [...index.nonKeyAttributes] }
            : { ProjectionType: "KEYS_ONLY" as const },
        }))
      : undefined,
  };
}
