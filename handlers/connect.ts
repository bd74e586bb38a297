/** `$connect`: records the connection under the room and user the authorizer vouched for. */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ENV, requireEnv } from "../core/aws";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { describeError, type Logger } from "../core/log";
import { putConnection } from "../core/tables";
import { dynamoFromEnvironment, loggerFor } from "./environment";

export interface ConnectDeps {
  db: DynamoDBClient;
  connectionsTable: string;
  log: Logger;
  now?: () => number;
}

export function createConnectHandler(deps: ConnectDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  const now = deps.now ?? Date.now;
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    const userId = event.requestContext.authorizer?.user_id;
    const roomId = event.requestContext.authorizer?.room_id;
    if (typeof userId !== "string" || typeof roomId !== "string") {
      // Only reachable if the route were deployed without the authorizer: refuse, don't guess.
      deps.log.error("connect without authorizer context", { connection_id: connectionId });
      return { statusCode: 403, body: "Forbidden" };
    }
    try {
      await putConnection(deps.db, deps.connectionsTable, { connectionId, roomId, userId, connectedAt: now() });
    } catch (err) {
      deps.log.error("connection row not written", { connection_id: connectionId, room_id: roomId, ...describeError(err) });
      return { statusCode: 500, body: "Failed to connect" };
    }
    deps.log.info("connected", { connection_id: connectionId, room_id: roomId, user_id: userId });
    return { statusCode: 200, body: "Connected" };
  };
}

export function connectFromEnvironment() {
  return createConnectHandler({ db: dynamoFromEnvironment(), connectionsTable: requireEnv(ENV.connectionsTable), log: loggerFor("connect") });
}
