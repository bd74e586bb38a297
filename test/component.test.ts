/**
 * The NotificationHub component and the Pulumi program, under Pulumi's mocks, for both
 * stacks and a custom configuration; then the serialized Lambdas themselves, run in fresh
 * Node processes against dynalite, fauxqs and a local @connections API.
 */
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { sqsClient } from "../core/aws";
import { getAuthRow, getConnection } from "../core/tables";
import { normalizeArgs } from "../components/notificationHub";
import { dependencyClosure, LAYER_PACKAGES } from "../components/lambdaPackages";
import { KEEP_ALIVE_ROUTE_KEY } from "../core/keepAlive";
import { deployedHandlers, HANDLERS, routesOf, type HandlerName } from "../handlers/manifest";
import { createNotifier } from "../server";
import { invokeArtifact, lambdaLayout, LOAD_ONLY, removeArtifact, writeArtifact, type Artifact } from "./support/artifacts";
import { authorizerEvent, routeEvent, sqsEvent, sqsRecord } from "./support/events";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { startEventBridge, type BusEvent, type EventBridgeStandIn } from "../local/eventBridge";
import { customJwtSecret, sharedRun, type ProgramRun } from "./support/pulumiRun";
import { startDynamo, startSqs, type Dynamo, type Sqs } from "./support/services";
import { startParameterStore } from "./support/ssm";
import type { RecordedResource } from "./support/runProgram";

const ROOT = process.cwd();
const CUSTOM_SECRET = customJwtSecret();
const runs: Record<string, ProgramRun> = {};

beforeAll(async () => {
  const [development, production, custom] = await Promise.all([sharedRun("development"), sharedRun("production"), sharedRun("custom")]);
  Object.assign(runs, { development, production, custom });
}, 180_000);

const inputs = (r: RecordedResource) => r.inputs as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const one = (run: ProgramRun, type: string) => {
  const found = run.ofType(type);
  expect(found, type).toHaveLength(1);
  return inputs(found[0]);
};

describe.each(["development", "production"])("the %s stack", (stack) => {
  const run = () => runs[stack];
  const production = stack === "production";
  // Presence is on in development only (Pulumi.development.yaml): production shows it off adds nothing.
  const presence = !production;

  it("exports every contract output", () => {
    const o = run().outputs;
    expect(o.websocketUrl).toBe(`wss://hub-api-id.execute-api.eu-west-1.amazonaws.com/${stack}`);
    expect(o.apiEndpoint).toBe("wss://hub-api-id.execute-api.eu-west-1.amazonaws.com");
    expect(o.managementEndpoint).toBe(`https://hub-api-id.execute-api.eu-west-1.amazonaws.com/${stack}`);
    expect(o.stage).toBe(stack);
    for (const key of ["apiId", "queueUrl", "queueArn", "deadLetterQueueUrl", "connectionsTableName", "authTableName", "streamsTableName", "jwtSecret", "publisherPolicyArn"]) {
      expect(o[key], key).toBeTruthy();
    }
    // Lifecycle events' bus: with presence on only.
    expect(o.eventBusName).toBe(presence ? "hub-events" : undefined);
  });

  it(presence ? "puts lifecycle events on an EventBridge bus of its own; only the emitting functions may PutEvents, on its ARN alone" : "has no event bus with presence off", () => {
    const buses = run().ofType("aws:cloudwatch/eventBus:EventBus");
    const canPut = run()
      .ofType("aws:iam/rolePolicy:RolePolicy")
      .filter((policy) => (JSON.parse(inputs(policy).policy).Statement as { Action: string[] }[]).some((st) => st.Action.some((a) => a.startsWith("events:"))))
      .map((policy) => policy.name)
      .sort();
    if (!presence) {
      expect(buses).toEqual([]);
      expect(canPut).toEqual([]);
      for (const fn of run().ofType("aws:lambda/function:Function")) expect(inputs(fn).environment.variables.EVENT_BUS_NAME, fn.name).toBeUndefined();
      return;
    }
    expect(buses.map((b) => b.name)).toEqual(["hub-events"]);
    // The routes that decide a change, the sweep, and the post paths (a 410 ends a dead connection: connection.closed, timed_out).
    expect(canPut).toEqual(["hub-connect-policy", "hub-deliver-policy", "hub-disconnect-policy", "hub-resume-policy", "hub-sendMessage-policy", "hub-subscribe-policy", "hub-sweep-policy", "hub-unsubscribe-policy"]);
    for (const name of canPut) {
      const statements = (JSON.parse(inputs(run().named(name)).policy).Statement as { Action: string[]; Resource: string[] }[]).filter((st) => st.Action.some((a) => a.startsWith("events:")));
      expect(statements, name).toEqual([{ Effect: "Allow", Action: ["events:PutEvents"], Resource: ["arn:aws:events:eu-west-1:123456789012:event-bus/hub-events"] }]);
      expect(inputs(run().named(name.replace(/-policy$/, ""))).environment.variables.EVENT_BUS_NAME, name).toBe("hub-events");
    }
    // The read-only presence routes neither emit nor may.
    for (const name of ["hub-presence", "hub-occupancy"]) expect(inputs(run().named(name)).environment.variables.EVENT_BUS_NAME, name).toBeUndefined();
  });

  it("parents every resource to the NotificationHub component", () => {
    const urns = run().urns.filter((urn) => !urn.includes("pulumi:pulumi:Stack"));
    const component = urns.filter((urn) => urn.split("::")[2] === "notification-hub:index:NotificationHub");
    expect(component).toHaveLength(1);
    for (const urn of urns) if (urn !== component[0]) expect(urn.split("::")[2], urn).toMatch(/^notification-hub:index:NotificationHub\$/);
  });

  it("builds the tables (connections, auth, room streams, budget) from the shared schema, protected in production", () => {
    const tables = run().ofType("aws:dynamodb/table:Table").map(inputs);
    expect(tables).toHaveLength(presence ? 5 : 4);
    if (presence) expect(tables.find((t) => t.hashKey === "room_id")).toMatchObject({ rangeKey: "user_id", ttl: { attributeName: "expires_at", enabled: true } });
    // The @connections budget's windows: throwaway counters, never protected, expired by TTL.
    const budget = tables.find((t) => t.hashKey === "bucket")!;
    expect(budget).toMatchObject({ billingMode: "PAY_PER_REQUEST", ttl: { attributeName: "expires_at", enabled: true }, deletionProtectionEnabled: false });
    const connections = tables.find((t) => t.hashKey === "connection_id")!;
    const auth = tables.find((t) => t.hashKey === "user_id")!;
    const streams = tables.find((t) => t.hashKey === "stream_id")!;
    expect(connections.globalSecondaryIndexes).toEqual([{ name: "room_id-index", hashKey: "room_id", projectionType: "INCLUDE", nonKeyAttributes: ["user_id"] }]);
    expect(auth.rangeKey).toBe("room_id");
    expect(streams.rangeKey).toBe("seq");
    expect(streams.attributes).toEqual([
      { name: "stream_id", type: "S" },
      { name: "seq", type: "N" },
    ]);
    for (const table of [connections, auth, streams]) {
      expect(table.billingMode).toBe("PAY_PER_REQUEST");
      expect(table.ttl).toEqual({ attributeName: "expires_at", enabled: true });
      expect(table.serverSideEncryption).toEqual({ enabled: true });
      expect(table.pointInTimeRecovery).toEqual({ enabled: production });
      expect(table.deletionProtectionEnabled).toBe(production);
    }
  });

  it("gives both queues (notifications, bulk) one dead-letter queue, encryption and a visibility timeout of at least 6 × the deliver timeout", () => {
    const queues = run().ofType("aws:sqs/queue:Queue").map(inputs);
    const consumed = queues.filter((q) => q.redrivePolicy);
    const dlq = queues.find((q) => !q.redrivePolicy)!;
    const deliver = inputs(run().named("hub-deliver"));
    expect(consumed).toHaveLength(2);
    for (const queue of consumed) {
      expect(queue.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(6 * deliver.timeout);
      expect(JSON.parse(queue.redrivePolicy)).toEqual({ deadLetterTargetArn: "arn:aws:sqs:eu-west-1:123456789012:hub-dead-letters", maxReceiveCount: 5 });
    }
    for (const q of [...consumed, dlq]) expect(q.sqsManagedSseEnabled).toBe(true);
    // One mapping per queue, each with its own concurrency: chunks of big rooms never hold the invocations small messages need.
    const mappings = run().ofType("aws:lambda/eventSourceMapping:EventSourceMapping").map(inputs);
    expect(mappings).toHaveLength(2);
    const mapping = mappings.find((m) => m.eventSourceArn.endsWith(":hub-notifications"));
    expect(mapping).toMatchObject({
      eventSourceArn: "arn:aws:sqs:eu-west-1:123456789012:hub-notifications",
      functionName: "hub-deliver",
      batchSize: 10,
      functionResponseTypes: ["ReportBatchItemFailures"],
      scalingConfig: { maximumConcurrency: production ? 50 : 5 },
    });
    expect(mappings.find((m) => m.eventSourceArn.endsWith(":hub-bulk-notifications"))).toMatchObject({ functionName: "hub-deliver", functionResponseTypes: ["ReportBatchItemFailures"], scalingConfig: { maximumConcurrency: 10 } });
  });

  it("wires the WebSocket API: REQUEST authorizer on $connect, one route per routed handler, scoped invoke permissions", () => {
    expect(one(run(), "aws:apigatewayv2/api:Api")).toMatchObject({ protocolType: "WEBSOCKET", routeSelectionExpression: "$request.body.action" });
    const authorizer = one(run(), "aws:apigatewayv2/authorizer:Authorizer");
    expect(authorizer).toMatchObject({ authorizerType: "REQUEST", authorizerUri: expect.stringContaining("function:hub-authorizer/invocations") });
    // None: the token may come in Sec-WebSocket-Protocol or ?token=, and a source for either would refuse the other (401).
    expect(authorizer.identitySources).toBeUndefined();
    expect(authorizer.authorizerResultTtlInSeconds).toBeUndefined();
    const routes = run().ofType("aws:apigatewayv2/route:Route").map(inputs);
    expect(routes.map((r) => r.routeKey).sort()).toEqual(["$connect", "$default", "$disconnect", ...(presence ? ["occupancy"] : []), "ping", ...(presence ? ["presence"] : []), "resume", "sendMessage", "subscribe", "unsubscribe"]);
    for (const route of routes) {
      if (route.routeKey === "$connect") expect(route).toMatchObject({ authorizationType: "CUSTOM", authorizerId: "hub-token-authorizer-id" });
      else expect(route.authorizationType).toBeUndefined();
    }
    // Every integration but the keep-alive's invokes a Lambda (next test).
    for (const integration of run().ofType("aws:apigatewayv2/integration:Integration").map(inputs)) {
      const keepAlive = String(integration.integrationUri ?? "").endsWith(":dynamodb:action/UpdateItem");
      expect(integration.integrationType).toBe(keepAlive ? "AWS" : integration.integrationUri ? "AWS_PROXY" : "MOCK");
    }
    for (const permission of run().ofType("aws:lambda/permission:Permission").map(inputs)) {
      // Presence's sweep: EventBridge, from its own schedule rule only.
      if (permission.principal === "events.amazonaws.com") {
        expect(presence).toBe(true);
        expect(permission).toMatchObject({ function: "hub-sweep", action: "lambda:InvokeFunction", sourceArn: "arn:aws:events:eu-west-1:123456789012:rule/hub-sweep-schedule" });
        continue;
      }
      expect(permission.principal).toBe("apigateway.amazonaws.com");
      expect(permission.sourceArn).toMatch(new RegExp(`^arn:aws:execute-api:eu-west-1:123456789012:hub-api-id/(${stack}/|authorizers/)`));
    }
    // The sweep's runs never overlap: no Lambda retry of a failed run (the next schedule is the retry), no event older than a minute.
    const invokeConfigs = run().ofType("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").map(inputs);
    expect(invokeConfigs).toEqual(presence ? [expect.objectContaining({ functionName: "hub-sweep", maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 })] : []);
  });

  it("answers the ping route in API Gateway itself, no route response, no Lambda and no invoke permission: a MOCK integration with presence off, a DynamoDB UpdateItem of seen_at with presence on", () => {
    const ping = run().named("hub-keepAlive-route");
    expect(inputs(ping)).toMatchObject({ routeKey: KEEP_ALIVE_ROUTE_KEY, target: "integrations/hub-keepAlive-integration-id" });
    expect(inputs(ping).routeResponseSelectionExpression).toBeUndefined(); // one-way: nothing goes back
    expect(run().ofType("aws:apigatewayv2/routeResponse:RouteResponse")).toEqual([]);
    const integration = inputs(run().named("hub-keepAlive-integration"));
    if (!presence) {
      expect(integration).toMatchObject({ apiId: "hub-api-id", integrationType: "MOCK", templateSelectionExpression: "\\$default", requestTemplates: { $default: '{"statusCode":200}' } });
      expect(integration.integrationUri).toBeUndefined(); // nothing behind it
      expect(integration.credentialsArn).toBeUndefined();
      expect(run().ofType("aws:iam/role:Role").filter((r) => r.name.includes("keepAlive"))).toEqual([]);
    } else {
      // Liveness (core/liveness.ts): API Gateway itself writes seen_at on the connection's row.
      expect(integration).toMatchObject({
        apiId: "hub-api-id",
        integrationType: "AWS",
        integrationMethod: "POST",
        integrationUri: "arn:aws:apigateway:eu-west-1:dynamodb:action/UpdateItem",
        credentialsArn: "arn:aws:iam::123456789012:role/hub-keepAlive-role",
        passthroughBehavior: "NEVER", // the client's body never reaches DynamoDB
        templateSelectionExpression: "\\$default",
      });
      expect(JSON.parse(integration.requestTemplates.$default)).toEqual({
        TableName: "hub-connections",
        Key: { connection_id: { S: "$context.connectionId" } },
        UpdateExpression: "SET prev_seen_at = if_not_exists(seen_at, :z), seen_at = :t",
        ConditionExpression: "attribute_exists(connection_id)",
        ExpressionAttributeValues: { ":t": { N: "$context.requestTimeEpoch" }, ":z": { N: "0" } },
        ReturnValues: "NONE",
      });
      const role = inputs(run().named("hub-keepAlive-role"));
      expect(JSON.parse(role.assumeRolePolicy).Statement).toEqual([{ Effect: "Allow", Principal: { Service: "apigateway.amazonaws.com" }, Action: "sts:AssumeRole" }]);
      expect(JSON.parse(inputs(run().named("hub-keepAlive-policy")).policy).Statement).toEqual([
        {
          Effect: "Allow",
          Action: ["dynamodb:UpdateItem"],
          Resource: ["arn:aws:dynamodb:eu-west-1:123456789012:table/hub-connections"],
          Condition: { "ForAllValues:StringEquals": { "dynamodb:Attributes": ["connection_id", "seen_at", "prev_seen_at"] }, StringEqualsIfExists: { "dynamodb:ReturnValues": ["NONE"] } },
        },
      ]);
    }
    // Exactly one Lambda integration and one permission per handler route: none for ping.
    const handlerRoutes = routesOf(deployedHandlers(true, presence)).map((r) => r.routeKey);
    const lambdaIntegrations = run().ofType("aws:apigatewayv2/integration:Integration").filter((i) => inputs(i).integrationType === "AWS_PROXY");
    expect(lambdaIntegrations).toHaveLength(handlerRoutes.length);
    const permissions = run().ofType("aws:lambda/permission:Permission").map(inputs);
    expect(permissions.filter((p) => String(p.sourceArn).endsWith(`/${KEEP_ALIVE_ROUTE_KEY}`))).toEqual([]);
    expect(permissions).toHaveLength(handlerRoutes.length + 1 + (presence ? 1 : 0)); // + the authorizer's (+ the sweep's schedule)
  });

  it(production ? "sets a stage with auto-deploy, both throttling limits and access logs without the query string" : "sets a stage with auto-deploy and both throttling limits, API Gateway logs off by default", () => {
    const stageArgs = one(run(), "aws:apigatewayv2/stage:Stage");
    expect(stageArgs.name).toBe(stack);
    expect(stageArgs.autoDeploy).toBe(true);
    expect(stageArgs.defaultRouteSettings.throttlingBurstLimit).toBe(production ? 2000 : 500);
    expect(stageArgs.defaultRouteSettings.throttlingRateLimit).toBe(production ? 5000 : 1000);
    expect(stageArgs.defaultRouteSettings.dataTraceEnabled).toBe(false);
    if (!production) {
      // Any logging level or access log needs the account-wide role, which development leaves alone.
      expect(stageArgs.defaultRouteSettings.loggingLevel).toBe("OFF");
      expect(stageArgs.accessLogSettings).toBeUndefined();
      expect(run().ofType("aws:apigateway/account:Account")).toEqual([]);
      return;
    }
    expect(stageArgs.defaultRouteSettings.loggingLevel).toBe("ERROR");
    const format = stageArgs.accessLogSettings.format as string;
    expect(JSON.parse(format)).toMatchObject({ requestId: "$context.requestId", status: "$context.status" });
    expect(format).not.toMatch(/querystring|header|token|requestOverride|\$input/i); // where the token travels
  });

  it("gives every function its own role, JSON logs in its own log group, and the configured runtime", () => {
    const functions = run().ofType("aws:lambda/function:Function").map(inputs);
    expect(functions).toHaveLength(presence ? 12 : 9); // resume (room streams), subscribe and unsubscribe (many rooms) among them; presence, occupancy and sweep with presence on
    const retention = production ? 90 : 7;
    for (const fn of functions) {
      expect(fn.runtime).toMatch(/^nodejs(2[2-9]|[3-9]\d)\.x$/);
      expect(fn.loggingConfig).toMatchObject({ logFormat: "JSON" });
      expect(fn.role).toMatch(/^arn:aws:iam::123456789012:role\/hub-\w+-role$/);
      const group = inputs(run().named(fn.loggingConfig.logGroup));
      expect(group.retentionInDays).toBe(retention);
    }
    expect(new Set(functions.map((f) => f.role)).size).toBe(functions.length);
    expect(new Set(functions.map((f) => f.loggingConfig.logGroup)).size).toBe(functions.length);
    // Only the region's API Gateway CloudWatch role (production, "ifUnset") gets a managed policy.
    expect(run().ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((r) => inputs(r).policyArn)).toEqual(
      production ? ["arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"] : [],
    );
  });

  it("keeps the JWT secret in an SSM SecureString under the hub's own KMS key, read by the authorizer at run time", () => {
    const parameter = one(run(), "aws:ssm/parameter:Parameter");
    expect(parameter.type).toBe("SecureString");
    expect(parameter.keyId).toBe("arn:aws:kms:eu-west-1:123456789012:key/hub-jwt-secret-key-0000");
    const keyPolicy = JSON.parse(one(run(), "aws:kms/key:Key").policy);
    const use = keyPolicy.Statement.find((st: { Sid: string }) => st.Sid === "UseThroughSsmOnly");
    expect(use.Condition.StringEquals["kms:ViaService"]).toBe("ssm.eu-west-1.amazonaws.com");
    expect(inputs(run().named("hub-authorizer")).environment.variables.JWT_SECRET_VERSION).toBe("1");
    expect(inputs(run().named("hub-authorizer")).environment.variables.JWT_SECRET_PARAMETER).toBe("hub-jwt-secret");
    expect(inputs(run().named("hub-authorizer")).environment.variables.JWT_SECRET).toBeUndefined();
  });

  it(production ? "turns alarms and a dashboard on" : "leaves alarms off", () => {
    const alarms = run().ofType("aws:cloudwatch/metricAlarm:MetricAlarm").map(inputs);
    if (!production) {
      expect(alarms).toEqual([]);
      return;
    }
    expect(run().ofType("aws:sns/topic:Topic")).toHaveLength(1);
    expect(alarms.map((a) => `${a.namespace}/${a.metricName}`)).toEqual(
      expect.arrayContaining([
        "AWS/SQS/ApproximateNumberOfMessagesVisible",
        "AWS/SQS/ApproximateAgeOfOldestMessage",
        "AWS/ApiGateway/IntegrationError",
        "AWS/ApiGateway/ExecutionError",
        "AWS/Lambda/Errors",
        "AWS/Lambda/Throttles",
      ]),
    );
    const age = alarms.find((a) => a.metricName === "ApproximateAgeOfOldestMessage")!;
    expect(age.dimensions).toEqual({ QueueName: "hub-notifications" });
    for (const a of alarms.filter((x) => x.namespace === "AWS/ApiGateway")) expect(a.dimensions).toEqual({ ApiId: "hub-api-id", Stage: stack });
    expect(alarms.filter((a) => a.metricName === "Errors")).toHaveLength(9);
    for (const alarm of alarms) expect(alarm.alarmActions).toEqual(["arn:aws:sns:eu-west-1:123456789012:hub-alarms"]);
    const dashboard = one(run(), "aws:cloudwatch/dashboard:Dashboard");
    expect(JSON.parse(dashboard.dashboardBody).widgets).toHaveLength(5);
    expect(dashboard.dashboardName).toBe(`notification-hub-${stack}-hub-eu-west-1`);
  });
});

describe("IAM review", () => {
  interface Statement {
    Effect: string;
    Action: string[];
    Resource: string[];
  }
  const policiesOf = (run: ProgramRun) => [
    ...run.ofType("aws:iam/rolePolicy:RolePolicy").map((r) => ({ name: r.name, doc: JSON.parse(inputs(r).policy) as { Statement: Statement[] } })),
    ...run.ofType("aws:iam/policy:Policy").map((r) => ({ name: r.name, doc: JSON.parse(inputs(r).policy) as { Statement: Statement[] } })),
  ];
  /** ARN prefixes of this stack's own resources, as the mocks named them. */
  const ownArns = (run: ProgramRun) => {
    const names = run.resources.map((r) => r.name);
    return [
      ...names.map((n) => `arn:aws:dynamodb:eu-west-1:123456789012:table/${n}`),
      ...names.map((n) => `arn:aws:sqs:eu-west-1:123456789012:${n}`),
      ...names.map((n) => `arn:aws:logs:eu-west-1:123456789012:log-group:${n}`),
      ...names.map((n) => `arn:aws:ssm:eu-west-1:123456789012:parameter/${n}`),
      ...names.map((n) => `arn:aws:kms:eu-west-1:123456789012:key/${n}-0000`),
      ...names.map((n) => `arn:aws:events:eu-west-1:123456789012:event-bus/${n}`),
      "arn:aws:execute-api:eu-west-1:123456789012:hub-api-id/",
    ];
  };

  it.each(["development", "production", "custom"])("%s: no wildcard action, no resource beyond the stack's own", (stack) => {
    const run = runs[stack];
    const policies = policiesOf(run);
    expect(policies.length).toBeGreaterThanOrEqual(6);
    const own = ownArns(run);
    let checked = 0;
    for (const { name, doc } of policies) {
      for (const statement of doc.Statement) {
        expect(statement.Effect).toBe("Allow");
        for (const action of statement.Action) {
          expect(action, `${name}: ${action}`).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/); // no "*", no "dynamodb:*", no "Get*"
          checked++;
        }
        for (const resource of statement.Resource) {
          expect(resource, `${name}: ${resource}`).not.toBe("*");
          const match = own.find(
            (prefix) => resource === prefix || (resource.startsWith(prefix) && (prefix.endsWith("/") || [":", "/"].includes(resource[prefix.length]))),
          );
          expect(match, `${name}: ${resource} is not one of this stack's resources`).toBeDefined();
          // The only wildcards allowed are inside one of our resources (log streams, @connections ids, execution logs of our API).
          const rest = resource.slice(match!.length);
          expect(rest, `${name}: ${resource}`).toMatch(/^(|:\*|\/index\/room_id-index|[a-z]+\/(POST|GET|DELETE)\/@connections\/\*|\*)$/);
        }
      }
    }
    console.log(`SUMMARY IAM review (${stack}): ${policies.length} policies, ${checked} actions checked, 0 wildcards`);
  });

  it("limits each function to the actions its handler calls", () => {
    const actionsOf = (name: string) =>
      (JSON.parse(inputs(runs.development.named(`${name}-policy`)).policy).Statement as Statement[])
        .flatMap((s) => s.Action)
        .filter((a) => !a.startsWith("logs:"))
        .sort();
    expect(actionsOf("hub-authorizer")).toEqual(["dynamodb:GetItem", "kms:Decrypt", "ssm:GetParameter"]);
    // A connection is its row plus one membership per room: written and removed in batches.
    // Presence is on in development: the routes that change a room also record its presence and post member events.
    // Every function that posts also takes budget tokens: one UpdateItem, on the budget table only (below).
    // And a big room's diff buffered within its interval is flushed through a delayed message to deliver: SendMessage on the notification queue.
    const withPresence = (base: string[]) =>
      [...base, "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:DeleteItem", "execute-api:ManageConnections", "dynamodb:UpdateItem", "events:PutEvents", "sqs:SendMessage"].sort();
    expect(actionsOf("hub-connect")).toEqual(withPresence(["dynamodb:BatchWriteItem", "dynamodb:GetItem"]));
    // A grant both lists (the row's DeleteItem, the poster's ManageConnections and budget UpdateItem) is granted once.
    expect(actionsOf("hub-disconnect")).toEqual(withPresence([]));
    expect(actionsOf("hub-subscribe")).toEqual(withPresence(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]));
    expect(actionsOf("hub-unsubscribe")).toEqual(withPresence(["dynamodb:DeleteItem", "dynamodb:UpdateItem"]));
    expect(actionsOf("hub-presence")).toEqual(["dynamodb:GetItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "execute-api:ManageConnections"]);
    expect(actionsOf("hub-occupancy")).toEqual(["dynamodb:GetItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "execute-api:ManageConnections"]);
    // Liveness (core/liveness.ts): the Scan for suspects, confirmed_at of one found alive, GET and DELETE @connections.
    expect(actionsOf("hub-sweep")).toEqual(withPresence(["dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem", "execute-api:ManageConnections", "execute-api:ManageConnections"]));
    expect(actionsOf("hub-default")).toEqual(["dynamodb:UpdateItem", "execute-api:ManageConnections"]);
    // Two queues (notifications, bulk): the mapping's four actions and SendMessage on each.
    // With presence on, a 410 leaves the connection's rooms (the presence table's four actions) and puts its connection.closed.
    const presenceTable = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "events:PutEvents"];
    expect(actionsOf("hub-deliver")).toEqual([
      ...presenceTable,
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
      "dynamodb:UpdateItem",
      "execute-api:ManageConnections",
      "sqs:ChangeMessageVisibility",
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
      "sqs:SendMessage",
    ].sort());
    const budgetGrants = (name: string) =>
      (JSON.parse(inputs(runs.development.named(`${name}-policy`)).policy).Statement as Statement[]).filter((s) => s.Resource.some((r: string) => r.endsWith(":table/hub-budget")));
    // Every poster takes budget tokens: with presence on (development) connect, disconnect and presence's own handlers post member events too.
    for (const name of ["hub-default", "hub-deliver", "hub-sendMessage", "hub-resume", "hub-subscribe", "hub-unsubscribe", "hub-connect", "hub-disconnect", "hub-presence", "hub-occupancy", "hub-sweep"]) {
      expect(budgetGrants(name), name).toEqual([{ Effect: "Allow", Action: ["dynamodb:UpdateItem"], Resource: ["arn:aws:dynamodb:eu-west-1:123456789012:table/hub-budget"] }]);
    }
    expect(budgetGrants("hub-authorizer")).toEqual([]);
    const manage = (JSON.parse(inputs(runs.development.named("hub-deliver-policy")).policy).Statement as Statement[]).find((s) =>
      s.Action.includes("execute-api:ManageConnections"),
    )!;
    expect(manage.Resource).toEqual(["arn:aws:execute-api:eu-west-1:123456789012:hub-api-id/development/POST/@connections/*"]);
    // Room streams: resume reads the stream, charges the replay budget on the connection row (UpdateItem there) and takes budget tokens (UpdateItem on the budget table), and posts to the asking connection.
    // With presence on, its 410 leaves the connection's rooms too (presence table, the room index for the member events, the connections table's DeleteItem, a big room's diff flush queued).
    expect(actionsOf("hub-resume")).toEqual(
      ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:UpdateItem", "execute-api:ManageConnections", ...presenceTable, "dynamodb:Query", "dynamodb:DeleteItem", "sqs:SendMessage"].sort(),
    );
    const resumeUpdates = (JSON.parse(inputs(runs.development.named("hub-resume-policy")).policy).Statement as Statement[]).filter((s) => s.Action.includes("dynamodb:UpdateItem"));
    expect(resumeUpdates.flatMap((s) => s.Resource).sort()).toEqual([
      "arn:aws:dynamodb:eu-west-1:123456789012:table/hub-budget",
      "arn:aws:dynamodb:eu-west-1:123456789012:table/hub-connections",
      "arn:aws:dynamodb:eu-west-1:123456789012:table/hub-presence-members",
    ]);
    const streamGrants = (name: string) =>
      (JSON.parse(inputs(runs.development.named(`${name}-policy`)).policy).Statement as Statement[]).filter((s) => s.Resource.some((r: string) => r.endsWith(":table/hub-streams")));
    expect(streamGrants("hub-resume").flatMap((s) => s.Action)).toEqual(["dynamodb:Query"]);
    expect(streamGrants("hub-subscribe").flatMap((s) => s.Action)).toEqual(["dynamodb:Query"]); // last_seq: the head
    expect(streamGrants("hub-unsubscribe")).toEqual([]);
    expect(streamGrants("hub-deliver").flatMap((s) => s.Action).sort()).toEqual(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"]);
    for (const name of ["hub-authorizer", "hub-connect", "hub-disconnect", "hub-default"]) expect(streamGrants(name), name).toEqual([]);
  });

  it("gives app backends a publisher policy: publish, issue and revoke, read presence, nothing else", () => {
    const policy = JSON.parse(inputs(runs.development.named("hub-publisher")).policy).Statement as Statement[];
    expect(policy.flatMap((s) => s.Action).sort()).toEqual([
      "dynamodb:DeleteItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:GetItem", // the connections table: revocation's second look reads a row's generation
      "dynamodb:GetItem", // presence on: notifier.presence/occupancy read the room's counter
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:Query", // the auth table: revokeToken({ userId }) lists the user's token rows
      "dynamodb:Query", // notifier.history reads room streams
      "dynamodb:Query", // presence on: notifier.presence reads a room's members
      "dynamodb:UpdateItem", // presence on: revokeToken marks the row revoked_at (that attribute only)
      "execute-api:ManageConnections",
      "kms:Decrypt",
      "sqs:SendMessage",
      "ssm:GetParameter",
    ]);
  });
});

describe("the custom configuration", () => {
  it("passes maxRoomsPerConnection from the stack config to the subscribe function only", () => {
    const variables = (run: ProgramRun, name: string) => (inputs(run.named(name)).environment.variables as Record<string, string>);
    expect(variables(runs.custom, "hub-subscribe").MAX_ROOMS_PER_CONNECTION).toBe("20");
    expect(variables(runs.development, "hub-subscribe").MAX_ROOMS_PER_CONNECTION).toBe("100");
    for (const name of ["hub-connect", "hub-deliver", "hub-unsubscribe"]) expect(variables(runs.development, name).MAX_ROOMS_PER_CONNECTION, name).toBeUndefined();
  });

  it("drops the sendMessage route and function when client messages are off", () => {
    const routes = runs.custom.ofType("aws:apigatewayv2/route:Route").map((r) => inputs(r).routeKey);
    expect(routes.sort()).toEqual(["$connect", "$default", "$disconnect", "ping", "resume", "subscribe", "unsubscribe"]);
    expect(runs.custom.ofType("aws:lambda/function:Function").map((f) => f.name)).not.toContain("hub-sendMessage");
    expect(inputs(runs.custom.named("hub-default")).environment.variables.ALLOW_CLIENT_MESSAGES).toBe("false");
  });

  it("maps the custom domain under the stage with a Route 53 alias", () => {
    expect(runs.custom.outputs.websocketUrl).toBe("wss://ws.example.com/custom");
    expect(one(runs.custom, "aws:apigatewayv2/domainName:DomainName")).toMatchObject({
      domainName: "ws.example.com",
      domainNameConfiguration: { certificateArn: "arn:aws:acm:eu-west-1:123456789012:certificate/abc", endpointType: "REGIONAL", securityPolicy: "TLS_1_2" },
    });
    expect(one(runs.custom, "aws:apigatewayv2/apiMapping:ApiMapping")).toMatchObject({ apiMappingKey: "custom" });
    expect(one(runs.custom, "aws:route53/record:Record")).toMatchObject({
      zoneId: "Z123",
      type: "A",
      aliases: [{ name: "d-abc.execute-api.eu-west-1.amazonaws.com", zoneId: "ZLY8HYME6SFDD", evaluateTargetHealth: false }],
    });
  });

  it("subscribes the alarm e-mail; with apiGatewayLogging \"existing\" turns logs on and never touches the account-wide role", () => {
    expect(one(runs.custom, "aws:sns/topicSubscription:TopicSubscription")).toMatchObject({ protocol: "email", endpoint: "oncall@example.com" });
    expect(runs.custom.ofType("aws:apigateway/account:Account")).toEqual([]);
    expect(one(runs.custom, "aws:apigatewayv2/stage:Stage").defaultRouteSettings.loggingLevel).toBe("ERROR");
  });

  it("records no secret in the component's own inputs (the stack state keeps them unencrypted)", () => {
    const component = runs.custom.ofType("notification-hub:index:NotificationHub");
    expect(component).toHaveLength(1);
    expect(JSON.stringify(component[0].inputs)).not.toContain(CUSTOM_SECRET);
    expect(component[0].inputs).toEqual({});
  });

  it("uses the given JWT secret and exports it", () => {
    expect(runs.custom.outputs.jwtSecret).toBe(CUSTOM_SECRET);
    // Pulumi keeps it a secret all the way: the mocks see the wrapped secret value.
    expect(one(runs.custom, "aws:ssm/parameter:Parameter").value).toMatchObject({ value: CUSTOM_SECRET });
  });
});

describe("argument validation", () => {
  it("refuses settings AWS would accept but that lose or stall messages", () => {
    expect(() => normalizeArgs({ queue: { visibilityTimeoutSeconds: 60, deliverTimeoutSeconds: 30 } })).toThrow(/at least 6 × the deliver timeout \(180\)/);
    expect(() => normalizeArgs({ queue: { batchSize: 11 } })).toThrow(/queue.batchSize must be a whole number from 1 to 10/);
    expect(() => normalizeArgs({ queue: { maxReceiveCount: 2 } })).toThrow(/maxReceiveCount/);
    expect(() => normalizeArgs({ queue: { maximumConcurrency: 1 } })).toThrow(/maximumConcurrency/);
    expect(normalizeArgs({ queue: { deliverTimeoutSeconds: 20 } }).visibilityTimeoutSeconds).toBe(120);
    for (const bad of [0, 1001, 2.5]) expect(() => normalizeArgs({ maxRoomsPerConnection: bad })).toThrow(/maxRoomsPerConnection must be a whole number from 1 to 1000/);
    expect(normalizeArgs({}).maxRoomsPerConnection).toBe(100);
  });
});

describe("serialized Lambdas", () => {
  let dynamo: Dynamo;
  let sqs: Sqs;
  let management: StandaloneConnectionsEmulator;
  let parameterStore: Awaited<ReturnType<typeof startParameterStore>>;
  let bus: EventBridgeStandIn;
  const onBus: BusEvent[] = [];
  const artifacts: Record<string, Artifact> = {};
  const GENERATED_SECRET = "generated-secret-" + "x".repeat(47);

  beforeAll(async () => {
    [dynamo, sqs, management, parameterStore] = await Promise.all([
      startDynamo({ connectionsTable: "hub-connections", authTable: "hub-auth", streamsTable: "hub-streams", presenceTable: "hub-presence-members", budgetTable: "hub-budget" }),
      startSqs(),
      startConnectionsEmulator({ stage: "development" }),
      startParameterStore({ "hub-jwt-secret": GENERATED_SECRET }),
    ]);
    // Lifecycle events (presence on in development): the functions' own client, signed as on Lambda, checked by the stand-in.
    bus = await startEventBridge({ buses: ["hub-events"], region: "eu-west-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
    bus.onEvent((event) => onBus.push(event));
    for (const fn of runs.development.ofType("aws:lambda/function:Function")) artifacts[fn.name.replace(/^hub-/, "")] = writeArtifact(fn, runs.development);
  });
  afterAll(async () => {
    await Promise.all([dynamo?.stop(), sqs?.stop(), management?.stop(), parameterStore?.stop(), bus?.stop()]);
    for (const artifact of Object.values(artifacts)) removeArtifact(artifact);
  });

  /** The function's own environment from the stack, pointed at the local stand-ins. */
  function envFor(handler: string, queueUrl?: string): Record<string, string> {
    const variables = { ...(inputs(runs.development.named(`hub-${handler}`)).environment.variables as Record<string, string>) };
    if (variables.MANAGEMENT_ENDPOINT) variables.MANAGEMENT_ENDPOINT = management.endpoint;
    if (variables.QUEUE_URL) variables.QUEUE_URL = queueUrl ?? sqs.createQueue("artifact-" + handler).queueUrl;
    if (variables.BULK_QUEUE_URL) variables.BULK_QUEUE_URL = sqs.createQueue("artifact-bulk-" + handler).queueUrl;
    if (variables.EVENT_BUS_NAME) variables.EVENTS_ENDPOINT = bus.endpoint;
    return { ...variables, DYNAMODB_ENDPOINT: dynamo.endpoint, SQS_ENDPOINT: sqs.endpoint, SSM_ENDPOINT: parameterStore.endpoint, AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local" };
  }

  it("holds no secret value in any serialized handler", () => {
    for (const run of [runs.development, runs.production, runs.custom]) {
      for (const fn of run.ofType("aws:lambda/function:Function")) {
        expect(fn.code!.indexJs.length).toBeGreaterThan(1000);
        expect(fn.code!.indexJs).not.toContain(GENERATED_SECRET);
        expect(fn.code!.indexJs).not.toContain(CUSTOM_SECRET);
      }
    }
  });

  it("ships each function only the packages its handler requires", () => {
    const lines: string[] = [];
    for (const [handler, artifact] of Object.entries(artifacts)) {
      const expected = [...dependencyClosure([...HANDLERS[handler as HandlerName].packages], ROOT)].sort();
      expect(artifact.packages, handler).toEqual(expected);
      expect(artifact.zipBytes, handler).toBeLessThan(1024 * 1024);
      lines.push(`${handler.padEnd(12)} ${String(artifact.files.length).padStart(4)} files ${(artifact.bytes / 1024).toFixed(0).padStart(6)} KiB, zip ~${(artifact.zipBytes / 1024).toFixed(0).padStart(4)} KiB  packages: ${artifact.packages.join(", ") || "(none; AWS SDK from the hub's layer)"}`);
    }
    const largest = Object.entries(artifacts).sort((a, b) => b[1].zipBytes - a[1].zipBytes)[0];
    console.log(`SUMMARY Lambda archives: ${lines.length} functions, each with only its own packages; largest ${largest[0]} ~${(largest[1].zipBytes / 1024).toFixed(0)} KiB zipped\n  ` + lines.join("\n  "));
  });

  it("every function loads as the nodejs22.x runtime loads it: Node 22, its zip in /var/task, the SDK from the hub's layer, nothing from the runtime's own SDK", async () => {
    const lines: string[] = [];
    for (const [handler, artifact] of Object.entries(artifacts)) {
      expect(artifact.layers, handler).toHaveLength(1);
      const loaded = await invokeArtifact(artifact, LOAD_ONLY, envFor(handler));
      expect(loaded, `${handler}: ${loaded.error}\n${loaded.logs}`).toMatchObject({ ok: true });
      lines.push(`${handler} ${loaded.requireMs.toFixed(0)} ms`);
    }
    console.log(`SUMMARY Lambda init in the runtime's layout (Node 22, SDK layer): ${lines.join(", ")}`);
  });

  it("the runtime stand-in is as strict as AWS: without the layer, deliver cannot reach @smithy/signature-v4 behind the runtime's own SDK", async () => {
    // The runtime's working SDK in its bundled layout (@aws-sdk/* on top, @smithy/* nested):
    // what the functions met before the SDK layer, and what a missing layer would meet again.
    const withoutLayer = { ...artifacts.deliver, layers: [] };
    const loaded = await invokeArtifact(withoutLayer, LOAD_ONLY, envFor("deliver"), lambdaLayout(withoutLayer, "bundled"));
    expect(loaded.ok).toBe(false);
    expect(loaded.error).toMatch(/Cannot find module '@smithy\/signature-v4[/']/);
    // The poisoned runtime (every test's default) refuses even what the bundled SDK has.
    const poisoned = await invokeArtifact({ ...artifacts.connect, layers: [] }, LOAD_ONLY, envFor("connect"));
    expect(poisoned.error).toMatch(/from the Lambda runtime's bundled SDK|Cannot find module '@aws-sdk/);
  });

  it("puts the tested AWS SDK in one layer and no SDK package in any function's zip", () => {
    const layer = artifacts.deliver.layers[0];
    for (const artifact of Object.values(artifacts)) expect(artifact.layers[0]).toBe(layer);
    const versionOf = (name: string, dir: string) => (JSON.parse(fs.readFileSync(path.join(dir, name, "package.json"), "utf8")) as { version: string }).version;
    for (const name of LAYER_PACKAGES) expect(versionOf(name, path.join(layer.dir, "nodejs/node_modules")), name).toBe(versionOf(name, path.join(ROOT, "node_modules")));
    expect(layer.packages).toEqual(expect.arrayContaining(["@smithy/signature-v4", "@smithy/core", "@aws-sdk/credential-provider-node"]));
    // What require() never reads stays out: ES-module copies and type declarations.
    expect(layer.files.filter((f) => /(^|\/)(dist-es|dist-types)\/|\.d\.ts$/.test(f))).toEqual([]);
    expect(layer.zipBytes).toBeLessThan(2 * 1024 * 1024);
    console.log(`SUMMARY SDK layer: ${layer.packages.length} packages, ${layer.files.length} files, ${(layer.bytes / 1024).toFixed(0)} KiB, zip ~${(layer.zipBytes / 1024).toFixed(0)} KiB, shared by ${Object.keys(artifacts).length} functions`);
  });

  it("authorizer: reads its secret from SSM at run time and allows an issued token", async () => {
    const notifier = createNotifier({
      queueUrl: "http://127.0.0.1:9/q",
      authTableName: "hub-auth",
      connectionsTableName: "hub-connections",
      managementEndpoint: management.endpoint,
      jwtSecret: GENERATED_SECRET,
      passcode: "p",
      endpoints: { dynamodb: dynamo.endpoint },
      bcryptCost: 4,
    });
    const token = await notifier.issueToken({ userId: "ann", roomId: "room-1" });
    const allowed = await invokeArtifact(artifacts.authorizer, authorizerEvent({ token }), envFor("authorizer"));
    expect(allowed.value).toMatchObject({ principalId: "ann", context: { user_id: "ann", room_id: "room-1" }, policyDocument: { Statement: [{ Effect: "Allow" }] } });
    expect(parameterStore.requests).toContain("AmazonSSM.GetParameter hub-jwt-secret decrypt=true");
    const refused = await invokeArtifact(artifacts.authorizer, authorizerEvent({ token: token + "x" }), envFor("authorizer"));
    expect(refused).toMatchObject({ ok: true, value: { policyDocument: { Statement: [{ Effect: "Deny" }] } } });
    expect(refused.logs).not.toContain(token);
  });

  it("connect, sendMessage, default, deliver and disconnect run against the local stand-ins", async () => {
    const who = { user_id: "ann", room_id: "room-1" };
    // $connect keeps the connection only while the auth row still holds the authorizer's generation.
    const generation = (await getAuthRow(dynamo.client, "hub-auth", "ann", "room-1"))!.generation;
    const connected = await invokeArtifact(artifacts.connect, routeEvent("$connect", "art-1", { authorizer: { ...who, generation } }), envFor("connect"));
    expect(connected.value).toMatchObject({ statusCode: 200 });
    expect(await getConnection(dynamo.client, "hub-connections", "art-1")).toMatchObject({ rooms: ["room-1"], userId: "ann" });

    const sent = await invokeArtifact(
      artifacts.sendMessage,
      routeEvent("sendMessage", "art-1", { body: JSON.stringify({ action: "sendMessage", data: { type: "chat", data: "hi" } }), authorizer: who }),
      envFor("sendMessage"),
    );
    expect(sent.value).toMatchObject({ statusCode: 200 });
    // With presence on (development), ann's $connect told the room (herself) she joined: a hub event, no seq.
    const received = () => management.received.get("art-1")!.map((text) => JSON.parse(text)).filter((frame) => frame.origin !== "hub");
    expect(management.received.get("art-1")!.map((text) => JSON.parse(text)).filter((frame) => frame.origin === "hub")).toMatchObject([{ room_id: "room-1", data: { type: "hub.member.joined", data: { room_id: "room-1", user_id: "ann" } } }]);
    expect(received()[0]).toMatchObject({ user_id: "ann", data: { type: "chat", data: "hi" } });

    await invokeArtifact(artifacts.default, routeEvent("$default", "art-1", { body: "{}" }), envFor("default"));
    expect(received()[1].data.type).toBe("hub.error");

    const queue = sqs.createQueue("artifact-deliver-" + Date.now());
    const delivered = await invokeArtifact(
      artifacts.deliver,
      sqsEvent([sqsRecord(JSON.stringify({ room_id: "room-1", user_id: "backend", data: { type: "done" } }), "art-msg"), sqsRecord("garbage", "art-bad")]),
      envFor("deliver", queue.queueUrl),
    );
    expect(delivered.value).toEqual({ batchItemFailures: [{ itemIdentifier: "art-bad" }] });
    // Stored in the room's stream before it was sent: after the member's message (seq 1).
    expect(received()[2]).toEqual({ id: "art-msg", room_id: "room-1", user_id: "backend", origin: "app", seq: 2, data: { type: "done" } });
    const leftovers = await sqsClient({ endpoint: sqs.endpoint }).send(new ReceiveMessageCommand({ QueueUrl: queue.queueUrl }));
    expect(leftovers.Messages ?? []).toEqual([]);

    const disconnected = await invokeArtifact(artifacts.disconnect, routeEvent("$disconnect", "art-1"), envFor("disconnect"));
    expect(disconnected.value).toMatchObject({ statusCode: 200 });
    expect(await getConnection(dynamo.client, "hub-connections", "art-1")).toBeUndefined();
    // On the bus, each once: the connect's opened, joined and occupied; the disconnect's closed (ann's leave waits for the grace).
    const mine = onBus.filter((e) => e.detail.connection_id === "art-1" || e.detail.room_id === "room-1");
    expect(mine.map((e) => e["detail-type"]).sort()).toEqual(["connection.closed", "connection.opened", "member.joined", "room.occupied"]);
    expect(mine.find((e) => e["detail-type"] === "connection.closed")!.detail).toMatchObject({ connection_id: "art-1", user_id: "ann", reason: "closed" });
  });
});
