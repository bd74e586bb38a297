/**
 * Presence's schedule (every `presence.sweepSeconds`; locally a timer): first puts on the bus the
 * lifecycle events the publisher kept in the outbox (core/lifecycleOutbox.ts), then decides the leaves whose
 * grace is over (core/presence.ts settlePendingLeaves), sends the room diffs still waiting
 * (flushDiffs), then removes connections whose `$disconnect` never came (core/liveness.ts
 * sweepConnections: stale `seen_at`, confirmed by `@connections` GET, or closed by DELETE when
 * silent past their told ping rate). Leaves and diffs go first: they are a few queries, and the
 * liveness pass is the one that may wait on the shared budget; its GETs and DELETEs stop at a
 * deadline taken from the invocation's remaining time (the rest wait for the next run, in
 * `deferred`). A dead connection's leave whose grace is already over is still decided in the
 * same run (core/presence.ts presenceLeave decides a leave past its grace at once). Deployed
 * only with presence on.
 */
import { ENV } from "../core/aws";
import type { PresenceDeps } from "../core/presence";
import { flushDiffs, PRESENCE_DEFAULTS, settlePendingLeaves } from "../core/presence";
import { combineObservers, observerOf, type HubObserver } from "../core/hubEvents";
import { sweepMetricsFrom } from "../core/sweepMetrics";
import { livenessSettings, sweepConnections, type LivenessResult, type LivenessSettings } from "../core/liveness";
import type { InvocationContext } from "../core/events";
import { HANDLERS } from "./manifest";
import { describeError } from "../core/log";
import { DEFAULT_POSTS_PER_SECOND } from "../core/hubOptions";
import { lambdaSource, lifecycleFrom, presenceFrom, type HandlerSource } from "./dependencies";
import type { OutboxDrain } from "../core/lifecycleOutbox";

export interface SweepResult extends LivenessResult {
  left: number;
  diffs: number;
  /** Lifecycle events put on the bus from the outbox (core/lifecycleOutbox.ts), and those read and still kept. */
  outboxDrained: number;
  outboxLeft: number;
}

/** The sweep's Lambda timeout (handlers/manifest.ts), the run's time when no invocation context says what is left (the local hub). */
const SWEEP_TIMEOUT_MS = HANDLERS.sweep.timeoutSeconds * 1000;
/** Kept from the liveness pass's deadline: a GET or DELETE started just before it (the connections API's own timeout), the removals after it, the event. A third of a shorter invocation. */
export const SWEEP_RESERVE_MS = 15_000;

/**
 * `liveness` unset: no liveness pass (leaves and diffs only); `drainOutbox` unset (no lifecycle
 * events): no outbox; `metrics`: told each run's `sweep.done` after its log line (on Lambda its
 * EMF line, core/sweepMetrics.ts, what the alarms on a sweep that does not do its job read).
 */
export function createSweepHandler(
  deps: PresenceDeps,
  liveness?: LivenessSettings,
  drainOutbox?: () => Promise<OutboxDrain>,
  metrics?: HubObserver,
): (event?: unknown, context?: InvocationContext) => Promise<SweepResult> {
  const observe = combineObservers(observerOf(deps), metrics);
  return async (_event, context) => {
    const started = Date.now();
    const remaining = context?.getRemainingTimeInMillis?.() ?? SWEEP_TIMEOUT_MS;
    const deadline = started + remaining - Math.min(SWEEP_RESERVE_MS, remaining / 3);
    try {
      // First: the oldest events wait longest; what this run decides follows them (its own refusals, at the next run).
      const outbox = drainOutbox ? await drainOutbox() : { drained: 0, left: 0 };
      const left = await settlePendingLeaves(deps);
      const diffs = await flushDiffs(deps);
      const found = liveness ? await sweepConnections(deps, { ...liveness, deadline }) : { scanned: 0, suspects: 0, alive: 0, removed: 0, closed: 0, deferred: 0, scanComplete: true };
      const result = { left, diffs, outboxDrained: outbox.drained, outboxLeft: outbox.left, ...found };
      observe({ type: "sweep.done", ...result, durationMs: Date.now() - started });
      return result;
    } catch (err) {
      // Thrown on: the function's Errors metric is what the sweep's alarm watches.
      deps.log.error("sweep failed", describeError(err));
      throw err;
    }
  };
}

export function sweepFromEnvironment(source: HandlerSource = lambdaSource("sweep")) {
  const publisher = lifecycleFrom(source);
  const deps = presenceFrom(source, undefined, publisher);
  if (!deps) throw new Error("the sweep needs PRESENCE_TABLE");
  const postsPerSecond = Number(source.env[ENV.postsPerSecond] ?? DEFAULT_POSTS_PER_SECOND) || DEFAULT_POSTS_PER_SECOND;
  return createSweepHandler(deps, livenessSettings(deps.presence.keepAliveMs ?? PRESENCE_DEFAULTS.keepAliveSeconds * 1000, postsPerSecond), publisher?.drainOutbox, sweepMetricsFrom(source.env));
}
