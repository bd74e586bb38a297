/**
 * The WebSocket handshake and route selection as API Gateway does them: which requests are
 * for the stage, the REQUEST authorizer's event and verdict, the events each route gets, and
 * `$request.body.action` route selection.
 */
import * as crypto from "crypto";
import * as http from "http";
import type { Duplex } from "stream";
import type { APIGatewayRequestAuthorizerEvent } from "aws-lambda";
import type { InvocationContext, WebSocketEvent, WebSocketResult } from "../../core/events";
import { isHttpToken, parseSubprotocols } from "../../core/rooms";
import { authorizerResultBytes, MAX_AUTHORIZER_RESULT_BYTES } from "../../core/tokens";
import { MAX_URL_CHARACTERS } from "./limits";

export type RouteHandler = (event: WebSocketEvent, context?: InvocationContext) => Promise<WebSocketResult>;
export type Routes = { $connect: RouteHandler; $disconnect: RouteHandler; $default: RouteHandler } & Record<string, RouteHandler | undefined>;

/** What API Gateway knows of a connection, from its upgrade request on. */
export interface ConnectionIdentity {
  id: string;
  connectedAt: number;
  sourceIp: string;
  userAgent: string;
  /** The authorizer's context, handed to every route. */
  authorizer: Record<string, unknown>;
}

export interface StageInfo {
  stage: string;
  apiId: string;
  region: string;
  /** `host:port` the connections came to, as the events' domainName. */
  domainName(): string;
}

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 500: "Internal server error" };

/** A URL's host part: IPv6 literals go in brackets (`ws://[::1]:8787/`). */
export function urlHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** The request target's path and query, without ever throwing (`GET //`, `GET http://[x`, bad `%`). */
export function splitTarget(target: string | undefined): { path: string; query: URLSearchParams } | undefined {
  const raw = target ?? "/";
  // Only origin-form targets ("/path?query") are ours; absolute-form and others are refused.
  if (!raw.startsWith("/")) return undefined;
  const at = raw.indexOf("?");
  try {
    return { path: at === -1 ? raw : raw.slice(0, at), query: new URLSearchParams(at === -1 ? "" : raw.slice(at + 1)) };
  } catch {
    return undefined;
  }
}

/**
 * The client's address as API Gateway's `identity.sourceIp` gives it: IPv4 without Node's
 * `::ffff:` mapping. A socket already gone has none; the events still carry an address.
 */
export function sourceIpOf(request: http.IncomingMessage): string {
  return request.socket.remoteAddress?.replace(/^::ffff:/, "") ?? "127.0.0.1";
}

export function refuseUpgrade(socket: Duplex, status: number): void {
  const message = STATUS_TEXT[status] ?? http.STATUS_CODES[status] ?? "Error";
  const body = JSON.stringify({ message });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** API Gateway's request and connection ids: 10 random bytes, base64. */
export function newGatewayId(): string {
  return crypto.randomBytes(10).toString("base64");
}

export interface UpgradeRequest {
  identity: ConnectionIdentity;
  /** Header names as the client spelled them (API Gateway passes them so); a repeated header's last value. */
  headers: Record<string, string>;
  /** Every value of each header, in order. */
  multiHeaders: Record<string, string[]>;
  query: Record<string, string>;
  multiQuery: Record<string, string[]>;
}

/** The request's headers as API Gateway's events carry them: names as sent, and every value. */
function eventHeaders(rawHeaders: string[]): { headers: Record<string, string>; multiHeaders: Record<string, string[]> } {
  // Null-prototype maps: a header named __proto__ is just a header.
  const headers: Record<string, string> = Object.create(null);
  const multiHeaders: Record<string, string[]> = Object.create(null);
  const spelling = new Map<string, string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i].toLowerCase();
    // One key per header whatever its case: the first spelling the client used.
    const name = spelling.get(lower) ?? rawHeaders[i];
    spelling.set(lower, name);
    headers[name] = rawHeaders[i + 1];
    (multiHeaders[name] ??= []).push(rawHeaders[i + 1]);
  }
  return { headers, multiHeaders };
}

/** A header's value whatever the case of its name. */
export function headerValue(headers: Record<string, string | undefined> | undefined, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(headers ?? {})) if (key.toLowerCase() === lower) return value;
  return undefined;
}

/**
 * Reads an upgrade request: a status to refuse it with, or what the authorizer and routes
 * will see. Unknown paths are 404; a handshake `ws` would refuse (bad key, version or
 * protocol list) is 400 before anything runs. A request without a token is not refused
 * here: the authorizer has no identity source (components/hub/webSocketApi.ts), so API
 * Gateway calls it for every request and it denies (403).
 */
export function readUpgrade(request: http.IncomingMessage, stage: string, sourceIp: string): UpgradeRequest | { status: number } {
  const target = splitTarget(request.url);
  if (!target) return { status: 400 };
  // The quota counts the whole URL (wss://host/stage?query). API Gateway's exact status for
  // it is not documented; 414 says what happened.
  if (`wss://${request.headers.host ?? ""}${request.url ?? ""}`.length > MAX_URL_CHARACTERS) return { status: 414 };
  if (target.path !== `/${stage}` && target.path !== `/${stage}/`) return { status: 404 };
  if (request.method !== "GET" || String(request.headers.upgrade ?? "").toLowerCase() !== "websocket") return { status: 400 };
  const key = request.headers["sec-websocket-key"];
  if (typeof key !== "string" || !/^[+/0-9A-Za-z]{22}==$/.test(key)) return { status: 400 };
  const version = Number(request.headers["sec-websocket-version"]);
  if (version !== 13 && version !== 8) return { status: 400 };
  // `ws` refuses a protocol list it cannot parse with 400 only once asked to upgrade, which
  // here is after `$connect` wrote its row (and no `$disconnect` would ever follow): checked
  // first, with the same parser the authorizer reads its token with. Node has joined repeated
  // header lines into this one value, as `ws` will read it.
  const offered = request.headers["sec-websocket-protocol"];
  if (offered !== undefined && !parseSubprotocols(offered)) return { status: 400 };
  // Null-prototype maps: a parameter named __proto__ or constructor is just a parameter.
  const query: Record<string, string> = Object.create(null);
  const multiQuery: Record<string, string[]> = Object.create(null);
  for (const [key, value] of target.query) {
    query[key] = value;
    (multiQuery[key] ??= []).push(value);
  }
  const { headers, multiHeaders } = eventHeaders(request.rawHeaders);
  const identity: ConnectionIdentity = {
    id: newGatewayId(),
    connectedAt: Date.now(),
    sourceIp,
    userAgent: headerValue(headers, "user-agent") ?? "",
    authorizer: {},
  };
  return { identity, headers, multiHeaders, query, multiQuery };
}

export function requestContext(stage: StageInfo, connection: ConnectionIdentity, routeKey: string, eventType: "CONNECT" | "MESSAGE" | "DISCONNECT") {
  const now = Date.now();
  return {
    routeKey,
    eventType,
    messageId: eventType === "MESSAGE" ? newGatewayId() : undefined,
    extendedRequestId: newGatewayId(),
    requestTime: new Date(now).toUTCString(),
    messageDirection: "IN" as const,
    stage: stage.stage,
    connectedAt: connection.connectedAt,
    requestTimeEpoch: now,
    identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
    requestId: newGatewayId(),
    domainName: stage.domainName(),
    connectionId: connection.id,
    apiId: stage.apiId,
    authorizer: connection.authorizer,
  };
}

export function authorizerEvent(stage: StageInfo, upgrade: UpgradeRequest): APIGatewayRequestAuthorizerEvent {
  return {
    type: "REQUEST",
    methodArn: `arn:aws:execute-api:${stage.region}:000000000000:${stage.apiId}/${stage.stage}/$connect`,
    headers: upgrade.headers,
    multiValueHeaders: upgrade.multiHeaders,
    queryStringParameters: upgrade.query,
    multiValueQueryStringParameters: upgrade.multiQuery,
    stageVariables: {},
    requestContext: { ...requestContext(stage, upgrade.identity, "$connect", "CONNECT"), authorizer: undefined },
  } as unknown as APIGatewayRequestAuthorizerEvent;
}

type AuthorizerResult = { principalId?: string; policyDocument?: { Statement?: unknown[] }; context?: Record<string, unknown> } | undefined;

/**
 * The authorizer's verdict as API Gateway turns it into a handshake answer: Allow lets the
 * connection on with the context; Deny is 403; a thrown "Unauthorized" is 401; anything else 500.
 * A result over API Gateway's 8 KB quota (UTF-8 JSON of the whole result, whatever its effect)
 * is one API Gateway cannot use: the handshake fails with 500, as for any authorizer result it
 * cannot use (its "Authorizer Configuration Error"), and no route runs.
 */
export async function authorize(run: () => Promise<AuthorizerResult>): Promise<{ status: 200; context: Record<string, unknown> } | { status: number; error?: unknown }> {
  try {
    const result = await run();
    const bytes = authorizerResultBytes(result);
    if (bytes > MAX_AUTHORIZER_RESULT_BYTES) {
      return { status: 500, error: new RangeError(`the authorizer's result is ${bytes} bytes; API Gateway takes at most ${MAX_AUTHORIZER_RESULT_BYTES}`) };
    }
    const statement = result?.policyDocument?.Statement?.[0] as { Effect?: string } | undefined;
    if (statement?.Effect !== "Allow") return { status: 403 };
    return { status: 200, context: { ...(result?.context ?? {}), principalId: result?.principalId, integrationLatency: 0 } };
  } catch (err) {
    return (err as Error)?.message === "Unauthorized" ? { status: 401 } : { status: 500, error: err };
  }
}

export function connectEvent(stage: StageInfo, upgrade: UpgradeRequest): WebSocketEvent {
  return {
    headers: upgrade.headers,
    multiValueHeaders: upgrade.multiHeaders,
    queryStringParameters: upgrade.query,
    multiValueQueryStringParameters: upgrade.multiQuery,
    requestContext: requestContext(stage, upgrade.identity, "$connect", "CONNECT"),
    isBase64Encoded: false,
  } as unknown as WebSocketEvent;
}

/**
 * The `Sec-WebSocket-Protocol` of the handshake's answer: what `$connect` returned in that
 * header, else none. API Gateway never picks a protocol itself (unlike `ws`, which by default
 * names the client's first): the `$connect` integration must return the header, with one of
 * the offered protocols as its value ("Set up a $connect route that requires a WebSocket
 * subprotocol", https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-connect-route-subprotocol.html,
 * and the launch note https://aws.amazon.com/about-aws/whats-new/2020/06/amazon-api-gateway-allows-subprotocols-on-websocket-api-connection/).
 * Without it the answer names no protocol and a client that offered some fails the handshake
 * on its side: Chrome's "Sent non-empty 'Sec-WebSocket-Protocol' header but no response was
 * received", ws's "Server sent no subprotocol" (reports against deployed APIs:
 * github.com/michalkvasnicak/aws-lambda-graphql/pull/84, github.com/localstack/localstack/issues/6521;
 * serverless-offline#1176 is an emulator that, like ws's default, answered on its own and so
 * hid the bug). The value is passed as returned: one the client did not offer fails on the
 * client's side as it would on AWS. One that is not a token cannot go on the wire and is dropped.
 */
export function answeredProtocol(result: WebSocketResult): string | undefined {
  const value = headerValue(result.headers, "sec-websocket-protocol");
  return value !== undefined && isHttpToken(value) ? value : undefined;
}

export function messageEvent(stage: StageInfo, connection: ConnectionIdentity, routeKey: string, body: string): WebSocketEvent {
  return { body, isBase64Encoded: false, requestContext: requestContext(stage, connection, routeKey, "MESSAGE") } as unknown as WebSocketEvent;
}

export function disconnectEvent(stage: StageInfo, connection: ConnectionIdentity, close?: { code: number; reason: string }): WebSocketEvent {
  const context = requestContext(stage, connection, "$disconnect", "DISCONNECT");
  return {
    requestContext: close ? { ...context, disconnectStatusCode: close.code, disconnectReason: close.reason } : context,
    isBase64Encoded: false,
  } as unknown as WebSocketEvent;
}

/** Route keys are looked up as own keys only: `constructor` or `__proto__` are plain unknown actions. */
export function routeFor(routes: Routes, key: string): RouteHandler | undefined {
  return Object.hasOwn(routes, key) ? routes[key] : undefined;
}

/**
 * `$request.body.action` when it names a route (never a `$` one), else `$default`, as API
 * Gateway does. `answeredByGateway`: route keys with no handler (API Gateway answers them).
 */
export function selectRoute(routes: Routes, body: string, answeredByGateway: ReadonlySet<string> = new Set()): string {
  try {
    const parsed: unknown = JSON.parse(body);
    const action = typeof parsed === "object" && parsed !== null ? (parsed as { action?: unknown }).action : undefined;
    if (typeof action === "string" && !action.startsWith("$") && (routeFor(routes, action) || answeredByGateway.has(action))) return action;
  } catch {
    // not JSON: $default, as API Gateway does
  }
  return "$default";
}
