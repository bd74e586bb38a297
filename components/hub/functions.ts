/**
 * The hub's Lambdas, one per handler of handlers/manifest.ts: each with its own role (only
 * the manifest's grants, on this hub's resources), its own log group, its environment and a
 * zip with only the packages it requires.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { ENV } from "../../core/aws";
import { ROOM_INDEX_NAME } from "../../core/schema";
import { loadEntryPoint } from "../../handlers/entryPoints";
import { deployedHandlers, effectiveEntry, handlerEntry, type HandlerName, type HubResource } from "../../handlers/manifest";
import { policyDocument, type PolicyStatement } from "../policies";
import { assumeRolePolicy, childName, create, NAME_LIMITS, physicalName, type HubContext } from "./context";
import type { HubQueues } from "./queues";
import type { HubSecret } from "./secret";
import type { HubTables } from "./tables";

export interface HubFunction {
  fn: aws.lambda.CallbackFunction<unknown, unknown>;
  role: aws.iam.Role;
  policy: aws.iam.RolePolicy;
  logGroup: aws.cloudwatch.LogGroup;
}

export type HubFunctions = Partial<Record<HandlerName, HubFunction>> & Record<"authorizer" | "connect" | "disconnect" | "default" | "deliver", HubFunction>;

/** What the functions are wired to: resources by the manifest's names, values by ENV key. */
export interface FunctionWiring {
  /** The AWS SDK layer (components/hub/sdkLayer.ts): every function's `@aws-sdk/*` and `@smithy/*`. */
  sdkLayer: aws.lambda.LayerVersion;
  /** Each function's zip options (components/lambdaPackages.ts `lambdaPackaging`). */
  codePaths: Record<HandlerName, pulumi.runtime.CodePathOptions>;
  tables: HubTables;
  queues: HubQueues;
  secret: HubSecret;
  managementEndpoint: pulumi.Output<string>;
  postToConnections: pulumi.Output<string>;
  /** The bus of lifecycle events, with `presence` on (components/hub/eventBus.ts). */
  eventBus?: aws.cloudwatch.EventBus;
  /** `{api}/{stage}/GET/@connections/*`: the sweep's liveness check. */
  getConnections: pulumi.Output<string>;
  /** `{api}/{stage}/DELETE/@connections/*`: the sweep's end of a connection that stopped pinging at its told rate. */
  deleteConnections: pulumi.Output<string>;
}

function resourceArns(w: FunctionWiring): Record<HubResource, pulumi.Input<string> | undefined> {
  return {
    connectionsTable: w.tables.connections.arn,
    roomIndex: pulumi.interpolate`${w.tables.connections.arn}/index/${ROOM_INDEX_NAME}`,
    authTable: w.tables.auth.arn,
    streamsTable: w.tables.streams.arn,
    budgetTable: w.tables.budget.arn,
    queue: w.queues.queue.arn,
    bulkQueue: w.queues.bulkQueue.arn,
    postToConnections: w.postToConnections,
    getConnections: w.getConnections,
    deleteConnections: w.deleteConnections,
    jwtSecretParameter: w.secret.parameter.arn,
    jwtSecretKey: w.secret.key.arn,
    presenceTable: w.tables.presence?.arn,
    eventBus: w.eventBus?.arn,
  };
}

function environmentValues(ctx: HubContext, w: FunctionWiring): Partial<Record<keyof typeof ENV, pulumi.Input<string>>> {
  return {
    connectionsTable: w.tables.connections.name,
    authTable: w.tables.auth.name,
    streamsTable: w.tables.streams.name,
    historyRetentionHours: String(ctx.settings.retentionHours),
    managementEndpoint: w.managementEndpoint,
    queueUrl: w.queues.queue.url,
    bulkQueueUrl: w.queues.bulkQueue.url,
    budgetTable: w.tables.budget.name,
    postsPerSecond: String(ctx.settings.postsPerSecond),
    largeRoomChunkSize: String(ctx.settings.largeRoomChunkSize),
    jwtSecretParameter: w.secret.parameter.name,
    jwtSecretVersion: w.secret.parameter.version.apply(String),
    allowClientMessages: String(ctx.settings.allowClientMessages),
    maxRoomsPerConnection: String(ctx.settings.maxRoomsPerConnection),
    ...(ctx.settings.presence && w.tables.presence
      ? {
          presenceTable: w.tables.presence.name,
          presenceGraceSeconds: String(ctx.settings.presence.graceSeconds),
          presenceEventMembersLimit: String(ctx.settings.presence.eventMembersLimit),
          presenceKeepAliveSeconds: String(ctx.settings.presence.keepAliveSeconds),
        }
      : {}),
    ...(w.eventBus ? { eventBusName: w.eventBus.name } : {}),
  };
}

/** Every handler the settings deploy (sendMessage only when clients may send). */
export function buildFunctions(ctx: HubContext, wiring: FunctionWiring): HubFunctions {
  const arns = resourceArns(wiring);
  const values = environmentValues(ctx, wiring);
  const functions: Partial<Record<HandlerName, HubFunction>> = {};
  const presence = ctx.settings.presence !== undefined;
  for (const handler of deployedHandlers(ctx.settings.allowClientMessages, presence)) {
    const entry = handlerEntry(handler);
    const { environment, grants } = effectiveEntry(handler, presence);
    functions[handler] = buildFunction(ctx, handler, {
      layers: [wiring.sdkLayer.arn],
      codePathOptions: wiring.codePaths[handler],
      timeout: entry.timeoutSeconds === "deliver" ? ctx.settings.deliverTimeoutSeconds : entry.timeoutSeconds,
      memorySize: entry.memoryMb,
      environment: Object.fromEntries(
        environment.map((key) => {
          const value = values[key];
          if (value === undefined) throw new Error(`NotificationHub: no value for ${ENV[key]}, which the ${handler} handler reads`);
          return [ENV[key], value];
        }),
      ),
      statements: grants.map((grant) => {
        const arn = arns[grant.resource];
        if (arn === undefined) throw new Error(`NotificationHub: the ${handler} handler is granted ${grant.resource}, which these settings do not create`);
        return { Action: [...grant.actions], Resource: [arn] };
      }),
    });
  }
  return functions as HubFunctions;
}

/** A role a service assumes, with one inline policy of exactly these statements. */
export function buildRole(ctx: HubContext, key: string, service: string, statements: PolicyStatement[]) {
  const role = create(ctx, aws.iam.Role, ctx.transform.role, `${key}-role`, {
    name: physicalName(childName(ctx, `${key}-role`), NAME_LIMITS.role),
    assumeRolePolicy: assumeRolePolicy(service),
    tags: ctx.tags,
  });
  const policy = create(ctx, aws.iam.RolePolicy, ctx.transform.rolePolicy, `${key}-policy`, {
    name: physicalName(childName(ctx, `${key}-policy`), NAME_LIMITS.policy),
    role: role.id,
    policy: policyDocument(statements),
  });
  return { role, policy };
}

/** One Lambda: its own role and log group, the SDK layer, and a zip with only the other packages it requires. */
export function buildFunction(
  ctx: HubContext,
  handler: HandlerName,
  options: { layers: pulumi.Input<string>[]; codePathOptions: pulumi.runtime.CodePathOptions; timeout: number; memorySize: number; environment: Record<string, pulumi.Input<string>>; statements: PolicyStatement[] },
): HubFunction {
  const logGroup = create(ctx, aws.cloudwatch.LogGroup, ctx.transform.logGroup, `${handler}-logs`, { retentionInDays: ctx.settings.logRetentionDays, tags: ctx.tags });
  const { role, policy } = buildRole(ctx, handler, "lambda.amazonaws.com", [
    { Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [pulumi.interpolate`${logGroup.arn}:*`] },
    ...options.statements,
  ]);
  const fn = create(
    ctx,
    aws.lambda.CallbackFunction<unknown, unknown>,
    ctx.transform.function,
    handler,
    {
      name: physicalName(childName(ctx, handler), NAME_LIMITS.function),
      callbackFactory: loadEntryPoint(handler) as unknown as aws.lambda.CallbackFactory<unknown, unknown>,
      role,
      runtime: ctx.settings.runtime as aws.lambda.Runtime,
      timeout: options.timeout,
      memorySize: options.memorySize,
      layers: options.layers,
      architectures: ["arm64"],
      environment: { variables: options.environment },
      loggingConfig: { logFormat: "JSON", logGroup: logGroup.name, applicationLogLevel: "INFO", systemLogLevel: "WARN" },
      codePathOptions: options.codePathOptions,
      tags: ctx.tags,
    },
    { dependsOn: [policy] },
  );
  return { fn, role, policy, logGroup };
}

/**
 * A queue's consumer: SQS starts the deliver function with batches of notifications. One per
 * queue, each with its own concurrency: "deliver-source" for the notification queue (user
 * channels, small rooms, retries) and "deliver-bulk-source" for the big-room lane, so chunks
 * of a big room never hold the invocations small messages need.
 */
export function buildQueueConsumer(ctx: HubContext, queue: aws.sqs.Queue, deliver: HubFunction, lane: "notifications" | "bulk" = "notifications") {
  return create(
    ctx,
    aws.lambda.EventSourceMapping,
    ctx.transform.eventSourceMapping,
    lane === "bulk" ? "deliver-bulk-source" : "deliver-source",
    {
      eventSourceArn: queue.arn,
      functionName: deliver.fn.name,
      batchSize: ctx.settings.batchSize,
      maximumBatchingWindowInSeconds: 0,
      functionResponseTypes: ["ReportBatchItemFailures"],
      scalingConfig: { maximumConcurrency: lane === "bulk" ? ctx.settings.bulkMaximumConcurrency : ctx.settings.maximumConcurrency },
    },
    { dependsOn: [deliver.policy] },
  );
}

/**
 * Presence's sweep on a schedule: an EventBridge rule every `sweepSeconds`, its target, and the
 * permission for EventBridge (this rule only) to invoke the function. EventBridge invokes it
 * asynchronously: Lambda's own retries (2 by default, after a failed run) are off and an event
 * older than a minute is dropped, so runs never overlap; the next schedule is the retry.
 */
export function buildSchedule(ctx: HubContext, sweep: HubFunction, sweepSeconds: number) {
  const minutes = Math.max(1, Math.round(sweepSeconds / 60));
  const rule = new aws.cloudwatch.EventRule(
    childName(ctx, "sweep-schedule"),
    { scheduleExpression: minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`, description: "notification-hub presence sweep", tags: ctx.tags },
    { parent: ctx.parent },
  );
  const permission = new aws.lambda.Permission(
    childName(ctx, "sweep-invoke"),
    { action: "lambda:InvokeFunction", function: sweep.fn.name, principal: "events.amazonaws.com", sourceArn: rule.arn },
    { parent: ctx.parent },
  );
  const target = new aws.cloudwatch.EventTarget(childName(ctx, "sweep-target"), { rule: rule.name, arn: sweep.fn.arn }, { parent: ctx.parent, dependsOn: [permission] });
  const invokeConfig = new aws.lambda.FunctionEventInvokeConfig(
    childName(ctx, "sweep-invoke-config"),
    { functionName: sweep.fn.name, maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 },
    { parent: ctx.parent },
  );
  return { rule, target, permission, invokeConfig };
}
