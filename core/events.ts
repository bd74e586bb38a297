/** Event shapes of API Gateway WebSocket routes, as AWS documents them, with the parts aws-lambda's types leave out. */
import type { APIGatewayProxyWebsocketEventV2 } from "aws-lambda";

/** Context the authorizer returns on Allow; API Gateway hands it to every later route of the connection. */
export type HubAuthorizerContext = {
  user_id: string;
  /** The seed token's room; "" for a token with `rooms` (context values must be strings). */
  room_id: string;
  /** The token's room grants as a JSON array (core/rooms.ts normalizeGrants); `["<room_id>"]` for a seed token. */
  grants: string;
  /** The auth row's sort key the token was checked against: the room id, or grantsAuthKey(grants). */
  auth_key: string;
  /**
   * The auth row's generation the token was checked against. `$connect` writes the
   * connection row only while that generation still stands (see SECURITY.md, revocation).
   */
  generation: string;
};

/** What a handler reads of Lambda's context (the local hub's pollers and gateway pass the same). */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/**
 * API Gateway's integration timeout for WebSocket routes, 29 s: a route's answer later than
 * this never reaches the client (the Lambda may run on). Not adjustable for WebSocket APIs.
 */
export const INTEGRATION_TIMEOUT_MS = 29_000;

export type WebSocketEvent = APIGatewayProxyWebsocketEventV2 & {
  requestContext: APIGatewayProxyWebsocketEventV2["requestContext"] & {
    authorizer?: Partial<HubAuthorizerContext> & Record<string, unknown>;
  };
  queryStringParameters?: Record<string, string | undefined>;
  headers?: Record<string, string | undefined>;
  /** `$connect`: every value of each header, where `headers` may hold only a repeated header's last. */
  multiValueHeaders?: Record<string, string[] | undefined>;
};

export interface WebSocketResult {
  statusCode: number;
  body?: string;
  /** `$connect` only: e.g. the `Sec-WebSocket-Protocol` it accepts, which API Gateway puts in the handshake answer. */
  headers?: Record<string, string>;
}
