/**
 * Presence's schedule (every `presence.sweepSeconds`; locally a timer): decides the leaves whose
 * grace is over (core/presence.ts settlePendingLeaves) and sends the room diffs still waiting
 * (flushDiffs). Deployed only with presence on.
 */
import type { PresenceDeps } from "../core/presence";
import { flushDiffs, settlePendingLeaves } from "../core/presence";
import { describeError } from "../core/log";
import { lambdaSource, presenceFrom, type HandlerSource } from "./dependencies";

export interface SweepResult {
  left: number;
  diffs: number;
}



export function createSweepHandler(deps: PresenceDeps): () => Promise<SweepResult> {
  return async () => {
    const started = Date.now();
    try {
      const left = await settlePendingLeaves(deps);
      const diffs = await flushDiffs(deps);
      deps.log.info("sweep done", { left, diffs, duration_ms: Date.now() - started });
      return { left, diffs };
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
  return createSweepHandler(deps);
}
