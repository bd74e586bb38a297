/**
 * Who sent a route's frame. The authorizer's context (API Gateway passes it to every route of
 * the connection) says who the connection is and what its token grants: no read, no
 * authorizer call per message. Its rooms change after `$connect` (subscribe, unsubscribe), so
 * they are only on the connection row.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { WebSocketEvent } from "./events";
import { normalizeRoomId } from "./rooms";
import { getConnection } from "./tables";

export interface ConnectionIdentity {
  userId: string;
  /** The token's room grants (core/rooms.ts grantAllows). */
  grants: string[];
}

/** The grants of a context: its `grants` JSON, or (an authorizer older than grants) its room. */
function contextGrants(context: Record<string, unknown>): string[] | undefined {
  if (typeof context.grants === "string") {
    try {
      const grants: unknown = JSON.parse(context.grants);
      if (Array.isArray(grants) && grants.every((grant) => typeof grant === "string")) return grants as string[];
    } catch {
      // fall through: not our authorizer's context
    }
    return undefined;
  }
  // An older authorizer's seed room, by the rules a token's room is issued by: none (""), a
  // user channel, or a "*" (it would read as a prefix) is no grant.
  const seedRoom = normalizeRoomId(context.room_id, "room_id");
  return seedRoom.ok ? [seedRoom.value] : [];
}

/** The identity in the event's authorizer context; undefined when there is none. */
export function identityFromContext(event: WebSocketEvent): ConnectionIdentity | undefined {
  const context = event.requestContext.authorizer;
  if (!context || typeof context.user_id !== "string") return undefined;
  const grants = contextGrants(context);
  return grants && { userId: context.user_id, grants };
}

/** The context's identity, else the connection row's. Undefined for a connection with no row; a failed read throws. */
export async function connectionIdentity(deps: { db: DynamoDBClient; connectionsTable: string }, event: WebSocketEvent): Promise<ConnectionIdentity | undefined> {
  const fromContext = identityFromContext(event);
  if (fromContext) return fromContext;
  const row = await getConnection(deps.db, deps.connectionsTable, event.requestContext.connectionId);
  return row && { userId: row.userId, grants: row.grants };
}

