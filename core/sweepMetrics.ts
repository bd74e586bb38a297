/**
 * Presence's sweep as CloudWatch metrics, for the alarms on a sweep that runs yet does not do
 * its job (components/hub/alarms.ts): its `sweep.done` event (core/hubEvents.ts SweepDone) as one
 * line of CloudWatch's embedded metric format (EMF), which CloudWatch Logs turns into metrics of
 * the function's log group: no PutMetricData call, no grant, no dependency.
 *
 * - `SweepOutboxLeft`: lifecycle events still in the outbox after the run (EventBridge refused
 *   the drain again); `SweepDeferred`: suspects left for the next run (past the run's share of
 *   the budget or its deadline); `SweepScanIncomplete`: 1 when the Scan stopped at its deadline
 *   with rows unread, else 0. Every run reports all three, 0 included: a run that did its job is
 *   a datapoint below the threshold, and no datapoint means no run (the sweep-not-running alarm's).
 * - One dimension, `FunctionName` (the stack's sweep function): the alarms name it, so two stacks
 *   in one account never share a metric. Three custom metrics a stack.
 * - Written to `process.stdout` itself, not through `console`: with the function's JSON log format
 *   the Lambda runtime patches `console` to wrap each line in its own JSON object as the string
 *   `message`, and CloudWatch only reads `_aws` at the top level of a log event. A line with no
 *   `level` is filed as INFO, which the function's INFO application log level keeps.
 * - Only on Lambda (`AWS_LAMBDA_FUNCTION_NAME` set): the local hub reads the same event on its
 *   event bus and console.
 */
import type { Environment } from "./aws";
import type { HubObserver, SweepDone } from "./hubEvents";

/** The namespace and names the sweep's metrics and their alarms share. */
export const SWEEP_METRICS = {
  namespace: "NotificationHub",
  dimension: "FunctionName",
  outboxLeft: "SweepOutboxLeft",
  deferred: "SweepDeferred",
  scanIncomplete: "SweepScanIncomplete",
} as const;

/** One run's metric values, from its `sweep.done` event. */
export function sweepMetricValues(event: SweepDone): Record<(typeof SWEEP_METRICS)["outboxLeft" | "deferred" | "scanIncomplete"], number> {
  return { [SWEEP_METRICS.outboxLeft]: event.outboxLeft, [SWEEP_METRICS.deferred]: event.deferred, [SWEEP_METRICS.scanIncomplete]: event.scanComplete ? 0 : 1 } as const;
}

/** The EMF line of one run (no newline): the values at the top level, `_aws` saying which are metrics, in which namespace and dimension, and when (epoch ms). */
export function sweepMetricsLine(event: SweepDone, functionName: string, at: number): string {
  const values = sweepMetricValues(event);
  return JSON.stringify({
    _aws: {
      Timestamp: at,
      CloudWatchMetrics: [{ Namespace: SWEEP_METRICS.namespace, Dimensions: [[SWEEP_METRICS.dimension]], Metrics: Object.keys(values).map((Name) => ({ Name, Unit: "Count" })) }],
    },
    [SWEEP_METRICS.dimension]: functionName,
    ...values,
  });
}

export type LineWriter = (line: string) => void;

/** stdout itself, one line a write: what Lambda's log agent reads, past the runtime's patched `console`. */
const stdoutWriter: LineWriter = (line) => void process.stdout.write(line + "\n");

/** Writes each `sweep.done` as its EMF line; other events are not its concern. */
export function sweepMetricsObserver(functionName: string, write: LineWriter = stdoutWriter, now: () => number = Date.now): HubObserver {
  return (event) => {
    if (event.type === "sweep.done") write(sweepMetricsLine(event, functionName, now()));
  };
}

/** The sweep's metrics on Lambda (the runtime sets `AWS_LAMBDA_FUNCTION_NAME`); undefined elsewhere (the local hub, tests). */
export function sweepMetricsFrom(env: Environment, write?: LineWriter, now?: () => number): HubObserver | undefined {
  const functionName = env.AWS_LAMBDA_FUNCTION_NAME;
  return functionName ? sweepMetricsObserver(functionName, write, now) : undefined;
}
