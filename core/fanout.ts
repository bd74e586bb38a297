/**
 * Fan-out: one notification to every live connection of a room. Used by the SQS deliver
 * Lambda, the sendMessage route and the local hub.
 *
 * - Reads the room through its index page by page (never a Scan of the table).
 * - Posts with bounded concurrency over keep-alive sockets.
 * - 410 Gone: the connection is dead; its row is deleted.
 * - 429 / 5xx / network errors: retried with jittered backoff; what still fails is returned
 *   so the caller can hand it back to SQS. Nothing is dropped silently.
 * - Big rooms: past `chunkSize` connections the rest of the room is cut into chunks and put
 *   back on the queue, so several invocations post in parallel.
 */
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { describeError, type Logger } from "./log";
import { frameFor, serializeFrame, type Notification } from "./messages";
import { deleteConnection, roomPages } from "./tables";

export interface RetryPolicy {
  /** Attempts per connection, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 50, maxDelayMs: 1_000 };
/**
 * Posts in flight per invocation. Sockets are capped separately (64, keep-alive, in
 * core/aws.ts); letting more requests than sockets queue in the SDK overlaps its per-request
 * work (serializing, signing) with the network. Measured here: 4,000 posts took ~1.6 s with
 * 50 in flight and ~1.2 s with all queued.
 */
export const DEFAULT_POST_CONCURRENCY = 500;
export const DEFAULT_CHUNK_SIZE = 1_000;

export interface FanoutDeps {
  db: DynamoDBClient;
  management: ApiGatewayManagementApiClient;
  connectionsTable: string;
  log: Logger;
  concurrency?: number;
  retry?: RetryPolicy;
  /** Connections one invocation posts to before it splits the room (0 = never split). */
  chunkSize?: number;
  /** Puts chunks of a room back on the queue; without it, rooms are never split. */
  enqueueChunks?: (notification: Notification, chunks: string[][]) => Promise<void>;
  sleep?: (ms: number) => Promise<void>;
}

export interface FanoutResult {
  delivered: number;
  gone: number;
  /** Connections that still failed after every retry: the caller must not report success. */
  failed: string[];
  /** Connections handed to other invocations through the queue. */
  handedOff: number;
  itemsRead: number;
  capacityUnits: number;
}

type PostOutcome = "delivered" | "gone" | "failed";

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

export function isGone(err: unknown): boolean {
  return (err as Error)?.name === "GoneException" || httpStatus(err) === 410;
}

/** Throttles, server errors and broken sockets are worth another try; 4xx other than 429 are not. */
export function isRetryable(err: unknown): boolean {
  const status = httpStatus(err);
  if (status === undefined) return true; // network error: no response at all
  return status === 429 || status >= 500;
}

/** Full jitter: spreads retries of a big room so they don't hit the API in lockstep. */
export function backoffDelay(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(Math.random() * ceiling);
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function mapWithConcurrency<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Posts one frame to one connection, retrying what is worth retrying. */
async function postOne(deps: FanoutDeps, connectionId: string, payload: Uint8Array): Promise<PostOutcome> {
  const policy = deps.retry ?? DEFAULT_RETRY;
  const sleep = deps.sleep ?? defaultSleep;
  for (let attempt = 0; ; attempt++) {
    try {
      await deps.management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: payload }));
      return "delivered";
    } catch (err) {
      if (isGone(err)) {
        try {
          await deleteConnection(deps.db, deps.connectionsTable, connectionId);
        } catch (deleteErr) {
          // The row expires by TTL anyway; the next message will try again.
          deps.log.warn("stale connection row not deleted", { connection_id: connectionId, ...describeError(deleteErr) });
        }
        return "gone";
      }
      if (!isRetryable(err) || attempt + 1 >= policy.attempts) {
        deps.log.warn("post to connection failed", { connection_id: connectionId, attempts: attempt + 1, ...describeError(err) });
        return "failed";
      }
      await sleep(backoffDelay(attempt, policy));
    }
  }
}

/** Posts a notification to a known list of connections (a chunk, or a retry of failures). */
export async function postToConnections(deps: FanoutDeps, notification: Notification, connectionIds: readonly string[]): Promise<FanoutResult> {
  const payload = Buffer.from(serializeFrame(frameFor(notification)), "utf8");
  const outcomes = await mapWithConcurrency(connectionIds, deps.concurrency ?? DEFAULT_POST_CONCURRENCY, (id) => postOne(deps, id, payload));
  const result: FanoutResult = { delivered: 0, gone: 0, failed: [], handedOff: 0, itemsRead: 0, capacityUnits: 0 };
  outcomes.forEach((outcome, i) => {
    if (outcome === "delivered") result.delivered++;
    else if (outcome === "gone") result.gone++;
    else result.failed.push(connectionIds[i]);
  });
  return result;
}

function addInto(total: FanoutResult, part: FanoutResult): void {
  total.delivered += part.delivered;
  total.gone += part.gone;
  total.failed.push(...part.failed);
  total.handedOff += part.handedOff;
  total.itemsRead += part.itemsRead;
  total.capacityUnits += part.capacityUnits;
}

/** Delivers a notification to its whole room. */
export async function fanOutToRoom(deps: FanoutDeps, notification: Notification): Promise<FanoutResult> {
  const total: FanoutResult = { delivered: 0, gone: 0, failed: [], handedOff: 0, itemsRead: 0, capacityUnits: 0 };
  const chunkSize = deps.enqueueChunks ? (deps.chunkSize ?? DEFAULT_CHUNK_SIZE) : 0;
  const mine: string[] = [];
  const overflow: string[] = [];
  for await (const page of roomPages(deps.db, deps.connectionsTable, notification.roomId)) {
    total.itemsRead += page.itemsRead;
    total.capacityUnits += page.capacityUnits;
    for (const { connectionId } of page.connections) {
      if (chunkSize === 0 || mine.length < chunkSize) mine.push(connectionId);
      else overflow.push(connectionId);
    }
    // Without chunking, post each page's worth while later pages are still to be read.
    if (chunkSize === 0 && mine.length >= (deps.concurrency ?? DEFAULT_POST_CONCURRENCY) * 4) {
      addInto(total, await postToConnections(deps, notification, mine.splice(0)));
    }
  }
  if (overflow.length > 0 && deps.enqueueChunks) {
    // Hand the rest of the room off first, so the other invocations start while this one posts.
    const chunks: string[][] = [];
    for (let i = 0; i < overflow.length; i += chunkSize) chunks.push(overflow.slice(i, i + chunkSize));
    await deps.enqueueChunks(notification, chunks);
    total.handedOff += overflow.length;
  }
  addInto(total, await postToConnections(deps, notification, mine));
  return total;
}
