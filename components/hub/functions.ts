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
import { deployedHandlers, handlerEntry, type HandlerName, type HubResource } from "../../handlers/manifest";
import { codePathOptionsFor } from "../lambdaPackages";
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
  tables: HubTables;
  queues: HubQueues;
  secret: HubSecret;
  managementEndpoint: pulumi.Output<string>;
  postToConnections: pulumi.Output<string>;
}

function resourceArns(w: FunctionWiring): Record<HubResource, pulumi.Input<string>> {
  return {
    connectionsTable: w.tables.connections.arn,
    roomIndex: pulumi.interpolate`${w.tables.connections.arn}/index/${ROOM_INDEX_NAME}`,
    authTable: w.tables.auth.arn,
    streamsTable: w.tables.streams.arn,
    budgetTable: w.tables.budget.arn,
    queue: w.queues.queue.arn,
    bulkQueue: w.queues.bulkQueue.arn,
    postToConnections: w.postToConnections,
    jwtSecretParameter: w.secret.parameter.arn,
    jwtSecretKey: w.secret.key.arn,
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
  };
}

/** Every handler the settings deploy (sendMessage only when clients may send). */
export function buildFunctions(ctx: HubContext, wiring: FunctionWiring): HubFunctions {
  const arns = resourceArns(wiring);
  const values = environmentValues(ctx, wiring);
  const functions: Partial<Record<HandlerName, HubFunction>> = {};
  for (const handler of deployedHandlers(ctx.settings.allowClientMessages)) {
    const entry = handlerEntry(handler);
    functions[handler] = buildFunction(ctx, handler, {
      layers: [wiring.sdkLayer.arn],
      timeout: entry.timeoutSeconds === "deliver" ? ctx.settings.deliverTimeoutSeconds : entry.timeoutSeconds,
      memorySize: entry.memoryMb,
      environment: Object.fromEntries(
        entry.environment.map((key) => {
          const value = values[key];
          if (value === undefined) throw new Error(`NotificationHub: no value for ${ENV[key]}, which the ${handler} handler reads`);
          return [ENV[key], value];
        }),
      ),
      statements: entry.grants.map((grant) => ({ Action: [...grant.actions], Resource: [arns[grant.resource]] })),
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
  options: { layers: pulumi.Input<string>[]; timeout: number; memorySize: number; environment: Record<string, pulumi.Input<string>>; statements: PolicyStatement[] },
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
      codePathOptions: codePathOptionsFor(handler),
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
