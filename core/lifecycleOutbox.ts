/**
 * The lifecycle events' outbox (core/lifecycleEvents.ts): what the publisher could not put on
 * the bus for a passing reason (throttled, 5xx, no answer, entries failing InternalFailure or
 * ThrottlingException past the retries) is kept as items of the presence table, and the sweep
 * (handlers/sweep.ts) puts them on the bus again at its next run, before its other phases.
 *
 * - One partition, `\u001foutbox` (core/presence.ts's reserved keys: ids hold no control
 *   characters, so no room meets it); sort key `{at, 13 digits}\u001f{event_id}`: read oldest
 *   first, and the same event kept twice (a route retried, a close found by two paths) is one
 *   item.
 * - `event`: the event's JSON (an event is far under DynamoDB's 400 KB: its entry is under
 *   EventBridge's 256 KB or it is never kept); `expires_at`: TTL, a day.
 * - The drain deletes each item EventBridge took; what it refuses for a passing reason stays for
 *   the next run (no new item, no loop), and the run stops there; what it refuses for good (the
 *   bus or its rules changed) is a `lifecycle.failed` and deleted. At least once: an item deleted after its event landed but before the
 *   delete answered is sent again, with its `event_id`.
 */
import { DeleteItemCommand, PutItemCommand, QueryCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { mapWithConcurrency } from "./fanout";
import type { LifecycleEvent } from "./presence";

export const OUTBOX_PARTITION = "\u001foutbox";
const SEP = "\u001f";
/** An outboxed event older than this is gone (TTL): consumers past a day's outage replay from the `lifecycle.failed` lines. */
export const OUTBOX_TTL_SECONDS = 24 * 60 * 60;
/** Items one drain Query reads; a run reads pages until one is not all delivered, at most OUTBOX_MAX_PAGES. */
export const OUTBOX_PAGE = 100;
export const OUTBOX_MAX_PAGES = 10;
/** Outbox writes in flight at once (a route's events are a handful). */
const OUTBOX_WRITE_CONCURRENCY = 10;

export interface LifecycleOutbox {
  db: DynamoDBClient;
  /** The presence table (core/schema.ts presenceTable). */
  presenceTable: string;
}

export interface OutboxDrain {
  /** Items deleted: put on the bus (or refused for good, a `lifecycle.failed`). */
  drained: number;
  /** Items read and still there (refused again, or not sent: the run stopped at a refusal). */
  left: number;
}

const S = (value: string): AttributeValue => ({ S: value });

/** The item's sort key: oldest first, one per event. */
export function outboxKey(event: LifecycleEvent): string {
  return `${String(Math.max(0, Math.floor(event.detail.at))).padStart(13, "0")}${SEP}${event.detail.event_id}`;
}

/** Keeps the events; returns those whose write failed (the caller logs them). Never throws. */
export async function keepInOutbox(outbox: LifecycleOutbox, events: readonly LifecycleEvent[], now: number): Promise<{ failed: LifecycleEvent[]; error?: unknown }> {
  const failed: LifecycleEvent[] = [];
  let error: unknown;
  await mapWithConcurrency(events, OUTBOX_WRITE_CONCURRENCY, async (event) => {
    try {
      await outbox.db.send(
        new PutItemCommand({
          TableName: outbox.presenceTable,
          Item: { room_id: S(OUTBOX_PARTITION), user_id: S(outboxKey(event)), event: S(JSON.stringify(event)), expires_at: { N: String(Math.floor(now / 1000) + OUTBOX_TTL_SECONDS) } },
        }),
      );
    } catch (err) {
      failed.push(event);
      error ??= err;
    }
  });
  return { failed, error };
}

/**
 * Puts the outbox's events on the bus, oldest first, with `send` (the publisher's, which does not
 * keep them again): resolves to the events done with (taken by the bus, or refused for good and
 * logged) and whether the bus refused any for a passing reason (then the run stops: the bus is
 * still down; those stay). Deletes each item done with.
 */
export async function drainOutbox(outbox: LifecycleOutbox, send: (events: LifecycleEvent[]) => Promise<{ done: LifecycleEvent[]; refused: boolean }>): Promise<OutboxDrain> {
  let drained = 0;
  let left = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  for (let page = 0; page < OUTBOX_MAX_PAGES; page++) {
    const answer = await outbox.db.send(
      new QueryCommand({
        TableName: outbox.presenceTable,
        KeyConditionExpression: "room_id = :p",
        ExpressionAttributeValues: { ":p": S(OUTBOX_PARTITION) },
        Limit: OUTBOX_PAGE,
        ExclusiveStartKey: startKey,
        ConsistentRead: true,
      }),
    );
    const items = answer.Items ?? [];
    const events = items.map((item) => JSON.parse(item.event?.S ?? "null") as LifecycleEvent | null).filter((event): event is LifecycleEvent => event !== null);
    const { done, refused } = events.length ? await send(events) : { done: [], refused: false };
    const keys = new Set(done.map(outboxKey));
    await mapWithConcurrency([...keys], OUTBOX_WRITE_CONCURRENCY, (key) => outbox.db.send(new DeleteItemCommand({ TableName: outbox.presenceTable, Key: { room_id: S(OUTBOX_PARTITION), user_id: S(key) } })));
    drained += keys.size;
    left += items.length - keys.size;
    startKey = answer.LastEvaluatedKey;
    if (refused || !startKey) break;
  }
  return { drained, left };
}
