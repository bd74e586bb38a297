/**
 * `$disconnect`: removes the connection's row and memberships (core/tables.ts
 * removeConnection). API Gateway ignores the result, so failures are only logged; TTL and
 * 410 clean-up catch the rest.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { errorSummary, observerOf, type HubObserver } from "../core/hubEvents";
import type { Logger } from "../core/log";
import { removeConnection } from "../core/tables";
import { dynamoFrom, lambdaSource, observerFrom, requireVar, type HandlerSource } from "./dependencies";

export interface DisconnectDeps {
  db: DynamoDBClient;
  connectionsTable: string;
  log: Logger;
  /** Told each outcome (`disconnected`, `disconnect.failed`); default: a log line each. */
  observe?: HubObserver;
}

export function createDisconnectHandler(deps: DisconnectDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  const observe = observerOf(deps);
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    try {
      await removeConnection(deps.db, deps.connectionsTable, connectionId);
    } catch (err) {
      observe({ type: "disconnect.failed", connectionId, error: errorSummary(err) });
      return { statusCode: 500, body: "Failed to disconnect" };
    }
    observe({ type: "disconnected", connectionId });
    return { statusCode: 200, body: "Disconnected" };
  };
}

export function disconnectFromEnvironment(source: HandlerSource = lambdaSource("disconnect")) {
  return createDisconnectHandler({ db: dynamoFrom(source), connectionsTable: requireVar(source, "connectionsTable"), log: source.log, observe: observerFrom(source) });
}
