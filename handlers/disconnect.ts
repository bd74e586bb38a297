/**
 * `$disconnect`: removes the connection's row and memberships (core/tables.ts
 * removeConnection). API Gateway ignores the result, so failures are only logged; TTL and
 * 410 clean-up catch the rest.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { errorSummary, observerOf, type HubObserver } from "../core/hubEvents";
import { describeError, type Logger } from "../core/log";
import { lifecycle, removalReason, type PresenceDeps } from "../core/presence";
import { leaveRooms } from "../core/liveness";
import { removeConnection, type ConnectionRow } from "../core/tables";
import { dynamoFrom, lambdaSource, observerFrom, presenceFrom, requireVar, type HandlerSource } from "./dependencies";

export interface DisconnectDeps {
  db: DynamoDBClient;
  connectionsTable: string;
  log: Logger;
  /** Told each outcome (`disconnected`, `disconnect.failed`); default: a log line each. */
  observe?: HubObserver;
  /** Presence on: each room of the connection loses it (a `closed` leave, after the grace; `revoked` at once for a row revokeToken marked), and `connection.closed` goes on the bus. */
  presence?: PresenceDeps;
}

export function createDisconnectHandler(deps: DisconnectDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  const observe = observerOf(deps);
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    try {
      let removed: ConnectionRow | undefined;
      // The row goes first, then its memberships: once the row is gone, its rooms must lose the
      // connection even if a membership delete fails (the failure is reported after).
      let failed: { err: unknown } | undefined;
      try {
        await removeConnection(deps.db, deps.connectionsTable, connectionId, { removed: (row) => (removed = row) });
      } catch (err) {
        failed = { err };
      }
      const row: ConnectionRow | undefined = removed;
      if (row && deps.presence) {
        const presence = deps.presence;
        // A row revokeToken marked leaves with `revoked`, at once (core/tables.ts markRevoked).
        const { reason, since } = removalReason(row, "closed");
        await Promise.all([
          // This invocation removed the row: its close is this one's to tell (the emitter never throws).
          presence.emit?.([lifecycle("connection.closed", Date.now(), { connection_id: connectionId, user_id: row.userId, reason })]),
          // The connection is gone either way; a leave not recorded here is the sweep's to find.
          leaveRooms(presence, row, reason, since).catch((err) => deps.log.warn("presence leave failed", { connection_id: connectionId, ...describeError(err) })),
        ]);
      }
      if (failed) throw failed.err;
    } catch (err) {
      observe({ type: "disconnect.failed", connectionId, error: errorSummary(err) });
      return { statusCode: 500, body: "Failed to disconnect" };
    }
    observe({ type: "disconnected", connectionId });
    return { statusCode: 200, body: "Disconnected" };
  };
}

export function disconnectFromEnvironment(source: HandlerSource = lambdaSource("disconnect")) {
  return createDisconnectHandler({ db: dynamoFrom(source), connectionsTable: requireVar(source, "connectionsTable"), log: source.log, observe: observerFrom(source), presence: presenceFrom(source) });
}
