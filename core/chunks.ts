/**
 * Chunks: slices of one notification's recipients put back on the queue, by a deliver
 * invocation splitting a big room or by deliver/sendMessage retrying failed posts. Writer
 * and reader live here together, so the format changes in one place.
 *
 * A chunk carries the exact frame text that was stored in the room's stream (with its
 * `seq`), so every recipient gets the same bytes, live or replayed, and a chunk never
 * assigns a seq again. Chunks queued by the version before streams (`data` fields instead
 * of `frame`, in flight during an upgrade) are still read.
 */
import type { PostLane } from "./budget";
import { sendBatches } from "./queue";
import type { SQSClient } from "@aws-sdk/client-sqs";
import {
  byteLength,
  checkFrameSize,
  fail,
  isPlainObject,
  MAX_ID_LENGTH,
  MAX_MESSAGE_BYTES,
  MAX_QUEUE_BODY_BYTES,
  normalizeId,
  parseMultiRoomBody,
  parsePublishBody,
  parseQueueJson,
  type MultiRoomPublish,
  type FrameOrigin,
  type Notification,
  type Parsed,
} from "./messages";
import { connectionIdOf } from "./rooms";

/** Connection ids a chunk may carry: a chunk is at most a few thousand connections. */
export const MAX_CHUNK_CONNECTIONS = 10_000;
const MAX_CONNECTION_ID_LENGTH = 128;

export interface ChunkBody {
  kind: "chunk";
  /** The original message's id (the frame's id). */
  id: string;
  room_id: string;
  /**
   * The frame text to post, exactly as stored (and as the room's other members got it), in
   * base64: bounded growth (4/3), where a JSON string could double a frame full of quotes
   * past SQS's 256 KiB.
   */
  frame_base64: string;
  connection_ids: string[];
}

/** A queue record ready for delivery: a publish (no connection list) or a chunk. */
export interface QueueRecord {
  notification: Notification;
  /** For a chunk: the frame text to post verbatim. */
  frame?: string;
  connectionIds?: string[];
  /** A publish to several rooms: deliver requeues it as one body per room (`notification` is its first room's). */
  split?: MultiRoomPublish;
}

export function chunkBody(notification: Notification, frame: string, connectionIds: string[]): string {
  const body: ChunkBody = {
    kind: "chunk",
    id: notification.id,
    room_id: notification.roomId,
    frame_base64: Buffer.from(frame, "utf8").toString("base64"),
    connection_ids: connectionIds,
  };
  return JSON.stringify(body);
}

/**
 * Chunk bodies for these connection lists, each list halved until its body fits in one SQS
 * message. Every chunk carries the frame, so a notification near 128 KB leaves room for only
 * some thousands of ids per body.
 */
export function chunkBodies(notification: Notification, frame: string, chunks: string[][]): string[] {
  const bodies: string[] = [];
  const pending = [...chunks].reverse();
  while (pending.length > 0) {
    const ids = pending.pop()!;
    if (ids.length === 0) continue;
    const body = chunkBody(notification, frame, ids);
    if (byteLength(body) <= MAX_QUEUE_BODY_BYTES) {
      bodies.push(body);
      continue;
    }
    if (ids.length === 1) throw new RangeError(`a chunk for one connection is ${byteLength(body)} bytes; SQS takes ${MAX_QUEUE_BODY_BYTES}`);
    const half = Math.ceil(ids.length / 2);
    pending.push(ids.slice(half), ids.slice(0, half));
  }
  return bodies;
}

/** Where a chunk goes: its lane's queue, and after how long. */
export interface ChunkRouting {
  /** "bulk": a big room's chunks, to the bulk queue when the hub has one (core/budget.ts lanes). */
  lane?: PostLane;
  delaySeconds?: number;
}

/**
 * Puts chunks back on a queue: the bulk queue for the big-room lane when there is one, else
 * the notification queue. A chunk carries the stored frame, so a requeued chunk keeps its
 * notification's identity (same id, same seq, same bytes).
 */
export function chunkEnqueuer(sqs: SQSClient, queueUrl: string, bulkQueueUrl?: string) {
  return async (notification: Notification, chunks: string[][], frame: string, routing: ChunkRouting = {}): Promise<void> => {
    const url = routing.lane === "bulk" && bulkQueueUrl ? bulkQueueUrl : queueUrl;
    await sendBatches(sqs, url, chunkBodies(notification, frame, chunks), "enqueueChunks", routing.delaySeconds);
  };
}

function parseConnectionIds(ids: unknown): Parsed<string[]> {
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_CHUNK_CONNECTIONS) {
    return fail("invalid_chunk", `connection_ids must be an array of 1 to ${MAX_CHUNK_CONNECTIONS} ids`);
  }
  if (ids.some((id) => typeof id !== "string" || id.length === 0)) return fail("invalid_chunk", `each of connection_ids must be a string of 1 to ${MAX_CONNECTION_ID_LENGTH} characters`);
  // A deliver from before many rooms per connection took the room index's keys for connection
  // ids, and during the upgrade it may requeue a membership's key (core/rooms.ts): its connection.
  const connections = [...new Set((ids as string[]).map(connectionIdOf))];
  if (connections.some((id) => id.length === 0 || id.length > MAX_CONNECTION_ID_LENGTH)) {
    return fail("invalid_chunk", `each of connection_ids must be a string of 1 to ${MAX_CONNECTION_ID_LENGTH} characters`);
  }
  return { ok: true, value: connections };
}

/**
 * A chunk is written by a deliver or sendMessage invocation, but anyone who may send to the
 * queue can forge one: it gets every check a publish body gets, plus its own fields. Its
 * frame must be a frame of the chunk's own message and room.
 */
function parseChunk(body: Record<string, unknown>): Parsed<QueueRecord> {
  const room = normalizeId(body.room_id, "room_id");
  if (!room.ok) return room;
  if (typeof body.id !== "string" || body.id.length === 0 || body.id.length > MAX_ID_LENGTH) {
    return fail("invalid_chunk", `a chunk needs the original message id (1 to ${MAX_ID_LENGTH} characters)`);
  }
  const ids = parseConnectionIds(body.connection_ids);
  if (!ids.ok) return ids;
  if (typeof body.frame_base64 === "string") {
    const text = Buffer.from(body.frame_base64, "base64").toString("utf8");
    if (byteLength(text) > MAX_MESSAGE_BYTES) return fail("message_too_large", `a chunk's frame is limited to ${MAX_MESSAGE_BYTES} bytes`);
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      return fail("invalid_chunk", "a chunk's frame must be JSON");
    }
    if (!isPlainObject(frame) || frame.id !== body.id || frame.room_id !== room.value || (frame.origin !== "app" && frame.origin !== "client")) {
      return fail("invalid_chunk", "a chunk's frame must be a frame of the chunk's own id and room_id");
    }
    const userId = typeof frame.user_id === "string" ? frame.user_id : null;
    const notification: Notification = { id: body.id, roomId: room.value, userId, origin: frame.origin, data: frame.data };
    return { ok: true, value: { notification, frame: text, connectionIds: ids.value } };
  }
  // A chunk from before streams: the frame is rebuilt from its fields.
  let userId: string | null = null;
  if (body.user_id !== undefined && body.user_id !== null) {
    const user = normalizeId(body.user_id, "user_id");
    if (!user.ok) return user;
    userId = user.value;
  }
  const origin = (body.origin ?? "app") as FrameOrigin;
  if (origin !== "app" && origin !== "client") return fail("invalid_chunk", 'a chunk\'s origin must be "app" or "client"');
  if (!("data" in body) || body.data === undefined) return fail("missing_data", "data is required (any JSON value)");
  const notification: Notification = { id: body.id, roomId: room.value, userId, origin, data: body.data };
  const size = checkFrameSize(notification);
  if (!size.ok) return size;
  return { ok: true, value: { notification, frame: size.value, connectionIds: ids.value } };
}

/** Validates any queue body: a publish body or a chunk. Never throws. */
export function parseQueueBody(text: string, messageId: string): Parsed<QueueRecord> {
  const body = parseQueueJson(text);
  if (!body.ok) return body;
  if (body.value.kind === "chunk") return parseChunk(body.value);
  if (body.value.room_ids !== undefined && body.value.room_ids !== null) {
    const many = parseMultiRoomBody(body.value, messageId);
    if (!many.ok) return many;
    const [first] = many.value.notifications;
    return { ok: true, value: many.value.notifications.length === 1 ? { notification: first } : { notification: first, split: many.value } };
  }
  const notification = parsePublishBody(body.value, messageId);
  return notification.ok ? { ok: true, value: { notification: notification.value } } : notification;
}
