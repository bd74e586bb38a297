/**
 * Presence (docs/protocol.md#presence): who is in a room, per user (tabs and devices merge),
 * how many, and the member events, kept in a table of its own that exists only when presence is
 * on (core/schema.ts presenceTable: partition `room_id`, sort `user_id`).
 *
 * Items of one room's partition:
 * - one member item per user: `conns` (string set: the user's connections subscribed to the
 *   room), `since` (epoch ms of the first), `expires_at` (TTL, pushed on by every join), and
 *   while the user's last connection is gone but the leave is not decided yet, `leaving_at` and
 *   `leave_reason`;
 * - the room's counter `\u001fcount`: `users`, `connections` (occupancy is one GetItem, whatever
 *   the room's size);
 * - the room's diff buffer `\u001fdiff` (rooms past `eventMembersLimit`): `joined`, `left`,
 *   `left_reasons` (string sets), `flushed_at`.
 * Ids cannot hold control characters (core/messages.ts normalizeId), so the reserved sort keys
 * never meet a user, and `user_id >= " "` reads members only.
 *
 * Outside the rooms' partitions: pending leaves (`\u001fpending\u001f{shard}`, sort key
 * `{leaving_at, 13 digits}\u001f{room}\u001f{user}`, read in time order by the sweep) and rooms
 * with a diff waiting (`\u001fdiffs`, sort key the room).
 *
 * Why a user's connections are a set and not a number: `ADD`/`DELETE` of one connection id is
 * idempotent, so a `$disconnect` and a 410 removing the same connection, or a retried route,
 * move the counts once. The writer whose update made the set empty (or non-empty) is the one
 * that sees the transition (ReturnValues ALL_OLD), so each join and each leave is decided once.
 *
 * Grace: a close (`closed`, `timed_out`) that empties a user's set only marks the leave as
 * pending; a join within `graceMs` clears the mark (no leave, no join: API Gateway's 2-hour
 * rotation never flaps). The sweep (handlers/sweep.ts) decides the leaves whose grace is over
 * with a conditional DeleteItem (still empty, same mark), so a reconnect racing it is either
 * seen by it or sees no item and joins anew. `unsubscribed` and `revoked` leave at once.
 */
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type UpdateItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import * as crypto from "crypto";
import { postWithRetries, type PostDeps } from "./connections";
import { lifecycleEventId } from "./lifecycleEvents";
import { mapWithConcurrency } from "./fanout";
import { isUserChannel } from "./rooms";
import { CONNECTION_ROW_TTL_SECONDS } from "./schema";
import { roomPages } from "./tables";
import { describeError } from "./log";

export type LeaveReason = "closed" | "unsubscribed" | "revoked" | "timed_out";

/** Defaults of the component's `presence` argument. */
export const PRESENCE_DEFAULTS = { graceSeconds: 30, sweepSeconds: 60, eventMembersLimit: 100, keepAliveSeconds: 45 } as const;
/** Most members one `presence` page holds, and its default. */
export const MAX_PRESENCE_PAGE = 1_000;
/** Shards of the pending-leave partition: each takes at most DynamoDB's 1,000 writes a second. */
export const PENDING_SHARDS = 8;
/** A room's diff goes out at most once a second, and past 1,000 members at most 1,000 posts a second. */
export const DIFF_MIN_INTERVAL_MS = 1_000;
export const DIFF_POSTS_PER_SECOND = 1_000;

const COUNT_KEY = "\u001fcount";
const DIFF_KEY = "\u001fdiff";
const DIFFS_PARTITION = "\u001fdiffs";
const SEP = "\u001f";
/** Below every id (ids hold no control characters), above the reserved keys. */
const FIRST_MEMBER = " ";

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
const isConditionFailure = (err: unknown) => (err as Error)?.name === "ConditionalCheckFailedException";

export interface PresenceSettings {
  presenceTable: string;
  graceMs: number;
  eventMembersLimit: number;
  /** How often clients ping (core/liveness.ts); told to them as `keep_alive_ms`. Default 45 s. */
  keepAliveMs?: number;
}

/** A lifecycle event (docs/protocol.md#lifecycle-events), before it is put on the bus. */
export interface LifecycleEvent {
  detailType: "connection.opened" | "connection.closed" | "member.joined" | "member.left" | "room.occupied" | "room.vacated";
  detail: { event_id: string; at: number; room_id?: string; user_id?: string; connection_id?: string; reason?: LeaveReason };
}

/** What presence changes need: the table, the room's connections and the post path, and where lifecycle events go. */
export interface PresenceDeps extends PostDeps {
  presence: PresenceSettings;
  /** Lifecycle events; unset: none are sent. */
  emit?: (events: LifecycleEvent[]) => Promise<void>;
  /**
   * Asks for `flushDiff(roomId)` in `delaySeconds` (a delayed queue message to deliver,
   * `DIFF_FLUSH_KIND`): a diff buffered within its interval goes out when the interval ends,
   * not with the room's next change or the next sweep. Unset: the sweep sends it.
   */
  scheduleFlush?: (roomId: string, delaySeconds: number) => Promise<void>;
  now?: () => number;
}

export interface Member {
  user_id: string;
  connections: number;
  since: number;
}

function pendingShard(roomId: string): string {
  const shard = crypto.createHash("sha256").update(roomId).digest().readUInt32BE(0) % PENDING_SHARDS;
  return `${SEP}pending${SEP}${shard}`;
}

const pad = (ms: number) => String(Math.max(0, Math.floor(ms))).padStart(13, "0");

/**
 * A lifecycle event. Its `event_id` derives from what makes it that event (`identity`; for
 * connection.opened/closed the connection's id: a connection opens once and closes once, so
 * two paths that find the same close send one id), else it is random.
 */
export function lifecycle(detailType: LifecycleEvent["detailType"], at: number, fields: Omit<LifecycleEvent["detail"], "event_id" | "at">, identity?: string): LifecycleEvent {
  const key = identity ?? (detailType.startsWith("connection.") ? fields.connection_id : undefined);
  return { detailType, detail: { event_id: key !== undefined ? lifecycleEventId(detailType, key) : crypto.randomUUID(), at, ...fields } };
}

/** A membership's identity: one join (its `since`) of one user in one room, shared by its joined and left events. */
const membership = (roomId: string, userId: string, since: string | undefined) => (since !== undefined ? `${roomId}${SEP}${userId}${SEP}${since}` : undefined);
/** `keep_alive_ms` for the hub's answers to a client (hub.subscribed, hub.resumed, hub.presence, hub.occupancy): how often it should ping; nothing with presence off. */
export function keepAliveOf(deps: PresenceDeps | undefined): { keep_alive_ms?: number } {
  return deps ? { keep_alive_ms: deps.presence.keepAliveMs ?? PRESENCE_DEFAULTS.keepAliveSeconds * 1000 } : {};
}

/**
 * Why a removed connection's rooms lose it: `revoked` for a row revokeToken marked (core/tables.ts
 * markRevoked; at once, from the mark), whoever found it gone (its `$disconnect`, a 410, the
 * sweep); else `otherwise` (`closed` for a `$disconnect`, `timed_out` for a connection found dead).
 */
export function removalReason(row: { revokedAt?: number; timedOutAt?: number }, otherwise: "closed" | "timed_out"): { reason: LeaveReason; since?: number } {
  if (row.revokedAt !== undefined) return { reason: "revoked", since: row.revokedAt };
  // The sweep marked it dead before its DELETE (core/tables.ts markTimedOut): that DELETE's $disconnect says so too.
  if (row.timedOutAt !== undefined) return { reason: "timed_out", since: row.timedOutAt };
  return { reason: otherwise };
}

/** Whether a room has presence: every room but user channels. */
export function hasPresence(roomId: string): boolean {
  return !isUserChannel(roomId);
}

async function addToCounter(deps: PresenceDeps, roomId: string, users: number, connections: number): Promise<{ users: number; connections: number }> {
  const result = await deps.db.send(
    new UpdateItemCommand({
      TableName: deps.presence.presenceTable,
      Key: { room_id: S(roomId), user_id: S(COUNT_KEY) },
      UpdateExpression: "ADD #u :u, #c :c",
      ExpressionAttributeNames: { "#u": "users", "#c": "connections" },
      ExpressionAttributeValues: { ":u": N(users), ":c": N(connections) },
      ReturnValues: "ALL_NEW",
    }),
  );
  return { users: Number(result.Attributes?.users?.N ?? 0), connections: Number(result.Attributes?.connections?.N ?? 0) };
}

/**
 * A connection of `userId` is now in `roomId` (subscribe, or `$connect` with a seed room).
 * Announces a new member; nothing when another of the user's connections is already there or
 * the user's leave is still in its grace.
 */
export async function presenceJoin(deps: PresenceDeps, who: { roomId: string; userId: string; connectionId: string }): Promise<"joined" | "already" | "rejoined"> {
  if (!hasPresence(who.roomId)) return "already";
  const now = (deps.now ?? Date.now)();
  const result = await deps.db.send(
    new UpdateItemCommand({
      TableName: deps.presence.presenceTable,
      Key: { room_id: S(who.roomId), user_id: S(who.userId) },
      UpdateExpression: "ADD conns :c SET since = if_not_exists(since, :now), expires_at = :exp REMOVE leaving_at, leave_reason",
      ExpressionAttributeValues: { ":c": { SS: [who.connectionId] }, ":now": N(now), ":exp": N(Math.floor(now / 1000) + CONNECTION_ROW_TTL_SECONDS) },
      ReturnValues: "ALL_OLD",
    }),
  );
  const old = result.Attributes;
  if (old?.conns?.SS?.includes(who.connectionId)) return "already";
  const counts = await addToCounter(deps, who.roomId, old ? 0 : 1, 1);
  if (old) return old.conns?.SS?.length ? "already" : "rejoined";
  const identity = membership(who.roomId, who.userId, String(now));
  const events = [lifecycle("member.joined", now, { room_id: who.roomId, user_id: who.userId, connection_id: who.connectionId }, identity)];
  if (counts.users === 1) events.push(lifecycle("room.occupied", now, { room_id: who.roomId }, identity));
  await Promise.all([announce(deps, who.roomId, { joined: who.userId }, counts.users), deps.emit?.(events)]);
  return "joined";
}

/**
 * A connection of `userId` is no longer in `roomId`. The user's last connection: `unsubscribed`
 * and `revoked` leave now; `closed` and `timed_out` wait for the grace, from `since` (the
 * estimated moment the connection died; default now). Idempotent per connection.
 */
export async function presenceLeave(
  deps: PresenceDeps,
  who: { roomId: string; userId: string; connectionId: string },
  reason: LeaveReason,
  since?: number,
): Promise<"left" | "pending" | "stays" | "absent"> {
  if (!hasPresence(who.roomId)) return "absent";
  const now = (deps.now ?? Date.now)();
  const key = { room_id: S(who.roomId), user_id: S(who.userId) };
  let old: Record<string, AttributeValue> | undefined;
  try {
    const result = await deps.db.send(
      new UpdateItemCommand({
        TableName: deps.presence.presenceTable,
        Key: key,
        UpdateExpression: "DELETE conns :c",
        ConditionExpression: "contains(conns, :id)",
        ExpressionAttributeValues: { ":c": { SS: [who.connectionId] }, ":id": S(who.connectionId) },
        ReturnValues: "ALL_OLD",
      }),
    );
    old = result.Attributes;
  } catch (err) {
    if (isConditionFailure(err)) return "absent";
    throw err;
  }
  await addToCounter(deps, who.roomId, 0, -1);
  if ((old?.conns?.SS?.length ?? 0) > 1) return "stays";
  if (reason === "unsubscribed" || reason === "revoked") {
    return (await decideLeave(deps, who.roomId, who.userId, reason, undefined, now)) ? "left" : "stays";
  }
  const leavingAt = Math.min(since ?? now, now);
  // The pending item first, then the mark: stopped in between (a crash, a timeout), the sweep
  // still finds the leave and decides it (settlePendingLeaves). The other order lost it.
  const pending = { room_id: S(pendingShard(who.roomId)), user_id: S(`${pad(leavingAt)}${SEP}${who.roomId}${SEP}${who.userId}`) };
  await deps.db.send(
    new PutItemCommand({ TableName: deps.presence.presenceTable, Item: { ...pending, leave_reason: S(reason), expires_at: N(Math.floor(now / 1000) + CONNECTION_ROW_TTL_SECONDS) } }),
  );
  try {
    await deps.db.send(
      new UpdateItemCommand({
        TableName: deps.presence.presenceTable,
        Key: key,
        UpdateExpression: "SET leaving_at = :t, leave_reason = :r",
        ConditionExpression: "attribute_exists(user_id) AND attribute_not_exists(conns)",
        ExpressionAttributeValues: { ":t": N(leavingAt), ":r": S(reason) },
      }),
    );
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    // A connection came back meanwhile: no leave. The pending item is an orphan (the sweep would skip and drop it); drop it now.
    await deps.db.send(new DeleteItemCommand({ TableName: deps.presence.presenceTable, Key: pending }));
    return "stays";
  }
  // Already past its grace (a connection found dead long after it stopped answering): decide now.
  if (leavingAt + deps.presence.graceMs <= now) return (await decideLeave(deps, who.roomId, who.userId, reason, leavingAt, now)) ? "left" : "stays";
  return "pending";
}

/** Deletes a member item that still has no connection (and, when given, the same pending mark), then announces the leave. */
async function decideLeave(deps: PresenceDeps, roomId: string, userId: string, reason: LeaveReason, leavingAt: number | undefined, now: number): Promise<boolean> {
  let since: string | undefined;
  try {
    const deleted = await deps.db.send(
      new DeleteItemCommand({
        TableName: deps.presence.presenceTable,
        Key: { room_id: S(roomId), user_id: S(userId) },
        ConditionExpression: leavingAt === undefined ? "attribute_exists(user_id) AND attribute_not_exists(conns)" : "attribute_not_exists(conns) AND leaving_at = :t",
        ...(leavingAt === undefined ? {} : { ExpressionAttributeValues: { ":t": N(leavingAt) } }),
        ReturnValues: "ALL_OLD",
      }),
    );
    since = deleted.Attributes?.since?.N;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
  const counts = await addToCounter(deps, roomId, -1, 0);
  const identity = membership(roomId, userId, since);
  const events = [lifecycle("member.left", now, { room_id: roomId, user_id: userId, reason }, identity)];
  if (counts.users <= 0) events.push(lifecycle("room.vacated", now, { room_id: roomId }, identity));
  await Promise.all([announce(deps, roomId, { left: { user_id: userId, reason } }, counts.users), deps.emit?.(events)]);
  return true;
}

/** Decides every pending leave whose grace is over (the sweep). Returns how many users left. */
export async function settlePendingLeaves(deps: PresenceDeps): Promise<number> {
  const now = (deps.now ?? Date.now)();
  const due = pad(now - deps.presence.graceMs) + SEP + "\uffff";
  let left = 0;
  for (let shard = 0; shard < PENDING_SHARDS; shard++) {
    const partition = `${SEP}pending${SEP}${shard}`;
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await deps.db.send(
        new QueryCommand({
          TableName: deps.presence.presenceTable,
          KeyConditionExpression: "room_id = :p AND user_id <= :due",
          ExpressionAttributeValues: { ":p": S(partition), ":due": S(due) },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) {
        const [at, roomId, userId] = (item.user_id?.S ?? "").split(SEP);
        const member = await deps.db.send(new GetItemCommand({ TableName: deps.presence.presenceTable, Key: { room_id: S(roomId), user_id: S(userId) }, ConsistentRead: true }));
        const reason = (member.Item?.leave_reason?.S ?? item.leave_reason?.S ?? "closed") as LeaveReason;
        // Decided: a member still empty with this mark, or with no mark at all (its leave stopped
        // between the pending item and the mark; its grace is over too). Skipped: a member with a
        // connection back, another mark (a later leave, its own pending item), or no member.
        const mark = member.Item?.leaving_at?.N;
        if (member.Item && !member.Item.conns && (mark === undefined || Number(mark) === Number(at))) {
          if (await decideLeave(deps, roomId, userId, reason, mark === undefined ? undefined : Number(at), now)) left++;
        }
        await deps.db.send(new DeleteItemCommand({ TableName: deps.presence.presenceTable, Key: { room_id: item.room_id!, user_id: item.user_id! } }));
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }
  return left;
}

/** One page of a room's members, by user id; `after` is the previous page's `next`. */
export async function readPresence(
  db: DynamoDBClient,
  table: string,
  roomId: string,
  options: { after?: string; limit?: number; now?: number } = {},
): Promise<{ members: Member[]; count: number; next: string | null }> {
  // Past its `expires_at` a member item is gone, though TTL deletes it up to days later: not listed.
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  const limit = Math.min(Math.max(1, options.limit ?? MAX_PRESENCE_PAGE), MAX_PRESENCE_PAGE);
  const after = options.after !== undefined ? decodeCursor(options.after) : undefined;
  const [page, occupancy] = await Promise.all([
    db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "room_id = :r AND user_id >= :first",
        FilterExpression: "attribute_not_exists(expires_at) OR expires_at > :now",
        ExpressionAttributeValues: { ":r": S(roomId), ":first": S(FIRST_MEMBER), ":now": N(nowSeconds) },
        ProjectionExpression: "user_id, conns, since",
        ...(after !== undefined ? { ExclusiveStartKey: { room_id: S(roomId), user_id: S(after) } } : {}),
        Limit: limit,
        ConsistentRead: true,
      }),
    ),
    readOccupancy(db, table, roomId),
  ]);
  const members = (page.Items ?? []).map((item) => ({ user_id: item.user_id!.S!, connections: item.conns?.SS?.length ?? 0, since: Number(item.since?.N ?? 0) }));
  const last = page.LastEvaluatedKey?.user_id?.S;
  return { members, count: occupancy.users, next: last !== undefined ? encodeCursor(last) : null };
}

export async function readOccupancy(db: DynamoDBClient, table: string, roomId: string): Promise<{ connections: number; users: number }> {
  const result = await db.send(new GetItemCommand({ TableName: table, Key: { room_id: S(roomId), user_id: S(COUNT_KEY) }, ConsistentRead: true }));
  return { connections: Math.max(0, Number(result.Item?.connections?.N ?? 0)), users: Math.max(0, Number(result.Item?.users?.N ?? 0)) };
}

export function encodeCursor(userId: string): string {
  return Buffer.from(userId, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): string {
  return Buffer.from(cursor, "base64url").toString("utf8");
}

type Change = { joined: string } | { left: { user_id: string; reason: LeaveReason } };

/** The frame of a hub event to a room: `origin: "hub"`, no `seq`, not stored. */
export function roomEventFrame(roomId: string, type: string, data: unknown): string {
  return JSON.stringify({ id: crypto.randomUUID(), room_id: roomId, user_id: null, origin: "hub", data: { type, data } });
}

/** Posts one frame to every connection of the room (the room index), through the post path and its budget. */
export async function postToRoom(deps: PresenceDeps, roomId: string, text: string): Promise<number> {
  const frame = deps.management.prepare(text);
  const ids = new Set<string>();
  for await (const page of roomPages(deps.db, deps.connectionsTable, roomId)) for (const c of page.connections) ids.add(c.connectionId);
  const outcomes = await mapWithConcurrency([...ids], 16, (id) => postWithRetries(deps, id, frame, roomId));
  return outcomes.filter((o) => o === "delivered").length;
}

/**
 * A member change to the room: a single event while the room has at most `eventMembersLimit`
 * members, else into the room's diff buffer, sent at most once per interval (flushDiff).
 */
async function announce(deps: PresenceDeps, roomId: string, change: Change, users: number): Promise<void> {
  if (users <= deps.presence.eventMembersLimit) {
    if ("joined" in change) await postToRoom(deps, roomId, roomEventFrame(roomId, "hub.member.joined", { room_id: roomId, user_id: change.joined }));
    else await postToRoom(deps, roomId, roomEventFrame(roomId, "hub.member.left", { room_id: roomId, user_id: change.left.user_id, reason: change.left.reason }));
    return;
  }
  const table = deps.presence.presenceTable;
  const userId = "joined" in change ? change.joined : change.left.user_id;
  // A change that undoes one still in the buffer (a join, then a leave within one interval, or a
  // leave, then a rejoin) cancels it: the room never heard of the first, so it hears of neither.
  const undone = await cancelBuffered(deps, roomId, "joined" in change ? "left" : "joined", userId);
  if (!undone) {
    // Into its list, out of the other (a concurrent change may have put it there since).
    const u = { SS: [userId] };
    const update: Pick<UpdateItemCommandInput, "UpdateExpression" | "ExpressionAttributeValues"> =
      "joined" in change
        ? { UpdateExpression: "ADD joined :u DELETE #l :u", ExpressionAttributeValues: { ":u": u } }
        : { UpdateExpression: "ADD #l :u, left_reasons :r DELETE joined :u", ExpressionAttributeValues: { ":u": u, ":r": { SS: [`${userId}${SEP}${change.left.reason}`] } } };
    await deps.db.send(new UpdateItemCommand({ TableName: table, Key: { room_id: S(roomId), user_id: S(DIFF_KEY) }, ExpressionAttributeNames: { "#l": "left" }, ...update }));
  }
  await deps.db.send(new PutItemCommand({ TableName: table, Item: { room_id: S(DIFFS_PARTITION), user_id: S(roomId) } }));
  if (!(await flushDiff(deps, roomId))) await scheduleDiffFlush(deps, roomId, users);
}

/** Removes `userId` from the buffer's `list` if it is there; true when it was (the change is cancelled). */
async function cancelBuffered(deps: PresenceDeps, roomId: string, list: "joined" | "left", userId: string): Promise<boolean> {
  try {
    await deps.db.send(
      new UpdateItemCommand({
        TableName: deps.presence.presenceTable,
        Key: { room_id: S(roomId), user_id: S(DIFF_KEY) },
        UpdateExpression: "DELETE #list :u",
        ConditionExpression: "contains(#list, :s)",
        ExpressionAttributeNames: { "#list": list },
        ExpressionAttributeValues: { ":u": { SS: [userId] }, ":s": S(userId) },
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/** The body of a queue message asking deliver to flush a room's diff (`PresenceDeps.scheduleFlush`). */
export const DIFF_FLUSH_KIND = "presence.flush";

/** The room a queue body asks to flush (`{"kind":"presence.flush","room_id":...}`), else undefined. */
export function diffFlushRoom(body: string): string | undefined {
  if (!body.includes(DIFF_FLUSH_KIND)) return undefined;
  try {
    const value = JSON.parse(body) as { kind?: unknown; room_id?: unknown };
    return value?.kind === DIFF_FLUSH_KIND && typeof value.room_id === "string" && value.room_id.length > 0 ? value.room_id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A diff was buffered within its interval: one delayed flush for when the interval ends. The
 * buffer's `flush_due` claims it (conditional: one message per interval, whoever buffers);
 * a flush removes the claim, and a claim past its time may be taken again (a lost message), so
 * the sweep stays only a backstop. A failure to schedule is logged, not thrown: the change is
 * in the buffer, and the next change or the sweep sends it.
 */
async function scheduleDiffFlush(deps: PresenceDeps, roomId: string, users: number): Promise<void> {
  if (!deps.scheduleFlush) return;
  const now = (deps.now ?? Date.now)();
  const interval = diffInterval(users);
  try {
    const result = await deps.db.send(
      new UpdateItemCommand({
        TableName: deps.presence.presenceTable,
        Key: { room_id: S(roomId), user_id: S(DIFF_KEY) },
        UpdateExpression: "SET flush_due = :due",
        ConditionExpression: "(attribute_exists(joined) OR attribute_exists(#l)) AND (attribute_not_exists(flush_due) OR flush_due < :now)",
        ExpressionAttributeNames: { "#l": "left" },
        ExpressionAttributeValues: { ":due": N(now + interval), ":now": N(now) },
        ReturnValues: "ALL_NEW",
      }),
    );
    const flushedAt = Number(result.Attributes?.flushed_at?.N ?? 0);
    // SQS delays in whole seconds, 0–900: rounded up, so the flush never comes before its interval.
    const delaySeconds = Math.min(900, Math.max(1, Math.ceil((flushedAt + interval - now) / 1000)));
    await deps.scheduleFlush(roomId, delaySeconds);
  } catch (err) {
    if (isConditionFailure(err)) return; // already scheduled, or nothing left to send
    deps.log.warn("presence diff flush not scheduled; the next change or the sweep sends it", { room_id: roomId, ...describeError(err) });
  }
}

/** The interval between two diffs of a room of `users` members. */
export function diffInterval(users: number): number {
  return Math.max(DIFF_MIN_INTERVAL_MS, Math.ceil(users / DIFF_POSTS_PER_SECOND) * 1_000);
}

/** Sends the room's buffered diff if its interval has passed since the last one; true when one went out. */
export async function flushDiff(deps: PresenceDeps, roomId: string): Promise<boolean> {
  const now = (deps.now ?? Date.now)();
  const { users } = await readOccupancy(deps.db, deps.presence.presenceTable, roomId);
  let old: Record<string, AttributeValue> | undefined;
  try {
    const result = await deps.db.send(
      new UpdateItemCommand({
        TableName: deps.presence.presenceTable,
        Key: { room_id: S(roomId), user_id: S(DIFF_KEY) },
        UpdateExpression: "SET flushed_at = :now REMOVE joined, #l, left_reasons, flush_due",
        ConditionExpression: "(attribute_exists(joined) OR attribute_exists(#l)) AND (attribute_not_exists(flushed_at) OR flushed_at <= :due)",
        ExpressionAttributeNames: { "#l": "left" },
        ExpressionAttributeValues: { ":now": N(now), ":due": N(now - diffInterval(users)) },
        ReturnValues: "ALL_OLD",
      }),
    );
    old = result.Attributes;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
  const reasons = new Map((old?.left_reasons?.SS ?? []).map((entry) => entry.split(SEP) as [string, string]));
  const diff = {
    room_id: roomId,
    joined: (old?.joined?.SS ?? []).sort(),
    left: (old?.left?.SS ?? []).sort().map((user_id) => ({ user_id, reason: reasons.get(user_id) ?? "closed" })),
    count: users,
  };
  await postToRoom(deps, roomId, roomEventFrame(roomId, "hub.presence.diff", diff));
  return true;
}

/** Flushes every room with a diff waiting whose interval has passed (the sweep); forgets rooms with nothing left. */
export async function flushDiffs(deps: PresenceDeps): Promise<number> {
  let sent = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await deps.db.send(
      new QueryCommand({ TableName: deps.presence.presenceTable, KeyConditionExpression: "room_id = :p", ExpressionAttributeValues: { ":p": S(DIFFS_PARTITION) }, ExclusiveStartKey: startKey }),
    );
    for (const item of page.Items ?? []) {
      const roomId = item.user_id!.S!;
      if (await flushDiff(deps, roomId)) sent++;
      // Forget the room, then look again: a change appended meanwhile puts the mark back, or is seen here.
      await deps.db.send(new DeleteItemCommand({ TableName: deps.presence.presenceTable, Key: { room_id: S(DIFFS_PARTITION), user_id: S(roomId) } }));
      const diff = await deps.db.send(new GetItemCommand({ TableName: deps.presence.presenceTable, Key: { room_id: S(roomId), user_id: S(DIFF_KEY) }, ConsistentRead: true }));
      if (diff.Item?.joined || diff.Item?.left) await deps.db.send(new PutItemCommand({ TableName: deps.presence.presenceTable, Item: { room_id: S(DIFFS_PARTITION), user_id: S(roomId) } }));
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return sent;
}
