/**
 * The replay budget of one connection (docs/protocol.md#resume): how many stored frames `resume`
 * may post to it per window. Without it, one client sending 40 `resume last:1000` inside API
 * Gateway's throttle makes the hub post 40,000 frames, and its Lambdas and the @connections API
 * are busy with that one connection while every other room waits.
 *
 * Kept on the connection row (two numbers, `replay_window` and `replay_frames`), which `resume`
 * reads anyway: a fixed window (`windowSeconds`, counted from the epoch) and the frames charged in
 * it. A charge is one conditional UpdateItem, so concurrent invocations for one connection (each
 * request is its own Lambda) never charge past the budget together: DynamoDB applies the
 * condition and the addition atomically per item. The row goes with the connection, so nothing
 * outlives it and nothing else is written.
 */
import { GetItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

export interface ReplayBudget {
  /** Frames one connection may be sent by `resume` per window. At least 1,000 (one full page). */
  frames: number;
  windowSeconds: number;
}

export const DEFAULT_REPLAY_BUDGET: ReplayBudget = { frames: 2_000, windowSeconds: 10 };

/** What the row said of its budget when read: the window it was last charged in and the frames charged there. */
export interface ReplayUse {
  window: number;
  frames: number;
}

export type ReplayCharge =
  /** `frames` may be sent: at most what was asked, less when the window has less left. */
  | { ok: true; frames: number }
  /** Nothing may be sent before `retryAfterMs` (the window's end). */
  | { ok: false; retryAfterMs: number };

/** Charges racing each other: each loser reads again; past this many losses it is refused. */
const CHARGE_ATTEMPTS = 4;
const N = (value: number): AttributeValue => ({ N: String(value) });
const isConditionFailure = (err: unknown) => (err as Error)?.name === "ConditionalCheckFailedException";

/** The row's budget fields, if it has them. */
export function replayUseOf(item: Record<string, AttributeValue> | undefined): ReplayUse | undefined {
  const window = Number(item?.replay_window?.N);
  const frames = Number(item?.replay_frames?.N);
  return Number.isFinite(window) && Number.isFinite(frames) ? { window, frames } : undefined;
}

/**
 * Charges up to `wanted` frames to the connection's budget and says how many may be sent.
 * `used` is what its row said when read (the caller's consistent read). Each write is
 * conditioned on what it assumed, so a concurrent charge in between makes it fail; it then reads
 * the two fields again and tries once more (a few times at most), never going over the budget.
 * Charging 0 frames writes nothing.
 */
export async function chargeReplay(
  db: DynamoDBClient,
  table: string,
  connectionId: string,
  wanted: number,
  used: ReplayUse | undefined,
  budget: ReplayBudget = DEFAULT_REPLAY_BUDGET,
  nowMs = Date.now(),
): Promise<ReplayCharge> {
  const windowMs = budget.windowSeconds * 1000;
  const window = Math.floor(nowMs / windowMs);
  const refused: ReplayCharge = { ok: false, retryAfterMs: (window + 1) * windowMs - nowMs };
  if (wanted <= 0) return { ok: true, frames: 0 };
  const key = { connection_id: { S: connectionId } };
  for (let attempt = 0; attempt < CHARGE_ATTEMPTS; attempt++) {
    const sameWindow = used !== undefined && used.window === window;
    const frames = Math.min(wanted, budget.frames - (sameWindow && used ? used.frames : 0));
    if (frames <= 0) return refused;
    try {
      await db.send(
        sameWindow
          ? new UpdateItemCommand({
              TableName: table,
              Key: key,
              UpdateExpression: "SET replay_frames = replay_frames + :n",
              ConditionExpression: "replay_window = :w AND replay_frames <= :most",
              ExpressionAttributeValues: { ":n": N(frames), ":w": N(window), ":most": N(budget.frames - frames) },
            })
          : new UpdateItemCommand({
              TableName: table,
              Key: key,
              UpdateExpression: "SET replay_window = :w, replay_frames = :n",
              // The row must still exist (no row is made for a connection that is gone), and no
              // other invocation may have opened this window since the read.
              ConditionExpression: "attribute_exists(connection_id) AND (attribute_not_exists(replay_window) OR replay_window < :w)",
              ExpressionAttributeValues: { ":n": N(frames), ":w": N(window) },
            }),
      );
      return { ok: true, frames };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    // Another invocation charged first (or the row is gone): read what it left.
    const fresh = await db.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true, ProjectionExpression: "connection_id, replay_window, replay_frames" }));
    if (!fresh.Item) return refused;
    used = replayUseOf(fresh.Item);
  }
  return refused;
}
