/**
 * The Lambda handlers, wired for the local hub: the same modules and factories the
 * Lambdas use, with clients pointed at dynalite, fauxqs and the local @connections API.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { dynamoClient, sqsClient, type ClientOptions } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { DEFAULT_CHUNK_SIZE, type FanoutDeps } from "../core/fanout";
import type { Logger } from "../core/log";
import { chunkEnqueuer } from "../core/chunks";
import { createAuthorizerHandler } from "../handlers/authorizer";
import { createConnectHandler } from "../handlers/connect";
import { createDefaultHandler } from "../handlers/default";
import { createDeliverHandler, type DeliverHandler } from "../handlers/deliver";
import { createDisconnectHandler } from "../handlers/disconnect";
import { createSendMessageHandler } from "../handlers/sendMessage";
import { createResumeHandler } from "../handlers/resume";
import type { StreamSettings } from "../core/streams";

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
  /** What the handlers sign @connections posts with (the hub's dev credentials); default as core/aws.ts. */
  credentials?: ClientOptions["credentials"];
  log: Logger;
  /** Room streams (issue 13): the table and `history.retentionHours` (0 = off). */
  streams?: StreamSettings;
  /** Replaces the deliver handler (benchmarks run the seed's algorithm through the same hub). */
  deliverFactory?: (deps: FanoutDeps) => DeliverHandler;
}

export function createLocalHandlers(config: LocalHandlerConfig) {
  const db: DynamoDBClient = dynamoClient({ endpoint: config.dynamodbEndpoint });
  const management = createConnectionsApi(config.managementEndpoint, { credentials: config.credentials });
  const fanout = (handler: string): FanoutDeps => ({
    db,
    management,
    connectionsTable: config.connectionsTable,
    log: config.log.child({ handler }),
    chunkSize: config.largeRoomChunkSize ?? DEFAULT_CHUNK_SIZE,
    streams: config.streams,
    enqueueChunks: chunkEnqueuer(sqsClient({ endpoint: config.sqsEndpoint }), config.queueUrl),
  });
  return {
    db,
    authorizer: createAuthorizerHandler({
      db,
      authTable: config.authTable,
      jwtSecret: async () => config.jwtSecret,
      log: config.log.child({ handler: "authorizer" }),
    }),
    connect: createConnectHandler({
      db,
      connectionsTable: config.connectionsTable,
      authTable: config.authTable,
      log: config.log.child({ handler: "connect" }),
    }),
    disconnect: createDisconnectHandler({ db, connectionsTable: config.connectionsTable, log: config.log.child({ handler: "disconnect" }) }),
    sendMessage: config.allowClientMessages ? createSendMessageHandler(fanout("sendMessage")) : undefined,
    default: createDefaultHandler({ management, log: config.log.child({ handler: "default" }), clientMessagesAllowed: config.allowClientMessages }),
    deliver: (config.deliverFactory ?? createDeliverHandler)(fanout("deliver")),
    // Room streams (issue 13): the resume route.
    resume: createResumeHandler(fanout("resume")),
  };
}

export type LocalHandlers = ReturnType<typeof createLocalHandlers>;
