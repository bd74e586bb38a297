/**
 * The keep-alive route, the one place the component (components/hub/webSocketApi.ts), the
 * local hub's API Gateway emulator (local/apiGateway.ts) and the browser client agree on.
 *
 * API Gateway closes a connection after 10 minutes without a message from the client, and
 * browsers cannot send WebSocket ping frames, so the client sends `{"action":"ping"}`. That
 * route is answered by API Gateway itself (a MOCK integration): no Lambda runs. It has no
 * route response, so nothing is sent back: a ping is one billed message, a pong would be a
 * second (docs/protocol.md "Keep-alive" has the numbers and the interval).
 *
 * With presence on, the same route records liveness, still without a Lambda and without an
 * answer: API Gateway writes `seen_at` on the connection's row itself (a DynamoDB integration,
 * components/hub/webSocketApi.ts buildLivenessRoute; the emulator's `gatewayIntegrations`), and
 * clients ping every `presence.keepAliveSeconds`, told as `keep_alive_ms` (core/liveness.ts).
 *
 * Not a handler, so not in handlers/manifest.ts: nothing is deployed as code for it.
 * client/index.mjs keeps its own copy of the frame (a browser module imports nothing);
 * test/client.test.ts checks that the two agree.
 */
export const KEEP_ALIVE_ROUTE_KEY = "ping";

/**
 * What each ping writes on the connection's row with presence on (the component's DynamoDB
 * integration and the emulator alike): `seen_at` = the ping's time, and the one before it kept
 * as `prev_seen_at` (0 when the row has none), so the sweep knows the client's last ping
 * interval: a client pinging at the rate the hub told it is held to that rate
 * (core/liveness.ts `deadAfterMs`), one following its own 8-minute keep-alive is not. Every
 * right-hand side reads the row as it was before the write.
 */
export const PING_UPDATE_EXPRESSION = "SET prev_seen_at = if_not_exists(seen_at, :z), seen_at = :t";

/**
 * Routes API Gateway answers itself, with no route response: the message is accepted
 * (throttled, billed, the idle timer restarted) and nothing runs or comes back.
 */
export const GATEWAY_ANSWERED_ROUTE_KEYS: readonly string[] = [KEEP_ALIVE_ROUTE_KEY];
