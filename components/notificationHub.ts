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
 * the actions it calls on only this hub's resources (handlers/manifest.ts). Each part is
 * built by a free function in components/hub/; `nodes` reaches the children.
 */
import type * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { buildAlarms } from "./hub/alarms";
import { awsContext, type HubContext, type HubTransforms } from "./hub/context";
import { buildDomain, type HubDomain } from "./hub/domain";
import { buildEventBus } from "./hub/eventBus";
import { buildFunctions, buildQueueConsumer, buildSchedule, type HubFunctions } from "./hub/functions";
import { buildPublisherPolicy } from "./hub/publisherPolicy";
import { buildQueues, type HubQueues } from "./hub/queues";
import { buildSecret, type HubSecret } from "./hub/secret";
import { buildSdkLayer } from "./hub/sdkLayer";
import { lambdaPackaging } from "./lambdaPackages";
import { normalizeArgs, type ApiGatewayLogging } from "./hub/settings";
import { buildTables, type HubTables } from "./hub/tables";
import { buildApi, buildWebSocketApi, type HubWebSocketApi } from "./hub/webSocketApi";

export { ACCESS_LOG_FORMAT } from "./hub/webSocketApi";
export { NAME_LIMITS, physicalName, type HubTransforms, type Transform } from "./hub/context";
export { dashboardName } from "./hub/alarms";
export { checkLogRetentionDays, LOG_RETENTION_DAYS, normalizeArgs, type ApiGatewayLogging } from "./hub/settings";

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
   * Days CloudWatch keeps the Lambda and API Gateway logs: one of the periods CloudWatch Logs
   * accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
   * 2557, 2922, 3288, 3653); any other value is refused before anything is deployed.
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
    /**
     * Concurrent deliver invocations the notification queue may start (2–1000): user channels,
     * small rooms, retries. Each invocation posts at most 64 requests at a time; together they
     * stay within `delivery.postsPerSecond`. @default 10
     */
    maximumConcurrency?: number;
    /**
     * Concurrent deliver invocations the bulk queue may start (2–1000): chunks of rooms bigger
     * than `largeRoomChunkSize`, through their own event source mapping, so a big room's
     * broadcast never holds the invocations small messages need. @default 10
     */
    bulkMaximumConcurrency?: number;
    /** Deliver Lambda timeout. @default 30 */
    deliverTimeoutSeconds?: number;
    /** Connections one deliver invocation posts to before it splits a room through the queue. @default 1000 */
    largeRoomChunkSize?: number;
  };
  /**
   * The hub's share of the account's API Gateway budget. `postsPerSecond`: the most
   * `@connections` requests per second the whole hub makes, every caller together (delivery of
   * both queues, client messages, resume replays, replies to subscribe and errors), from 10 to
   * 100,000. AWS counts these against the account's 10,000 requests per second per Region
   * (shared with every other API of the account), so the default keeps half for the rest.
   *
   * It holds whatever `queue.maximumConcurrency` and `queue.bulkMaximumConcurrency` are: every
   * invocation takes its tokens from one shared budget (a DynamoDB item per 100 ms window,
   * core/budget.ts), never from a fixed share. Concurrency only decides how fast the budget
   * can be spent: one deliver invocation makes roughly 1,000–2,000 posts a second, so
   * `maximumConcurrency + bulkMaximumConcurrency` ≈ postsPerSecond / 1,000 reaches it; more
   * only adds invocations that wait for tokens (billed while they wait). Big rooms may take
   * 80 % of each window; the rest is kept for user channels and small rooms. Posts the budget
   * holds back are requeued with the same frame (same `id`, same `seq`), never dead-lettered.
   * @default { postsPerSecond: 5000 }
   * @example { postsPerSecond: 2000 }
   */
  delivery?: { postsPerSecond?: number };
  /**
   * Custom domain with a Route 53 alias, as the seed article recommends, so clients keep one
   * URL across redeployments. The WebSocket URL becomes `wss://{name}/{stage}`.
   * @default none
   * @example { name: "ws.example.com", certificateArn: cert.arn, hostedZoneId: zone.zoneId }
   */
  domain?: HubDomain;
  /**
   * Alarms to an SNS topic, with an optional e-mail subscription, plus a CloudWatch dashboard.
   * Each fires on a problem that lasts (`ALARM_RULES` in hub/alarms.ts): any dead letter at once;
   * the oldest queued notification older than 5 minutes for 5 minutes in a row; function errors
   * and API Gateway integration/execution errors in 3 of 5 minutes; throttles in 5 minutes in a row.
   * With presence on, five on its sweep: not invoked by EventBridge (3 of 5 minutes) or not run
   * (3 periods); and, from the metrics each run writes, lifecycle events left in the outbox by 5 runs
   * in a row, an incomplete Scan at once, suspects deferred by 3 runs in a row.
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
   * Room streams (docs/protocol.md#room-streams): how long delivered notifications are kept for
   * `resume` and `history`. 0 turns streams off (frames carry no `seq`).
   * @default { retentionHours: 24 }
   */
  history?: { retentionHours?: number };
  /**
   * Rooms one connection may be subscribed to at once (`subscribe`, docs/protocol.md#subscribe), from
   * 1 to 1000; its user channel is not counted. Past it, a subscribe gets `too_many_rooms`.
   * @default 100
   * @example 20
   */
  maxRoomsPerConnection?: number;
  /**
   * Presence (docs/protocol.md#presence): who is in a room (per user: tabs merge) and how many
   * (`presence` and `occupancy` actions), `hub.member.joined`/`hub.member.left` to the room's
   * members (batched as `hub.presence.diff` past `eventMembersLimit` members), decided per user
   * after `graceSeconds` so a reconnect (API Gateway's 2-hour rotation) neither leaves nor joins.
   * Off: no presence table, no presence routes, no schedule. On: a table, the `presence` and
   * `occupancy` routes, a sweep function run every `sweepSeconds` (whole minutes, at least 60),
   * and an EventBridge bus of lifecycle events for the app (`eventBusName`, docs/protocol.md#lifecycle-events).
   * With presence on, the keep-alive route records liveness (`seen_at` on the connection's row, a
   * DynamoDB write by API Gateway itself, no Lambda) and the sweep removes connections whose
   * `$disconnect` never came (ARCHITECTURE.md "Liveness and the sweep").
   * @default { enabled: false, graceSeconds: 30, sweepSeconds: 60, eventMembersLimit: 100, keepAliveSeconds: 45 }
   * @example { enabled: true, graceSeconds: 60 }
   */
  presence?: {
    /** @default false */
    enabled?: boolean;
    /** Seconds a user whose last connection closed may come back without leaving. @default 30 */
    graceSeconds?: number;
    /** Seconds between two sweeps (whole minutes, at least 60). @default 60 */
    sweepSeconds?: number;
    /** Rooms up to this many members get single member events; bigger ones a diff at most once a second. @default 100 */
    eventMembersLimit?: number;
    /**
     * Seconds between two keep-alive pings of each client (told to clients in `hub.subscribed`
     * as `keep_alive_ms`), 10 to 540. A dead connection is found within `keepAliveSeconds` +
     * 15 + `sweepSeconds`; each ping is a billed message and a DynamoDB write. @default 45
     */
    keepAliveSeconds?: number;
  };
  /**
   * API Gateway execution logs (ERROR level, in `/aws/apigateway/{apiId}/{stage}`) and access
   * logs. Both need the region's account-wide API Gateway CloudWatch role, which one setting
   * holds for every API of the account in the region, so it is never taken over:
   * - `"off"`: no API Gateway logs; the account setting is left alone (the Lambdas still log).
   * - `"ifUnset"`: look the setting up; only where the region has none, create a role with the
   *   AWS managed `AmazonAPIGatewayPushToCloudWatchLogs` policy and set it. Both are kept
   *   (`retainOnDelete`) when the stack is destroyed, so other stacks keep their logs. Where a
   *   role is set, whoever set it (this stack on an earlier run included), it is left alone: the
   *   run after the one that set it drops them from the stack's state once (retained, nothing
   *   changes in AWS), and destroy then up never re-creates a role that still exists.
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
  /**
   * Changes the arguments of the hub's children before they are created, one function per
   * kind of child (SST's `transform`): mutate `args` or return new ones. `name` is the
   * child's logical name (`{component name}-{key}`).
   * @default none
   * @example { function: (args) => { args.memorySize = 1024; }, table: (args) => { args.tags = { team: "a" }; } }
   */
  transform?: HubTransforms;
}

/** The hub's children, by part. */
export interface HubNodes {
  tables: HubTables;
  queues: HubQueues;
  secret: HubSecret;
  /** The AWS SDK layer every function uses. */
  sdkLayer: aws.lambda.LayerVersion;
  functions: HubFunctions;
  webSocket: HubWebSocketApi;
  queueConsumer: aws.lambda.EventSourceMapping;
  /** The bulk queue's consumer (chunks of big rooms), with its own concurrency. */
  bulkQueueConsumer: aws.lambda.EventSourceMapping;
  publisherPolicy: aws.iam.Policy;
  domain?: aws.apigatewayv2.DomainName;
  alarmTopic?: aws.sns.Topic;
  /** Presence's sweep schedule (an EventBridge rule, its target and the invoke permission), when `presence` is on. */
  sweepSchedule?: { rule: aws.cloudwatch.EventRule; target: aws.cloudwatch.EventTarget; permission: aws.lambda.Permission };
  /** The bus of lifecycle events, when `presence` is on. */
  eventBus?: aws.cloudwatch.EventBus;
}

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
  /** Room streams' table (`history`, `resume`): the notifier's `streamsTableName`. */
  public readonly streamsTableName: pulumi.Output<string>;
  /** Presence's table (the notifier's `presenceTableName`), when `presence` is on. */
  public readonly presenceTableName: pulumi.Output<string | undefined>;
  /**
   * The EventBridge bus of lifecycle events (source `notification-hub`), when `presence` is on:
   * an app's rules name it (docs/protocol.md#lifecycle-events).
   */
  public readonly eventBusName: pulumi.Output<string | undefined>;
  /** The signing secret (given or generated), as a secret. */
  public readonly jwtSecret: pulumi.Output<string>;
  /** IAM managed policy an app backend attaches to publish, issue and revoke tokens. */
  public readonly publisherPolicyArn: pulumi.Output<string>;
  /** SNS topic of the alarms, when `alarms` is on. */
  public readonly alarmTopicArn: pulumi.Output<string | undefined>;
  /** The hub's Lambdas, by handler. */
  public readonly functions: Record<string, aws.lambda.CallbackFunction<unknown, unknown>>;

  private readonly children: HubNodes;

  /** The hub's children (tables, queues, functions with their roles, API, routes, stage...), to read or extend. */
  public get nodes(): HubNodes {
    return this.children;
  }

  constructor(name: string, args: NotificationHubArgs = {}, opts?: pulumi.ComponentResourceOptions) {
    // No args to super(): Pulumi would record them as the component's inputs, a plain-string
    // jwtSecret included, unencrypted in the stack state. The outputs are registered below.
    super("notification-hub:index:NotificationHub", name, {}, opts);
    const settings = normalizeArgs(args);
    // Before anything is declared: an install Pulumi cannot package stops the program here.
    const packaging = lambdaPackaging();
    const ctx: HubContext = { parent: this, name, settings, tags: args.tags ?? {}, aws: awsContext(this), transform: args.transform ?? {} };

    const tables = buildTables(ctx);
    const queues = buildQueues(ctx);
    const secret = buildSecret(ctx, args.jwtSecret);
    const api = buildApi(ctx);
    const stageName = pulumi.output(settings.stage);
    const managementEndpoint = pulumi.interpolate`${api.apiEndpoint.apply((e) => e.replace(/^wss:\/\//, "https://"))}/${stageName}`;
    const postToConnections = pulumi.interpolate`${api.executionArn}/${stageName}/POST/@connections/*`;

    const sdkLayer = buildSdkLayer(ctx, packaging.layer);
    const eventBus = settings.presence ? buildEventBus(ctx) : undefined;
    const getConnections = pulumi.interpolate`${api.executionArn}/${stageName}/GET/@connections/*`;
    const deleteConnections = pulumi.interpolate`${api.executionArn}/${stageName}/DELETE/@connections/*`;
    const functions = buildFunctions(ctx, { sdkLayer, codePaths: packaging.codePaths, tables, queues, secret, managementEndpoint, postToConnections, getConnections, deleteConnections, eventBus });
    const webSocket = buildWebSocketApi(ctx, api, stageName, functions, settings.presence ? tables.connections : undefined);
    const { stage } = webSocket;
    const queueConsumer = buildQueueConsumer(ctx, queues.queue, functions.deliver);
    const bulkQueueConsumer = buildQueueConsumer(ctx, queues.bulkQueue, functions.deliver, "bulk");
    const sweepSchedule = functions.sweep && settings.presence ? buildSchedule(ctx, functions.sweep, settings.presence.sweepSeconds) : undefined;
    const publisherPolicy = buildPublisherPolicy(ctx, tables, queues.queue, secret, deleteConnections);
    const domain = args.domain ? buildDomain(ctx, args.domain, api, stage) : undefined;
    const alarmTopic = settings.alarms ? buildAlarms(ctx, settings.alarms, { queues, functions, api, stage, ...(sweepSchedule && settings.presence ? { sweep: { rule: sweepSchedule.rule, sweepSeconds: settings.presence.sweepSeconds } } : {}) }) : undefined;
    this.children = { tables, queues, secret, sdkLayer, functions, webSocket, queueConsumer, bulkQueueConsumer, publisherPolicy, domain, alarmTopic, sweepSchedule, eventBus };

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
    this.presenceTableName = tables.presence ? tables.presence.name : pulumi.output(undefined);
    this.eventBusName = eventBus ? eventBus.name : pulumi.output(undefined);
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
      presenceTableName: this.presenceTableName,
      eventBusName: this.eventBusName,
      jwtSecret: this.jwtSecret,
      publisherPolicyArn: this.publisherPolicyArn,
      alarmTopicArn: this.alarmTopicArn,
    });
  }
}
