/** Who sent a route's frame: the user and room the authorizer vouched for at `$connect`. */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { WebSocketEvent } from "./events";
import { getConnection } from "./tables";

export interface ConnectionIdentity {
  userId: string;
  roomId: string;
}

/**
 * API Gateway passes the authorizer's context to every route; the connection row is the
 * fallback. Undefined for a connection with no row; a failed read throws.
 */
export async function connectionIdentity(
  deps: { db: DynamoDBClient; connectionsTable: string },
  event: WebSocketEvent,
): Promise<ConnectionIdentity | undefined> {
  const userId = event.requestContext.authorizer?.user_id;
  const roomId = event.requestContext.authorizer?.room_id;
  if (typeof userId === "string" && typeof roomId === "string") return { userId, roomId };
  const row = await getConnection(deps.db, deps.connectionsTable, event.requestContext.connectionId);
  return row && { userId: row.userId, roomId: row.roomId };
}
