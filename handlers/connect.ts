/**
 * `$connect`: records the connection the authorizer vouched for: its row (who, what its token
 * grants, its rooms), the membership of its user channel and, for a seed token, of its room
 * (core/rooms.ts), in one BatchWriteItem.
 *
 * The authorizer and `$connect` are separate invocations, so a `revokeToken` can land
 * between them. Hence: write the connection first, then read the auth row (strongly
 * consistent) and keep the connection only if it still holds the generation the authorizer
 * checked. Either the revoker deleted the auth row before that read (we see it, delete what
 * we wrote and refuse), or after it, and then our items were already written when the
 * revoker looks for the user's connections (it re-checks for index lag). See SECURITY.md.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { identityFromContext } from "../core/identity";
import { errorSummary, observerOf, type ConnectRefusalReason, type ErrorSummary, type HubObserver } from "../core/hubEvents";
import { describeError, type Logger } from "../core/log";
import { SUBPROTOCOL, tokenFromRequest } from "../core/rooms";
import { deleteNewConnection, getAuthRow, putConnection, type NewConnection } from "../core/tables";
import { lifecycle, presenceJoin, type PresenceDeps } from "../core/presence";
import { dynamoFrom, lambdaSource, observerFrom, presenceFrom, requireVar, type HandlerSource } from "./dependencies";

export interface ConnectDeps {
  db: DynamoDBClient;
  connectionsTable: string;
  /** The auth table, to confirm the token's generation still stands once the row is written. */
  authTable: string;
  log: Logger;
  /** Told each connection's outcome (`connected`, `connect.refused`); default: a log line each. */
  observe?: HubObserver;
  now?: () => number;
  /** Presence on: a seed token's room gains the connection (its user joins unless already there), and `connection.opened` goes on the bus. */
  presence?: PresenceDeps;
}

export function createConnectHandler(deps: ConnectDeps): (event: WebSocketEvent) => Promise<WebSocketResult> {
  const now = deps.now ?? Date.now;
  const observe = observerOf(deps);
  return async (event) => {
    const connectionId = event.requestContext.connectionId;
    const context = event.requestContext.authorizer;
    const identity = identityFromContext(event);
    const roomId = context?.room_id;
    const generation = context?.generation;
    if (!identity || typeof roomId !== "string" || typeof generation !== "string") {
      // Only reachable if the route were deployed without the authorizer: refuse, don't guess.
      observe({ type: "connect.refused", connectionId, reason: "no_authorizer_context" });
      return { statusCode: 403, body: "Forbidden" };
    }
    const { userId, grants } = identity;
    // An authorizer older than auth_key checked the seed token's own row, keyed by its room.
    const authKey = typeof context?.auth_key === "string" && context.auth_key !== "" ? context.auth_key : roomId;
    const who = { connectionId, userId, ...(roomId ? { roomId } : {}) };
    const refuse = (reason: ConnectRefusalReason, error?: ErrorSummary): WebSocketResult => {
      observe({ type: "connect.refused", ...who, reason, ...(error ? { error } : {}) });
      return { statusCode: 403, body: "Forbidden" };
    };
    const connectedAt = now();
    const connection: NewConnection = { connectionId, userId, rooms: roomId ? [roomId] : [], grants, connectedAt, generation, authKey };
    try {
      await putConnection(deps.db, deps.connectionsTable, connection);
    } catch (err) {
      // Whatever part of the batch landed goes; what does not expires by TTL.
      await deleteNewConnection(deps.db, deps.connectionsTable, connection).catch(() => undefined);
      observe({ type: "connect.refused", ...who, reason: "row_not_written", error: errorSummary(err) });
      return { statusCode: 500, body: "Failed to connect" };
    }
    let refusal: { reason: ConnectRefusalReason; error?: ErrorSummary } | undefined;
    try {
      const row = await getAuthRow(deps.db, deps.authTable, userId, authKey);
      const stands = row !== undefined && row.generation === generation && row.expiresAt > Math.floor(connectedAt / 1000);
      if (!stands) refusal = { reason: "revoked_meanwhile" };
    } catch (err) {
      refusal = { reason: "recheck_failed", error: errorSummary(err) };
    }
    if (refusal) {
      try {
        await deleteNewConnection(deps.db, deps.connectionsTable, connection);
      } catch (err) {
        // The socket is refused anyway; a stale row gets 410 on the next post and is removed.
        deps.log.warn("refused connection's row not deleted", { connection_id: connectionId, ...describeError(err) });
      }
      return refuse(refusal.reason, refusal.error);
    }
    if (deps.presence) {
      const presence = deps.presence;
      await Promise.all([
        // Lifecycle events (core/lifecycleEvents.ts): the emitter never throws.
        presence.emit?.([lifecycle("connection.opened", connectedAt, { connection_id: connectionId, user_id: userId, ...(roomId ? { room_id: roomId } : {}) })]),
        // The connection stands either way: presence heals at the next subscribe or by the sweep. No re-read
        // of the row after it (as subscribe does): API Gateway runs $disconnect only after $connect answers.
        roomId ? presenceJoin(presence, { roomId, userId, connectionId }).catch((err) => deps.log.warn("presence join failed", { connection_id: connectionId, ...describeError(err) })) : undefined,
      ]);
    }
    observe({ type: "connected", ...who });
    // A client that sent its token as a subprotocol fails the handshake unless we name one back.
    const request = tokenFromRequest(event);
    return request.ok && request.value.subprotocol ? { statusCode: 200, body: "Connected", headers: { "Sec-WebSocket-Protocol": SUBPROTOCOL } } : { statusCode: 200, body: "Connected" };
  };
}

export function connectFromEnvironment(source: HandlerSource = lambdaSource("connect")) {
  return createConnectHandler({
    db: dynamoFrom(source),
    connectionsTable: requireVar(source, "connectionsTable"),
    authTable: requireVar(source, "authTable"),
    log: source.log,
    observe: observerFrom(source),
    presence: presenceFrom(source),
  });
}
