/**
 * Lifecycle events (docs/protocol.md#lifecycle-events) onto the hub's EventBridge bus: what
 * presence decides (core/presence.ts: member.joined/left, room.occupied/vacated) and what
 * `$connect`/`$disconnect` record (connection.opened/closed), for the app's rules.
 *
 * - Calls of at most PUT_EVENTS_MAX_ENTRIES entries whose sizes, measured as EventBridge
 *   measures them (core/eventBridge.ts entrySize), add up to less than PUT_EVENTS_MAX_BYTES.
 * - A call refused as a whole for a passing reason (throttled, 5xx, no answer) is sent again;
 *   of a call answered 200, the entries it reports failed with a passing code (InternalFailure,
 *   ThrottlingException) are sent again, alone. Full-jitter backoff, within a time budget that
 *   fits the routes' 10 s.
 * - Never throws: the caller's work (a connect, a subscribe) is done whatever the bus says.
 *   What is still refused for a passing reason once the retries are over is kept in the
 *   outbox (core/lifecycleOutbox.ts: an item of the presence table) and the sweep puts it on
 *   the bus at its next run. What will never pass (a ValidationException, a MalformedDetail,
 *   an entry too large), and what the outbox does not take, is a `lifecycle.failed` hub event
 *   (its log line carries each event whole: ids and reasons only, so it can be replayed from
 *   the logs).
 * - At least once: an event sent again keeps its `event_id` (core/presence.ts lifecycle), so a
 *   call that landed but whose answer was lost, or a connection's close found by two paths,
 *   is one event to a consumer that dedupes by `detail.event_id`.
 */
import * as crypto from "crypto";
import { backoffDelay, type RetryPolicy } from "./connections";
import { entrySize, PUT_EVENTS_MAX_BYTES, PUT_EVENTS_MAX_ENTRIES, PutEventsError, type EventBridgeApi, type PutEventsEntry } from "./eventBridge";
import { errorSummary, observerOf, type HubObserver } from "./hubEvents";
import type { Logger } from "./log";
import { drainOutbox, keepInOutbox, type LifecycleOutbox, type OutboxDrain } from "./lifecycleOutbox";
import type { LifecycleEvent } from "./presence";

/** The `source` of every lifecycle event: what an app's rule matches on. */
export const LIFECYCLE_SOURCE = "notification-hub";

/** The per-entry error codes worth another try; any other (MalformedDetail, InvalidArgument, AccessDenied...) will not change. */
export const RETRYABLE_ENTRY_CODES: readonly string[] = ["InternalFailure", "ThrottlingException"];

export interface LifecycleRetry extends RetryPolicy {
  /** No retry starts once this much time has passed since the first call. */
  budgetMs: number;
}

/** 5 tries within 4 s: a route's timeout is 10 s, and each request is cut at 2 s (PUT_EVENTS_TIMEOUT_MS). */
export const LIFECYCLE_RETRY: LifecycleRetry = { attempts: 5, baseDelayMs: 50, maxDelayMs: 1_000, budgetMs: 4_000 };

/**
 * The event id of a lifecycle event with an identity (a connection's id, a member's room, user
 * and since): the same event, decided or sent again, has the same id. UUID-shaped.
 */
export function lifecycleEventId(detailType: string, identity: string): string {
  const hex = crypto.createHash("sha256").update(`${detailType}\u001f${identity}`).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16], 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function lifecycleEntry(event: LifecycleEvent, eventBusName: string): PutEventsEntry {
  return { Source: LIFECYCLE_SOURCE, DetailType: event.detailType, Detail: JSON.stringify(event.detail), EventBusName: eventBusName };
}

/**
 * Entries in calls EventBridge accepts: at most 10 each, their sizes together under 256 KB, in
 * order. An entry that alone reaches the limit cannot be sent: it comes back in `oversize`.
 */
export function batchEntries<T extends PutEventsEntry>(entries: readonly T[]): { calls: T[][]; oversize: T[] } {
  const calls: T[][] = [];
  const oversize: T[] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = entrySize(entry);
    if (size >= PUT_EVENTS_MAX_BYTES) {
      oversize.push(entry);
      continue;
    }
    if (current.length === PUT_EVENTS_MAX_ENTRIES || bytes + size >= PUT_EVENTS_MAX_BYTES) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length) calls.push(current);
  return { calls, oversize };
}

/** A whole call refused or unanswered for a reason that passes: no answer, throttled, or EventBridge's own fault. */
function retryableCall(err: unknown): boolean {
  const status = err instanceof PutEventsError ? err.status : 0;
  const name = (err as Error)?.name ?? "";
  return status === 0 || status === 429 || status >= 500 || /Throttl|InternalFailure|ServiceUnavailable|InternalException/.test(name);
}

export interface LifecyclePublisherDeps {
  api: Pick<EventBridgeApi, "putEvents">;
  eventBusName: string;
  log: Logger;
  /** Told what could not be sent (`lifecycle.failed`); default: a log line. */
  observe?: HubObserver;
  /** Where events refused for a passing reason are kept for the sweep (core/lifecycleOutbox.ts); unset: they are `lifecycle.failed` only. */
  outbox?: LifecycleOutbox;
  retry?: LifecycleRetry;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

type Pending = { event: LifecycleEvent; entry: PutEventsEntry };
/** Events not on the bus: `passing` if another try later may take them (kept in the outbox), else never (a ValidationException, a MalformedDetail, an entry too large). */
type Refusal = { pending: Pending[]; attempts: number; error: string; errorMessage: string; passing: boolean };

/** `PresenceDeps.emit`, and the sweep's drain of what it kept. */
export interface LifecyclePublisher {
  /** Puts the events on the bus; resolves when each is on it, kept in the outbox or given up (never rejects). */
  (events: LifecycleEvent[]): Promise<void>;
  /** Puts the outbox's events on the bus (the sweep's first phase); what is refused again stays. Without an outbox, nothing. */
  drainOutbox(): Promise<OutboxDrain>;
}

export function createLifecyclePublisher(deps: LifecyclePublisherDeps): LifecyclePublisher {
  const policy = deps.retry ?? LIFECYCLE_RETRY;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = deps.now ?? Date.now;
  const observe = observerOf(deps);

  const giveUp = (events: LifecycleEvent[], attempts: number, error: string, errorMessage: string) =>
    observe({ type: "lifecycle.failed", attempts, error, errorMessage, events: events.map((event) => ({ detailType: event.detailType, ...event.detail })) });

  /** One call, retried; resolves to what is still refused. */
  async function sendCall(call: Pending[]): Promise<Refusal[]> {
    const started = now();
    const refusals: Refusal[] = [];
    let pending = call;
    for (let attempt = 0; ; attempt++) {
      let retry: Pending[] = [];
      let why = { name: "RetriesExhausted", message: "entries still failing with a passing error code" };
      try {
        const output = await deps.api.putEvents(pending.map((p) => p.entry));
        pending.forEach((p, i) => {
          const result = output.Entries[i];
          // An answer without this entry's result says nothing of it: send it again.
          if (!result) retry.push(p);
          else if (!result.ErrorCode) return;
          else if (RETRYABLE_ENTRY_CODES.includes(result.ErrorCode)) retry.push(p);
          else refusals.push({ pending: [p], attempts: attempt + 1, error: result.ErrorCode, errorMessage: result.ErrorMessage ?? "", passing: false });
        });
      } catch (err) {
        why = errorSummary(err);
        if (!retryableCall(err)) return [...refusals, { pending, attempts: attempt + 1, error: why.name, errorMessage: why.message, passing: false }];
        retry = pending;
      }
      if (!retry.length) return refusals;
      // No retry starts past the budget: the route's time is the caller's.
      const delay = backoffDelay(attempt, policy);
      if (attempt + 1 >= policy.attempts || now() + delay - started > policy.budgetMs) return [...refusals, { pending: retry, attempts: attempt + 1, error: why.name, errorMessage: why.message, passing: true }];
      pending = retry;
      await sleep(delay);
    }
  }

  /**
   * The events in calls, one after another (a room's events reach the bus in the order they
   * were decided); `stopAtPassing`: no call after one refused for a passing reason (the drain:
   * the bus is still down, the rest wait), its events and the rest count as refused.
   */
  async function send(events: LifecycleEvent[], stopAtPassing: boolean): Promise<Refusal[]> {
    const pending = events.map((event) => ({ event, entry: lifecycleEntry(event, deps.eventBusName) }));
    const byEntry = new Map(pending.map((p) => [p.entry, p]));
    const { calls, oversize } = batchEntries(pending.map((p) => p.entry));
    const refusals: Refusal[] = [];
    if (oversize.length) refusals.push({ pending: oversize.map((entry) => byEntry.get(entry)!), attempts: 0, error: "EntryTooLarge", errorMessage: `an entry of ${PUT_EVENTS_MAX_BYTES} bytes or more cannot be put on the bus`, passing: false });
    for (const [n, call] of calls.entries()) {
      const refused = await sendCall(call.map((entry) => byEntry.get(entry)!));
      refusals.push(...refused);
      if (stopAtPassing && refused.some((r) => r.passing)) {
        const unsent = calls.slice(n + 1).flat().map((entry) => byEntry.get(entry)!);
        if (unsent.length) refusals.push({ pending: unsent, attempts: 0, error: "NotSent", errorMessage: "the bus refused an earlier call", passing: true });
        break;
      }
    }
    return refusals;
  }

  /** Refused for a passing reason: into the outbox; what that does not take, and what will never pass, is `lifecycle.failed`. */
  async function settle(refusals: Refusal[]): Promise<void> {
    for (const refusal of refusals) {
      const events = refusal.pending.map((p) => p.event);
      if (!refusal.passing || !deps.outbox) {
        giveUp(events, refusal.attempts, refusal.error, refusal.errorMessage);
        continue;
      }
      const { failed, error } = await keepInOutbox(deps.outbox, events, now());
      if (failed.length) {
        const outboxError = errorSummary(error);
        giveUp(failed, refusal.attempts, refusal.error, `${refusal.errorMessage}; not kept in the outbox either: ${outboxError.name}: ${outboxError.message}`);
      }
    }
  }

  const publish = async (events: LifecycleEvent[]) => {
    if (!events.length) return;
    try {
      await settle(await send(events, false));
    } catch (err) {
      const { name, message } = errorSummary(err);
      giveUp(events, 0, name, message);
    }
  };
  const drain = async (): Promise<OutboxDrain> => {
    if (!deps.outbox) return { drained: 0, left: 0 };
    return drainOutbox(deps.outbox, async (events) => {
      const refusals = await send(events, true);
      const waiting = new Set(refusals.filter((r) => r.passing).flatMap((r) => r.pending.map((p) => p.event)));
      // Refused for good (the bus or its rules changed): said once, as a route would say it, and let go.
      for (const r of refusals) if (!r.passing) giveUp(r.pending.map((p) => p.event), r.attempts, r.error, r.errorMessage);
      return { done: events.filter((event) => !waiting.has(event)), refused: waiting.size > 0 };
    });
  };
  return Object.assign(publish, { drainOutbox: drain });
}
