/**
 * The Lambda handlers, wired for the local hub: the same entry points the Lambdas run, given
 * the same variables (a record instead of process.env) pointed at dynalite, fauxqs and the
 * local @connections API, plus the hub's dev credentials and logger.
 */
import { ENV, type Credentials, type Environment } from "../core/aws";
import type { Logger } from "../core/log";
import type { StreamSettings } from "../core/streams";
import type { HandlerSource } from "../handlers/dependencies";
import { ENTRY_POINTS } from "../handlers/entryPoints";
import { deployedHandlers, routesOf, type HandlerName } from "../handlers/manifest";
import type { ApiGatewayOptions } from "./apiGateway";

export interface LocalHandlerConfig {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  managementEndpoint: string;
  queueUrl: string;
  connectionsTable: string;
  authTable: string;
  jwtSecret: string;
  allowClientMessages: boolean;
  largeRoomChunkSize?: number;
  /** Room streams (issue 13): the table and `history.retentionHours`; unset = off. */
  streams?: StreamSettings;
  /** What the handlers sign their requests with (the hub's dev credentials); default as core/aws.ts. */
  credentials?: Credentials;
  log: Logger;
}

/** The variables the component would set, with the local stand-ins' endpoints. */
export function localEnvironment(config: Omit<LocalHandlerConfig, "log" | "credentials">): Environment {
  return {
    [ENV.dynamodbEndpoint]: config.dynamodbEndpoint,
    [ENV.sqsEndpoint]: config.sqsEndpoint,
    [ENV.managementEndpoint]: config.managementEndpoint,
    [ENV.queueUrl]: config.queueUrl,
    [ENV.connectionsTable]: config.connectionsTable,
    [ENV.authTable]: config.authTable,
    [ENV.jwtSecret]: config.jwtSecret,
    [ENV.allowClientMessages]: String(config.allowClientMessages),
    ...(config.largeRoomChunkSize !== undefined ? { [ENV.largeRoomChunkSize]: String(config.largeRoomChunkSize) } : {}),
    ...(config.streams ? { [ENV.streamsTable]: config.streams.streamsTable, [ENV.historyRetentionHours]: String(config.streams.retentionHours) } : {}),
  };
}

export function createLocalHandlers(config: LocalHandlerConfig) {
  const env = localEnvironment(config);
  const source = (handler: HandlerName): HandlerSource => ({ env, credentials: config.credentials, log: config.log.child({ handler }) });
  const deployed = deployedHandlers(config.allowClientMessages);
  // The route table API Gateway would have: one route per deployed route handler of the manifest.
  const routes = Object.fromEntries(routesOf(deployed).map(({ routeKey, handler }) => [routeKey, ENTRY_POINTS[handler](source(handler))]));
  return {
    authorizer: ENTRY_POINTS.authorizer(source("authorizer")),
    routes: routes as ApiGatewayOptions["routes"],
    deliver: ENTRY_POINTS.deliver(source("deliver")),
  };
}

export type LocalHandlers = ReturnType<typeof createLocalHandlers>;
