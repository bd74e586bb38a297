/** Alarms to an SNS topic (with an optional e-mail subscription) and a CloudWatch dashboard. */
import * as crypto from "crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { childName, create, type HubContext } from "./context";
import type { HubFunction, HubFunctions } from "./functions";
import type { HubQueues } from "./queues";

export function buildAlarms(
  ctx: HubContext,
  alarms: { email?: pulumi.Input<string> },
  hub: { queues: HubQueues; functions: HubFunctions; api: aws.apigatewayv2.Api; stage: aws.apigatewayv2.Stage },
) {
  const { queues, functions, api, stage } = hub;
  const region = ctx.aws.region;
  const topic = new aws.sns.Topic(childName(ctx, "alarms"), { tags: ctx.tags }, { parent: ctx.parent });
  if (alarms.email) {
    new aws.sns.TopicSubscription(childName(ctx, "alarms-email"), { topic: topic.arn, protocol: "email", endpoint: alarms.email }, { parent: ctx.parent });
  }
  const alarm = (suffix: string, description: string, args: Omit<aws.cloudwatch.MetricAlarmArgs, "comparisonOperator" | "evaluationPeriods" | "alarmActions">) =>
    create(
      ctx,
      aws.cloudwatch.MetricAlarm,
      ctx.transform.alarm,
      suffix,
      {
        alarmDescription: description,
        comparisonOperator: "GreaterThanThreshold",
        evaluationPeriods: 1,
        threshold: 0,
        period: 300,
        statistic: "Maximum",
        treatMissingData: "notBreaching",
        alarmActions: [topic.arn],
        okActions: [topic.arn],
        tags: ctx.tags,
        ...args,
      },
    );
  alarm("dead-letters-alarm", "Notifications are waiting in the dead-letter queue: they were not delivered", {
    namespace: "AWS/SQS",
    metricName: "ApproximateNumberOfMessagesVisible",
    dimensions: { QueueName: queues.deadLetterQueue.name },
  });
  // Delivery is falling behind (or stuck) long before anything reaches the dead-letter queue.
  alarm("queue-age-alarm", "The oldest queued notification waited more than 5 minutes: delivery is behind", {
    namespace: "AWS/SQS",
    metricName: "ApproximateAgeOfOldestMessage",
    threshold: 300,
    dimensions: { QueueName: queues.queue.name },
  });
  // The gateway's own faults: a Lambda it cannot invoke, an authorizer that fails or times out.
  for (const metricName of ["IntegrationError", "ExecutionError"]) {
    alarm(`api-${metricName.replace("Error", "").toLowerCase()}-errors-alarm`, `API Gateway ${metricName}s on the WebSocket API`, {
      namespace: "AWS/ApiGateway",
      metricName,
      statistic: "Sum",
      dimensions: { ApiId: api.id, Stage: stage.name },
    });
  }
  for (const [handler, f] of Object.entries(functions)) {
    if (!f) continue;
    alarm(`${handler}-errors-alarm`, `The ${handler} Lambda failed`, {
      namespace: "AWS/Lambda",
      metricName: "Errors",
      statistic: "Sum",
      dimensions: { FunctionName: f.fn.name },
    });
    alarm(`${handler}-throttles-alarm`, `The ${handler} Lambda was throttled`, {
      namespace: "AWS/Lambda",
      metricName: "Throttles",
      statistic: "Sum",
      dimensions: { FunctionName: f.fn.name },
    });
  }
  const functionNames = pulumi.all(Object.values(functions).filter((f): f is HubFunction => !!f).map((f) => f.fn.name));
  new aws.cloudwatch.Dashboard(
    childName(ctx, "dashboard"),
    {
      dashboardName: region.apply((r) => dashboardName(pulumi.getProject(), pulumi.getStack(), ctx.name, r)),
      dashboardBody: pulumi.all([functionNames, queues.deadLetterQueue.name, queues.queue.name, api.id, stage.name, region]).apply(([names, dlq, queue, apiId, stageName, regionName]) =>
        JSON.stringify({
          widgets: [
            metricWidget(regionName, "Lambda errors", names.map((n) => ["AWS/Lambda", "Errors", "FunctionName", n])),
            metricWidget(regionName, "Lambda duration (p99)", names.map((n) => ["AWS/Lambda", "Duration", "FunctionName", n, { stat: "p99" }])),
            metricWidget(regionName, "Dead letters", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq]]),
            metricWidget(regionName, "Age of the oldest queued notification (s)", [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", queue, { stat: "Maximum" }]]),
            metricWidget(regionName, "API Gateway errors", ["IntegrationError", "ExecutionError", "ClientError"].map((m) => ["AWS/ApiGateway", m, "ApiId", apiId, "Stage", stageName])),
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
