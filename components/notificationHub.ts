/**
 * NotificationHub: the whole notification service as one Pulumi component.
 *
 * ```ts
 * const hub = new NotificationHub("hub", { stage: "development", jwtSecret: cfg.requireSecret("jwtSecret") });
 * export const websocketUrl = hub.websocketUrl;
 * ```
 *
 * App backends publish to `queueUrl`; the deliver Lambda fans out to every connection of
 * the room through API Gateway's @connections API. Every Lambda has its own role with only
 * the actions it calls on only this hub's resources.
 */
import * as crypto from "crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ENV } from "../core/aws";
import { authTable, connectionsTable, DEFAULT_RETENTION_HOURS, ROOM_INDEX_NAME, streamsTable, type TableSchema } from "../core/schema";
import { authorizerFromEnvironment } from "../handlers/authorizer";
import { connectFromEnvironment } from "../handlers/connect";
import { defaultFromEnvironment } from "../handlers/default";
import { deliverFromEnvironment } from "../handlers/deliver";
import { disconnectFromEnvironment } from "../handlers/disconnect";
import { sendMessageFromEnvironment } from "../handlers/sendMessage";
import { resumeFromEnvironment } from "../handlers/resume";
import { codePathOptionsFor, HANDLER_PACKAGES } from "./lambdaPackages";
import { policyDocument, type PolicyStatement } from "./policies";

export interface NotificationHubArgs {
  /**
   * API Gateway stage name; also the path of the WebSocket URL (`wss://host/{stage}`).
   * @default the stack name
   * @example "development"
   */
  stage?: pulumi.Input<string>;
  /**
   * HS512 signing secret shared with the app backends. When absent, one is generated and
   * exported as the secret output `jwtSecret`. It reaches the authorizer through an SSM
   * SecureString parameter encrypted with a KMS key of the hub's own, read at run time,
   * never through the Lambda's code.
   * @default generated (64 characters)
   * @example cfg.requireSecret("jwtSecret")
   */
  jwtSecret?: pulumi.Input<string>;
  /**
   * Lambda runtime of every function.
   * @default "nodejs22.x"
   * @example "nodejs24.x"
   */
  lambdaRuntime?: pulumi.Input<string>;
  /**
   * Days CloudWatch keeps the Lambda and access logs.
   * @default 14
   * @example 90
   */
  logRetentionDays?: pulumi.Input<number>;
  /**
   * Whether clients may broadcast to their room with `{"action":"sendMessage","data":...}`.
   * @default true
   * @example false
   */
  allowClientMessages?: boolean;
  /**
   * Stage throttling. Both limits are always set: API Gateway treats a missing one as 0.
   * @default { burstLimit: 500, rateLimit: 1000 }
   * @example { burstLimit: 100, rateLimit: 50 }
   */
  throttle?: { burstLimit?: pulumi.Input<number>; rateLimit?: pulumi.Input<number> };
  /**
   * The notification queue and its consumer.
   * @default { batchSize: 10, maxReceiveCount: 5, visibilityTimeoutSeconds: 6 × deliver timeout, maximumConcurrency: 10 }
   * @example { batchSize: 5, maximumConcurrency: 50 }
   */
  queue?: {
    /** Records per deliver invocation (1–10). @default 10 */
    batchSize?: number;
    /** Receives before a message moves to the dead-letter queue (at least 5). @default 5 */
    maxReceiveCount?: number;
    /** At least 6 × the deliver timeout, as AWS recommends. @default 6 × deliverTimeoutSeconds */
    visibilityTimeoutSeconds?: number;
    /** Concurrent deliver invocations the queue may start (2–1000). @default 10 */
    maximumConcurrency?: number;
    /** Deliver Lambda timeout. @default 30 */
    deliverTimeoutSeconds?: number;
    /** Connections one deliver invocation posts to before it splits a room through the queue. @default 1000 */
    largeRoomChunkSize?: number;
  };
  /**
   * Custom domain with a Route 53 alias, as the seed article recommends, so clients keep one
   * URL across redeployments. The WebSocket URL becomes `wss://{name}/{stage}`.
   * @default none
   * @example { name: "ws.example.com", certificateArn: cert.arn, hostedZoneId: zone.zoneId }
   */
  domain?: { name: pulumi.Input<string>; certificateArn: pulumi.Input<string>; hostedZoneId: pulumi.Input<string> };
  /**
   * Alarms (dead letters waiting, the oldest queued notification older than 5 minutes,
   * function errors and throttles, API Gateway integration and execution errors) to an SNS topic, with an
   * optional e-mail subscription, plus a CloudWatch dashboard.
   * @default off
   * @example { email: "oncall@example.com" }
   */
  alarms?: boolean | { email?: pulumi.Input<string> };
  /**
   * Deletion protection and point-in-time recovery on both tables.
   * @default false
   * @example true
   */
  protectData?: boolean;
  /**
   * Room streams (CONTRACT section 9): how long delivered notifications are kept for
   * `resume` and `history`. 0 turns streams off (frames carry no `seq`).
   * @default { retentionHours: 24 }
   */
  history?: { retentionHours?: number };
  /**
   * API Gateway execution logs (ERROR level, in `/aws/apigateway/{apiId}/{stage}`) and access
   * logs. Both need the region's account-wide API Gateway CloudWatch role, which one setting
   * holds for every API of the account in the region, so it is never taken over:
   * - `"off"`: no API Gateway logs; the account setting is left alone (the Lambdas still log).
   * - `"ifUnset"`: look the setting up; only where the region has none, create a role with the
   *   AWS managed `AmazonAPIGatewayPushToCloudWatchLogs` policy and set it. Both are kept
   *   (`retainOnDelete`) when the stack is destroyed, so other stacks keep their logs.
   * - `"existing"`: the region already has a role (another stack or an admin set it): turn the logs on.
   * @default "off"
   */
  apiGatewayLogging?: ApiGatewayLogging;
  /**
   * Tags for every taggable resource.
   * @default {}
   * @example { team: "platform" }
   */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

export type ApiGatewayLogging = "off" | "ifUnset" | "existing";
const API_GATEWAY_LOGGING: readonly ApiGatewayLogging[] = ["off", "ifUnset", "existing"];

type HandlerName = keyof typeof HANDLER_PACKAGES;

interface HubFunction {
  fn: aws.lambda.CallbackFunction<unknown, unknown>;
  role: aws.iam.Role;
  policy: aws.iam.RolePolicy;
  logGroup: aws.cloudwatch.LogGroup;
}

const DEFAULTS = {
  runtime: "nodejs22.x",
  logRetentionDays: 14,
  burstLimit: 500,
  rateLimit: 1000,
  batchSize: 10,
  maxReceiveCount: 5,
  maximumConcurrency: 10,
  deliverTimeoutSeconds: 30,
  routeTimeoutSeconds: 10,
  largeRoomChunkSize: 1000,
};

/** Validated, defaulted settings that decide which resources exist. */
interface Settings {
  stage: pulumi.Input<string>;
  runtime: pulumi.Input<string>;
  logRetentionDays: pulumi.Input<number>;
  allowClientMessages: boolean;
  burstLimit: pulumi.Input<number>;
  rateLimit: pulumi.Input<number>;
  batchSize: number;
  maxReceiveCount: number;
  visibilityTimeoutSeconds: number;
  maximumConcurrency: number;
  deliverTimeoutSeconds: number;
  largeRoomChunkSize: number;
  alarms: false | { email?: pulumi.Input<string> };
  protectData: boolean;
  apiGatewayLogging: ApiGatewayLogging;
  retentionHours: number;
}

function wholeNumber(value: number, name: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`NotificationHub: ${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function oneOf<T extends string>(value: string, name: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(`NotificationHub: ${name} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got "${value}"`);
  }
  return value as T;
}

/** AWS's length limits on the names Pulumi generates (logical name + "-" + 7 random characters). */
export const NAME_LIMITS = { role: 64, function: 64, queue: 80, policy: 128 } as const;

/**
 * The physical name for a resource whose generated name would be too long for AWS, else
 * undefined (Pulumi's own auto-naming, so short names behave as before). Long names are cut
 * and end in a hash of the whole logical name, so two long component names stay distinct.
 */
export function physicalName(logicalName: string, limit: number): string | undefined {
  if (logicalName.length + 8 <= limit) return undefined;
  const hash = crypto.createHash("sha256").update(logicalName).digest("hex").slice(0, 8);
  return `${logicalName.slice(0, limit - hash.length - 1)}-${hash}`;
}

/** Hours from 0 (off) to a year; fractions allowed. */
function retentionHours(value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 8760) {
    throw new Error(`NotificationHub: history.retentionHours must be a number of hours from 0 (streams off) to 8760, got ${value}`);
  }
  return value;
}

export function normalizeArgs(args: NotificationHubArgs): Settings {
  const queue = args.queue ?? {};
  const deliverTimeoutSeconds = wholeNumber(queue.deliverTimeoutSeconds ?? DEFAULTS.deliverTimeoutSeconds, "queue.deliverTimeoutSeconds", 1, 900);
  const visibilityTimeoutSeconds = queue.visibilityTimeoutSeconds ?? 6 * deliverTimeoutSeconds;
  if (visibilityTimeoutSeconds < 6 * deliverTimeoutSeconds) {
    throw new Error(
      `NotificationHub: queue.visibilityTimeoutSeconds (${visibilityTimeoutSeconds}) must be at least 6 × the deliver timeout (${6 * deliverTimeoutSeconds}), or SQS redelivers messages still being delivered`,
    );
  }
  return {
    stage: args.stage ?? pulumi.getStack(),
    runtime: args.lambdaRuntime ?? DEFAULTS.runtime,
    logRetentionDays: args.logRetentionDays ?? DEFAULTS.logRetentionDays,
    allowClientMessages: args.allowClientMessages ?? true,
    burstLimit: args.throttle?.burstLimit ?? DEFAULTS.burstLimit,
    rateLimit: args.throttle?.rateLimit ?? DEFAULTS.rateLimit,
    batchSize: wholeNumber(queue.batchSize ?? DEFAULTS.batchSize, "queue.batchSize", 1, 10),
    maxReceiveCount: wholeNumber(queue.maxReceiveCount ?? DEFAULTS.maxReceiveCount, "queue.maxReceiveCount", 5, 1000),
    visibilityTimeoutSeconds: wholeNumber(visibilityTimeoutSeconds, "queue.visibilityTimeoutSeconds", 0, 43_200),
    maximumConcurrency: wholeNumber(queue.maximumConcurrency ?? DEFAULTS.maximumConcurrency, "queue.maximumConcurrency", 2, 1000),
    deliverTimeoutSeconds,
    largeRoomChunkSize: wholeNumber(queue.largeRoomChunkSize ?? DEFAULTS.largeRoomChunkSize, "queue.largeRoomChunkSize", 1, 100_000),
    alarms: args.alarms === undefined || args.alarms === false ? false : args.alarms === true ? {} : args.alarms,
    protectData: args.protectData ?? false,
    apiGatewayLogging: oneOf(args.apiGatewayLogging ?? "off", "apiGatewayLogging", API_GATEWAY_LOGGING),
    retentionHours: retentionHours(args.history?.retentionHours ?? DEFAULT_RETENTION_HOURS),
  };
}

/** Access log line: who, when, which route, what status. Never the query string: the token lives there. */
export const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: "$context.requestId",
  connectionId: "$context.connectionId",
  eventType: "$context.eventType",
  routeKey: "$context.routeKey",
  status: "$context.status",
  sourceIp: "$context.identity.sourceIp",
  requestTime: "$context.requestTime",
  integrationLatency: "$context.integration.latency",
  error: "$context.error.message",
  authorizerError: "$context.authorizer.error",
});

export class NotificationHub extends pulumi.ComponentResource {
  /** `wss://host/{stage}`: what the app's WEBSOCKET_URL gets. */
  public readonly websocketUrl: pulumi.Output<string>;
  /** `wss://host` of the API (or the custom domain). */
  public readonly apiEndpoint: pulumi.Output<string>;
  public readonly apiId: pulumi.Output<string>;
  public readonly stage: pulumi.Output<string>;
  /** `https://host/{stage}`: the @connections API (execute-api host). */
  public readonly managementEndpoint: pulumi.Output<string>;
  public readonly queueUrl: pulumi.Output<string>;
  public readonly queueArn: pulumi.Output<string>;
  public readonly deadLetterQueueUrl: pulumi.Output<string>;
  public readonly connectionsTableName: pulumi.Output<string>;
  public readonly authTableName: pulumi.Output<string>;
  /** Room streams' table (`history`, `resume`); the notifier's `streamsTableName`. */
  public readonly streamsTableName: pulumi.Output<string>;
  /** The signing secret (given or generated), as a secret. */
  public readonly jwtSecret: pulumi.Output<string>;
  /** IAM managed policy an app backend attaches to publish, issue and revoke tokens. */
  public readonly publisherPolicyArn: pulumi.Output<string>;
  /** SNS topic of the alarms, when `alarms` is on. */
  public readonly alarmTopicArn: pulumi.Output<string | undefined>;
  /** The hub's Lambdas, by handler. */
  public readonly functions: Record<string, aws.lambda.CallbackFunction<unknown, unknown>>;

  private readonly name: string;
  private readonly settings: Settings;
  private readonly tags: pulumi.Input<Record<string, pulumi.Input<string>>>;

  constructor(name: string, args: NotificationHubArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    // No args to super(): Pulumi would record them as the component's inputs, a plain-string
    // jwtSecret included, unencrypted in the stack state. The outputs are registered below.
    super("notification-hub:index:NotificationHub", name, {}, opts);
    this.name = name;
    this.settings = normalizeArgs(args);
    this.tags = args.tags ?? {};
    const s = this.settings;

    const aws_ = this.awsContext();
    const tables = this.createTables();
    const queues = this.createQueues();
    const secret = this.createJwtSecret(args.jwtSecret, aws_);
    const api = this.createApi();
    const stageName = pulumi.output(s.stage);
    const managementEndpoint = pulumi.interpolate`${api.apiEndpoint.apply((e) => e.replace(/^wss:\/\//, "https://"))}/${stageName}`;
    const postToConnections = pulumi.interpolate`${api.executionArn}/${stageName}/POST/@connections/*`;

    const functions = this.createFunctions({ tables, queues, secret, managementEndpoint, postToConnections });
    const stage = this.createStageAndRoutes(api, stageName, functions, aws_);
    this.createEventSource(queues.queue, functions.deliver);
    const publisherPolicy = this.createPublisherPolicy(tables, queues.queue, secret, pulumi.interpolate`${api.executionArn}/${stageName}/DELETE/@connections/*`);
    const domain = args.domain ? this.createDomain(args.domain, api, stage) : undefined;
    const alarmTopic = s.alarms ? this.createAlarms(s.alarms, { queues, functions, api, stage, region: aws_.region }) : undefined;

    this.apiId = api.id;
    this.stage = stage.name;
    this.apiEndpoint = domain ? pulumi.interpolate`wss://${domain.domainName}` : api.apiEndpoint;
    this.websocketUrl = pulumi.interpolate`${this.apiEndpoint}/${stage.name}`;
    this.managementEndpoint = managementEndpoint;
    this.queueUrl = queues.queue.url;
    this.queueArn = queues.queue.arn;
    this.deadLetterQueueUrl = queues.deadLetterQueue.url;
    this.connectionsTableName = tables.connections.name;
    this.authTableName = tables.auth.name;
    this.streamsTableName = tables.streams.name;
    this.jwtSecret = pulumi.secret(secret.value);
    this.publisherPolicyArn = publisherPolicy.arn;
    this.alarmTopicArn = alarmTopic ? alarmTopic.arn : pulumi.output(undefined);
    this.functions = Object.fromEntries(Object.entries(functions).map(([key, f]) => [key, f.fn]));

    this.registerOutputs({
      websocketUrl: this.websocketUrl,
      apiEndpoint: this.apiEndpoint,
      apiId: this.apiId,
      stage: this.stage,
      managementEndpoint: this.managementEndpoint,
      queueUrl: this.queueUrl,
      queueArn: this.queueArn,
      deadLetterQueueUrl: this.deadLetterQueueUrl,
      connectionsTableName: this.connectionsTableName,
      authTableName: this.authTableName,
      streamsTableName: this.streamsTableName,
      jwtSecret: this.jwtSecret,
      publisherPolicyArn: this.publisherPolicyArn,
      alarmTopicArn: this.alarmTopicArn,
    });
  }

  /** Partition, region and account of the stack: ARNs follow them (aws, aws-cn, aws-us-gov). */
  private awsContext() {
    return {
      partition: aws.getPartitionOutput({}, { parent: this }).partition,
      region: aws.getRegionOutput({}, { parent: this }).region,
      accountId: aws.getCallerIdentityOutput({}, { parent: this }).accountId,
    };
  }

  private createTables() {
    const table = (suffix: string, schema: TableSchema) =>
      new aws.dynamodb.Table(
        `${this.name}-${suffix}`,
        {
          billingMode: "PAY_PER_REQUEST",
          hashKey: schema.hashKey,
          rangeKey: schema.rangeKey,
          attributes: schema.attributes.map((a) => ({ name: a.name, type: a.type })),
          globalSecondaryIndexes: schema.globalIndexes.map((index) => ({
            name: index.name,
            hashKey: index.hashKey,
            projectionType: index.nonKeyAttributes.length ? "INCLUDE" : "KEYS_ONLY",
            nonKeyAttributes: index.nonKeyAttributes.length ? [...index.nonKeyAttributes] : undefined,
          })),
          ttl: { attributeName: schema.ttlAttribute, enabled: true },
          serverSideEncryption: { enabled: true },
          pointInTimeRecovery: { enabled: this.settings.protectData },
          deletionProtectionEnabled: this.settings.protectData,
          tags: this.tags,
        },
        { parent: this, protect: this.settings.protectData },
      );
    return { connections: table("connections", connectionsTable), auth: table("auth", authTable), streams: table("streams", streamsTable) };
  }

  private createQueues() {
    const deadLetterQueue = new aws.sqs.Queue(
      `${this.name}-dead-letters`,
      { name: physicalName(`${this.name}-dead-letters`, NAME_LIMITS.queue), messageRetentionSeconds: 14 * 24 * 3600, sqsManagedSseEnabled: true, tags: this.tags },
      { parent: this },
    );
    const queue = new aws.sqs.Queue(
      `${this.name}-notifications`,
      {
        name: physicalName(`${this.name}-notifications`, NAME_LIMITS.queue),
        visibilityTimeoutSeconds: this.settings.visibilityTimeoutSeconds,
        receiveWaitTimeSeconds: 20,
        messageRetentionSeconds: 4 * 24 * 3600,
        sqsManagedSseEnabled: true,
        redrivePolicy: deadLetterQueue.arn.apply((arn) => JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: this.settings.maxReceiveCount })),
        tags: this.tags,
      },
      { parent: this },
    );
    return { queue, deadLetterQueue };
  }

  /**
   * The signing secret as an SSM SecureString the authorizer reads at cold start, encrypted
   * with a KMS key of the hub's own. With the default `aws/ssm` key, anyone in the account
   * with `ssm:GetParameter` on it could read it; with this key they also need `kms:Decrypt` on
   * this key, which only the authorizer's role and the publisher policy grant (and account
   * administrators, who can grant themselves anything). Cost: 1 USD a month per key, plus
   * 0.03 USD per 10,000 requests (one Decrypt per cold authorizer: the secret is kept for the
   * container's life).
   */
  private createJwtSecret(given: pulumi.Input<string> | undefined, context: ReturnType<NotificationHub["awsContext"]>) {
    const value = given
      ? pulumi.secret(given)
      : new random.RandomPassword(`${this.name}-jwt-secret`, { length: 64, special: false }, { parent: this }).result;
    const root = pulumi.interpolate`arn:${context.partition}:iam::${context.accountId}:root`;
    const key = new aws.kms.Key(
      `${this.name}-jwt-secret-key`,
      {
        description: "notification-hub: encrypts the JWT signing secret parameter",
        enableKeyRotation: true,
        deletionWindowInDays: 7,
        // The account root as principal hands decisions to IAM: a principal also needs an IAM
        // grant on this key. Administration stays with the account; use only through SSM.
        policy: pulumi.all([root, context.region, context.accountId]).apply(([account, region, accountId]) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "KeyAdministration",
                Effect: "Allow",
                Principal: { AWS: account },
                Action: ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"],
                Resource: "*",
              },
              {
                Sid: "UseThroughSsmOnly",
                Effect: "Allow",
                Principal: { AWS: account },
                Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
                Resource: "*",
                Condition: { StringEquals: { "kms:ViaService": `ssm.${region}.amazonaws.com`, "kms:CallerAccount": accountId } },
              },
            ],
          }),
        ),
        tags: this.tags,
      },
      { parent: this },
    );
    const parameter = new aws.ssm.Parameter(
      `${this.name}-jwt-secret`,
      { type: "SecureString", value, keyId: key.arn, description: "notification-hub JWT signing secret (HS512)", tags: this.tags },
      { parent: this },
    );
    return { value, parameter, key };
  }

  private createApi() {
    return new aws.apigatewayv2.Api(
      `${this.name}-api`,
      { protocolType: "WEBSOCKET", routeSelectionExpression: "$request.body.action", tags: this.tags },
      { parent: this },
    );
  }

  private createFunctions(deps: {
    tables: ReturnType<NotificationHub["createTables"]>;
    queues: ReturnType<NotificationHub["createQueues"]>;
    secret: ReturnType<NotificationHub["createJwtSecret"]>;
    managementEndpoint: pulumi.Output<string>;
    postToConnections: pulumi.Output<string>;
  }): Record<HandlerName, HubFunction> & { sendMessage?: HubFunction } {
    const { tables, queues, secret, managementEndpoint, postToConnections } = deps;
    const connections = tables.connections.arn;
    const roomIndex = pulumi.interpolate`${connections}/index/${ROOM_INDEX_NAME}`;
    const fanoutStatements: PolicyStatement[] = [
      { Action: ["dynamodb:Query"], Resource: [roomIndex] },
      { Action: ["dynamodb:DeleteItem"], Resource: [connections] },
      { Action: ["execute-api:ManageConnections"], Resource: [postToConnections] },
      { Action: ["sqs:SendMessage"], Resource: [queues.queue.arn] },
    ];
    // Room streams (issue 13): where frames are stored before they are sent, and for how long.
    const streamsEnvironment = { [ENV.streamsTable]: tables.streams.name, [ENV.historyRetentionHours]: String(this.settings.retentionHours) };
    // Append: head Query, claim Put/Update, frame Put, and GetItem for a redelivery's claim and frame.
    const streamWriteStatements: PolicyStatement[] = [{ Action: ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], Resource: [tables.streams.arn] }];
    const fanoutEnvironment = {
      [ENV.connectionsTable]: tables.connections.name,
      [ENV.managementEndpoint]: managementEndpoint,
      [ENV.queueUrl]: queues.queue.url,
      [ENV.largeRoomChunkSize]: String(this.settings.largeRoomChunkSize),
      ...streamsEnvironment,
    };
    const route = DEFAULTS.routeTimeoutSeconds;

    const functions = {
      authorizer: this.createFunction("authorizer", authorizerFromEnvironment, {
        // Room for the secret read's retry budget (15 s) in a reconnect storm; API Gateway waits 29 s.
        timeout: 20,
        memorySize: 512, // bcrypt is CPU-bound; CPU grows with memory
        environment: {
          [ENV.authTable]: tables.auth.name,
          [ENV.jwtSecretParameter]: secret.parameter.name,
          // Containers keep the secret for life; a new version changes the configuration,
          // which replaces every container, so a rotated secret is picked up.
          JWT_SECRET_VERSION: secret.parameter.version.apply(String),
        },
        statements: [
          { Action: ["dynamodb:GetItem"], Resource: [tables.auth.arn] },
          ...secretReadStatements(secret),
        ],
      }),
      connect: this.createFunction("connect", connectFromEnvironment, {
        timeout: route,
        environment: { [ENV.connectionsTable]: tables.connections.name, [ENV.authTable]: tables.auth.name },
        // Revocation race: re-read the auth row after writing the connection row, drop the row if revoked.
        statements: [
          { Action: ["dynamodb:PutItem", "dynamodb:DeleteItem"], Resource: [connections] },
          { Action: ["dynamodb:GetItem"], Resource: [tables.auth.arn] },
        ],
      }),
      disconnect: this.createFunction("disconnect", disconnectFromEnvironment, {
        timeout: route,
        environment: { [ENV.connectionsTable]: tables.connections.name },
        statements: [{ Action: ["dynamodb:DeleteItem"], Resource: [connections] }],
      }),
      default: this.createFunction("default", defaultFromEnvironment, {
        timeout: route,
        environment: { [ENV.managementEndpoint]: managementEndpoint, ALLOW_CLIENT_MESSAGES: String(this.settings.allowClientMessages) },
        statements: [{ Action: ["execute-api:ManageConnections"], Resource: [postToConnections] }],
      }),
      deliver: this.createFunction("deliver", deliverFromEnvironment, {
        timeout: this.settings.deliverTimeoutSeconds,
        memorySize: 512,
        environment: fanoutEnvironment,
        statements: [
          ...fanoutStatements,
          ...streamWriteStatements,
          // What the event source mapping does on the function's behalf.
          { Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"], Resource: [queues.queue.arn] },
        ],
      }),
      // Room streams (issue 13): replays a room's stored frames to one connection.
      resume: this.createFunction("resume", resumeFromEnvironment, {
        timeout: 29, // up to 1,000 posts one after another; API Gateway's integration timeout
        environment: { [ENV.connectionsTable]: tables.connections.name, [ENV.managementEndpoint]: managementEndpoint, ...streamsEnvironment },
        statements: [
          { Action: ["dynamodb:Query"], Resource: [tables.streams.arn] },
          // The connection's room when the authorizer context is missing; a 410 drops its row.
          { Action: ["dynamodb:GetItem", "dynamodb:DeleteItem"], Resource: [connections] },
          { Action: ["execute-api:ManageConnections"], Resource: [postToConnections] },
        ],
      }),
    };
    if (!this.settings.allowClientMessages) return functions as Record<HandlerName, HubFunction>;
    const sendMessage = this.createFunction("sendMessage", sendMessageFromEnvironment, {
      timeout: 29, // API Gateway's integration timeout
      memorySize: 512,
      environment: fanoutEnvironment,
      statements: [...fanoutStatements, ...streamWriteStatements, { Action: ["dynamodb:GetItem"], Resource: [connections] }],
    });
    return { ...functions, sendMessage };
  }

  /** One Lambda: its own role and log group, and a zip with only the packages it requires. */
  private createFunction(
    handler: HandlerName,
    factory: () => unknown,
    options: { timeout: number; memorySize?: number; environment: Record<string, pulumi.Input<string>>; statements: PolicyStatement[] },
  ): HubFunction {
    const name = `${this.name}-${handler}`;
    const logGroup = new aws.cloudwatch.LogGroup(`${name}-logs`, { retentionInDays: this.settings.logRetentionDays, tags: this.tags }, { parent: this });
    const { role, policy } = this.createRole(name, "lambda.amazonaws.com", [
      { Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [pulumi.interpolate`${logGroup.arn}:*`] },
      ...options.statements,
    ]);
    const fn = new aws.lambda.CallbackFunction<unknown, unknown>(
      name,
      {
        name: physicalName(name, NAME_LIMITS.function),
        callbackFactory: factory as aws.lambda.CallbackFactory<unknown, unknown>,
        role,
        runtime: this.settings.runtime as aws.lambda.Runtime,
        timeout: options.timeout,
        memorySize: options.memorySize ?? 256,
        architectures: ["arm64"],
        environment: { variables: options.environment },
        loggingConfig: { logFormat: "JSON", logGroup: logGroup.name, applicationLogLevel: "INFO", systemLogLevel: "WARN" },
        codePathOptions: codePathOptionsFor(handler),
        tags: this.tags,
      },
      { parent: this, dependsOn: [policy] },
    );
    return { fn, role, policy, logGroup };
  }

  private createStageAndRoutes(
    api: aws.apigatewayv2.Api,
    stageName: pulumi.Output<string>,
    functions: ReturnType<NotificationHub["createFunctions"]>,
    context: ReturnType<NotificationHub["awsContext"]>,
  ) {
    const authorizer = new aws.apigatewayv2.Authorizer(
      `${this.name}-authorizer`,
      {
        apiId: api.id,
        authorizerType: "REQUEST",
        authorizerUri: functions.authorizer.fn.invokeArn,
        identitySources: ["route.request.querystring.token"],
        name: `${this.name}-token`,
      },
      { parent: this },
    );
    new aws.lambda.Permission(
      `${this.name}-authorizer-invoke`,
      {
        action: "lambda:InvokeFunction",
        function: functions.authorizer.fn.name,
        principal: "apigateway.amazonaws.com",
        sourceArn: pulumi.interpolate`${api.executionArn}/authorizers/${authorizer.id}`,
      },
      { parent: this },
    );

    const routes: { key: string; handler: HubFunction; slug: string }[] = [
      { key: "$connect", handler: functions.connect, slug: "connect" },
      { key: "$disconnect", handler: functions.disconnect, slug: "disconnect" },
      { key: "$default", handler: functions.default, slug: "default" },
      ...(functions.sendMessage ? [{ key: "sendMessage", handler: functions.sendMessage, slug: "send-message" }] : []),
      { key: "resume", handler: functions.resume, slug: "resume" }, // room streams (issue 13)
    ];
    const created = routes.map(({ key, handler, slug }) => {
      const integration = new aws.apigatewayv2.Integration(
        `${this.name}-${slug}-integration`,
        { apiId: api.id, integrationType: "AWS_PROXY", integrationUri: handler.fn.invokeArn, integrationMethod: "POST" },
        { parent: this },
      );
      new aws.lambda.Permission(
        `${this.name}-${slug}-invoke`,
        {
          action: "lambda:InvokeFunction",
          function: handler.fn.name,
          principal: "apigateway.amazonaws.com",
          sourceArn: pulumi.interpolate`${api.executionArn}/${stageName}/${key}`,
        },
        { parent: this },
      );
      return new aws.apigatewayv2.Route(
        `${this.name}-${slug}-route`,
        {
          apiId: api.id,
          routeKey: key,
          target: pulumi.interpolate`integrations/${integration.id}`,
          ...(key === "$connect" ? { authorizationType: "CUSTOM", authorizerId: authorizer.id } : {}),
        },
        { parent: this },
      );
    });

    const logging = this.settings.apiGatewayLogging;
    const logsOn = logging !== "off";
    const accessLogs = logsOn
      ? new aws.cloudwatch.LogGroup(`${this.name}-access-logs`, { retentionInDays: this.settings.logRetentionDays, tags: this.tags }, { parent: this })
      : undefined;
    // Where API Gateway writes a WebSocket stage's execution logs; created here so it gets
    // our retention instead of "never expire".
    const executionLogs = logsOn
      ? new aws.cloudwatch.LogGroup(
          `${this.name}-execution-logs`,
          { name: pulumi.interpolate`/aws/apigateway/${api.id}/${stageName}`, retentionInDays: this.settings.logRetentionDays, tags: this.tags },
          { parent: this },
        )
      : undefined;
    const account = logging === "ifUnset" ? this.apiGatewayAccountIfUnset(context) : undefined;
    return new aws.apigatewayv2.Stage(
      `${this.name}-stage`,
      {
        apiId: api.id,
        name: stageName,
        autoDeploy: true,
        defaultRouteSettings: {
          throttlingBurstLimit: this.settings.burstLimit,
          throttlingRateLimit: this.settings.rateLimit,
          dataTraceEnabled: false, // full request logging would write tokens to CloudWatch
          // Any logging level needs the account's CloudWatch role: "OFF" unless logs are on.
          loggingLevel: logsOn ? "ERROR" : "OFF",
        },
        accessLogSettings: accessLogs ? { destinationArn: accessLogs.arn, format: ACCESS_LOG_FORMAT } : undefined,
        tags: this.tags,
      },
      { parent: this, dependsOn: [...created, ...(executionLogs ? [executionLogs] : []), ...(account ? [account] : [])] },
    );
  }

  /**
   * SST's way with the region's API Gateway CloudWatch role (one setting for every API of the
   * account in the region): read it; only when it is unset (or is the role this stack set
   * earlier) declare a role with the AWS managed push-to-CloudWatch-Logs policy and the
   * setting. Both are retained on delete: with @pulumi/aws v7 deleting `aws.apigateway.Account`
   * resets the setting, which would break logging for every other API of the region.
   */
  private apiGatewayAccountIfUnset(context: ReturnType<NotificationHub["awsContext"]>): pulumi.Output<pulumi.Resource> {
    const current = aws.apigateway.Account.get(`${this.name}-apigateway-account-lookup`, "api-gateway-account", undefined, { parent: this });
    // Deterministic, so a later run recognises its own role and keeps declaring it.
    const roleName = `apigateway-cloudwatch-${crypto.createHash("sha256").update(`${pulumi.getProject()}/${pulumi.getStack()}/${this.name}`).digest("hex").slice(0, 16)}`;
    return pulumi.all([current.cloudwatchRoleArn, context.partition]).apply(([arn, partition]): pulumi.Resource => {
      if (arn && !arn.endsWith(`:role/${roleName}`)) return current; // someone else's: leave it alone
      const retain = { parent: this, retainOnDelete: true };
      const role = new aws.iam.Role(
        `${this.name}-apigateway-cloudwatch-role`,
        { name: roleName, assumeRolePolicy: assumeRolePolicy("apigateway.amazonaws.com"), tags: this.tags },
        retain,
      );
      const attachment = new aws.iam.RolePolicyAttachment(
        `${this.name}-apigateway-cloudwatch-policy`,
        { role: role.name, policyArn: `arn:${partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs` },
        retain,
      );
      return new aws.apigateway.Account(`${this.name}-apigateway-account`, { cloudwatchRoleArn: role.arn }, { ...retain, dependsOn: [attachment] });
    });
  }

  /** A role a service assumes, with one inline policy of exactly these statements. */
  private createRole(name: string, service: string, statements: PolicyStatement[]) {
    const role = new aws.iam.Role(
      `${name}-role`,
      { name: physicalName(`${name}-role`, NAME_LIMITS.role), assumeRolePolicy: assumeRolePolicy(service), tags: this.tags },
      { parent: this },
    );
    const policy = new aws.iam.RolePolicy(
      `${name}-policy`,
      { name: physicalName(`${name}-policy`, NAME_LIMITS.policy), role: role.id, policy: policyDocument(statements) },
      { parent: this },
    );
    return { role, policy };
  }

  private createEventSource(queue: aws.sqs.Queue, deliver: HubFunction) {
    return new aws.lambda.EventSourceMapping(
      `${this.name}-deliver-source`,
      {
        eventSourceArn: queue.arn,
        functionName: deliver.fn.name,
        batchSize: this.settings.batchSize,
        maximumBatchingWindowInSeconds: 0,
        functionResponseTypes: ["ReportBatchItemFailures"],
        scalingConfig: { maximumConcurrency: this.settings.maximumConcurrency },
      },
      { parent: this, dependsOn: [deliver.policy] },
    );
  }

  private createPublisherPolicy(
    tables: ReturnType<NotificationHub["createTables"]>,
    queue: aws.sqs.Queue,
    secret: ReturnType<NotificationHub["createJwtSecret"]>,
    deleteConnections: pulumi.Output<string>,
  ) {
    return new aws.iam.Policy(
      `${this.name}-publisher`,
      {
        name: physicalName(`${this.name}-publisher`, NAME_LIMITS.policy),
        description: "Publish notifications and issue/revoke connect tokens for one notification hub",
        policy: policyDocument([
          { Action: ["sqs:SendMessage"], Resource: [queue.arn] },
          { Action: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"], Resource: [tables.auth.arn] },
          // Revocation closes the user's live connections in the room.
          { Action: ["dynamodb:Query"], Resource: [pulumi.interpolate`${tables.connections.arn}/index/${ROOM_INDEX_NAME}`] },
          { Action: ["dynamodb:DeleteItem"], Resource: [tables.connections.arn] },
          { Action: ["execute-api:ManageConnections"], Resource: [deleteConnections] },
          // notifier.history reads room streams (issue 13).
          { Action: ["dynamodb:Query"], Resource: [tables.streams.arn] },
          // Backends may read the signing secret from its parameter instead of the stack output.
          ...secretReadStatements(secret),
        ]),
        tags: this.tags,
      },
      { parent: this },
    );
  }

  private createDomain(domain: NonNullable<NotificationHubArgs["domain"]>, api: aws.apigatewayv2.Api, stage: aws.apigatewayv2.Stage) {
    const domainName = new aws.apigatewayv2.DomainName(
      `${this.name}-domain`,
      {
        domainName: domain.name,
        domainNameConfiguration: { certificateArn: domain.certificateArn, endpointType: "REGIONAL", securityPolicy: "TLS_1_2" },
        tags: this.tags,
      },
      { parent: this },
    );
    // Mapped under the stage name, so the URL keeps the contract's shape: wss://{domain}/{stage}.
    new aws.apigatewayv2.ApiMapping(
      `${this.name}-domain-mapping`,
      { apiId: api.id, domainName: domainName.id, stage: stage.id, apiMappingKey: stage.name },
      { parent: this },
    );
    new aws.route53.Record(
      `${this.name}-domain-record`,
      {
        zoneId: domain.hostedZoneId,
        name: domainName.domainName,
        type: "A",
        aliases: [
          {
            name: domainName.domainNameConfiguration.apply((c) => c.targetDomainName),
            zoneId: domainName.domainNameConfiguration.apply((c) => c.hostedZoneId),
            evaluateTargetHealth: false,
          },
        ],
      },
      { parent: this },
    );
    return domainName;
  }

  private createAlarms(
    alarms: { email?: pulumi.Input<string> },
    hub: {
      queues: ReturnType<NotificationHub["createQueues"]>;
      functions: ReturnType<NotificationHub["createFunctions"]>;
      api: aws.apigatewayv2.Api;
      stage: aws.apigatewayv2.Stage;
      region: pulumi.Output<string>;
    },
  ) {
    const { queues, functions, api, stage, region } = hub;
    const topic = new aws.sns.Topic(`${this.name}-alarms`, { tags: this.tags }, { parent: this });
    if (alarms.email) {
      new aws.sns.TopicSubscription(`${this.name}-alarms-email`, { topic: topic.arn, protocol: "email", endpoint: alarms.email }, { parent: this });
    }
    const alarm = (suffix: string, description: string, args: Omit<aws.cloudwatch.MetricAlarmArgs, "comparisonOperator" | "evaluationPeriods" | "alarmActions">) =>
      new aws.cloudwatch.MetricAlarm(
        `${this.name}-${suffix}`,
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
          tags: this.tags,
          ...args,
        },
        { parent: this },
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
      `${this.name}-dashboard`,
      {
        dashboardName: region.apply((r) => dashboardName(pulumi.getProject(), pulumi.getStack(), this.name, r)),
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
      { parent: this },
    );
    return topic;
  }
}

/**
 * Dashboards are named by the account, not by the stack: project, stack, component and
 * region keep two stacks (or two regions of one stack) from overwriting each other's.
 */
export function dashboardName(project: string, stack: string, component: string, region: string): string {
  const name = `${project}-${stack}-${component}-${region}`.replace(/[^A-Za-z0-9_-]/g, "-");
  return name.length <= 255 ? name : `${name.slice(0, 246)}-${crypto.createHash("sha256").update(name).digest("hex").slice(0, 8)}`;
}

function assumeRolePolicy(service: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
  });
}

/** Reading the signing secret: the parameter, and its key only as SSM uses it. */
function secretReadStatements(secret: { parameter: aws.ssm.Parameter; key: aws.kms.Key }): PolicyStatement[] {
  return [
    { Action: ["ssm:GetParameter"], Resource: [secret.parameter.arn] },
    { Action: ["kms:Decrypt"], Resource: [secret.key.arn] },
  ];
}

function metricWidget(region: string, title: string, metrics: unknown[][]) {
  return { type: "metric", width: 12, height: 6, properties: { region, title, metrics, period: 60, stat: "Sum", view: "timeSeries" } };
}
