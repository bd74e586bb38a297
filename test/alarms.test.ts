/**
 * When each alarm of the production stack fires, read from the alarm arguments the component
 * declared (under Pulumi's mocks) and evaluated the way CloudWatch evaluates them: datapoints of
 * `period` seconds, aggregated by `statistic`, compared with `threshold`, and an alarm when
 * `datapointsToAlarm` of the last `evaluationPeriods` breach (missing data as declared).
 */
import { beforeAll, describe, expect, it } from "vitest";
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
beforeAll(async () => {
  run = await sharedRun("production");
}, 300_000);

const alarms = () => run.ofType("aws:cloudwatch/metricAlarm:MetricAlarm").map((r) => r.inputs as unknown as AlarmArgs);
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
      expect(alarm.treatMissingData).toBe("notBreaching");
      datapoints.push(false);
      continue;
    }
    const value = alarm.statistic === "Sum" ? values.reduce((a, b) => a + b, 0) : Math.max(...values);
    expect(alarm.comparisonOperator).toBe("GreaterThanThreshold");
    datapoints.push(value > alarm.threshold);
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

  it("every alarm is one of those: none fires on a single event except the dead-letter alarm", () => {
    for (const alarm of alarms()) {
      if (alarm.metricName === "ApproximateNumberOfMessagesVisible") continue;
      const oneEvent = alarm.metricName === "ApproximateAgeOfOldestMessage" ? [alarm.threshold + 1] : [1];
      expect(fires(alarm, oneEvent), `${alarm.namespace}/${alarm.metricName}`).toBe(false);
    }
  });
});
