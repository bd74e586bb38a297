/**
 * Presence's schedule (every `presence.sweepSeconds`; locally a timer): removes connections whose
 * `$disconnect` never came (core/liveness.ts sweepConnections: stale `seen_at`, confirmed by
 * `@connections` GET), decides the leaves whose grace is over (core/presence.ts
 * settlePendingLeaves) and sends the room diffs still waiting (flushDiffs). Liveness goes first,
 * so a dead connection's leave whose grace is already over goes out in the same run. Deployed
 * only with presence on.
 */
import { ENV } from "../core/aws";
import type { PresenceDeps } from "../core/presence";
import { flushDiffs, PRESENCE_DEFAULTS, settlePendingLeaves } from "../core/presence";
import { observerOf } from "../core/hubEvents";
import { livenessSettings, sweepConnections, type LivenessSettings } from "../core/liveness";
import { describeError } from "../core/log";
import { DEFAULT_POSTS_PER_SECOND } from "../core/hubOptions";
import { lambdaSource, presenceFrom, type HandlerSource } from "./dependencies";

export interface SweepResult {
  left: number;
  diffs: number;
  scanned: number;
  suspects: number;
  alive: number;
  removed: number;
  deferred: number;
}

/** `liveness` unset: no liveness pass (leaves and diffs only). */
export function createSweepHandler(deps: PresenceDeps, liveness?: LivenessSettings): () => Promise<SweepResult> {
  const observe = observerOf(deps);
  return async () => {
    const started = Date.now();
    try {
      const found = liveness ? await sweepConnections(deps, liveness) : { scanned: 0, suspects: 0, alive: 0, removed: 0, deferred: 0 };
      const left = await settlePendingLeaves(deps);
      const diffs = await flushDiffs(deps);
      const result = { left, diffs, ...found };
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
  const deps = presenceFrom(source);
  if (!deps) throw new Error("the sweep needs PRESENCE_TABLE");
  const postsPerSecond = Number(source.env[ENV.postsPerSecond] ?? DEFAULT_POSTS_PER_SECOND) || DEFAULT_POSTS_PER_SECOND;
  return createSweepHandler(deps, livenessSettings(deps.presence.keepAliveMs ?? PRESENCE_DEFAULTS.keepAliveSeconds * 1000, postsPerSecond));
}
