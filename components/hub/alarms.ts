/** Alarms to an SNS topic (with an optional e-mail subscription) and a CloudWatch dashboard. */
import * as crypto from "crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { SWEEP_METRICS } from "../../core/sweepMetrics";
import { childName, create, type HubContext } from "./context";
import type { HubFunction, HubFunctions } from "./functions";
import type { HubQueues } from "./queues";

/** When an alarm fires: CloudWatch looks at the last `evaluationPeriods` periods and alarms when `datapointsToAlarm` of them are above `threshold`. */
export interface AlarmRule {
  statistic: "Sum" | "Maximum";
  /** Seconds per datapoint. */
  period: number;
  threshold: number;
  evaluationPeriods: number;
  datapointsToAlarm: number;
}

/**
 * Each alarm pages someone, so it fires on a problem that lasts, not on one event. All take
 * one-minute datapoints (SQS, Lambda and API Gateway publish their metrics every minute).
 *
 * - deadLetters: a message in the dead-letter queue is a notification that was never delivered
 *   and will not be retried. Nothing transient gets there (it took `maxReceiveCount` failed
 *   deliveries first), so one is enough, at once: any message visible in one minute.
 * - queueAge: a single message being retried waits out the visibility timeout between receives
 *   (6 × the deliver timeout, 3 minutes by default), so one failing notification can make the
 *   oldest message older than 5 minutes for a few minutes while the rest of the queue flows.
 *   Older than 5 minutes in 5 minutes in a row means the queue as a whole is not moving.
 * - lambdaErrors, apiErrors: one error is a cold start that timed out, a throttled call, one
 *   bad request; the client or SQS retries it. Errors in 3 of 5 minutes recur: a bad deploy, a
 *   missing grant, a dependency down. Not 5 of 5: a steady trickle with quiet minutes between
 *   (errors on some connections only) still pages within minutes.
 * - sweepFailedInvocations (presence on): EventBridge could not invoke the sweep (its permission
 *   gone, the function deleted). The Lambda then reports no error at all, so without this a dead
 *   sweep goes unnoticed while ghosts pile up: failures in 3 of 5 minutes, as lambdaErrors.
 * - sweepNotRunning (presence on): no sweep invocation in 3 schedule periods in a row (the rule
 *   disabled or deleted by hand): missing data breaches here, it is the very symptom.
 * - A sweep that runs and does not do its job: `sweepOutcomeRules`.
 * - lambdaThrottles: throttled calls are retried (the event source mapping polls again, clients
 *   reconnect with backoff) and a reconnect storm throttles for a minute or two by design. Only
 *   throttling in each of 5 minutes means the function lacks concurrency.
 */
export const ALARM_RULES = {
  deadLetters: { statistic: "Maximum", period: 60, threshold: 0, evaluationPeriods: 1, datapointsToAlarm: 1 },
  queueAge: { statistic: "Maximum", period: 60, threshold: 300, evaluationPeriods: 5, datapointsToAlarm: 5 },
  lambdaErrors: { statistic: "Sum", period: 60, threshold: 0, evaluationPeriods: 5, datapointsToAlarm: 3 },
  apiErrors: { statistic: "Sum", period: 60, threshold: 0, evaluationPeriods: 5, datapointsToAlarm: 3 },
  lambdaThrottles: { statistic: "Sum", period: 60, threshold: 0, evaluationPeriods: 5, datapointsToAlarm: 5 },
  sweepFailedInvocations: { statistic: "Sum", period: 60, threshold: 0, evaluationPeriods: 5, datapointsToAlarm: 3 },
} as const satisfies Record<string, AlarmRule>;

/** One datapoint per schedule period (whole minutes, as the schedule's rate): about one run each. */
export function sweepPeriod(sweepSeconds: number): number {
  return Math.max(60, Math.round(sweepSeconds / 60) * 60);
}

/** The sweep-not-running rule for a schedule of `sweepSeconds`: fewer than 1 invocation in each of 3 periods, missing data breaching. */
export function sweepNotRunningRule(sweepSeconds: number): AlarmRule {
  return { statistic: "Sum", period: sweepPeriod(sweepSeconds), threshold: 1, evaluationPeriods: 3, datapointsToAlarm: 3 };
}

/**
 * A sweep that runs yet does not do its job (presence on), read from the metrics each run writes
 * (core/sweepMetrics.ts: every run reports each, 0 included), one datapoint per schedule period,
 * its Maximum (the odd period with two runs counts the worse); a period with no run is no breach
 * (the sweep-not-running alarm's) and so starts the count again.
 *
 * - outboxNotDraining: lifecycle events still in the outbox after each of 5 runs in a row. One run
 *   leaving some is EventBridge throttling or a 5xx for a minute, which the next run drains; the
 *   outbox keeps an event a day (core/lifecycleOutbox.ts OUTBOX_TTL_SECONDS), so 5 runs (5 minutes
 *   by default) in a row pages with almost all of that day left to fix the bus before events expire.
 * - scanIncomplete: any run whose Scan stopped at its deadline. The Scan starts over each run, so
 *   the rows past where it stopped were not looked at, and a table that outgrew half a run's time
 *   (about 17 s of the 50 s timeout: around a million connections on paper, ten times the design's
 *   100,000, which take about 1.5 s) does so again next run: its ghosts are never found. Not a
 *   blip to wait out: `SCAN_SEGMENTS` (core/liveness.ts) must grow.
 * - deferredRepeatedly: suspects left for the next run after each of 3 runs in a row. A run
 *   confirms at most its share of the budget (15,000 at the default 5,000 posts a second); a mass
 *   drop of up to three runs' worth (45,000) is done by the third run, which defers none, without
 *   paging, each run past the first stretching the `timed_out` bound by one `sweepSeconds`. 3 in a
 *   row: more dead at once than that, or a sweep that no longer keeps pace (a budget too small,
 *   `@connections` slow or throttled).
 */
export function sweepOutcomeRules(sweepSeconds: number) {
  const period = sweepPeriod(sweepSeconds);
  return {
    outboxNotDraining: { statistic: "Maximum", period, threshold: 0, evaluationPeriods: 5, datapointsToAlarm: 5 },
    scanIncomplete: { statistic: "Maximum", period, threshold: 0, evaluationPeriods: 1, datapointsToAlarm: 1 },
    deferredRepeatedly: { statistic: "Maximum", period, threshold: 0, evaluationPeriods: 3, datapointsToAlarm: 3 },
  } as const satisfies Record<string, AlarmRule>;
}

export function buildAlarms(
  ctx: HubContext,
  alarms: { email?: pulumi.Input<string> },
  hub: { queues: HubQueues; functions: HubFunctions; api: aws.apigatewayv2.Api; stage: aws.apigatewayv2.Stage; sweep?: { rule: aws.cloudwatch.EventRule; sweepSeconds: number } },
) {
  const { queues, functions, api, stage } = hub;
  const region = ctx.aws.region;
  const topic = new aws.sns.Topic(childName(ctx, "alarms"), { tags: ctx.tags }, { parent: ctx.parent });
  if (alarms.email) {
    new aws.sns.TopicSubscription(childName(ctx, "alarms-email"), { topic: topic.arn, protocol: "email", endpoint: alarms.email }, { parent: ctx.parent });
  }
  const alarm = (
    suffix: string,
    description: string,
    rule: AlarmRule,
    metric: Pick<aws.cloudwatch.MetricAlarmArgs, "namespace" | "metricName" | "dimensions">,
    when: Pick<aws.cloudwatch.MetricAlarmArgs, "comparisonOperator" | "treatMissingData"> = {},
  ) =>
    create(
      ctx,
      aws.cloudwatch.MetricAlarm,
      ctx.transform.alarm,
      suffix,
      {
        alarmDescription: description,
        comparisonOperator: "GreaterThanThreshold",
        ...rule,
        // No data means nothing happened (no invocation, no error): not a breach.
        treatMissingData: "notBreaching",
        alarmActions: [topic.arn],
        okActions: [topic.arn],
        tags: ctx.tags,
        ...metric,
        ...when,
      },
    );
  alarm("dead-letters-alarm", "Notifications are waiting in the dead-letter queue: they were not delivered", ALARM_RULES.deadLetters, {
    namespace: "AWS/SQS",
    metricName: "ApproximateNumberOfMessagesVisible",
    dimensions: { QueueName: queues.deadLetterQueue.name },
  });
  alarm("queue-age-alarm", "The oldest queued notification has waited more than 5 minutes for 5 minutes in a row: delivery is behind or stuck", ALARM_RULES.queueAge, {
    namespace: "AWS/SQS",
    metricName: "ApproximateAgeOfOldestMessage",
    dimensions: { QueueName: queues.queue.name },
  });
  // The bulk queue shares the dead-letter queue (and its alarm); its own age says a big room's broadcast is stuck.
  alarm("bulk-queue-age-alarm", "The oldest chunk of a big room has waited more than 5 minutes for 5 minutes in a row: big-room delivery is behind or stuck", ALARM_RULES.queueAge, {
    namespace: "AWS/SQS",
    metricName: "ApproximateAgeOfOldestMessage",
    dimensions: { QueueName: queues.bulkQueue.name },
  });
  // The gateway's own faults: a Lambda it cannot invoke, an authorizer that fails or times out.
  for (const metricName of ["IntegrationError", "ExecutionError"]) {
    alarm(`api-${metricName.replace("Error", "").toLowerCase()}-errors-alarm`, `API Gateway ${metricName}s on the WebSocket API in 3 of the last 5 minutes`, ALARM_RULES.apiErrors, {
      namespace: "AWS/ApiGateway",
      metricName,
      dimensions: { ApiId: api.id, Stage: stage.name },
    });
  }
  for (const [handler, f] of Object.entries(functions)) {
    if (!f) continue;
    alarm(`${handler}-errors-alarm`, `The ${handler} Lambda failed in 3 of the last 5 minutes`, ALARM_RULES.lambdaErrors, {
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: f.fn.name },
    });
    alarm(`${handler}-throttles-alarm`, `The ${handler} Lambda was throttled in each of the last 5 minutes`, ALARM_RULES.lambdaThrottles, {
      namespace: "AWS/Lambda",
      metricName: "Throttles",
      dimensions: { FunctionName: f.fn.name },
    });
  }
  if (hub.sweep && functions.sweep) {
    alarm("sweep-failed-invocations-alarm", "EventBridge could not invoke presence's sweep in 3 of the last 5 minutes: dead connections are not being removed", ALARM_RULES.sweepFailedInvocations, {
      namespace: "AWS/Events",
      metricName: "FailedInvocations",
      dimensions: { RuleName: hub.sweep.rule.name },
    });
    alarm(
      "sweep-not-running-alarm",
      "Presence's sweep was not invoked in 3 schedule periods in a row: dead connections are not being removed",
      sweepNotRunningRule(hub.sweep.sweepSeconds),
      { namespace: "AWS/Lambda", metricName: "Invocations", dimensions: { FunctionName: functions.sweep.fn.name } },
      { comparisonOperator: "LessThanThreshold", treatMissingData: "breaching" },
    );
    // A sweep that runs but does not do its job: its own metrics (core/sweepMetrics.ts), this stack's function only.
    const outcome = sweepOutcomeRules(hub.sweep.sweepSeconds);
    const sweepMetric = (metricName: string) => ({ namespace: SWEEP_METRICS.namespace, metricName, dimensions: { [SWEEP_METRICS.dimension]: functions.sweep!.fn.name } });
    alarm(
      "sweep-outbox-alarm",
      "Lifecycle events stayed in the outbox after 5 sweep runs in a row: EventBridge keeps refusing them (they expire after a day)",
      outcome.outboxNotDraining,
      sweepMetric(SWEEP_METRICS.outboxLeft),
    );
    alarm(
      "sweep-scan-incomplete-alarm",
      "Presence's sweep stopped its Scan at its deadline with rows unread: dead connections past that point are not found (the Scan needs more segments)",
      outcome.scanIncomplete,
      sweepMetric(SWEEP_METRICS.scanIncomplete),
    );
    alarm(
      "sweep-deferred-alarm",
      "Presence's sweep left suspects for the next run 3 runs in a row: dead connections stay longer than sweepSeconds + 60 s",
      outcome.deferredRepeatedly,
      sweepMetric(SWEEP_METRICS.deferred),
    );
  }
  const functionNames = pulumi.all(Object.values(functions).filter((f): f is HubFunction => !!f).map((f) => f.fn.name));
  // With presence on: what each sweep run left undone (the three metrics its alarms read), "" without.
  const sweepName = hub.sweep && functions.sweep ? functions.sweep.fn.name : pulumi.output("");
  new aws.cloudwatch.Dashboard(
    childName(ctx, "dashboard"),
    {
      dashboardName: region.apply((r) => dashboardName(pulumi.getProject(), pulumi.getStack(), ctx.name, r)),
      dashboardBody: pulumi.all([functionNames, queues.deadLetterQueue.name, queues.queue.name, queues.bulkQueue.name, api.id, stage.name, region, sweepName]).apply(([names, dlq, queue, bulk, apiId, stageName, regionName, sweep]) =>
        JSON.stringify({
          widgets: [
            metricWidget(regionName, "Lambda errors", names.map((n) => ["AWS/Lambda", "Errors", "FunctionName", n])),
            metricWidget(regionName, "Lambda duration (p99)", names.map((n) => ["AWS/Lambda", "Duration", "FunctionName", n, { stat: "p99" }])),
            metricWidget(regionName, "Dead letters", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq]]),
            metricWidget(regionName, "Age of the oldest queued notification (s)", [
              ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue, { stat: "Maximum" }],
              ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", bulk, { stat: "Maximum" }],
            ]),
            metricWidget(regionName, "API Gateway errors", ["IntegrationError", "ExecutionError", "ClientError"].map((m) => ["AWS/ApiGateway", m, "ApiId", apiId, "Stage", stageName])),
            ...(sweep
              ? [
                  metricWidget(
                    regionName,
                    "Presence sweep: left for the next run (max per run)",
                    [SWEEP_METRICS.outboxLeft, SWEEP_METRICS.deferred, SWEEP_METRICS.scanIncomplete].map((m) => [SWEEP_METRICS.namespace, m, SWEEP_METRICS.dimension, sweep, { stat: "Maximum" }]),
                  ),
                ]
              : []),
          ],
        }),
      ),
    },
    { parent: ctx.parent },
  );
  return topic;
}

/**
 * Dashboards are named by the account, not by the stack: project, stack, component and
 * region keep two stacks (or two regions of one stack) from overwriting each other's.
 */
export function dashboardName(project: string, stack: string, component: string, region: string): string {
  const name = `${project}-${stack}-${component}-${region}`.replace(/[^A-Za-z0-9_-]/g, "-");
  return name.length <= 255 ? name : `${name.slice(0, 246)}-${crypto.createHash("sha256").update(name).digest("hex").slice(0, 8)}`;
}

function metricWidget(region: string, title: string, metrics: unknown[][]) {
  return { type: "metric", width: 12, height: 6, properties: { region, title, metrics, period: 60, stat: "Sum", view: "timeSeries" } };
}
