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
 * Routes API Gateway answers itself, with no route response: the message is accepted
 * (throttled, billed, the idle timer restarted) and nothing runs or comes back.
 */
export const GATEWAY_ANSWERED_ROUTE_KEYS: readonly string[] = [KEEP_ALIVE_ROUTE_KEY];
