/**
 * The Lambda handlers, wired for the local hub: the same entry points the Lambdas run, given
 * the same variables (a record instead of process.env) pointed at dynalite, fauxqs and the
 * local @connections API, plus the hub's dev credentials, logger and event listener.
 */
import { ENV, type Credentials, type Environment } from "../core/aws";
import type { HubObserver } from "../core/hubEvents";
import type { Logger } from "../core/log";
import type { StreamSettings } from "../core/streams";
import type { HandlerSource } from "../handlers/dependencies";
import type { AuthorizerHandler } from "../handlers/authorizer";
import type { DeliverHandler } from "../handlers/deliver";
import { loadEntryPoint } from "../handlers/entryPoints";
import { deployedHandlers, routesOf, type HandlerName } from "../handlers/manifest";
import type { ApiGatewayOptions } from "./apiGateway";

export interface LocalHandlerConfig {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  managementEndpoint: string;
  queueUrl: string;
  /** The big-room lane's queue; unset: chunks go to `queueUrl`. */
  bulkQueueUrl?: string;
  /** The `@connections` budget (core/budget.ts): its table and `delivery.postsPerSecond`; unset = no budget. */
  budget?: { table: string; postsPerSecond: number };
  connectionsTable: string;
  authTable: string;
  jwtSecret: string;
  allowClientMessages: boolean;
  largeRoomChunkSize?: number;
  /** Rooms per connection (subscribe); unset = the default, 100. */
  maxRoomsPerConnection?: number;
  /** Room streams (docs/protocol.md#room-streams): the table and `history.retentionHours` (0 = off; the table still holds idempotency claims); unset = no table. */
  streams?: StreamSettings;
  /** Presence (core/presence.ts): the table and the checked `presence` option; unset = off. */
  presence?: { presenceTable: string; graceSeconds: number; sweepSeconds: number; eventMembersLimit: number; keepAliveSeconds: number };
  /** Lifecycle events (with presence): the bus and the EventBridge stand-in's endpoint (local/eventBridge.ts); unset = none sent. */
  events?: { eventBusName: string; endpoint: string };
  /** What the handlers sign their requests with (the hub's dev credentials); default as core/aws.ts. */
  credentials?: Credentials;
  log: Logger;
  /** Told every hub event the handlers report, after its log line (the hub's event bus). */
  observe?: HubObserver;
}

/** The variables the component would set, with the local stand-ins' endpoints. */
export function localEnvironment(config: Omit<LocalHandlerConfig, "log" | "credentials" | "observe">): Environment {
  return {
    [ENV.dynamodbEndpoint]: config.dynamodbEndpoint,
    [ENV.sqsEndpoint]: config.sqsEndpoint,
    [ENV.managementEndpoint]: config.managementEndpoint,
    [ENV.queueUrl]: config.queueUrl,
    ...(config.bulkQueueUrl ? { [ENV.bulkQueueUrl]: config.bulkQueueUrl } : {}),
    ...(config.budget ? { [ENV.budgetTable]: config.budget.table, [ENV.postsPerSecond]: String(config.budget.postsPerSecond) } : {}),
    [ENV.connectionsTable]: config.connectionsTable,
    [ENV.authTable]: config.authTable,
    [ENV.jwtSecret]: config.jwtSecret,
    [ENV.allowClientMessages]: String(config.allowClientMessages),
    ...(config.largeRoomChunkSize !== undefined ? { [ENV.largeRoomChunkSize]: String(config.largeRoomChunkSize) } : {}),
    ...(config.maxRoomsPerConnection !== undefined ? { [ENV.maxRoomsPerConnection]: String(config.maxRoomsPerConnection) } : {}),
    ...(config.streams ? { [ENV.streamsTable]: config.streams.streamsTable, [ENV.historyRetentionHours]: String(config.streams.retentionHours) } : {}),
    ...(config.presence
      ? {
          [ENV.presenceTable]: config.presence.presenceTable,
          [ENV.presenceGraceSeconds]: String(config.presence.graceSeconds),
          [ENV.presenceEventMembersLimit]: String(config.presence.eventMembersLimit),
          [ENV.presenceKeepAliveSeconds]: String(config.presence.keepAliveSeconds),
        }
      : {}),
    ...(config.events ? { [ENV.eventBusName]: config.events.eventBusName, [ENV.eventsEndpoint]: config.events.endpoint } : {}),
  };
}

export function createLocalHandlers(config: LocalHandlerConfig) {
  const env = localEnvironment(config);
  const source = (handler: HandlerName): HandlerSource => ({ env, credentials: config.credentials, log: config.log.child({ handler }), observe: config.observe });
  const deployed = deployedHandlers(config.allowClientMessages, config.presence !== undefined);
  // The route table API Gateway would have: one route per deployed route handler of the manifest.
  // Every deployed handler is loaded now, so a missing module or export stops the hub at start.
  const handler = (name: HandlerName) => loadEntryPoint(name)(source(name));
  const routes = Object.fromEntries(routesOf(deployed).map(({ routeKey, handler: name }) => [routeKey, handler(name)]));
  return {
    authorizer: handler("authorizer") as AuthorizerHandler,
    routes: routes as ApiGatewayOptions["routes"],
    deliver: handler("deliver") as DeliverHandler,
    /** Presence's schedule, run by the hub's timer (what EventBridge does on AWS); unset when presence is off. */
    sweep: deployed.includes("sweep") ? (handler("sweep") as () => Promise<unknown>) : undefined,
  };
}

export type LocalHandlers = ReturnType<typeof createLocalHandlers>;
