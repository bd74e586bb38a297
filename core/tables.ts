/** Reads and writes of the two tables, shared by the handlers, the SDK and the local hub. */
import {
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
} from "@aws-sdk/client-dynamodb";
import { connectionIdOf } from "./rooms";
import { CONNECTION_ROW_TTL_SECONDS, ROOM_INDEX_NAME } from "./schema";

export interface ConnectionRow {
  connectionId: string;
  roomId: string;
  userId: string;
  connectedAt: number;
  expiresAt: number;
  /** The token generation it connected with (rows written before this field existed have none). */
  generation?: string;
  /** The auth row's sort key its token was checked against (core/rooms.ts); absent on older rows, where it is roomId. */
  authKey?: string;
}

/**
 * A token row of the auth table: key (user_id, room_id). Its sort key (attribute `room_id`, kept
 * for deployed tables) is the auth key: the room id of a seed token, grantsAuthKey(grants) of a
 * token with `rooms` (core/rooms.ts).
 */
export interface AuthRow {
  userId: string;
  authKey: string;
  tokenHash: string;
  generation: string;
  expiresAt: number;
}

export interface RoomPage {
  connections: { connectionId: string; userId: string | null }[];
  /** Items DynamoDB read for this page, and the read capacity it charged. */
  itemsRead: number;
  capacityUnits: number;
}

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });

type NewConnectionRow = Omit<ConnectionRow, "expiresAt"> & { expiresAt?: number };

function connectionItem(row: NewConnectionRow): Record<string, AttributeValue> {
  const expiresAt = row.expiresAt ?? Math.floor(row.connectedAt / 1000) + CONNECTION_ROW_TTL_SECONDS;
  return {
    connection_id: S(row.connectionId),
    room_id: S(row.roomId),
    user_id: S(row.userId),
    connected_at: N(row.connectedAt),
    expires_at: N(expiresAt),
    ...(row.generation ? { generation: S(row.generation) } : {}),
    ...(row.authKey ? { auth_key: S(row.authKey) } : {}),
  };
}

export async function putConnection(db: DynamoDBClient, table: string, row: NewConnectionRow): Promise<void> {
  await db.send(new PutItemCommand({ TableName: table, Item: connectionItem(row) }));
}

export async function deleteConnection(db: DynamoDBClient, table: string, connectionId: string): Promise<void> {
  await db.send(new DeleteItemCommand({ TableName: table, Key: { connection_id: S(connectionId) } }));
}

/**
 * Deletes a connection's row only if it was written before `cutoffMs`; true when it did. A
 * younger row (or none) is kept: see HANDSHAKE_GRACE_MS in core/connections.ts.
 */
export async function deleteConnectionWrittenBefore(db: DynamoDBClient, table: string, connectionId: string, cutoffMs: number): Promise<boolean> {
  try {
    await db.send(
      new DeleteItemCommand({
        TableName: table,
        Key: { connection_id: S(connectionId) },
        ConditionExpression: "connected_at < :cutoff",
        ExpressionAttributeValues: { ":cutoff": N(cutoffMs) },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

export async function getConnection(db: DynamoDBClient, table: string, connectionId: string): Promise<ConnectionRow | undefined> {
  const result = await db.send(new GetItemCommand({ TableName: table, Key: { connection_id: S(connectionId) }, ConsistentRead: true }));
  const item = result.Item;
  if (!item?.room_id?.S || !item.user_id?.S) return undefined;
  return {
    connectionId,
    roomId: item.room_id.S,
    userId: item.user_id.S,
    connectedAt: Number(item.connected_at?.N ?? 0),
    expiresAt: Number(item.expires_at?.N ?? 0),
    ...(item.generation?.S ? { generation: item.generation.S } : {}),
    ...(item.auth_key?.S ? { authKey: item.auth_key.S } : {}),
  };
}

/**
 * Pages through one room's connections on the room index: cost follows the room, not the
 * table. Rows past their TTL (not yet swept by DynamoDB) are skipped.
 */
export async function* roomPages(
  db: DynamoDBClient,
  table: string,
  roomId: string,
  options: { pageSize?: number; nowSeconds?: number } = {},
): AsyncGenerator<RoomPage> {
  const nowSeconds = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const result = await db.send(
      new QueryCommand({
        TableName: table,
        IndexName: ROOM_INDEX_NAME,
        KeyConditionExpression: "room_id = :room",
        ExpressionAttributeValues: { ":room": S(roomId) },
        ExclusiveStartKey: startKey,
        Limit: options.pageSize,
        ReturnConsumedCapacity: "TOTAL",
      }),
    );
    const connections = (result.Items ?? [])
      .filter((item) => !item.expires_at?.N || Number(item.expires_at.N) > nowSeconds)
      // A membership item's key names its connection and room (core/rooms.ts); a seed row's is the id.
      .map((item) => ({ connectionId: connectionIdOf(item.connection_id?.S ?? ""), userId: item.user_id?.S ?? null }))
      .filter((c) => c.connectionId !== "");
    yield { connections, itemsRead: result.ScannedCount ?? result.Count ?? 0, capacityUnits: result.ConsumedCapacity?.CapacityUnits ?? 0 };
    startKey = result.LastEvaluatedKey;
  } while (startKey);
}

/** A row as stored; tokenHash "" when it has none (a damaged row: never a match, but still revocable). */
function authRowOf(item: Record<string, AttributeValue> | undefined): AuthRow | undefined {
  if (!item?.user_id?.S || !item.room_id?.S) return undefined;
  return {
    userId: item.user_id.S,
    authKey: item.room_id.S,
    tokenHash: item.token?.S ?? "",
    generation: item.generation?.S ?? "",
    expiresAt: Number(item.expires_at?.N ?? 0),
  };
}

export async function getAuthRow(db: DynamoDBClient, table: string, userId: string, authKey: string): Promise<AuthRow | undefined> {
  const result = await db.send(
    new GetItemCommand({ TableName: table, Key: { user_id: S(userId), room_id: S(authKey) }, ConsistentRead: true }),
  );
  const row = authRowOf(result.Item);
  return row?.tokenHash ? row : undefined;
}

/** Every row of a user (both forms, expired or damaged ones too, so revocation deletes them all): one partition of the auth table, page by page. */
export async function* userAuthRows(db: DynamoDBClient, table: string, userId: string, options: { pageSize?: number } = {}): AsyncGenerator<AuthRow> {
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const result = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "user_id = :user",
        ExpressionAttributeValues: { ":user": S(userId) },
        ExclusiveStartKey: startKey,
        Limit: options.pageSize,
        ConsistentRead: true,
      }),
    );
    for (const item of result.Items ?? []) {
      const row = authRowOf(item);
      if (row) yield row;
    }
    startKey = result.LastEvaluatedKey;
  } while (startKey);
}

function authRowItem(row: AuthRow): Record<string, AttributeValue> {
  return { user_id: S(row.userId), room_id: S(row.authKey), token: S(row.tokenHash), generation: S(row.generation), expires_at: N(row.expiresAt) };
}

/** Writes a new generation only if no row exists, so two concurrent issuers agree on one. */
export async function createAuthRow(db: DynamoDBClient, table: string, row: AuthRow): Promise<boolean> {
  try {
    await db.send(
      new PutItemCommand({
        TableName: table,
        Item: authRowItem(row),
        ConditionExpression: "attribute_not_exists(user_id) OR attribute_not_exists(generation) OR expires_at < :now",
        ExpressionAttributeValues: { ":now": N(Math.floor(Date.now() / 1000)) },
      }),
    );
    return true;
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") return false;
    throw err;
  }
}

/** Pushes a row's expiry later (never earlier) for a token issued on an existing generation. */
export async function extendAuthRow(db: DynamoDBClient, table: string, row: AuthRow, expiresAt: number): Promise<void> {
  if (expiresAt <= row.expiresAt) return;
  try {
    await db.send(
      new PutItemCommand({
        TableName: table,
        Item: authRowItem({ ...row, expiresAt }),
        // Only if the row is still the same generation: never resurrect a revoked one.
        ConditionExpression: "generation = :generation",
        ExpressionAttributeValues: { ":generation": S(row.generation) },
      }),
    );
  } catch (err) {
    if ((err as Error).name === "ConditionalCheckFailedException") {
      throw new Error("the token row changed while issuing (revoked concurrently); issue again");
    }
    throw err;
  }
}

export async function deleteAuthRow(db: DynamoDBClient, table: string, userId: string, authKey: string): Promise<void> {
  await db.send(new DeleteItemCommand({ TableName: table, Key: { user_id: S(userId), room_id: S(authKey) } }));
}
