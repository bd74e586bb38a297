/**
 * When each alarm of the production stack fires, read from the alarm arguments the component
 * declared (under Pulumi's mocks) and evaluated the way CloudWatch evaluates them: datapoints of
 * `period` seconds, aggregated by `statistic`, compared with `threshold`, and an alarm when
 * `datapointsToAlarm` of the last `evaluationPeriods` breach (missing data as declared).
 */
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { logObserver, type SweepDone } from "../core/hubEvents";
import { createLogger } from "../core/log";
import { SWEEP_METRICS, sweepMetricsFrom, sweepMetricsObserver } from "../core/sweepMetrics";
import { sharedRun, type ProgramRun } from "./support/pulumiRun";

interface AlarmArgs {
  metricName: string;
  namespace: string;
  dimensions: Record<string, string>;
  statistic: "Sum" | "Maximum";
  period: number;
  threshold: number;
  comparisonOperator: string;
  evaluationPeriods: number;
  datapointsToAlarm?: number;
  treatMissingData: string;
}

let run: ProgramRun;
/** The production stack with presence on: the sweep's alarms (presence is off in production). */
let presenceRun: ProgramRun;
beforeAll(async () => {
  [run, presenceRun] = await Promise.all([sharedRun("production"), sharedRun("productionPresence")]);
}, 300_000);

const alarmsOf = (of: ProgramRun) => of.ofType("aws:cloudwatch/metricAlarm:MetricAlarm").map((r) => r.inputs as unknown as AlarmArgs & { alarmActions: string[] });
const alarms = () => alarmsOf(run);
const byMetric = (metricName: string) => {
  const found = alarms().filter((a) => a.metricName === metricName);
  expect(found.length, metricName).toBeGreaterThan(0);
  return found;
};

/**
 * Whether CloudWatch would be in ALARM at some point of this history: one value per minute
 * (undefined: no datapoint that minute, e.g. a Lambda that was not invoked).
 */
function fires(alarm: AlarmArgs, perMinute: (number | undefined)[]): boolean {
  expect(alarm.period % 60, "periods are whole minutes").toBe(0);
  const minutes = alarm.period / 60;
  const datapoints: boolean[] = [];
  for (let start = 0; start < perMinute.length; start += minutes) {
    const values = perMinute.slice(start, start + minutes).filter((v): v is number => v !== undefined);
    if (values.length === 0) {
      expect(["notBreaching", "breaching"]).toContain(alarm.treatMissingData);
      datapoints.push(alarm.treatMissingData === "breaching");
      continue;
    }
    const value = alarm.statistic === "Sum" ? values.reduce((a, b) => a + b, 0) : Math.max(...values);
    expect(["GreaterThanThreshold", "LessThanThreshold"]).toContain(alarm.comparisonOperator);
    datapoints.push(alarm.comparisonOperator === "GreaterThanThreshold" ? value > alarm.threshold : value < alarm.threshold);
  }
  const needed = alarm.datapointsToAlarm ?? alarm.evaluationPeriods;
  for (let end = 1; end <= datapoints.length; end++) {
    const window = datapoints.slice(Math.max(0, end - alarm.evaluationPeriods), end);
    if (window.filter(Boolean).length >= needed) return true;
  }
  return false;
}

const quiet = (minutes: number) => Array<number | undefined>(minutes).fill(undefined);

describe("alarms fire on a problem that lasts, not on one event", () => {
  it("a single Lambda error does not alarm, nor errors in 2 of 5 minutes; errors in 3 of 5 minutes do", () => {
    const errors = byMetric("Errors");
    expect(errors).toHaveLength(9); // one per function
    for (const alarm of errors) {
      expect(fires(alarm, [1]), alarm.dimensions.FunctionName).toBe(false);
      expect(fires(alarm, [50, ...quiet(30)]), "one bad minute, however many errors").toBe(false);
      expect(fires(alarm, [1, 0, 0, 1, 0, ...quiet(10), 1])).toBe(false);
      expect(fires(alarm, [1, 0, 1, 0, 1])).toBe(true);
      expect(fires(alarm, [...quiet(20), 2, undefined, 1, 1])).toBe(true);
    }
  });

  it("one API Gateway integration or execution error does not alarm; errors in 3 of 5 minutes do", () => {
    for (const alarm of [...byMetric("IntegrationError"), ...byMetric("ExecutionError")]) {
      expect(fires(alarm, [1]), alarm.metricName).toBe(false);
      expect(fires(alarm, [3, 3, 0, 0, 0, 0, 0])).toBe(false);
      expect(fires(alarm, [1, 1, 1])).toBe(true);
    }
  });

  it("a burst of throttling (4 minutes, a reconnect storm) does not alarm; throttling in 5 minutes in a row does", () => {
    const throttles = byMetric("Throttles");
    expect(throttles).toHaveLength(9);
    for (const alarm of throttles) {
      expect(fires(alarm, [100, 80, 40, 5, 0, 0]), alarm.dimensions.FunctionName).toBe(false);
      expect(fires(alarm, [1, 1, 1, 1, 0, 1, 1, 1, 1])).toBe(false);
      expect(fires(alarm, [1, 1, 1, 1, 1])).toBe(true);
    }
  });

  it("one notification retried for a few minutes (the oldest over 5 minutes for 4 minutes) does not alarm; a queue stuck with it over 5 minutes for 5 minutes in a row does", () => {
    const [age] = byMetric("ApproximateAgeOfOldestMessage");
    expect(age.dimensions).toEqual({ QueueName: "hub-notifications" });
    const seconds = (...minutes: number[]) => minutes.map((m) => m * 60);
    expect(fires(age, seconds(1, 2, 3, 4, 5.5, 6.5, 7.5, 8.5, 0.2, 0.1))).toBe(false);
    expect(fires(age, seconds(4, 5, 5))).toBe(false); // exactly 5 minutes is not more than 5
    expect(fires(age, seconds(5.5, 6.5, 7.5, 8.5, 9.5))).toBe(true);
  });

  it("a single dead letter (a lost notification) alarms at once, in the minute it arrives", () => {
    const [deadLetters] = byMetric("ApproximateNumberOfMessagesVisible");
    expect(deadLetters.dimensions).toEqual({ QueueName: "hub-dead-letters" });
    expect(fires(deadLetters, [1])).toBe(true);
    expect(fires(deadLetters, [...quiet(60), 1])).toBe(true);
    expect(deadLetters.period).toBe(60);
    expect(deadLetters.evaluationPeriods).toBe(1);
    expect(fires(deadLetters, [0, 0, undefined, 0])).toBe(false);
  });

  it("every alarm is one of those: none fires on a single event except the dead-letter alarm and the sweep's incomplete Scan", () => {
    for (const alarm of [...alarms(), ...alarmsOf(presenceRun)]) {
      if (alarm.metricName === "ApproximateNumberOfMessagesVisible" || alarm.metricName === SWEEP_METRICS.scanIncomplete) continue;
      // The not-running alarm's event is a missing run: one period without an invocation among runs.
      const oneEvent = alarm.metricName === "ApproximateAgeOfOldestMessage" ? [alarm.threshold + 1] : alarm.comparisonOperator === "LessThanThreshold" ? [1, undefined, 1] : [1];
      expect(fires(alarm, oneEvent), `${alarm.namespace}/${alarm.metricName}`).toBe(false);
    }
  });
});

/** A `sweep.done` of a run that did its job: nothing left in the outbox, nothing deferred, the whole table read. */
const cleanRun = (): SweepDone => ({ type: "sweep.done", outboxDrained: 0, outboxLeft: 0, left: 0, diffs: 0, scanned: 1200, scanComplete: true, suspects: 3, alive: 2, removed: 1, closed: 0, deferred: 0, durationMs: 40 });

/**
 * What CloudWatch makes of a run of sweeps (one a minute, the default schedule): each run's
 * `sweep.done` goes through the sweep's observers, its structured log line (the real logger,
 * core/hubEvents.ts logLineOf) and its EMF line (core/sweepMetrics.ts); the EMF lines are then
 * read as CloudWatch Logs reads embedded metrics (the `_aws` directive: namespace, dimension set,
 * metric names; values at the top level, timestamps in epoch ms) into one value a minute of the
 * alarm's metric and function. `undefined` is a minute without a run (the sweep threw: no event).
 * `functionName`: the sweep function that writes them (another stack's, to show it counts for nothing here).
 */
function sweepHistory(runs: (Partial<SweepDone> | undefined)[], alarm: AlarmArgs, functionName = "hub-sweep"): (number | undefined)[] {
  const logLines: string[] = [];
  const emfLines: string[] = [];
  const log = logObserver(createLogger({ handler: "sweep" }, (line) => logLines.push(line), "debug"));
  let clock = 0;
  const metrics = sweepMetricsObserver(functionName, (line) => emfLines.push(line), () => clock);
  runs.forEach((partial, minute) => {
    if (!partial) return;
    clock = minute * 60_000 + 7_000; // the schedule fires a few seconds into each minute
    const event = { ...cleanRun(), ...partial };
    log(event);
    metrics(event);
  });
  expect(emfLines).toHaveLength(logLines.length);
  const perMinute: (number | undefined)[] = Array(runs.length).fill(undefined);
  emfLines.forEach((line, i) => {
    expect(line).not.toContain("\n");
    const doc = JSON.parse(line) as Record<string, unknown> & { _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] } };
    const [directive] = doc._aws.CloudWatchMetrics;
    expect(directive.Namespace).toBe(SWEEP_METRICS.namespace);
    expect(directive.Dimensions).toEqual([[SWEEP_METRICS.dimension]]);
    expect(directive.Metrics.map((m) => m.Name).sort()).toEqual([SWEEP_METRICS.deferred, SWEEP_METRICS.outboxLeft, SWEEP_METRICS.scanIncomplete].sort());
    for (const m of directive.Metrics) expect(typeof doc[m.Name], m.Name).toBe("number");
    // The metric says what the run's log line says.
    const logged = JSON.parse(logLines[i]) as { outbox_left: number; deferred: number; scan_complete: boolean };
    expect([doc[SWEEP_METRICS.outboxLeft], doc[SWEEP_METRICS.deferred], doc[SWEEP_METRICS.scanIncomplete]]).toEqual([logged.outbox_left, logged.deferred, logged.scan_complete ? 0 : 1]);
    if (directive.Namespace !== alarm.namespace || doc[SWEEP_METRICS.dimension] !== alarm.dimensions[SWEEP_METRICS.dimension] || !directive.Metrics.some((m) => m.Name === alarm.metricName)) return;
    const minute = Math.floor(doc._aws.Timestamp / 60_000);
    perMinute[minute] = Math.max(perMinute[minute] ?? 0, doc[alarm.metricName] as number);
  });
  return perMinute;
}

describe("presence's sweep alarms: it is invoked, it runs, and it does its job", () => {
  const sweepAlarms = () => alarmsOf(presenceRun).filter((a) => a.namespace === SWEEP_METRICS.namespace || a.metricName === "FailedInvocations" || (a.metricName === "Invocations" && a.dimensions.FunctionName === "hub-sweep"));
  const sweepAlarm = (metricName: string) => {
    const found = sweepAlarms().filter((a) => a.metricName === metricName);
    expect(found, metricName).toHaveLength(1);
    return found[0];
  };

  it("exist only with presence on, five of them, on this stack's rule and function, to the same topic as every alarm; the dashboard shows the sweep's metrics", () => {
    expect(alarms().filter((a) => a.namespace === SWEEP_METRICS.namespace || a.namespace === "AWS/Events" || a.metricName === "Invocations")).toEqual([]);
    expect(sweepAlarms()).toHaveLength(5);
    expect(sweepAlarm("FailedInvocations")).toMatchObject({ namespace: "AWS/Events", dimensions: { RuleName: "hub-sweep-schedule" } });
    expect(sweepAlarm("Invocations")).toMatchObject({ namespace: "AWS/Lambda", dimensions: { FunctionName: "hub-sweep" } });
    for (const name of [SWEEP_METRICS.outboxLeft, SWEEP_METRICS.deferred, SWEEP_METRICS.scanIncomplete]) expect(sweepAlarm(name).dimensions, name).toEqual({ FunctionName: "hub-sweep" });
    const topics = new Set(alarmsOf(presenceRun).map((a) => JSON.stringify(a.alarmActions)));
    expect([...topics]).toEqual([JSON.stringify(["arn:aws:sns:eu-west-1:123456789012:hub-alarms"])]);
    // The dashboard shows what the three outcome alarms read; without presence it has no such widget.
    const widgets = (of: ProgramRun) => (JSON.parse(String(of.ofType("aws:cloudwatch/dashboard:Dashboard")[0].inputs.dashboardBody)) as { widgets: { properties: { metrics: unknown[][] } }[] }).widgets;
    expect(widgets(run).flatMap((w) => w.properties.metrics).filter((m) => m[0] === SWEEP_METRICS.namespace)).toEqual([]);
    expect(widgets(presenceRun).flatMap((w) => w.properties.metrics).filter((m) => m[0] === SWEEP_METRICS.namespace)).toEqual(
      [SWEEP_METRICS.outboxLeft, SWEEP_METRICS.deferred, SWEEP_METRICS.scanIncomplete].map((name) => [SWEEP_METRICS.namespace, name, "FunctionName", "hub-sweep", { stat: "Maximum" }]),
    );
  });

  it("EventBridge failing to invoke the sweep once does not alarm; in 3 of 5 minutes it does", () => {
    const failed = sweepAlarm("FailedInvocations");
    expect(fires(failed, [1, ...quiet(10)])).toBe(false);
    expect(fires(failed, [1, 0, 0, 1, 0, 0, 0, 1])).toBe(false);
    expect(fires(failed, [1, 0, 1, 0, 1])).toBe(true);
  });

  it("a sweep invoked every minute does not alarm, nor one missing run or two in a row; no run in 3 periods in a row does", () => {
    const invocations = sweepAlarm("Invocations");
    expect(invocations.treatMissingData).toBe("breaching"); // no datapoint is the symptom itself
    const everyMinute = (n: number) => Array<number | undefined>(n).fill(1);
    expect(fires(invocations, everyMinute(30))).toBe(false);
    expect(fires(invocations, [...everyMinute(5), undefined, undefined, ...everyMinute(5)])).toBe(false);
    expect(fires(invocations, [...everyMinute(5), undefined, undefined, undefined])).toBe(true);
    expect(fires(invocations, [...everyMinute(5), 0, undefined, 0])).toBe(true); // the rule disabled: no datapoints at all
  });

  it("lifecycle events left in the outbox by 4 runs in a row, or 4 and 4 around one that drained it, do not alarm; by 5 runs in a row they do", () => {
    const outbox = sweepAlarm(SWEEP_METRICS.outboxLeft);
    const left = (n: number) => ({ outboxLeft: n, outboxDrained: 3 });
    expect(fires(outbox, sweepHistory([left(12), left(8), left(40), left(2), {}, {}, {}], outbox))).toBe(false);
    expect(fires(outbox, sweepHistory([left(1), left(1), left(1), left(1), {}, left(1), left(1), left(1), left(1)], outbox))).toBe(false);
    expect(fires(outbox, sweepHistory([{}, {}, left(100), left(100), left(100), left(100), left(1)], outbox))).toBe(true);
    // A minute without a run (the sweep threw) is no breach: the count starts again (the not-running and errors alarms are that case's).
    expect(fires(outbox, sweepHistory([left(5), left(5), undefined, left(5), left(5), left(5)], outbox))).toBe(false);
  });

  it("one run whose Scan stopped at its deadline alarms at once; runs that read the whole table do not", () => {
    const scan = sweepAlarm(SWEEP_METRICS.scanIncomplete);
    expect(fires(scan, sweepHistory([{}, {}, {}, { deferred: 500, outboxLeft: 3 }, {}], scan))).toBe(false);
    expect(fires(scan, sweepHistory([{}, {}, { scanComplete: false, scanned: 900_000 }, {}], scan))).toBe(true);
  });

  it("suspects deferred by 2 runs in a row (a mass drop the third run finishes) do not alarm, nor 2 and 2 around a run that caught up; 3 runs in a row do", () => {
    const deferred = sweepAlarm(SWEEP_METRICS.deferred);
    const behind = (n: number) => ({ suspects: 15_000 + n, deferred: n });
    expect(fires(deferred, sweepHistory([behind(20_000), behind(5_000), {}, {}], deferred))).toBe(false);
    expect(fires(deferred, sweepHistory([behind(10), behind(10), {}, behind(10), behind(10), {}], deferred))).toBe(false);
    expect(fires(deferred, sweepHistory([{}, behind(40_000), behind(25_000), behind(10_000), {}], deferred))).toBe(true);
  });

  it("another stack's sweep (another function name) moves none of this stack's alarms", () => {
    const outbox = sweepAlarm(SWEEP_METRICS.outboxLeft);
    const stuck = Array(10).fill({ outboxLeft: 50 });
    expect(fires(outbox, sweepHistory(stuck, outbox))).toBe(true);
    expect(fires(outbox, sweepHistory(stuck, outbox, "other-stack-sweep"))).toBe(false);
  });
});

describe("the sweep's metric line", () => {
  afterEach(() => vi.restoreAllMocks());

  it("goes to stdout itself, one line, past the Lambda runtime's patched console (whose JSON log format would make it a string message), and only on Lambda", () => {
    const written: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    // As the runtime patches console with the JSON log format: a line through it would be wrapped.
    const wrapped = vi.fn();
    for (const level of ["log", "info", "warn", "error", "debug"] as const) vi.spyOn(console, level).mockImplementation(wrapped);
    const onLambda = sweepMetricsFrom({ AWS_LAMBDA_FUNCTION_NAME: "hub-sweep-1a2b3c" }, undefined, () => 1_700_000_000_000);
    expect(sweepMetricsFrom({})).toBeUndefined(); // the local hub: no function name, no metric line
    onLambda!({ type: "disconnected", connectionId: "c1" });
    onLambda!({ ...cleanRun(), outboxLeft: 2, scanComplete: false });
    expect(wrapped).not.toHaveBeenCalled();
    expect(written).toHaveLength(1);
    expect(written[0].endsWith("\n")).toBe(true);
    expect(written[0].slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(written[0])).toMatchObject({ _aws: { Timestamp: 1_700_000_000_000 }, FunctionName: "hub-sweep-1a2b3c", SweepOutboxLeft: 2, SweepDeferred: 0, SweepScanIncomplete: 1 });
  });
});
