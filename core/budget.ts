/**
 * The hub's `@connections` budget (`delivery.postsPerSecond`), held by every caller together:
 * the deliver invocations of both queues, sendMessage, resume, the routes' replies. API
 * Gateway counts these requests against the account's budget in the Region (10,000 a second
 * by default, shared with every other API of the account), so the hub keeps to its own part.
 *
 * How it holds with any number of invocations at once: time is cut into windows of 100 ms
 * and each window is one item of the budget table, `posts#{window}`. A caller takes tokens in
 * blocks with one conditional UpdateItem (`ADD taken :n` if `taken <= cap - n`), so the table
 * never hands out more than `postsPerSecond / 10` requests' worth in one window, whoever asks,
 * and a request only starts inside the window its token came from. Any 1 s span therefore
 * holds at most 11 windows' worth: 1.1 × postsPerSecond, and each calendar-aligned second at
 * most postsPerSecond. Tokens a caller took and did not use are lost with their window (the
 * budget errs on the side of sending less).
 *
 * Lanes: the big-room lane (`bulk`, chunks of big rooms) may take a window only up to 80 %;
 * the rest is kept for everything else (user channels, small rooms, replies), which therefore
 * never waits behind a big room's broadcast for more than the window it asked in.
 *
 * Cost: one write per block. Blocks grow with what the caller used in its last window, up to
 * a quarter of a window: at full budget about 40 writes a second whatever `postsPerSecond` is
 * (a write per 125 posts at the default 5,000); an idle hub's occasional reply pays one write.
 */
import { UpdateItemCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";

export type PostLane = "priority" | "bulk";

/** One window of the budget. */
export const BUDGET_WINDOW_MS = 100;
/** The share of each window the big-room lane may take; the rest is kept for small messages. */
export const BULK_SHARE = 0.8;
/**
 * Time an invocation keeps after its deadline: the posts in flight finish (their 5 s timeout)
 * and what the budget held back is requeued, before the invocation's own time is up.
 */
export const DEADLINE_MARGIN_MS = 6_000;
/** A chunk the budget held back waits this long on the queue before it is tried again. */
export const DEFERRED_DELAY_SECONDS = 2;

/**
 * The epoch ms after which a handler starts no more posts (they come back `deferred`), given
 * the time it has left: all but DEADLINE_MARGIN_MS of it, and at least half of it.
 */
export function postDeadline(remainingMs: number, now = Date.now()): number {
  return now + Math.max(remainingMs / 2, remainingMs - DEADLINE_MARGIN_MS);
}

/** Budget items outlive their window by this much, then TTL removes them. */
const ITEM_TTL_SECONDS = 3600;

export interface PostBudget {
  /**
   * Resolves true once one request may start, now; false when `deadline` (epoch ms) came first.
   * Never throws: while the table fails, the container takes a quarter window per window alone.
   */
  take(lane?: PostLane, deadline?: number): Promise<boolean>;
}

export interface PostBudgetOptions {
  db: DynamoDBClient;
  table: string;
  postsPerSecond: number;
  windowMs?: number;
  /** Told when the table could not be asked (the take is retried after a window). */
  onError?: (err: unknown) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Tokens per window for a budget, and the big-room lane's cap within it. */
export function windowCaps(postsPerSecond: number, windowMs = BUDGET_WINDOW_MS): { perWindow: number; bulkCap: number; maxBlock: number } {
  const perWindow = Math.max(1, Math.floor((postsPerSecond * windowMs) / 1000));
  return { perWindow, bulkCap: Math.max(1, Math.floor(perWindow * BULK_SHARE)), maxBlock: Math.max(1, Math.ceil(perWindow / 4)) };
}

/** The shared budget over the budget table (core/schema.ts `budgetTable`). */
export function sharedPostBudget(options: PostBudgetOptions): PostBudget {
  const windowMs = options.windowMs ?? BUDGET_WINDOW_MS;
  const { perWindow, bulkCap, maxBlock } = windowCaps(options.postsPerSecond, windowMs);
  const state = { window: -1, left: 0, used: 0, usedBefore: 0, waiting: 0 };
  /** The last window each lane found full. */
  const full: Record<PostLane, number> = { priority: -1, bulk: -1 };
  let refilling: Promise<void> | undefined;

  const current = () => Math.floor(Date.now() / windowMs);
  const roll = (w: number) => {
    if (w === state.window) return;
    state.usedBefore = state.window === w - 1 ? state.used : 0;
    state.window = w;
    state.left = 0;
    state.used = 0;
  };

  /** Takes up to `n` tokens of window `w` from the table; 0 when the lane's cap is reached. */
  async function claim(w: number, n: number, cap: number): Promise<number> {
    const take = Math.min(n, cap);
    try {
      await options.db.send(
        new UpdateItemCommand({
          TableName: options.table,
          Key: { bucket: { S: `posts#${w}` } },
          UpdateExpression: "ADD taken :n SET expires_at = :expires",
          ConditionExpression: "attribute_not_exists(taken) OR taken <= :room",
          ExpressionAttributeValues: {
            ":n": { N: String(take) },
            ":room": { N: String(cap - take) },
            ":expires": { N: String(Math.floor((w * windowMs) / 1000) + ITEM_TTL_SECONDS) },
          },
        }),
      );
      return take;
    } catch (err) {
      if ((err as Error).name === "ConditionalCheckFailedException") return 0;
      throw err;
    }
  }

  /** One step: tokens for this window, or a wait for the next one. */
  async function refill(lane: PostLane): Promise<void> {
    const w = current();
    roll(w);
    if (state.left > 0) return;
    if (full[lane] >= w) {
      // Spread the waiters of every container over the window's first few ms.
      await sleep((w + 1) * windowMs - Date.now() + Math.random() * Math.min(10, windowMs / 4));
      return;
    }
    const cap = lane === "bulk" ? bulkCap : perWindow;
    const want = Math.max(1, Math.min(maxBlock, Math.max(state.waiting, state.usedBefore)));
    let got = 0;
    try {
      // A block that does not fit what is left of the window: half of it, down to one token.
      for (let ask = want; got === 0 && ask >= 1 && current() === w; ask = ask === 1 ? 0 : Math.ceil(ask / 2)) got = await claim(w, ask, cap);
    } catch (err) {
      // A table that cannot be asked does not stop delivery: this container keeps to a quarter
      // window on its own until it can ask again (API Gateway's 429s are still retried and deferred).
      options.onError?.(err);
      got = maxBlock;
    }
    // Tokens of a window that has passed are not used: a request starts inside its token's window.
    if (current() !== w) return;
    if (got === 0) full[lane] = w;
    else state.left += got;
  }

  return {
    async take(lane = "priority", deadline) {
      for (;;) {
        roll(current());
        if (state.left > 0) {
          state.left--;
          state.used++;
          return true;
        }
        if (deadline !== undefined && Date.now() >= deadline) return false;
        state.waiting++;
        try {
          await (refilling ??= refill(lane).finally(() => (refilling = undefined)));
        } finally {
          state.waiting--;
        }
      }
    },
  };
}
