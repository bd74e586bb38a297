/**
 * The Pulumi program: one NotificationHub per stack, configured from the
 * `notification-hub:` config namespace (defaults in Pulumi.yaml).
 */
import * as pulumi from "@pulumi/pulumi";
import { NotificationHub, type NotificationHubArgs } from "./components/notificationHub";

const config = new pulumi.Config("notification-hub");

function domainFromConfig(): NotificationHubArgs["domain"] {
  const name = config.get("domainName");
  if (!name) return undefined;
  return { name, certificateArn: config.require("domainCertificateArn"), hostedZoneId: config.require("domainHostedZoneId") };
}

function alarmsFromConfig(): NotificationHubArgs["alarms"] {
  const email = config.get("alarmEmail");
  if (email) return { email };
  return config.getBoolean("alarms") ?? false;
}

/** A positive number, or undefined for 0/unset: Pulumi.yaml declares 0 as "derive it". */
function positiveNumber(key: string): number | undefined {
  const value = config.getNumber(key);
  return value ? value : undefined;
}

const hub = new NotificationHub("hub", {
  stage: config.get("stage") || pulumi.getStack(),
  jwtSecret: config.getSecret("jwtSecret"),
  lambdaRuntime: config.get("lambdaRuntime"),
  logRetentionDays: config.getNumber("logRetentionDays"),
  allowClientMessages: config.getBoolean("allowClientMessages"),
  throttle: { burstLimit: config.getNumber("throttleBurstLimit"), rateLimit: config.getNumber("throttleRateLimit") },
  queue: {
    batchSize: config.getNumber("queueBatchSize"),
    maxReceiveCount: config.getNumber("queueMaxReceiveCount"),
    maximumConcurrency: config.getNumber("queueMaximumConcurrency"),
    bulkMaximumConcurrency: config.getNumber("queueBulkMaximumConcurrency"),
    visibilityTimeoutSeconds: positiveNumber("queueVisibilityTimeoutSeconds"),
  },
  delivery: { postsPerSecond: config.getNumber("deliveryPostsPerSecond") },
  domain: domainFromConfig(),
  alarms: alarmsFromConfig(),
  protectData: config.getBoolean("protectData"),
  history: { retentionHours: config.getNumber("historyRetentionHours") },
  maxRoomsPerConnection: config.getNumber("maxRoomsPerConnection"),
  presence: { enabled: config.getBoolean("presence") ?? false },
  apiGatewayLogging: config.get("apiGatewayLogging", { allowedValues: ["off", "ifUnset", "existing"] }),
  tags: { project: "notification-hub", stack: pulumi.getStack() },
});

export const websocketUrl = hub.websocketUrl;
export const apiEndpoint = hub.apiEndpoint;
export const apiId = hub.apiId;
export const stage = hub.stage;
export const managementEndpoint = hub.managementEndpoint;
export const queueUrl = hub.queueUrl;
export const queueArn = hub.queueArn;
export const deadLetterQueueUrl = hub.deadLetterQueueUrl;
export const connectionsTableName = hub.connectionsTableName;
export const authTableName = hub.authTableName;
export const streamsTableName = hub.streamsTableName;
export const presenceTableName = hub.presenceTableName;
export const eventBusName = hub.eventBusName;
export const jwtSecret = hub.jwtSecret;
export const publisherPolicyArn = hub.publisherPolicyArn;
export const alarmTopicArn = hub.alarmTopicArn;
