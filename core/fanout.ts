/**
 * Fan-out: one notification to every live connection of a room. Used by the SQS deliver
 * Lambda, the sendMessage route and the local hub.
 *
 * - Reads the room through its index page by page (never a Scan of the table).
 * - Posts with bounded concurrency through core/connections.ts (signed keep-alive posts; 410
 *   deletes the row; 429 / 5xx / timeouts retried with jitter). What still fails is returned
 *   so the caller can hand it back to SQS. Nothing is dropped silently.
 * - Big rooms: past `chunkSize` connections the rest of the room is cut into chunks and put
 *   back on the queue, so several invocations post in parallel.
 */
import { MANAGEMENT_MAX_SOCKETS } from "./aws";
import { postWithRetries, type PostDeps } from "./connections";
import type { ChunkRouting } from "./chunks";
import { frameFor, serializeFrame, type Notification } from "./messages";
import type { StreamSettings } from "./streams";
import { roomPages } from "./tables";

export { DEFAULT_RETRY, isGone, type RetryPolicy } from "./connections";

/**
 * Posts in flight per fan-out: as many as the keep-alive sockets (core/aws.ts). With the
 * SDK client, queueing more requests than sockets overlapped its heavy per-request work with
 * the network; with the cheap post path, requests waiting in the agent's queue only cost CPU
 * (bench post-cost: ~2× the client CPU per post at 500 in flight over 64 sockets).
 */
export const DEFAULT_POST_CONCURRENCY = MANAGEMENT_MAX_SOCKETS;
export const DEFAULT_CHUNK_SIZE = 1_000;

export interface FanoutDeps extends PostDeps {
  /** Room streams (core/streams.ts): frames are stored here before they are sent. Unset = streams off. */
  streams?: StreamSettings;
  concurrency?: number;
  /** Connections one invocation posts to before it splits the room (0 = never split). */
  chunkSize?: number;
  /** Puts chunks of a room back on the queue with the frame to post; without it, rooms are never split. */
  enqueueChunks?: (notification: Notification, chunks: string[][], frame: string, routing?: ChunkRouting) => Promise<void>;
  /**
   * The hub has a bulk queue (the big-room lane): a room bigger than one chunk goes there
   * whole, in chunks, and the invocation that read it posts none of it itself, so the
   * notification queue only ever carries user channels, small rooms and retries.
   */
  bulkQueueName?: string;
}

export interface FanoutResult {
  delivered: number;
  gone: number;
  /** Connections that still failed after every retry, `deferred` ones included: the caller must not report success. */
  failed: string[];
  /** Of `failed`, those the budget held back (no token before the deadline, or still 429): requeue, never dead-letter. */
  deferred: string[];
  /** Connections handed to other invocations through the queue. */
  handedOff: number;
  itemsRead: number;
  capacityUnits: number;
}

/**
 * Runs `work` over `items` with at most `limit` in flight; rejects with the first error (no
 * new items start after it). Freed slots are refilled together once per event-loop turn
 * (setImmediate), not one by one as each item finishes: posts then leave in bursts and their
 * answers arrive in bursts, which halves the client CPU per post against a steady trickle
 * (bench post-cost). A slow item only holds its own slot.
 */
export function mapWithConcurrency<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  return new Promise<R[]>((resolve, reject) => {
    const results = new Array<R>(items.length);
    let next = 0;
    let inFlight = 0;
    let done = 0;
    let failed = false;
    let scheduled = false;
    // One function (Pulumi's closure serializer cannot follow two arrow functions that call each other).
    const refill = (finished: boolean) => {
      if (finished) {
        inFlight--;
        if (++done === items.length) return resolve(results);
        if (scheduled || failed) return;
        scheduled = true;
        return void setImmediate(refill, false);
      }
      scheduled = false;
      while (!failed && inFlight < limit && next < items.length) {
        const index = next++;
        inFlight++;
        let started: Promise<R>;
        try {
          started = work(items[index]);
        } catch (err) {
          started = Promise.reject(err);
        }
        started.then(
          (value) => {
            results[index] = value;
            refill(true);
          },
          (err: unknown) => {
            failed = true;
            reject(err);
          },
        );
      }
    };
    if (items.length === 0) resolve(results);
    else refill(false);
  });
}

/**
 * Posts a notification to a known list of connections (a chunk, or a retry of failures).
 * `frameText` is the exact text to post (the stored stream frame); default: the frame without seq.
 */
export async function postToConnections(deps: FanoutDeps, notification: Notification, connectionIds: readonly string[], frameText?: string): Promise<FanoutResult> {
  // Serialized and hashed once for the whole list; only the signature differs per connection.
  const frame = deps.management.prepare(frameText ?? serializeFrame(frameFor(notification)));
  const outcomes = await mapWithConcurrency(connectionIds, deps.concurrency ?? DEFAULT_POST_CONCURRENCY, (id) => postWithRetries(deps, id, frame, notification.roomId));
  const result: FanoutResult = { delivered: 0, gone: 0, failed: [], deferred: [], handedOff: 0, itemsRead: 0, capacityUnits: 0 };
  outcomes.forEach((outcome, i) => {
    if (outcome === "delivered") result.delivered++;
    else if (outcome === "gone") result.gone++;
    else {
      result.failed.push(connectionIds[i]);
      if (outcome === "deferred") result.deferred.push(connectionIds[i]);
    }
  });
  return result;
}

function addInto(total: FanoutResult, part: FanoutResult): void {
  total.delivered += part.delivered;
  total.gone += part.gone;
  total.failed.push(...part.failed);
  total.deferred.push(...part.deferred);
  total.handedOff += part.handedOff;
  total.itemsRead += part.itemsRead;
  total.capacityUnits += part.capacityUnits;
}

/** Delivers a notification to its whole room, posting `frameText` (default: the frame without seq). */
export async function fanOutToRoom(deps: FanoutDeps, notification: Notification, frameText?: string): Promise<FanoutResult> {
  const text = frameText ?? serializeFrame(frameFor(notification));
  const total: FanoutResult = { delivered: 0, gone: 0, failed: [], deferred: [], handedOff: 0, itemsRead: 0, capacityUnits: 0 };
  const chunkSize = deps.enqueueChunks ? (deps.chunkSize ?? DEFAULT_CHUNK_SIZE) : 0;
  const mine: string[] = [];
  const overflow: string[] = [];
  // Each connection gets the frame once, even if the index held two items for it (a seed row
  // and a membership of its room, core/rooms.ts): a Set of ids is cheap beside a post.
  const seen = new Set<string>();
  for await (const page of roomPages(deps.db, deps.connectionsTable, notification.roomId)) {
    total.itemsRead += page.itemsRead;
    total.capacityUnits += page.capacityUnits;
    for (const { connectionId } of page.connections) {
      if (seen.has(connectionId)) continue;
      seen.add(connectionId);
      if (chunkSize === 0 || mine.length < chunkSize) mine.push(connectionId);
      else overflow.push(connectionId);
    }
    // Without chunking, post each page's worth while later pages are still to be read.
    if (chunkSize === 0 && mine.length >= (deps.concurrency ?? DEFAULT_POST_CONCURRENCY) * 4) {
      addInto(total, await postToConnections(deps, notification, mine.splice(0), text));
    }
  }
  if (overflow.length > 0 && deps.enqueueChunks) {
    // With a bulk queue the whole big room goes there; this invocation keeps its lane for small messages.
    if (deps.bulkQueueName) overflow.unshift(...mine.splice(0));
    // Hand the rest of the room off first, so the other invocations start while this one posts.
    const chunks: string[][] = [];
    for (let i = 0; i < overflow.length; i += chunkSize) chunks.push(overflow.slice(i, i + chunkSize));
    await deps.enqueueChunks(notification, chunks, text, { lane: "bulk" });
    total.handedOff += overflow.length;
  }
  addInto(total, await postToConnections(deps, notification, mine, text));
  return total;
}
