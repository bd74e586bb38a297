/**
 * The WebSocket API: the API, the token authorizer on $connect, one route per route handler
 * of the manifest, the keep-alive route API Gateway answers itself, and the stage (throttling, logs).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { KEEP_ALIVE_ROUTE_KEY, PING_UPDATE_EXPRESSION } from "../../core/keepAlive";
import { routesOf, type HandlerName } from "../../handlers/manifest";
import { buildApiGatewayAccountIfUnset } from "./apiGatewayAccount";
import { childName, create, type HubContext } from "./context";
import { buildRole, type HubFunction, type HubFunctions } from "./functions";

/** Access log line: who, when, which route, what status. Never the query string nor headers: the token lives there. */
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

/** Children that had other names before the split: they keep them as aliases. */
const FORMER_KEYS: Partial<Record<string, string>> = {
  "token-authorizer": "authorizer", // shared its name with the authorizer function
  "sendMessage-integration": "send-message-integration",
  "sendMessage-invoke": "send-message-invoke",
  "sendMessage-route": "send-message-route",
};

function former(key: string): { formerKey?: string } {
  return { formerKey: FORMER_KEYS[key] };
}

export interface HubRoute {
  integration: aws.apigatewayv2.Integration;
  permission: aws.lambda.Permission;
  route: aws.apigatewayv2.Route;
}

/** A route with no Lambda behind it: API Gateway answers it. */
export interface HubGatewayRoute {
  integration: aws.apigatewayv2.Integration;
  route: aws.apigatewayv2.Route;
  /** With presence on: the role API Gateway assumes to write `seen_at` (dynamodb:UpdateItem on the connections table only). */
  role?: aws.iam.Role;
  policy?: aws.iam.RolePolicy;
}

export interface HubWebSocketApi {
  api: aws.apigatewayv2.Api;
  authorizer: aws.apigatewayv2.Authorizer;
  routes: Partial<Record<HandlerName, HubRoute>>;
  /** `{"action":"ping"}` (core/keepAlive.ts). */
  keepAlive: HubGatewayRoute;
  stage: aws.apigatewayv2.Stage;
  accessLogs?: aws.cloudwatch.LogGroup;
  executionLogs?: aws.cloudwatch.LogGroup;
}

export function buildApi(ctx: HubContext): aws.apigatewayv2.Api {
  return create(ctx, aws.apigatewayv2.Api, ctx.transform.api, "api", { protocolType: "WEBSOCKET", routeSelectionExpression: "$request.body.action", tags: ctx.tags });
}

/** The authorizer, routes and stage of `api`. `livenessTable`: presence on, the connections table the keep-alive writes `seen_at` to. */
export function buildWebSocketApi(ctx: HubContext, api: aws.apigatewayv2.Api, stageName: pulumi.Output<string>, functions: HubFunctions, livenessTable?: aws.dynamodb.Table): HubWebSocketApi {
  const authorizer = buildTokenAuthorizer(ctx, api, functions.authorizer);
  const routes: Partial<Record<HandlerName, HubRoute>> = {};
  for (const { routeKey, handler } of routesOf(Object.keys(functions) as HandlerName[])) {
    routes[handler] = buildRoute(ctx, api, stageName, routeKey, handler, functions[handler]!, routeKey === "$connect" ? authorizer : undefined);
  }
  const keepAlive = livenessTable ? buildLivenessRoute(ctx, api, livenessTable) : buildKeepAliveRoute(ctx, api);
  const stage = buildStage(ctx, api, stageName, [...Object.values(routes).map((r) => r.route), keepAlive.route]);
  return { api, authorizer, routes, keepAlive, ...stage };
}

/**
 * The keep-alive route (core/keepAlive.ts), answered by API Gateway itself: a MOCK
 * integration, so no Lambda runs, no invoke permission exists and a reconnect storm's pings
 * take no Lambda concurrency. A MOCK integration takes its status code from its request
 * template: without one API Gateway fails the message ("statusCode should be an integer
 * which defined in request template"). No route response: the route is one-way, so nothing
 * is sent back and a ping costs one message (a pong would double that; docs/protocol.md "Keep-alive").
 *
 * With presence on the same route records liveness instead (buildLivenessRoute).
 */
function buildKeepAliveRoute(ctx: HubContext, api: aws.apigatewayv2.Api): HubGatewayRoute {
  const integration = create(ctx, aws.apigatewayv2.Integration, ctx.transform.integration, "keepAlive-integration", {
    apiId: api.id,
    integrationType: "MOCK",
    templateSelectionExpression: "\\$default",
    requestTemplates: { $default: JSON.stringify({ statusCode: 200 }) },
  });
  const route = create(ctx, aws.apigatewayv2.Route, ctx.transform.route, "keepAlive-route", {
    apiId: api.id,
    routeKey: KEEP_ALIVE_ROUTE_KEY,
    target: pulumi.interpolate`integrations/${integration.id}`,
  });
  return { integration, route };
}

/**
 * The attributes the keep-alive's write may touch, and the only ReturnValues it may ask for:
 * the role's policy conditions (dynamodb:Attributes, dynamodb:ReturnValues), so even a changed
 * template could not read a row back or write anything but `seen_at` and `prev_seen_at`.
 */
export const LIVENESS_ATTRIBUTES = ["connection_id", "seen_at", "prev_seen_at"] as const;

/**
 * The request template of the keep-alive with presence on: DynamoDB UpdateItem of the row keyed
 * by the connection's id, `seen_at` = the request's time (epoch ms) and `prev_seen_at` = the
 * one before (core/keepAlive.ts PING_UPDATE_EXPRESSION), only if the row exists (a
 * removed connection is never recreated as a stub; the write then fails its condition, which
 * API Gateway counts as an integration error and sends nothing back). Nothing of the client's
 * message goes to DynamoDB: only `$context` values.
 */
export function livenessRequestTemplate(tableName: string): string {
  return JSON.stringify({
    TableName: tableName,
    Key: { connection_id: { S: "$context.connectionId" } },
    UpdateExpression: PING_UPDATE_EXPRESSION,
    ConditionExpression: "attribute_exists(connection_id)",
    ExpressionAttributeValues: { ":t": { N: "$context.requestTimeEpoch" }, ":z": { N: "0" } },
    ReturnValues: "NONE",
  });
}

/**
 * The keep-alive route with presence on (core/liveness.ts): an AWS-service integration that has
 * API Gateway write `seen_at` on the connection's row itself, so a ping still runs no Lambda and
 * gets no answer (no route response), and costs one message plus one DynamoDB write. The role
 * API Gateway assumes (its integration credentials) may do exactly dynamodb:UpdateItem on the
 * connections table, on `connection_id` and `seen_at` only, returning nothing. The client's body
 * never passes through (passthroughBehavior NEVER; the template uses `$context` only).
 */
function buildLivenessRoute(ctx: HubContext, api: aws.apigatewayv2.Api, table: aws.dynamodb.Table): HubGatewayRoute {
  const { role, policy } = buildRole(ctx, "keepAlive", "apigateway.amazonaws.com", [
    {
      Action: ["dynamodb:UpdateItem"],
      Resource: [table.arn],
      Condition: {
        "ForAllValues:StringEquals": { "dynamodb:Attributes": [...LIVENESS_ATTRIBUTES] },
        StringEqualsIfExists: { "dynamodb:ReturnValues": ["NONE"] },
      },
    },
  ]);
  const integration = create(ctx, aws.apigatewayv2.Integration, ctx.transform.integration, "keepAlive-integration", {
    apiId: api.id,
    integrationType: "AWS",
    integrationMethod: "POST",
    integrationUri: pulumi.interpolate`arn:${ctx.aws.partition}:apigateway:${ctx.aws.region}:dynamodb:action/UpdateItem`,
    credentialsArn: role.arn,
    passthroughBehavior: "NEVER",
    templateSelectionExpression: "\\$default",
    requestTemplates: { $default: table.name.apply(livenessRequestTemplate) },
  });
  const route = create(ctx, aws.apigatewayv2.Route, ctx.transform.route, "keepAlive-route", {
    apiId: api.id,
    routeKey: KEEP_ALIVE_ROUTE_KEY,
    target: pulumi.interpolate`integrations/${integration.id}`,
  }, { dependsOn: [policy] });
  return { integration, route, role, policy };
}

function buildTokenAuthorizer(ctx: HubContext, api: aws.apigatewayv2.Api, fn: HubFunction) {
  const authorizer = create(
    ctx,
    aws.apigatewayv2.Authorizer,
    ctx.transform.authorizer,
    "token-authorizer",
    {
      apiId: api.id,
      authorizerType: "REQUEST",
      authorizerUri: fn.fn.invokeArn,
      // No identity source. The token comes in Sec-WebSocket-Protocol or ?token=, and
      // identity sources are ANDed: API Gateway answers 401 without calling the authorizer
      // when any is missing, so one source refuses every client that uses the other way.
      // A WebSocket REQUEST authorizer may have none: "For a REQUEST authorizer, this is
      // optional" (apigatewayv2 CreateAuthorizer, IdentitySource; sources are required only
      // for caching, which WebSocket authorizers do not support). The authorizer then runs
      // for every handshake and denies one without a token (403); see SECURITY.md.
      name: childName(ctx, "token"),
    },
    former("token-authorizer"),
  );
  create(ctx, aws.lambda.Permission, ctx.transform.permission, "authorizer-invoke", {
    action: "lambda:InvokeFunction",
    function: fn.fn.name,
    principal: "apigateway.amazonaws.com",
    sourceArn: pulumi.interpolate`${api.executionArn}/authorizers/${authorizer.id}`,
  });
  return authorizer;
}

function buildRoute(
  ctx: HubContext,
  api: aws.apigatewayv2.Api,
  stageName: pulumi.Output<string>,
  routeKey: string,
  handler: HandlerName,
  fn: HubFunction,
  authorizer: aws.apigatewayv2.Authorizer | undefined,
): HubRoute {
  const integration = create(
    ctx,
    aws.apigatewayv2.Integration,
    ctx.transform.integration,
    `${handler}-integration`,
    { apiId: api.id, integrationType: "AWS_PROXY", integrationUri: fn.fn.invokeArn, integrationMethod: "POST" },
    former(`${handler}-integration`),
  );
  const permission = create(
    ctx,
    aws.lambda.Permission,
    ctx.transform.permission,
    `${handler}-invoke`,
    {
      action: "lambda:InvokeFunction",
      function: fn.fn.name,
      principal: "apigateway.amazonaws.com",
      sourceArn: pulumi.interpolate`${api.executionArn}/${stageName}/${routeKey}`,
    },
    former(`${handler}-invoke`),
  );
  const route = create(
    ctx,
    aws.apigatewayv2.Route,
    ctx.transform.route,
    `${handler}-route`,
    {
      apiId: api.id,
      routeKey,
      target: pulumi.interpolate`integrations/${integration.id}`,
      ...(authorizer ? { authorizationType: "CUSTOM", authorizerId: authorizer.id } : {}),
    },
    former(`${handler}-route`),
  );
  return { integration, permission, route };
}

/** The stage, its throttling and (with apiGatewayLogging) its access and execution logs. */
function buildStage(ctx: HubContext, api: aws.apigatewayv2.Api, stageName: pulumi.Output<string>, routes: aws.apigatewayv2.Route[]) {
  const { settings } = ctx;
  const logsOn = settings.apiGatewayLogging !== "off";
  const accessLogs = logsOn ? create(ctx, aws.cloudwatch.LogGroup, ctx.transform.logGroup, "access-logs", { retentionInDays: settings.logRetentionDays, tags: ctx.tags }) : undefined;
  // Where API Gateway writes a WebSocket stage's execution logs; created here so it gets
  // our retention instead of "never expire".
  const executionLogs = logsOn
    ? create(ctx, aws.cloudwatch.LogGroup, ctx.transform.logGroup, "execution-logs", {
        name: pulumi.interpolate`/aws/apigateway/${api.id}/${stageName}`,
        retentionInDays: settings.logRetentionDays,
        tags: ctx.tags,
      })
    : undefined;
  const account = settings.apiGatewayLogging === "ifUnset" ? buildApiGatewayAccountIfUnset(ctx) : undefined;
  const stage = create(
    ctx,
    aws.apigatewayv2.Stage,
    ctx.transform.stage,
    "stage",
    {
      apiId: api.id,
      name: stageName,
      autoDeploy: true,
      defaultRouteSettings: {
        throttlingBurstLimit: settings.burstLimit,
        throttlingRateLimit: settings.rateLimit,
        dataTraceEnabled: false, // full request logging would write tokens to CloudWatch
        // Any logging level needs the account's CloudWatch role: "OFF" unless logs are on.
        loggingLevel: logsOn ? "ERROR" : "OFF",
      },
      accessLogSettings: accessLogs ? { destinationArn: accessLogs.arn, format: ACCESS_LOG_FORMAT } : undefined,
      tags: ctx.tags,
    },
    { dependsOn: [...routes, ...(executionLogs ? [executionLogs] : []), ...(account ? [account] : [])] },
  );
  return { stage, accessLogs, executionLogs };
}
