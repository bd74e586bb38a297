/**
 * Room streams (docs/protocol.md#room-streams): every notification delivered to a stream (a room id, or
 * a user channel `user:{id}`) is stored with `seq` 1, 2, 3… before any client sees it, and
 * read back for `resume` and `history`.
 *
 * Exactly once, no seq assigned twice, no hole left for good, without transactions (dynalite
 * has no TransactWriteItems), at a cost that does not grow with the number of writers:
 * - A claim item per (stream, message id), written first with `attribute_not_exists`, owns
 *   the message's append. Its owner field fences a slow owner out once another took over.
 * - A counter item per stream reserves the seq: one UpdateItem `ADD`, whose old value says
 *   which seq this writer got (no two writers ever get the same one, so no race is lost).
 *   The claim records the reserved seq (`candidate`) BEFORE the frame is written.
 * - The frame goes at the reserved seq with `attribute_not_exists(seq)`. The slot can only be
 *   taken by a tombstone (the reservation was presumed dead, below) or by a writer of the design
 *   before the counter (during an upgrade): then the writer reserves again.
 * - A redelivery (or a concurrent duplicate) finds the claim: the frame at its candidate is
 *   this message → the stored bytes are reused; otherwise, claim recent → "busy", the record
 *   is retried later by SQS; claim stale (its owner crashed) → taken over: the recorded seq is
 *   filled with the message if still empty, else a new one is reserved.
 * - Holes: a seq reserved by a writer that died before writing it. The writer tombstones its own
 *   seq on every failure it lives through; a sweep fills the rest (`sweepHoles`): a missing seq
 *   whose reservation is older than the claim's stale time (60 s), known from the counter's
 *   times, gets a tombstone frame (docs/protocol.md#room-streams), written with the same
 *   `attribute_not_exists(seq)`, so exactly one of the tombstone and a late writer lands.
 *   Readers stop at a hole (it is in flight, or will be filled) instead of calling it gone.
 * - A notification whose id is not its queue message's (an idempotency key; a room of a
 *   multi-room publish) names that message in its claim (`source`), kept at least 24 h: a copy
 *   from another queue message (a retry, a room body sent twice) is `heldBy` the owner and posts
 *   nothing, unless the claim is stale with nothing stored (then it takes over, as above).
 *   Without streams the same rule runs on a claim item of its own (claimWithoutStream).
 * Frame text is a pure function of (message, seq), so every writer of one slot writes the
 * same bytes, and live frames equal replayed frames.
 *
 * Costs per notification, however many writers at once: 4 writes (claim put ~1 WCU, counter
 * update 1, claim update ~1, frame 1 per KB), no read; the first append of a stream without a
 * counter (new, or written before the counter existed) adds a head Query and one more update;
 * a sweep (at most one per stream per stale period) reads the frames stored since the last one.
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
import { frameFor, IDEMPOTENCY_WINDOW_HOURS, serializeFrame, type Notification } from "./messages";
import { userChannel } from "./rooms";

/** How a handler stores frames: the table and `history.retentionHours` (0 = streams off). */
export interface StreamSettings {
  streamsTable: string;
  retentionHours: number;
  /**
   * A pending claim older than this is taken over (its owner is presumed dead), and a seq
   * reserved longer ago than this and still missing is filled with a tombstone. Default 60 s.
   */
  claimStaleMs?: number;
  now?: () => number;
}

export interface StreamDeps extends StreamSettings {
  db: DynamoDBClient;
}

/** A frame as stored: what was (or will be) posted to every client, byte for byte. */
export interface StoredFrame {
  seq: number;
  /** The notification's id; "" for a tombstone. */
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
/** Reservations one append may make when its slots keep being taken (by tombstones or writers of the design before the counter). */
const MAX_RESERVATIONS = 10;
/** How far down from the newest frame a head read looks for seqs still being written. */
const HEAD_WINDOW = 16;

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

/** The stream's counter item, under a key no stream or claim can take (as claimKey). */
function counterKey(streamId: string): Record<string, AttributeValue> {
  return { stream_id: S(`${streamId}\u001fseq`), seq: N(0) };
}

/** Retention as whole TTL seconds from now; fractions of an hour are allowed (tests). */
function expiresAt(deps: StreamDeps): number {
  return Math.ceil((now(deps) + deps.retentionHours * 3_600_000) / 1000);
}

/**
 * A claim's TTL. A claim naming its queue message (`source`: a publish with an idempotency key,
 * or one room of a multi-room publish) is what makes later publishes of the same id duplicates,
 * so it lives the key's window (24 h) even when frames expire sooner.
 */
function claimExpiresAt(deps: StreamDeps, source: string | undefined): number {
  const hours = source === undefined ? deps.retentionHours : Math.max(deps.retentionHours, IDEMPOTENCY_WINDOW_HOURS);
  return Math.ceil((now(deps) + hours * 3_600_000) / 1000);
}

function now(deps: StreamDeps): number {
  return (deps.now ?? Date.now)();
}

const staleMs = (deps: StreamDeps) => deps.claimStaleMs ?? DEFAULT_CLAIM_STALE_MS;

/** The stream's frame text for a notification at `seq`: the one serialization, so writers agree. */
export function streamFrame(notification: Notification, seq: number): string {
  return serializeFrame(frameFor(notification, seq));
}

/**
 * The frame stored at a seq whose reservation died unwritten (docs/protocol.md#room-streams):
 * clients count it in sequence and hand nothing to subscribers.
 */
export function tombstoneFrame(streamId: string, seq: number): string {
  return JSON.stringify({ seq, room_id: streamId, skip: true });
}

/**
 * Runs tasks one after another per key (a stream id) within one invocation: records of a
 * batch for one room are stored in the batch's order. Create one per handler.
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

interface TopItem {
  seq: number;
  expiresAt?: number;
}

/** The newest items of a stream's partition (frames and tombstones), newest first. */
async function topOfStream(db: DynamoDBClient, table: string, streamId: string, limit: number): Promise<TopItem[]> {
  const result = await db.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: "stream_id = :s",
      ExpressionAttributeValues: { ":s": S(streamId) },
      ScanIndexForward: false,
      Limit: limit,
      ConsistentRead: true,
      ProjectionExpression: "seq, expires_at",
    }),
  );
  return (result.Items ?? []).map((item) => ({ seq: Number(item.seq?.N ?? 0), expiresAt: item.expires_at?.N ? Number(item.expires_at.N) : undefined }));
}

const expired = (item: TopItem, nowSeconds: number) => item.expiresAt !== undefined && item.expiresAt <= nowSeconds;

/**
 * The head a reader may stand on: the newest seq with nothing missing below it in the window
 * (a seq reserved, not yet written, would arrive after a client took a higher one as its start).
 * A gap under an expired item is expiry, not a seq in flight.
 */
function settledHead(top: TopItem[], nowSeconds: number): number {
  let head = top[0]?.seq ?? 0;
  for (let i = 0; i + 1 < top.length; i++) {
    if (top[i].seq - top[i + 1].seq > 1 && !expired(top[i], nowSeconds)) head = top[i + 1].seq;
  }
  return head;
}

/**
 * The stream's head for a reader: the highest seq stored with none missing just below it
 * (see settledHead); 0 for none. Expired or not: seq never goes back while an item is left.
 */
export async function headSeq(db: DynamoDBClient, table: string, streamId: string, nowSeconds = Math.floor(Date.now() / 1000)): Promise<number> {
  return (await streamHeads(db, table, streamId, nowSeconds)).settled;
}

/** The settled head (headSeq) and the newest seq stored: they differ while a seq below the newest is in flight. */
async function streamHeads(db: DynamoDBClient, table: string, streamId: string, nowSeconds: number): Promise<{ settled: number; newest: number }> {
  const top = await topOfStream(db, table, streamId, HEAD_WINDOW);
  return { settled: settledHead(top, nowSeconds), newest: top[0]?.seq ?? 0 };
}

async function getFrame(db: DynamoDBClient, table: string, streamId: string, seq: number): Promise<StoredFrame | undefined> {
  const result = await db.send(new GetItemCommand({ TableName: table, Key: { stream_id: S(streamId), seq: N(seq) }, ConsistentRead: true }));
  const item = result.Item;
  if (!item?.frame?.S) return undefined;
  return { seq, messageId: item.message_id?.S ?? "", frame: item.frame.S };
}

/** Writes the frame at `seq` unless the slot is taken: true when written. */
async function putFrame(deps: StreamDeps, streamId: string, stored: StoredFrame): Promise<boolean> {
  const item: Record<string, AttributeValue> = { stream_id: S(streamId), seq: N(stored.seq), frame: S(stored.frame), expires_at: N(expiresAt(deps)) };
  if (stored.messageId) item.message_id = S(stored.messageId);
  else item.skip = { BOOL: true };
  try {
    await deps.db.send(new PutItemCommand({ TableName: deps.streamsTable, Item: item, ConditionExpression: "attribute_not_exists(seq)" }));
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/** Fills a reserved seq nobody will write with a tombstone; true when this call wrote it. */
async function putTombstone(deps: StreamDeps, streamId: string, seq: number): Promise<boolean> {
  return putFrame(deps, streamId, { seq, messageId: "", frame: tombstoneFrame(streamId, seq) });
}

/** A writer giving up its reservation (a failure it lives through): best effort, the sweep is the backstop. */
async function abandon(deps: StreamDeps, streamId: string, seq: number): Promise<void> {
  await putTombstone(deps, streamId, seq).catch(() => undefined);
}

/** The counter item as it was just before a reservation. */
interface Counter {
  /** The seq this reservation got. */
  seq: number;
  /** When the reservation before this one was made (ms). */
  previousAt?: number;
  sweptTo: number;
  sweptAt: number;
  sweepMark: number;
}

const num = (value: AttributeValue | undefined) => (value?.N !== undefined ? Number(value.N) : undefined);

/**
 * Reserves the stream's next seq: one atomic ADD on the counter item. A stream without a
 * counter (new, written before the counter existed, or idle until the counter expired) starts
 * it from its newest stored seq (expired or not), so no seq is reused; two writers starting it
 * at once both add to whichever value landed first.
 */
export async function reserveSeq(deps: StreamDeps, streamId: string): Promise<Counter> {
  const at = now(deps);
  const names = { "#r": "reserved", "#t": "reserved_at", "#e": "expires_at" };
  const common = { TableName: deps.streamsTable, Key: counterKey(streamId), ReturnValues: "ALL_OLD" as const };
  let old: Record<string, AttributeValue> | undefined;
  let base = 0;
  try {
    const result = await deps.db.send(
      new UpdateItemCommand({
        ...common,
        UpdateExpression: "ADD #r :one SET #t = :now, #e = :exp",
        ConditionExpression: "attribute_exists(#r)",
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ":one": N(1), ":now": N(at), ":exp": N(expiresAt(deps)) },
      }),
    );
    old = result.Attributes;
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    // Frames of the design before the counter were written one after another: nothing is missing below the newest.
    const top = await topOfStream(deps.db, deps.streamsTable, streamId, 1);
    base = top[0]?.seq ?? 0;
    const result = await deps.db.send(
      new UpdateItemCommand({
        ...common,
        UpdateExpression: "SET #r = if_not_exists(#r, :base) + :one, #t = :now, #e = :exp, #st = if_not_exists(#st, :base), #sa = if_not_exists(#sa, :now), #sm = if_not_exists(#sm, :base)",
        ExpressionAttributeNames: { ...names, "#st": "swept_to", "#sa": "swept_at", "#sm": "sweep_mark" },
        ExpressionAttributeValues: { ":one": N(1), ":now": N(at), ":exp": N(expiresAt(deps)), ":base": N(base) },
      }),
    );
    old = result.Attributes;
  }
  const reserved = num(old?.reserved) ?? base;
  return {
    seq: reserved + 1,
    previousAt: num(old?.reserved_at),
    sweptTo: num(old?.swept_to) ?? base,
    // A counter this reservation started was swept just now: nothing below its base is missing.
    sweptAt: num(old?.swept_at) ?? at,
    sweepMark: num(old?.sweep_mark) ?? base,
  };
}

/**
 * Fills holes for good: every seq up to a bound whose reservation is older than the stale
 * time, missing from the stream, gets a tombstone. The bound comes from the counter as this
 * writer's reservation found it: the reservations up to `sweep_mark` were made before the
 * last sweep (`swept_at`), and all but this writer's own before `reserved_at`; whichever of the
 * two is older than the stale time. One sweeper at a time (a conditional update of
 * `swept_at`); `swept_to` moves only after the sweep, so a sweeper that dies is redone.
 * Returns the seqs tombstoned.
 */
export async function sweepHoles(deps: StreamDeps, streamId: string, counter: Counter): Promise<number[]> {
  const at = now(deps);
  const stale = staleMs(deps);
  const periodic = at - counter.sweptAt >= stale;
  let bound = periodic ? counter.sweepMark : 0;
  if (counter.previousAt !== undefined && at - counter.previousAt >= stale) bound = Math.max(bound, counter.seq - 1);
  if (bound <= counter.sweptTo && !periodic) return [];
  const key = { TableName: deps.streamsTable, Key: counterKey(streamId) };
  try {
    await deps.db.send(
      new UpdateItemCommand({
        ...key,
        UpdateExpression: "SET #sa = :now, #sm = :mark",
        ConditionExpression: "attribute_not_exists(#sa) OR #sa = :seen",
        ExpressionAttributeNames: { "#sa": "swept_at", "#sm": "sweep_mark" },
        ExpressionAttributeValues: { ":now": N(at), ":mark": N(Math.max(counter.seq, counter.sweepMark)), ":seen": N(counter.sweptAt) },
      }),
    );
  } catch (err) {
    if (isConditionFailure(err)) return []; // another writer is sweeping
    throw err;
  }
  if (bound <= counter.sweptTo) return [];
  const present = new Set<number>();
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    // Eventually consistent is enough: a frame the read missed makes the tombstone's condition fail.
    const page = await deps.db.send(
      new QueryCommand({
        TableName: deps.streamsTable,
        KeyConditionExpression: "stream_id = :s AND seq BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":s": S(streamId), ":from": N(counter.sweptTo + 1), ":to": N(bound) },
        ProjectionExpression: "seq",
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) present.add(Number(item.seq?.N));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const filled: number[] = [];
  for (let seq = counter.sweptTo + 1; seq <= bound; seq++) {
    if (!present.has(seq) && (await putTombstone(deps, streamId, seq))) filled.push(seq);
  }
  try {
    await deps.db.send(
      new UpdateItemCommand({
        ...key,
        UpdateExpression: "SET #st = :to",
        ConditionExpression: "#st < :to",
        ExpressionAttributeNames: { "#st": "swept_to" },
        ExpressionAttributeValues: { ":to": N(bound) },
      }),
    );
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
  return filled;
}

interface Claim {
  owner: string;
  updatedAt: number;
  /** The queue message that owns the notification, when its id is not that message's own. */
  source?: string;
  /** The seq recorded for the message (reserved, maybe written); none before the first reservation. */
  candidate?: number;
}

async function readClaim(deps: StreamDeps, streamId: string, messageId: string): Promise<Claim | undefined> {
  const result = await deps.db.send(new GetItemCommand({ TableName: deps.streamsTable, Key: claimKey(streamId, messageId), ConsistentRead: true }));
  const item = result.Item;
  if (!item?.owner?.S) return undefined;
  return { owner: item.owner.S, updatedAt: Number(item.updated_at?.N ?? 0), candidate: num(item.candidate), source: item.source?.S };
}

/**
 * Records a new candidate (or a new owner) only while `owner` still owns the claim (and, for a
 * takeover, nobody touched it since it was read); false otherwise.
 */
async function updateClaim(
  deps: StreamDeps,
  streamId: string,
  messageId: string,
  owner: string,
  set: { candidate?: number; newOwner?: string; expectUpdatedAt?: number; source?: string },
): Promise<boolean> {
  const values: Record<string, AttributeValue> = { ":owner": S(owner), ":next": S(set.newOwner ?? owner), ":now": N(now(deps)) };
  const names: Record<string, string> = { "#o": "owner", "#u": "updated_at" };
  let update = "SET #o = :next, #u = :now";
  if (set.source !== undefined) {
    update += ", #src = :src";
    names["#src"] = "source";
    values[":src"] = S(set.source);
  }
  if (set.candidate !== undefined) {
    update += ", #c = :c";
    names["#c"] = "candidate";
    values[":c"] = N(set.candidate);
  }
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
        UpdateExpression: update,
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

export interface AppendResult {
  stored: StoredFrame;
  /** The message was already in the stream (a redelivery): nothing new was written. */
  duplicate: boolean;
  /**
   * Another queue message stored it (the same idempotency key published again, a multi-room
   * publish's room sent twice): that message delivers it, this one posts nothing. `stored.frame`
   * is "" when the frame has expired meanwhile.
   */
  heldBy?: string;
}

/**
 * Appends as owner of the claim. `inherited`: the seq an earlier owner recorded, which it may
 * have written (or still will): filled with the message if empty, the message's if taken by it.
 */
async function appendAsOwner(deps: StreamDeps, notification: Notification, owner: string, inherited?: number): Promise<AppendResult | "lost"> {
  const streamId = notification.roomId;
  const at = (seq: number): StoredFrame => ({ seq, messageId: notification.id, frame: streamFrame(notification, seq) });
  if (inherited !== undefined) {
    const stored = at(inherited);
    if (await putFrame(deps, streamId, stored)) return { stored, duplicate: false };
    const holder = await getFrame(deps.db, deps.streamsTable, streamId, inherited);
    if (holder?.messageId === notification.id) return { stored: holder, duplicate: true };
  }
  for (let attempt = 0; attempt < MAX_RESERVATIONS; attempt++) {
    const counter = await reserveSeq(deps, streamId);
    const stored = at(counter.seq);
    // Recorded before the frame is written, fenced by the owner field: a redelivery finds it.
    let recorded: boolean;
    let written: boolean;
    try {
      recorded = await updateClaim(deps, streamId, notification.id, owner, { candidate: counter.seq });
      if (!recorded) {
        await abandon(deps, streamId, counter.seq);
        return "lost";
      }
      written = await putFrame(deps, streamId, stored);
    } catch (err) {
      await abandon(deps, streamId, counter.seq);
      throw err;
    }
    if (written) {
      // Stored: a failed sweep must not fail the message (the next writer sweeps).
      await sweepHoles(deps, streamId, counter).catch(() => undefined);
      return { stored, duplicate: false };
    }
    // The slot was filled meanwhile (this writer stalled past the stale time, or a writer of the
    // design before the counter took it): reserve another, if this writer still owns the claim
    // (a successor may have stored the message meanwhile).
    if (!(await updateClaim(deps, streamId, notification.id, owner, {}))) return "lost";
  }
  throw new Error(`stream ${streamId}: ${MAX_RESERVATIONS} reserved seqs were all taken before this message could be written`);
}

/**
 * Stores a notification in its stream exactly once and returns its frame (seq and bytes).
 * Throws StreamBusyError while another invocation is appending the same message.
 */
export async function appendOnce(deps: StreamDeps, notification: Notification, source?: string): Promise<AppendResult> {
  const streamId = notification.roomId;
  const owner = crypto.randomUUID();
  const item: Record<string, AttributeValue> = { ...claimKey(streamId, notification.id), owner: S(owner), updated_at: N(now(deps)), expires_at: N(claimExpiresAt(deps, source)) };
  if (source !== undefined) item.source = S(source);
  try {
    await deps.db.send(new PutItemCommand({ TableName: deps.streamsTable, Item: item, ConditionExpression: "attribute_not_exists(stream_id)" }));
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    return resumeClaim(deps, notification, source);
  }
  const result = await appendAsOwner(deps, notification, owner);
  return result === "lost" ? resumeClaim(deps, notification, source) : result;
}

/**
 * The message has a claim already: reuse its frame, let its live owner finish, or take over.
 * `source`: the queue message this delivery comes from, when the id is not its own; a frame
 * another queue message stored is that message's to deliver (`heldBy`).
 */
async function resumeClaim(deps: StreamDeps, notification: Notification, source?: string): Promise<AppendResult> {
  const streamId = notification.roomId;
  for (let attempt = 0; attempt < 5; attempt++) {
    const claim = await readClaim(deps, streamId, notification.id);
    if (!claim) throw new StreamBusyError(streamId); // being written or expired between reads: let SQS retry
    const heldBy = source !== undefined && claim.source !== undefined && claim.source !== source ? claim.source : undefined;
    // The candidate holds the message once it is stored: the redelivery's usual answer.
    if (claim.candidate !== undefined) {
      const holder = await getFrame(deps.db, deps.streamsTable, streamId, claim.candidate);
      if (holder?.messageId === notification.id) return { stored: holder, duplicate: true, ...(heldBy ? { heldBy } : {}) };
      // The key outlives the frames (retention under 24 h): a claim recorded longer ago than the
      // retention stored its frame, which has expired since; storing it again would be a second notification.
      if (heldBy && now(deps) - claim.updatedAt > deps.retentionHours * 3_600_000) {
        return { stored: { seq: claim.candidate, messageId: notification.id, frame: "" }, duplicate: true, heldBy };
      }
    }
    const recent = now(deps) - claim.updatedAt < staleMs(deps);
    // Its owner is at work on it, and its queue message stays until it is done (or dead-lettered,
    // and a redrive finds the claim stale): nothing for this copy to do, not even to wait.
    if (heldBy && recent) return { stored: { seq: claim.candidate ?? 0, messageId: notification.id, frame: "" }, duplicate: true, heldBy };
    if (recent) throw new StreamBusyError(streamId);
    const owner = crypto.randomUUID();
    if (!(await updateClaim(deps, streamId, notification.id, claim.owner, { newOwner: owner, expectUpdatedAt: claim.updatedAt, source }))) continue;
    const result = await appendAsOwner(deps, notification, owner, claim.candidate);
    if (result !== "lost") return result;
  }
  throw new StreamBusyError(streamId);
}

/** The key of a claim kept without streams: apart from the streams' claims, so turning streams on meets none. */
function onceKey(streamId: string, messageId: string): Record<string, AttributeValue> {
  return { stream_id: S(`${streamId}\u001fonce\u001f${messageId}`), seq: N(0) };
}

/**
 * Exactly once per id without streams (retention 0), for a notification whose id is not its
 * queue message's (`source`). One item per (stream, id) in the streams table, kept 24 h: a
 * PutItem that passes when the item is absent, expired or this message's own (a redelivery);
 * `settle` marks it done once the fan-out ran. A claim of another message is a duplicate
 * (`heldBy`) when done or recently updated (its owner's message stays on the queue until it
 * is done), and is taken over when stale and not done (its owner died: that message went to
 * the dead-letter queue, and a redrive gives it a new id). Costs 2 writes per notification; a
 * duplicate 1 refused write and 1 read.
 */
async function claimWithoutStream(deps: StreamDeps, notification: Notification, source: string): Promise<{ heldBy?: string; settle?: () => Promise<void> }> {
  const { db, streamsTable: table } = deps;
  const key = onceKey(notification.roomId, notification.id);
  const at = now(deps);
  const settle = async () => {
    await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: key,
        UpdateExpression: "SET #d = :t",
        ConditionExpression: "#src = :src",
        ExpressionAttributeNames: { "#d": "done", "#src": "source" },
        ExpressionAttributeValues: { ":t": { BOOL: true }, ":src": S(source) },
      }),
    ).catch(() => undefined); // not marked: a later duplicate finds it stale and delivers again, with the same id
  };
  try {
    await db.send(
      new PutItemCommand({
        TableName: table,
        Item: { ...key, source: S(source), updated_at: N(at), expires_at: N(claimExpiresAt(deps, source)) },
        ConditionExpression: "attribute_not_exists(stream_id) OR #src = :src OR #e <= :nowSeconds",
        ExpressionAttributeNames: { "#src": "source", "#e": "expires_at" },
        ExpressionAttributeValues: { ":src": S(source), ":nowSeconds": N(Math.floor(at / 1000)) },
      }),
    );
    return { settle };
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
  const result = await db.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }));
  const item = result.Item;
  const owner = item?.source?.S;
  if (!item || !owner) throw new StreamBusyError(notification.roomId);
  const updatedAt = Number(item.updated_at?.N ?? 0);
  // Done, or its owner at work on it (its queue message stays until done): a duplicate.
  if (item.done?.BOOL || at - updatedAt < staleMs(deps)) return { heldBy: owner };
  try {
    await db.send(
      new UpdateItemCommand({
        TableName: table,
        Key: key,
        UpdateExpression: "SET #src = :src, #u = :now",
        ConditionExpression: "#src = :owner AND #u = :seen AND attribute_not_exists(#d)",
        ExpressionAttributeNames: { "#src": "source", "#u": "updated_at", "#d": "done" },
        ExpressionAttributeValues: { ":src": S(source), ":now": N(at), ":owner": S(owner), ":seen": N(updatedAt) },
      }),
    );
  } catch (err) {
    if (isConditionFailure(err)) throw new StreamBusyError(notification.roomId);
    throw err;
  }
  return { settle };
}

/** What to post for a notification, and whether to post at all. */
export interface FrameToSend {
  frame: string;
  seq?: number;
  duplicate: boolean;
  /** Another queue message holds this notification (see AppendResult.heldBy): post nothing. */
  heldBy?: string;
  /** Call once the fan-out ran (streams off, a `source` given): later duplicates are then dropped. */
  settle?: () => Promise<void>;
}

/**
 * Store before send: the frame text every recipient gets. With streams on, the notification
 * is appended to its room's stream first (exactly once) and the stored bytes are returned;
 * with streams off (no settings, or retention 0), the frame without seq. `source`: the queue
 * message delivering it, when the notification's id is not that message's own (an idempotency
 * key, a room of a multi-room publish): then another message with the same id is a duplicate,
 * with streams off too as long as the table is known.
 */
export async function frameToSend(db: DynamoDBClient, settings: StreamSettings | undefined, notification: Notification, source?: string): Promise<FrameToSend> {
  if (!settings || settings.retentionHours <= 0) {
    const frame = serializeFrame(frameFor(notification));
    if (!settings || source === undefined) return { frame, duplicate: false };
    const claim = await claimWithoutStream({ ...settings, db }, notification, source);
    return { frame, duplicate: claim.heldBy !== undefined, ...claim };
  }
  const { stored, duplicate, heldBy } = await appendOnce({ ...settings, db }, notification, source);
  return { frame: stored.frame, seq: stored.seq, duplicate, ...(heldBy ? { heldBy } : {}) };
}

export interface ReadResult {
  frames: StoredFrame[];
  /**
   * The stream's head when read (headSeq); lower when a seq in the range was missing between
   * stored frames (still being written, or a hole a tombstone will fill): the seq before it.
   */
  lastSeq: number;
  /** Frames asked for (seq after+1 on) had expired: the first returned seq is not after+1. */
  gone: boolean;
  /** More than `limit` frames were asked for; `frames` holds the first `limit`. */
  truncated: boolean;
  /** The `after` actually used (for `last`: lastSeq - last, at least 0). */
  after: number;
  /**
   * A seq at or below the stream's newest is missing between stored frames (being written, or
   * a hole a tombstone will fill): frames beyond `lastSeq` exist or will, so a reader holding
   * one must not take it for a frame the stream never had.
   */
  inFlight: boolean;
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
  const nowSeconds = range.nowSeconds ?? Math.floor(Date.now() / 1000);
  const heads = await streamHeads(db, table, streamId, nowSeconds);
  let lastSeq = heads.settled;
  const after = range.last !== undefined ? Math.max(0, lastSeq - range.last) : (range.after ?? 0);
  const frames: StoredFrame[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  const wanted = Math.min(limit, Math.max(0, lastSeq - after));
  // The item at `after` (the reader's last seq), when it is still there, tells a seq missing
  // right after it (in flight, or a hole to be filled) from frames that expired.
  let sawItem = false;
  let expected = after + 1;
  let hole: number | undefined;
  while (frames.length < wanted && hole === undefined) {
    const result = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "stream_id = :s AND seq BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":s": S(streamId), ":from": N(Math.max(after, 1)), ":to": N(lastSeq) },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
        Limit: wanted - frames.length + 1,
      }),
    );
    for (const item of result.Items ?? []) {
      const seq = Number(item.seq?.N);
      if (seq <= after) {
        sawItem = true;
        continue;
      }
      const isExpired = item.expires_at?.N !== undefined && Number(item.expires_at.N) <= nowSeconds;
      // A seq missing between stored items, under one not expired, is still being written or
      // will be filled with a tombstone: the read stops before it (the reader asks again).
      if (seq > expected && sawItem && !isExpired) {
        hole = expected;
        break;
      }
      sawItem = true;
      expected = seq + 1;
      if (isExpired || !item.frame?.S) continue;
      frames.push({ seq, messageId: item.message_id?.S ?? "", frame: item.frame.S });
      if (frames.length >= wanted) break;
    }
    startKey = result.LastEvaluatedKey;
    if (!startKey) break;
  }
  if (hole !== undefined) lastSeq = hole - 1;
  const gone = lastSeq > after && (frames.length === 0 || frames[0].seq !== after + 1);
  const truncated = lastSeq - after > limit;
  return { frames: frames.slice(0, limit), lastSeq, gone, truncated, after, inFlight: hole !== undefined || heads.newest > heads.settled };
}

/**
 * The streams a connection may read (resume): the rooms it is subscribed to and its own user
 * channel (core/rooms.ts), which no one else can read.
 */
export function subscribedStreams(connection: { rooms: readonly string[]; userId: string }): string[] {
  return [...connection.rooms, userChannel(connection.userId)];
}
