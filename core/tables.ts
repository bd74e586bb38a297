/**
 * Reads and writes of the tables, shared by the handlers, the SDK and the local hub. The
 * connection data model (a row per connection, an item per room membership) is described in
 * core/rooms.ts; every write of a connection's items goes through the functions here.
 */
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type BatchGetItemCommandOutput,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { connectionIdOf, membershipKey, userChannel } from "./rooms";
import { replayUseOf, type ReplayUse } from "./replayBudget";
import { CONNECTION_ROW_TTL_SECONDS, ROOM_INDEX_NAME } from "./schema";
import { PING_UPDATE_EXPRESSION } from "./keepAlive";

export interface ConnectionRow {
  connectionId: string;
  userId: string;
  /** Rooms it is subscribed to, never its user channel. A seed row's: its room_id. */
  rooms: string[];
  /** Its token's room grants (core/rooms.ts). A seed row's: its room_id. */
  grants: string[];
  connectedAt: number;
  expiresAt: number;
  /** The token generation it connected with (rows written before this field existed have none). */
  generation?: string;
  /** The auth row's sort key its token was checked against (core/rooms.ts); absent on older rows, where it is the room. */
  authKey?: string;
  /**
   * Only on a row written before many rooms per connection: its `room_id`. Such a row is its
   * room's member itself (it sits in the room index) and has no user channel membership.
   */
  seedRoomId?: string;
  /** What `resume` has charged to its replay budget (core/replayBudget.ts); absent before its first replay. */
  replay?: ReplayUse;
  /** Epoch ms of the last evidence the connection was alive (core/liveness.ts): `$connect`, then each keep-alive with presence on. */
  seenAt?: number;
  /** Set by revokeToken with presence on: the row stays until `$disconnect` (or the sweep) removes it, which then leaves with `revoked`. */
  revokedAt?: number;
  /** The sweep is closing it as dead (`markTimedOut`): when it was last seen. Its `$disconnect`, if one comes, leaves with `timed_out` from then. */
  timedOutAt?: number;
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
const isConditionFailure = (err: unknown) => (err as Error)?.name === "ConditionalCheckFailedException";

/** A connection as `$connect` writes it; `expiresAt` defaults to the connection's 2 h life plus a margin. */
export interface NewConnection {
  connectionId: string;
  userId: string;
  rooms: string[];
  grants: string[];
  connectedAt: number;
  expiresAt?: number;
  generation: string;
  authKey: string;
}

function rowExpiry(connectedAt: number, expiresAt?: number): number {
  return expiresAt ?? Math.floor(connectedAt / 1000) + CONNECTION_ROW_TTL_SECONDS;
}

/** The item of one membership: found by the room index exactly as a seed row was. */
function membershipItem(connectionId: string, roomId: string, owner: { userId: string; connectedAt: number; expiresAt: number }): Record<string, AttributeValue> {
  return {
    connection_id: S(membershipKey(connectionId, roomId)),
    room_id: S(roomId),
    user_id: S(owner.userId),
    connected_at: N(owner.connectedAt),
    expires_at: N(owner.expiresAt),
  };
}

/** Keys of a connection's memberships: its rooms and its user channel (a seed row has only its row). */
function membershipKeys(row: Pick<ConnectionRow, "connectionId" | "userId" | "rooms" | "seedRoomId">): string[] {
  const rooms = row.rooms.filter((room) => room !== row.seedRoomId);
  if (row.seedRoomId === undefined) rooms.push(userChannel(row.userId));
  return rooms.map((room) => membershipKey(row.connectionId, room));
}

const BATCH_WRITE_LIMIT = 25;
const BATCH_WRITE_ATTEMPTS = 8;

/**
 * BatchWriteItem in slices of 25, retrying what DynamoDB leaves unprocessed (throttling)
 * with jittered backoff; throws if some requests are still unprocessed after that.
 */
export async function batchWrite(db: DynamoDBClient, table: string, requests: WriteRequest[], sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))): Promise<void> {
  for (let i = 0; i < requests.length; i += BATCH_WRITE_LIMIT) {
    let pending: WriteRequest[] = requests.slice(i, i + BATCH_WRITE_LIMIT);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === BATCH_WRITE_ATTEMPTS) throw new Error(`BatchWriteItem on ${table}: ${pending.length} request(s) still unprocessed after ${attempt} attempts`);
      if (attempt > 0) await sleep(Math.floor(Math.random() * Math.min(1_000, 25 * 2 ** attempt)));
      const result = await db.send(new BatchWriteItemCommand({ RequestItems: { [table]: pending } }));
      pending = result.UnprocessedItems?.[table] ?? [];
    }
  }
}

const deleteRequests = (keys: string[]): WriteRequest[] => keys.map((key) => ({ DeleteRequest: { Key: { connection_id: S(key) } } }));

/**
 * `$connect`'s write: the connection row, its user channel's membership and one membership per
 * room in `rooms` (the seed token's room), in one BatchWriteItem.
 */
export async function putConnection(db: DynamoDBClient, table: string, connection: NewConnection): Promise<void> {
  const expiresAt = rowExpiry(connection.connectedAt, connection.expiresAt);
  const owner = { userId: connection.userId, connectedAt: connection.connectedAt, expiresAt };
  const row: Record<string, AttributeValue> = {
    connection_id: S(connection.connectionId),
    user_id: S(connection.userId),
    generation: S(connection.generation),
    auth_key: S(connection.authKey),
    grants: { L: connection.grants.map(S) },
    connected_at: N(connection.connectedAt),
    // Liveness (core/liveness.ts): the keep-alive route moves it on with presence on.
    seen_at: N(connection.connectedAt),
    expires_at: N(expiresAt),
    // DynamoDB has no empty set: a connection in no room has no `rooms` (ADD creates it).
    ...(connection.rooms.length > 0 ? { rooms: { SS: [...new Set(connection.rooms)] } } : {}),
  };
  const items = [row, ...[userChannel(connection.userId), ...new Set(connection.rooms)].map((room) => membershipItem(connection.connectionId, room, owner))];
  await batchWrite(db, table, items.map((Item) => ({ PutRequest: { Item } })));
}

/** Undoes putConnection (a `$connect` refused after its write): the row and the memberships it wrote. */
export async function deleteNewConnection(db: DynamoDBClient, table: string, connection: Pick<NewConnection, "connectionId" | "userId" | "rooms">): Promise<void> {
  await batchWrite(db, table, deleteRequests([connection.connectionId, ...membershipKeys({ ...connection, rooms: [...new Set(connection.rooms)] })]));
}

/** Only the row, none of its memberships (they expire by TTL). Prefer removeConnection. */
export async function deleteConnection(db: DynamoDBClient, table: string, connectionId: string): Promise<void> {
  await db.send(new DeleteItemCommand({ TableName: table, Key: { connection_id: S(connectionId) } }));
}

function rowFrom(connectionId: string, item: Record<string, AttributeValue> | undefined): ConnectionRow | undefined {
  if (!item?.user_id?.S) return undefined;
  const seedRoomId = item.room_id?.S;
  const rooms = new Set(item.rooms?.SS ?? []);
  if (seedRoomId !== undefined) rooms.add(seedRoomId);
  const grants = item.grants?.L ? item.grants.L.flatMap((grant) => (grant.S !== undefined ? [grant.S] : [])) : seedRoomId !== undefined ? [seedRoomId] : [];
  return {
    connectionId,
    userId: item.user_id.S,
    rooms: [...rooms],
    grants,
    connectedAt: Number(item.connected_at?.N ?? 0),
    expiresAt: Number(item.expires_at?.N ?? 0),
    ...(item.generation?.S ? { generation: item.generation.S } : {}),
    ...(item.auth_key?.S ? { authKey: item.auth_key.S } : {}),
    ...(seedRoomId !== undefined ? { seedRoomId } : {}),
    ...(replayUseOf(item) ? { replay: replayUseOf(item) } : {}),
    ...(item.seen_at?.N ? { seenAt: Number(item.seen_at.N) } : {}),
    ...(item.revoked_at?.N ? { revokedAt: Number(item.revoked_at.N) } : {}),
    ...(item.timed_out_at?.N ? { timedOutAt: Number(item.timed_out_at.N) } : {}),
  };
}

export type RemoveOutcome = "removed" | "kept" | "absent";

/**
 * Removes a whole connection: its row (DeleteItem, ALL_OLD, so the row itself says which
 * memberships it has), then those memberships (deleteItems). `$disconnect` and a 410
 * both come here. With `writtenBefore`, a row written at or after it is kept (the handshake
 * grace, core/connections.ts). With `via` (the room a post that got 410 came through) and no
 * row left, that room's membership is deleted too: an orphan of a subscribe that raced its
 * disconnect, which would otherwise wait for its TTL. `removed` is told the deleted row (its
 * user and rooms: what presence needs).
 */
export async function removeConnection(
  db: DynamoDBClient,
  table: string,
  connectionId: string,
  options: { writtenBefore?: number; via?: string; removed?: (row: ConnectionRow) => void } = {},
): Promise<RemoveOutcome> {
  let old: Record<string, AttributeValue> | undefined;
  try {
    const result = await db.send(
      new DeleteItemCommand({
        TableName: table,
        Key: { connection_id: S(connectionId) },
        ReturnValues: "ALL_OLD",
        ...(options.writtenBefore !== undefined
          ? { ConditionExpression: "attribute_not_exists(connection_id) OR connected_at < :cutoff", ExpressionAttributeValues: { ":cutoff": N(options.writtenBefore) } }
          : {}),
      }),
    );
    old = result.Attributes;
  } catch (err) {
    if (isConditionFailure(err)) return "kept";
    throw err;
  }
  const row = rowFrom(connectionId, old);
  if (!row) {
    if (options.via !== undefined) {
      try {
        await db.send(
          new DeleteItemCommand({
            TableName: table,
            Key: { connection_id: S(membershipKey(connectionId, options.via)) },
            // The grace holds here too: $connect's batch may have written this membership before
            // its row (a throttled batch is retried item by item); that one is not an orphan.
            ...(options.writtenBefore !== undefined ? { ConditionExpression: "connected_at < :cutoff", ExpressionAttributeValues: { ":cutoff": N(options.writtenBefore) } } : {}),
          }),
        );
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    }
    return "absent";
  }
  options.removed?.(row);
  await deleteItems(db, table, membershipKeys(row));
  return "removed";
}

/** Items deleted with DeleteItem, a few at a time. Not BatchWriteItem: a role that may batch-delete may also batch-put, and only `$connect` should write rows. */
async function deleteItems(db: DynamoDBClient, table: string, keys: string[], concurrency = 8): Promise<void> {
  for (let start = 0; start < keys.length; start += concurrency) {
    await Promise.all(keys.slice(start, start + concurrency).map((key) => db.send(new DeleteItemCommand({ TableName: table, Key: { connection_id: S(key) } }))));
  }
}

/**
 * removeConnection for the app backend's revokeToken, which already read the row:
 * memberships first, then the row, so a `$disconnect` running meanwhile still finds the row
 * and removes the rest.
 */
export async function removeConnectionItems(db: DynamoDBClient, table: string, row: ConnectionRow): Promise<void> {
  await deleteItems(db, table, membershipKeys(row));
  await deleteConnection(db, table, row.connectionId);
}

/** Sets one timestamp on a connection's row, only if the row still exists (never recreating a removed one as a stub). False: no row. */
async function stampRow(db: DynamoDBClient, table: string, connectionId: string, attribute: "confirmed_at" | "revoked_at" | "timed_out_at", at: number): Promise<boolean> {
  try {
    await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { connection_id: S(connectionId) },
        UpdateExpression: "SET #a = :t",
        ConditionExpression: "attribute_exists(connection_id)",
        ExpressionAttributeNames: { "#a": attribute },
        ExpressionAttributeValues: { ":t": N(at) },
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/**
 * Liveness evidence (core/liveness.ts): a ping's write on the connection's row (`seen_at`, and
 * the previous one as `prev_seen_at`: core/keepAlive.ts PING_UPDATE_EXPRESSION). What the
 * keep-alive route's integration does on AWS (components/hub/webSocketApi.ts) and the emulator
 * locally; only pings move `seen_at`. False: no row.
 */
export async function touchConnection(db: DynamoDBClient, table: string, connectionId: string, at: number): Promise<boolean> {
  try {
    await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { connection_id: S(connectionId) },
        UpdateExpression: PING_UPDATE_EXPRESSION,
        ConditionExpression: "attribute_exists(connection_id)",
        ExpressionAttributeValues: { ":t": N(at), ":z": N(0) },
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/** The sweep found a suspect alive (`@connections` GET 200): `confirmed_at`, so it is not asked again within a stale period. `seen_at` stays the pings'. */
export function markConfirmed(db: DynamoDBClient, table: string, connectionId: string, at: number): Promise<boolean> {
  return stampRow(db, table, connectionId, "confirmed_at", at);
}

/**
 * revokeToken with presence on: marks the row revoked before closing the connection, so the
 * `$disconnect` that removes it (or the sweep, if none comes) leaves its rooms with `revoked`.
 * False: no row (already gone).
 */
export function markRevoked(db: DynamoDBClient, table: string, connectionId: string, at: number): Promise<boolean> {
  return stampRow(db, table, connectionId, "revoked_at", at);
}

/**
 * The sweep is about to close a connection it found dead (`@connections` DELETE): marks the row
 * `timed_out_at` (when it was last seen) first, because on AWS that DELETE may run `$disconnect`,
 * and whichever removes the row tells its rooms why: with the mark, both say `timed_out`.
 * False: no row (its `$disconnect` got there first).
 */
export function markTimedOut(db: DynamoDBClient, table: string, connectionId: string, lastSeenAt: number): Promise<boolean> {
  return stampRow(db, table, connectionId, "timed_out_at", lastSeenAt);
}

/** The memberships of a connection whose row stays (revokeToken with presence on): nothing is delivered to it any more. */
export async function removeMemberships(db: DynamoDBClient, table: string, row: ConnectionRow): Promise<void> {
  await deleteItems(db, table, membershipKeys(row));
}

export async function getConnection(db: DynamoDBClient, table: string, connectionId: string): Promise<ConnectionRow | undefined> {
  const result = await db.send(new GetItemCommand({ TableName: table, Key: { connection_id: S(connectionId) }, ConsistentRead: true }));
  return rowFrom(connectionId, result.Item);
}

const BATCH_GET_LIMIT = 100;
const BATCH_GET_IDLE_ROUNDS = 5;

/**
 * The rows of these connections, by id (none for an id with no row): BatchGetItem in slices of
 * 100. Unprocessed keys come back when a response passes its size cap (16 MB on DynamoDB, about
 * 1.4 MB on dynalite: rows of many long room ids) or under throttling; only rounds that return
 * nothing count towards giving up (with backoff), so big rows take more rounds, never an error.
 */
export async function getConnections(db: DynamoDBClient, table: string, connectionIds: string[], sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))): Promise<Map<string, ConnectionRow>> {
  const rows = new Map<string, ConnectionRow>();
  for (let i = 0; i < connectionIds.length; i += BATCH_GET_LIMIT) {
    let keys: Record<string, AttributeValue>[] | undefined = connectionIds.slice(i, i + BATCH_GET_LIMIT).map((id) => ({ connection_id: S(id) }));
    for (let idle = 0; keys?.length; ) {
      if (idle === BATCH_GET_IDLE_ROUNDS) throw new Error(`BatchGetItem on ${table}: ${keys.length} key(s) still unprocessed after ${idle} rounds that returned nothing`);
      if (idle > 0) await sleep(Math.floor(Math.random() * Math.min(1_000, 25 * 2 ** idle)));
      const result: BatchGetItemCommandOutput = await db.send(new BatchGetItemCommand({ RequestItems: { [table]: { Keys: keys } } }));
      const returned = result.Responses?.[table] ?? [];
      idle = returned.length > 0 ? 0 : idle + 1;
      for (const item of returned) {
        const id = item.connection_id?.S;
        const row = id === undefined ? undefined : rowFrom(id, item);
        if (row) rows.set(row.connectionId, row);
      }
      keys = result.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return rows;
}

/**
 * `too_many_rooms`: the row holds `maxRooms` rooms; `row_full`: one more room would make the
 * row pass DynamoDB's 400 KB item limit (UTF-8 bytes of names and values: 1,000 rooms of 256
 * CJK characters are 768 KB).
 */
export type SubscribeOutcome = { ok: true; /** removeRoom: the row's user. */ userId?: string } | { ok: false; reason: "too_many_rooms" | "row_full" | "unknown_connection" };

/**
 * DynamoDB's refusal of a write that would make an item pass 400 KB: a ValidationException,
 * "Item size to update has exceeded the maximum allowed size" (UpdateItem) or "Item size has
 * exceeded the maximum allowed size" (PutItem). Nothing was written.
 */
export function isItemTooLarge(err: unknown): boolean {
  return (err as Error)?.name === "ValidationException" && /Item size (to update )?has exceeded the maximum allowed size/.test((err as Error).message ?? "");
}

/**
 * Subscribes a connection to a room: `ADD rooms` on its row, only while the row exists and
 * has fewer than `maxRooms` rooms (or already holds this one: idempotent), and only if the row
 * stays within DynamoDB's item size (DynamoDB refuses the update otherwise: `row_full`), then the
 * membership item, with the row's owner and expiry. A subscribe that races its connection's
 * `$disconnect` may leave that membership behind: the first post through it (410, no row)
 * deletes it, or its TTL does.
 */
export async function addRoom(db: DynamoDBClient, table: string, connectionId: string, roomId: string, maxRooms: number): Promise<SubscribeOutcome> {
  let row: Record<string, AttributeValue> | undefined;
  try {
    const result = await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { connection_id: S(connectionId) },
        UpdateExpression: "ADD rooms :room",
        ConditionExpression: "attribute_exists(connection_id) AND (attribute_not_exists(rooms) OR size(rooms) < :max OR contains(rooms, :one))",
        ExpressionAttributeValues: { ":room": { SS: [roomId] }, ":one": S(roomId), ":max": N(maxRooms) },
        ReturnValues: "ALL_NEW",
      }),
    );
    row = result.Attributes;
  } catch (err) {
    if (isItemTooLarge(err)) return { ok: false, reason: "row_full" };
    if (!isConditionFailure(err)) throw err;
    // Which half failed: one strongly consistent read, on the refusal path only.
    return { ok: false, reason: (await getConnection(db, table, connectionId)) ? "too_many_rooms" : "unknown_connection" };
  }
  const owner = rowFrom(connectionId, row);
  if (!owner) return { ok: false, reason: "unknown_connection" };
  // A seed row is its room's member itself: a second item would deliver twice.
  if (owner.seedRoomId !== roomId) {
    await db.send(new PutItemCommand({ TableName: table, Item: membershipItem(connectionId, roomId, owner) }));
  }
  return { ok: true };
}

/**
 * Unsubscribes a connection from a room: `DELETE rooms` on its row, then the membership item.
 * A seed row's own room is left by removing its `room_id` (which takes the row out of the room index).
 * Two writes, no transaction: a subscribe and an unsubscribe of one room racing on one
 * connection can leave the membership without the row naming it (it still receives the room
 * until it subscribes and unsubscribes again, disconnects and a post gets 410, or TTL). The
 * browser client sends one subscribe at a time, which keeps its own join/leave from racing.
 */
export async function removeRoom(db: DynamoDBClient, table: string, connectionId: string, roomId: string): Promise<SubscribeOutcome> {
  let old: Record<string, AttributeValue> | undefined;
  try {
    const result = await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { connection_id: S(connectionId) },
        UpdateExpression: "DELETE rooms :room",
        ConditionExpression: "attribute_exists(connection_id)",
        ExpressionAttributeValues: { ":room": { SS: [roomId] } },
        ReturnValues: "ALL_OLD",
      }),
    );
    old = result.Attributes;
  } catch (err) {
    if (isConditionFailure(err)) return { ok: false, reason: "unknown_connection" };
    throw err;
  }
  if (old?.room_id?.S === roomId) {
    try {
      await db.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { connection_id: S(connectionId) },
          UpdateExpression: "REMOVE room_id",
          ConditionExpression: "room_id = :room",
          ExpressionAttributeValues: { ":room": S(roomId) },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }
  await db.send(new DeleteItemCommand({ TableName: table, Key: { connection_id: S(membershipKey(connectionId, roomId)) } }));
  return { ok: true, ...(old?.user_id?.S ? { userId: old.user_id.S } : {}) };
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
