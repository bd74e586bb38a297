/**
 * Room streams (CONTRACT section 9): every notification delivered to a stream (a room id, or
 * a user channel `user:{id}`) is stored with `seq` 1, 2, 3… before any client sees it, and
 * read back for `resume` and `history`.
 *
 * Exactly once, gap-free, without transactions (dynalite has no TransactWriteItems):
 * - A claim item per (stream, message id), written first with `attribute_not_exists`, owns
 *   the message's append. It records the candidate seq BEFORE each append attempt and the
 *   final seq after it. Its owner field fences a slow owner out once another took over.
 * - The frame goes at candidate = last + 1 (last from a strongly consistent descending
 *   Query, Limit 1) with `attribute_not_exists(seq)`; a lost race reads the head again.
 * - A redelivery (or a concurrent duplicate) finds the claim: final seq → the stored frame
 *   bytes are reused; pending and recent → "busy", the record is retried later by SQS;
 *   pending and stale (its owner crashed) → taken over: the slot at the recorded candidate
 *   is retried first, because the crashed owner may have written it (or may still, late):
 *   whoever writes that slot, the message is there once. Only then a new candidate.
 * Frame text is a pure function of (message, seq), so every writer of one slot writes the
 * same bytes, and live frames equal replayed frames.
 *
 * Costs per notification: 1 consistent Query (head), 3 writes (claim, frame, final), of
 * which only the frame lands in the stream's partition (claims are keyed per message).
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
/** The most frames one resume or history call returns (the contract's page size). */
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

/** Writes the frame at `seq` unless the slot is taken; then returns what holds it. */
async function putFrame(deps: StreamDeps, streamId: string, stored: StoredFrame): Promise<StoredFrame | "written"> {
  try {
    await deps.db.send(
      new PutItemCommand({
        TableName: deps.streamsTable,
        Item: { stream_id: S(streamId), seq: N(stored.seq), message_id: S(stored.messageId), frame: S(stored.frame), expires_at: N(expiresAt(deps)) },
        ConditionExpression: "attribute_not_exists(seq)",
      }),
    );
    return "written";
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    const holder = await getFrame(deps.db, deps.streamsTable, streamId, stored.seq);
    // A slot is never emptied but by TTL; an expired, swept slot reads as free: try the next.
    return holder ?? { seq: stored.seq, messageId: "", frame: "" };
  }
}

interface Claim {
  owner: string;
  updatedAt: number;
  candidate?: number;
  final?: number;
}

async function readClaim(deps: StreamDeps, streamId: string, messageId: string): Promise<Claim | undefined> {
  const result = await deps.db.send(new GetItemCommand({ TableName: deps.streamsTable, Key: claimKey(streamId, messageId), ConsistentRead: true }));
  const item = result.Item;
  if (!item?.owner?.S) return undefined;
  return {
    owner: item.owner.S,
    updatedAt: Number(item.updated_at?.N ?? 0),
    candidate: item.candidate?.N ? Number(item.candidate.N) : undefined,
    final: item.final?.N ? Number(item.final.N) : undefined,
  };
}

/** Updates the claim only while `owner` still owns it; false when another invocation took over. */
async function updateClaim(deps: StreamDeps, streamId: string, messageId: string, owner: string, set: { candidate?: number; final?: number; newOwner?: string; expectUpdatedAt?: number }): Promise<boolean> {
  const names: Record<string, string> = { "#o": "owner", "#u": "updated_at" };
  const values: Record<string, AttributeValue> = { ":owner": S(owner), ":now": N(now(deps)), ":next": S(set.newOwner ?? owner) };
  const parts = ["#o = :next", "#u = :now"];
  if (set.candidate !== undefined) {
    names["#c"] = "candidate";
    values[":c"] = N(set.candidate);
    parts.push("#c = :c");
  }
  if (set.final !== undefined) {
    names["#f"] = "final";
    values[":f"] = N(set.final);
    parts.push("#f = :f");
  }
  let condition = "#o = :owner AND attribute_not_exists(#f2)";
  names["#f2"] = "final";
  if (set.expectUpdatedAt !== undefined) {
    values[":seen"] = N(set.expectUpdatedAt);
    condition += " AND #u = :seen";
  }
  try {
    await deps.db.send(
      new UpdateItemCommand({
        TableName: deps.streamsTable,
        Key: claimKey(streamId, messageId),
        UpdateExpression: "SET " + parts.join(", "),
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/** Appends as owner of the claim, from the recorded candidate (if any) on. */
async function appendAsOwner(deps: StreamDeps, notification: Notification, owner: string, candidate: number | undefined): Promise<AppendResult | "lost"> {
  const streamId = notification.roomId;
  for (let attempt = 0; attempt < 50; attempt++) {
    let seq = candidate;
    if (seq === undefined) {
      seq = (await headSeq(deps.db, deps.streamsTable, streamId)) + 1;
      // Recorded before the attempt: a successor that takes over retries this very slot.
      if (!(await updateClaim(deps, streamId, notification.id, owner, { candidate: seq }))) return "lost";
    }
    candidate = undefined;
    const stored: StoredFrame = { seq, messageId: notification.id, frame: streamFrame(notification, seq) };
    const outcome = await putFrame(deps, streamId, stored);
    if (outcome === "written" || outcome.messageId === notification.id) {
      const final = outcome === "written" ? stored : outcome;
      // Losing the claim here is fine: the slot holds this message, and a successor finds it there.
      await updateClaim(deps, streamId, notification.id, owner, { final: final.seq });
      return { stored: final, duplicate: outcome !== "written" };
    }
  }
  throw new Error(`stream ${streamId}: no free seq after 50 attempts (too many concurrent appends)`);
}

export interface AppendResult {
  stored: StoredFrame;
  /** The message was already in the stream (a redelivery): nothing new was written. */
  duplicate: boolean;
}

/**
 * Stores a notification in its stream exactly once and returns its frame (seq and bytes).
 * Throws StreamBusyError while another invocation is appending the same message.
 */
export async function appendOnce(deps: StreamDeps, notification: Notification): Promise<AppendResult> {
  const streamId = notification.roomId;
  const key = claimKey(streamId, notification.id);
  const owner = crypto.randomUUID();
  try {
    await deps.db.send(
      new PutItemCommand({
        TableName: deps.streamsTable,
        Item: { ...key, owner: S(owner), updated_at: N(now(deps)), expires_at: N(expiresAt(deps)) },
        ConditionExpression: "attribute_not_exists(stream_id)",
      }),
    );
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    return resumeClaim(deps, notification);
  }
  const result = await appendAsOwner(deps, notification, owner, undefined);
  return result === "lost" ? resumeClaim(deps, notification) : result;
}

/** The message has a claim already: reuse its frame, wait for its owner, or take over. */
async function resumeClaim(deps: StreamDeps, notification: Notification): Promise<AppendResult> {
  const streamId = notification.roomId;
  for (let attempt = 0; attempt < 5; attempt++) {
    const claim = await readClaim(deps, streamId, notification.id);
    if (!claim) throw new StreamBusyError(streamId); // expired between two reads: let SQS retry
    if (claim.final !== undefined) {
      const stored = await getFrame(deps.db, deps.streamsTable, streamId, claim.final);
      if (stored?.messageId === notification.id) return { stored, duplicate: true };
      throw new Error(`stream ${streamId}: claim of ${notification.id} points at seq ${claim.final}, which holds another message`);
    }
    if (now(deps) - claim.updatedAt < (deps.claimStaleMs ?? DEFAULT_CLAIM_STALE_MS)) throw new StreamBusyError(streamId);
    const owner = crypto.randomUUID();
    if (!(await updateClaim(deps, streamId, notification.id, claim.owner, { newOwner: owner, expectUpdatedAt: claim.updatedAt }))) continue;
    const result = await appendAsOwner(deps, notification, owner, claim.candidate);
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
 * The streams a connection may read: today the room its token named (from the authorizer's
 * context, or its connection row). Issue 14 widens this one function (many rooms per
 * connection, the user channel `user:{id}`).
 */
export function subscribedStreams(connection: { roomId: string; userId: string }): string[] {
  return [connection.roomId];
}
