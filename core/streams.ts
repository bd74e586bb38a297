/**
 * Room streams (docs/protocol.md#room-streams): every notification delivered to a stream (a room id, or
 * a user channel `user:{id}`) is stored with `seq` 1, 2, 3… before any client sees it, and
 * read back for `resume` and `history`.
 *
 * Exactly once, gap-free, without transactions (dynalite has no TransactWriteItems):
 * - A claim item per (stream, message id), written first with `attribute_not_exists`, owns
 *   the message's append. It records the candidate seq BEFORE each append attempt (the
 *   first one in the claim's own write). Its owner field fences a slow owner out once
 *   another took over.
 * - The frame goes at candidate = last + 1 (last from a strongly consistent descending
 *   Query, Limit 1) with `attribute_not_exists(seq)`; a lost race moves to the next slot.
 * - A redelivery (or a concurrent duplicate) finds the claim: the frame at its candidate is
 *   this message → the stored bytes are reused; otherwise, claim recent → "busy", the record
 *   is retried later by SQS; claim stale (its owner crashed) → taken over: the slot at the
 *   recorded candidate is tried first, because the crashed owner may have written it (or
 *   may still, late): whoever writes that slot, the message is there once.
 * Frame text is a pure function of (message, seq), so every writer of one slot writes the
 * same bytes, and live frames equal replayed frames.
 *
 * Costs per notification: 1 consistent Query (head, 1 RCU), 2 writes (claim ~1 WCU, frame
 * 1 WCU per KB), of which only the frame lands in the stream's partition (claims are keyed
 * per message). A lost race costs 2 more writes.
 */
import * as crypto from "crypto";
import {
  ConditionalCheckFailedException,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { frameFor, serializeFrame, type Notification } from "./messages";
import { userChannel } from "./rooms";

/** How a handler stores frames: the table and `history.retentionHours` (0 = streams off). */
export interface StreamSettings {
  streamsTable: string;
  retentionHours: number;
  /** A pending claim older than this is taken over (its owner is presumed dead). Default 60 s. */
  claimStaleMs?: number;
  now?: () => number;
}

export interface StreamDeps extends StreamSettings {
  db: DynamoDBClient;
}

/** A frame as stored: what was (or will be) posted to every client, byte for byte. */
export interface StoredFrame {
  seq: number;
  messageId: string;
  frame: string;
}

export class StreamBusyError extends Error {
  override name = "StreamBusyError";
  constructor(streamId: string) {
    super(`message is being appended to stream ${streamId} by another invocation; retry later`);
  }
}

export const DEFAULT_CLAIM_STALE_MS = 60_000;
/** The most frames one resume or history call returns (docs/protocol.md#limits). */
export const MAX_FRAMES_PER_READ = 1_000;

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
const isConditionFailure = (err: unknown) => err instanceof ConditionalCheckFailedException || (err as Error)?.name === "ConditionalCheckFailedException";

/**
 * The claim's partition key. Ids never hold control characters (core/messages.ts
 * normalizeId), so no room or user stream can ever read or overwrite a claim.
 */
function claimKey(streamId: string, messageId: string): Record<string, AttributeValue> {
  return { stream_id: S(`${streamId}\u001fclaim\u001f${messageId}`), seq: N(0) };
}

/** Retention as whole TTL seconds from now; fractions of an hour are allowed (tests). */
function expiresAt(deps: StreamDeps): number {
  return Math.ceil((now(deps) + deps.retentionHours * 3_600_000) / 1000);
}

function now(deps: StreamDeps): number {
  return (deps.now ?? Date.now)();
}

/** The stream's frame text for a notification at `seq`: the one serialization, so writers agree. */
export function streamFrame(notification: Notification, seq: number): string {
  return serializeFrame(frameFor(notification, seq));
}

/**
 * Runs tasks one after another per key (a stream id) within one invocation: records of a
 * batch for one room do not race each other for the same seq. Create one per handler.
 */
export function serialPerKey(): <T>(key: string, task: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<unknown>>();
  return (key, task) => {
    const run = (tails.get(key) ?? Promise.resolve()).then(task, task);
    const tail = run.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };
}

/** Highest seq ever appended (expired or not: seq never goes back while an item is left). 0 for none. */
export async function headSeq(db: DynamoDBClient, table: string, streamId: string): Promise<number> {
  const result = await db.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: "stream_id = :s",
      ExpressionAttributeValues: { ":s": S(streamId) },
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
      ProjectionExpression: "seq",
    }),
  );
  return Number(result.Items?.[0]?.seq?.N ?? 0);
}

async function getFrame(db: DynamoDBClient, table: string, streamId: string, seq: number): Promise<StoredFrame | undefined> {
  const result = await db.send(new GetItemCommand({ TableName: table, Key: { stream_id: S(streamId), seq: N(seq) }, ConsistentRead: true }));
  const item = result.Item;
  if (!item?.frame?.S || !item.message_id?.S) return undefined;
  return { seq, messageId: item.message_id.S, frame: item.frame.S };
}

/** Writes the frame at `seq` unless the slot is taken: true when written. */
async function putFrame(deps: StreamDeps, streamId: string, stored: StoredFrame): Promise<boolean> {
  try {
    await deps.db.send(
      new PutItemCommand({
        TableName: deps.streamsTable,
        Item: { stream_id: S(streamId), seq: N(stored.seq), message_id: S(stored.messageId), frame: S(stored.frame), expires_at: N(expiresAt(deps)) },
        ConditionExpression: "attribute_not_exists(seq)",
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

interface Claim {
  owner: string;
  updatedAt: number;
  candidate: number;
}

async function readClaim(deps: StreamDeps, streamId: string, messageId: string): Promise<Claim | undefined> {
  const result = await deps.db.send(new GetItemCommand({ TableName: deps.streamsTable, Key: claimKey(streamId, messageId), ConsistentRead: true }));
  const item = result.Item;
  if (!item?.owner?.S || !item.candidate?.N) return undefined;
  return { owner: item.owner.S, updatedAt: Number(item.updated_at?.N ?? 0), candidate: Number(item.candidate.N) };
}

/**
 * Moves the claim to a new candidate (or a new owner) only while `owner` still owns it
 * (and, for a takeover, nobody touched it since it was read); false otherwise.
 */
async function updateClaim(deps: StreamDeps, streamId: string, messageId: string, owner: string, set: { candidate: number; newOwner?: string; expectUpdatedAt?: number }): Promise<boolean> {
  const values: Record<string, AttributeValue> = { ":owner": S(owner), ":next": S(set.newOwner ?? owner), ":now": N(now(deps)), ":c": N(set.candidate) };
  let condition = "#o = :owner";
  if (set.expectUpdatedAt !== undefined) {
    values[":seen"] = N(set.expectUpdatedAt);
    condition += " AND #u = :seen";
  }
  try {
    await deps.db.send(
      new UpdateItemCommand({
        TableName: deps.streamsTable,
        Key: claimKey(streamId, messageId),
        UpdateExpression: "SET #o = :next, #u = :now, #c = :c",
        ConditionExpression: condition,
        ExpressionAttributeNames: { "#o": "owner", "#u": "updated_at", "#c": "candidate" },
        ExpressionAttributeValues: values,
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

export interface AppendResult {
  stored: StoredFrame;
  /** The message was already in the stream (a redelivery): nothing new was written. */
  duplicate: boolean;
}

/**
 * Appends as owner of the claim, whose recorded candidate is `candidate`. `inherited`: the
 * candidate was recorded by an earlier owner, which may have written it (or still will).
 */
async function appendAsOwner(deps: StreamDeps, notification: Notification, owner: string, candidate: number, inherited: boolean): Promise<AppendResult | "lost"> {
  const streamId = notification.roomId;
  let seq = candidate;
  for (let attempt = 0; attempt < 100; attempt++) {
    const stored: StoredFrame = { seq, messageId: notification.id, frame: streamFrame(notification, seq) };
    if (await putFrame(deps, streamId, stored)) return { stored, duplicate: false };
    if (inherited && attempt === 0) {
      const holder = await getFrame(deps.db, deps.streamsTable, streamId, seq);
      if (holder?.messageId === notification.id) return { stored: holder, duplicate: true };
    }
    // Lost the slot to another message: the head is at least there, so the next slot is the
    // next candidate (no read). Recorded before the attempt, fenced by the owner field.
    seq++;
    if (!(await updateClaim(deps, streamId, notification.id, owner, { candidate: seq }))) return "lost";
  }
  throw new Error(`stream ${streamId}: no free seq after 100 attempts (too many concurrent appends)`);
}

/**
 * Stores a notification in its stream exactly once and returns its frame (seq and bytes).
 * Throws StreamBusyError while another invocation is appending the same message.
 */
export async function appendOnce(deps: StreamDeps, notification: Notification): Promise<AppendResult> {
  const streamId = notification.roomId;
  const owner = crypto.randomUUID();
  const candidate = (await headSeq(deps.db, deps.streamsTable, streamId)) + 1;
  try {
    // The claim and its first candidate in one write.
    await deps.db.send(
      new PutItemCommand({
        TableName: deps.streamsTable,
        Item: { ...claimKey(streamId, notification.id), owner: S(owner), candidate: N(candidate), updated_at: N(now(deps)), expires_at: N(expiresAt(deps)) },
        ConditionExpression: "attribute_not_exists(stream_id)",
      }),
    );
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    return resumeClaim(deps, notification);
  }
  const result = await appendAsOwner(deps, notification, owner, candidate, false);
  return result === "lost" ? resumeClaim(deps, notification) : result;
}

/** The message has a claim already: reuse its frame, let its live owner finish, or take over. */
async function resumeClaim(deps: StreamDeps, notification: Notification): Promise<AppendResult> {
  const streamId = notification.roomId;
  for (let attempt = 0; attempt < 5; attempt++) {
    const claim = await readClaim(deps, streamId, notification.id);
    if (!claim) throw new StreamBusyError(streamId); // being written or expired between reads: let SQS retry
    // The candidate holds the message once it is stored: the redelivery's usual answer.
    const holder = await getFrame(deps.db, deps.streamsTable, streamId, claim.candidate);
    if (holder?.messageId === notification.id) return { stored: holder, duplicate: true };
    if (now(deps) - claim.updatedAt < (deps.claimStaleMs ?? DEFAULT_CLAIM_STALE_MS)) throw new StreamBusyError(streamId);
    const owner = crypto.randomUUID();
    if (!(await updateClaim(deps, streamId, notification.id, claim.owner, { candidate: claim.candidate, newOwner: owner, expectUpdatedAt: claim.updatedAt }))) continue;
    const result = await appendAsOwner(deps, notification, owner, claim.candidate, true);
    if (result !== "lost") return result;
  }
  throw new StreamBusyError(streamId);
}

/**
 * Store before send: the frame text every recipient gets. With streams on, the notification
 * is appended to its room's stream first (exactly once) and the stored bytes are returned;
 * with streams off (no settings, or retention 0), the frame without seq.
 */
export async function frameToSend(
  db: DynamoDBClient,
  settings: StreamSettings | undefined,
  notification: Notification,
): Promise<{ frame: string; seq?: number; duplicate: boolean }> {
  if (!settings || settings.retentionHours <= 0) return { frame: serializeFrame(frameFor(notification)), duplicate: false };
  const { stored, duplicate } = await appendOnce({ ...settings, db }, notification);
  return { frame: stored.frame, seq: stored.seq, duplicate };
}

export interface ReadResult {
  frames: StoredFrame[];
  /** The stream's highest seq when read. */
  lastSeq: number;
  /** Frames asked for (seq after+1 on) had expired: the first returned seq is not after+1. */
  gone: boolean;
  /** More than `limit` frames were asked for; `frames` holds the first `limit`. */
  truncated: boolean;
  /** The `after` actually used (for `last`: lastSeq - last, at least 0). */
  after: number;
}

/**
 * Frames of a stream with seq > after (or the newest `last`), in order, at most `limit`
 * (≤ 1,000). Items past `expires_at` are left out even before TTL deletes them.
 */
export async function readStream(
  db: DynamoDBClient,
  table: string,
  streamId: string,
  range: { after?: number; last?: number; limit?: number; nowSeconds?: number },
): Promise<ReadResult> {
  const limit = Math.min(range.limit ?? MAX_FRAMES_PER_READ, MAX_FRAMES_PER_READ);
  const lastSeq = await headSeq(db, table, streamId);
  const after = range.last !== undefined ? Math.max(0, lastSeq - range.last) : (range.after ?? 0);
  const nowSeconds = range.nowSeconds ?? Math.floor(Date.now() / 1000);
  const frames: StoredFrame[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  const wanted = Math.min(limit, Math.max(0, lastSeq - after));
  while (frames.length < wanted) {
    const result = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "stream_id = :s AND seq BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":s": S(streamId), ":from": N(after + 1), ":to": N(lastSeq) },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
        Limit: wanted - frames.length,
      }),
    );
    for (const item of result.Items ?? []) {
      if (item.expires_at?.N && Number(item.expires_at.N) <= nowSeconds) continue;
      if (!item.frame?.S || !item.seq?.N) continue;
      frames.push({ seq: Number(item.seq.N), messageId: item.message_id?.S ?? "", frame: item.frame.S });
    }
    startKey = result.LastEvaluatedKey;
    if (!startKey) break;
  }
  const expected = after + 1;
  const gone = lastSeq > after && (frames.length === 0 || frames[0].seq !== expected);
  const truncated = lastSeq - after > limit;
  return { frames: frames.slice(0, limit), lastSeq, gone, truncated, after };
}

/**
 * The streams a connection may read (resume): the rooms it is subscribed to and its own user
 * channel (core/rooms.ts), which no one else can read.
 */
export function subscribedStreams(connection: { rooms: readonly string[]; userId: string }): string[] {
  return [...connection.rooms, userChannel(connection.userId)];
}
