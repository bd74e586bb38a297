/**
 * An API Gateway WebSocket API on this machine: `$connect` with a REQUEST authorizer,
 * route selection on `$request.body.action`, `$disconnect` on every close, the
 * `@connections` API (POST, GET, DELETE), and API Gateway's limits. It calls the same
 * handler modules the Lambdas run, with event shapes as AWS documents them.
 */
import * as crypto from "crypto";
import * as http from "http";
import type { Duplex } from "stream";
import { WebSocket, WebSocketServer } from "ws";
import type { APIGatewayRequestAuthorizerEvent } from "aws-lambda";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { describeError, type Logger } from "../core/log";
import { MAX_MESSAGE_BYTES } from "../core/messages";
import type { AuthorizerHandler } from "../handlers/authorizer";
import { verifySigV4, type DevCredentials } from "./sigv4";

type RouteHandler = (event: WebSocketEvent) => Promise<WebSocketResult>;

export interface ApiGatewayLimits {
  /** Close after this long without a client message. API Gateway: 10 minutes. */
  idleTimeoutMs: number;
  /** Close after this long, whatever happens. API Gateway: 2 hours. */
  maxConnectionMs: number;
  /** Whole message, across frames. API Gateway: 128 KB. */
  maxMessageBytes: number;
  /** One frame. API Gateway: 32 KB. */
  maxFrameBytes: number;
  /** Stage throttling of client messages (token bucket), as the component sets it. */
  throttle: { burstLimit: number; rateLimit: number };
  /**
   * Bytes posted to one connection but not yet taken by its client. Past this the client
   * is not reading: the connection is closed (its posts answer 410) so it never holds up
   * posts to anyone else, as a gateway must.
   */
  maxUnsentBytes: number;
}

export const API_GATEWAY_LIMITS: ApiGatewayLimits = {
  idleTimeoutMs: 10 * 60_000,
  maxConnectionMs: 2 * 60 * 60_000,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxFrameBytes: 32 * 1024,
  throttle: { burstLimit: 500, rateLimit: 1000 },
  maxUnsentBytes: 1024 * 1024,
};

export interface ApiGatewayOptions {
  stage: string;
  apiId: string;
  region: string;
  authorizer: AuthorizerHandler;
  routes: { $connect: RouteHandler; $disconnect: RouteHandler; $default: RouteHandler } & Record<string, RouteHandler | undefined>;
  limits?: Partial<ApiGatewayLimits>;
  /** The hub's dev credentials: `@connections` calls must be SigV4-signed with them. */
  credentials: DevCredentials;
  log: Logger;
}

interface Connection {
  id: string;
  socket?: WebSocket;
  connectedAt: number;
  lastActiveAt: number;
  sourceIp: string;
  userAgent: string;
  authorizer: Record<string, unknown>;
  timers: NodeJS.Timeout[];
  closing: boolean;
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

function refuseUpgrade(socket: Duplex, status: number): void {
  const message = STATUS_TEXT[status] ?? http.STATUS_CODES[status] ?? "Error";
  const body = JSON.stringify({ message });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** API Gateway's connection ids: 10 random bytes, base64. */
function newConnectionId(): string {
  return crypto.randomBytes(10).toString("base64");
}

/**
 * Watches the raw client→server byte stream for frame headers, since `ws` only reports
 * whole messages; API Gateway closes a connection whose frame exceeds 32 KB with 1009.
 */
function frameSizeGuard(maxFrameBytes: number, onOversize: () => void): (chunk: Buffer) => void {
  let header = Buffer.alloc(0);
  let payloadLeft = 0;
  let tripped = false;
  return (chunk) => {
    let data = chunk;
    while (data.length > 0 && !tripped) {
      if (payloadLeft > 0) {
        const skipped = Math.min(payloadLeft, data.length);
        payloadLeft -= skipped;
        data = data.subarray(skipped);
        continue;
      }
      header = Buffer.concat([header, data]);
      data = Buffer.alloc(0);
      if (header.length < 2) return;
      let length = header[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (header.length < 4) return;
        length = header.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (header.length < 10) return;
        length = Number(header.readBigUInt64BE(2));
        offset = 10;
      }
      if (header[1] & 0x80) offset += 4; // masking key
      if (header.length < offset) return;
      if (length > maxFrameBytes) {
        tripped = true;
        onOversize();
        return;
      }
      data = header.subarray(offset);
      header = Buffer.alloc(0);
      payloadLeft = length;
    }
  };
}

export function createApiGateway(server: http.Server, options: ApiGatewayOptions) {
  const limits: ApiGatewayLimits = { ...API_GATEWAY_LIMITS, ...options.limits };
  const connections = new Map<string, Connection>();
  const pending = new Set<Promise<unknown>>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxMessageBytes, perMessageDeflate: false });
  const log = options.log.child({ component: "api-gateway" });
  /** Injected @connections faults (status, remaining count) per connection id: tests only. */
  const postFaults = new Map<string, { status: 429 | 500; times: number }>();
  // The stage's token bucket: a flood from one client is throttled before it reaches a Lambda.
  const bucket = { tokens: limits.throttle.burstLimit, at: Date.now() };
  const takeToken = (): boolean => {
    const now = Date.now();
    bucket.tokens = Math.min(limits.throttle.burstLimit, bucket.tokens + ((now - bucket.at) / 1000) * limits.throttle.rateLimit);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  };
  const domainName = () => {
    const address = server.address();
    if (typeof address !== "object" || !address) return "127.0.0.1";
    const host = address.address === "0.0.0.0" || address.address === "::" ? "127.0.0.1" : address.address;
    return `${urlHost(host)}:${address.port}`;
  };
  /** Route keys are looked up as own keys only: `constructor` or `__proto__` are plain unknown actions. */
  const routeFor = (key: string): RouteHandler | undefined => (Object.hasOwn(options.routes, key) ? options.routes[key] : undefined);

  /** Runs a handler like Lambda would: an exception is a 500, never a crash of the hub. */
  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => undefined);
    return promise;
  };

  function requestContext(connection: Connection, routeKey: string, eventType: "CONNECT" | "MESSAGE" | "DISCONNECT") {
    const now = Date.now();
    return {
      routeKey,
      eventType,
      messageId: eventType === "MESSAGE" ? crypto.randomBytes(10).toString("base64") : undefined,
      extendedRequestId: crypto.randomBytes(10).toString("base64"),
      requestTime: new Date(now).toUTCString(),
      messageDirection: "IN" as const,
      stage: options.stage,
      connectedAt: connection.connectedAt,
      requestTimeEpoch: now,
      identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
      requestId: crypto.randomBytes(10).toString("base64"),
      domainName: domainName(),
      connectionId: connection.id,
      apiId: options.apiId,
      authorizer: connection.authorizer,
    };
  }

  async function runRoute(routeKey: string, connection: Connection, event: Partial<WebSocketEvent>): Promise<WebSocketResult> {
    const handler = routeFor(routeKey) ?? options.routes.$default;
    try {
      return await track(handler(event as WebSocketEvent));
    } catch (err) {
      log.error("route handler threw", { route: routeKey, connection_id: connection.id, ...describeError(err) });
      return { statusCode: 500 };
    }
  }

  function selectRoute(body: string): string {
    try {
      const parsed: unknown = JSON.parse(body);
      const action = typeof parsed === "object" && parsed !== null ? (parsed as { action?: unknown }).action : undefined;
      if (typeof action === "string" && !action.startsWith("$") && routeFor(action)) return action;
    } catch {
      // not JSON: $default, as API Gateway does
    }
    return "$default";
  }

  function closeConnection(connection: Connection, code: number, reason: string): void {
    if (connection.closing) return;
    connection.closing = true;
    connection.socket?.close(code, reason);
    // A peer that never answers the close handshake is cut off, as API Gateway would.
    setTimeout(() => connection.socket?.terminate(), 2_000).unref();
  }

  function resetIdleTimer(connection: Connection): void {
    connection.lastActiveAt = Date.now();
    clearTimeout(connection.timers[0]);
    connection.timers[0] = setTimeout(() => closeConnection(connection, 1001, "Going away"), limits.idleTimeoutMs);
  }

  async function handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const target = splitTarget(request.url);
    if (!target) {
      refuseUpgrade(socket, 400);
      return;
    }
    if (target.path !== `/${options.stage}` && target.path !== `/${options.stage}/`) {
      refuseUpgrade(socket, 404);
      return;
    }
    // Null-prototype maps: a parameter named __proto__ or constructor is just a parameter.
    const query: Record<string, string> = Object.create(null);
    const multiQuery: Record<string, string[]> = Object.create(null);
    for (const [key, value] of target.query) {
      query[key] = value;
      (multiQuery[key] ??= []).push(value);
    }
    const headers: Record<string, string> = Object.create(null);
    for (const [key, value] of Object.entries(request.headers)) if (typeof value === "string") headers[key] = value;
    const connection: Connection = {
      id: newConnectionId(),
      connectedAt: Date.now(),
      lastActiveAt: Date.now(),
      sourceIp: request.socket.remoteAddress?.replace(/^::ffff:/, "") ?? "127.0.0.1",
      userAgent: headers["user-agent"] ?? "",
      authorizer: {},
      timers: [],
      closing: false,
    };
    // The identity source is route.request.querystring.token: without it API Gateway answers 401 itself.
    if (!query.token) {
      refuseUpgrade(socket, 401);
      return;
    }

    const context = requestContext(connection, "$connect", "CONNECT");
    const authorizerEvent = {
      type: "REQUEST",
      methodArn: `arn:aws:execute-api:${options.region}:000000000000:${options.apiId}/${options.stage}/$connect`,
      headers,
      multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
      queryStringParameters: query,
      multiValueQueryStringParameters: multiQuery,
      stageVariables: {},
      requestContext: { ...context, authorizer: undefined },
    } as unknown as APIGatewayRequestAuthorizerEvent;
    let status = 200;
    try {
      const result = await track(options.authorizer(authorizerEvent));
      const statement = result?.policyDocument?.Statement?.[0] as { Effect?: string } | undefined;
      if (statement?.Effect !== "Allow") status = 403;
      else connection.authorizer = { ...(result.context ?? {}), principalId: result.principalId, integrationLatency: 0 };
    } catch (err) {
      status = (err as Error)?.message === "Unauthorized" ? 401 : 500;
      if (status === 500) log.error("authorizer failed", describeError(err));
    }
    if (status !== 200) {
      refuseUpgrade(socket, status);
      return;
    }

    const connectResult = await runRoute("$connect", connection, {
      headers,
      multiValueHeaders: undefined,
      queryStringParameters: query,
      requestContext: requestContext(connection, "$connect", "CONNECT"),
      isBase64Encoded: false,
    } as unknown as WebSocketEvent);
    if (connectResult.statusCode < 200 || connectResult.statusCode > 299) {
      refuseUpgrade(socket, connectResult.statusCode);
      return;
    }
    if (socket.destroyed) {
      // The client left while we were connecting: API Gateway still runs $disconnect.
      await runRoute("$disconnect", connection, { requestContext: requestContext(connection, "$disconnect", "DISCONNECT"), isBase64Encoded: false } as unknown as WebSocketEvent);
      return;
    }

    // The guard goes on after ws's own listener: a first frame sent with the upgrade request
    // (in `head`) is put back on the socket by ws and would be emitted, synchronously, to
    // whichever data listeners exist at that moment; with only the guard there it was lost.
    wss.handleUpgrade(request, socket, head, (ws) => {
      socket.on("data", frameSizeGuard(limits.maxFrameBytes, () => closeConnection(connection, 1009, "Frame too big")));
      attach(connection, ws);
    });
  }

  function attach(connection: Connection, ws: WebSocket): void {
    connection.socket = ws;
    connections.set(connection.id, connection);
    resetIdleTimer(connection);
    connection.timers[1] = setTimeout(() => closeConnection(connection, 1001, "Going away"), limits.maxConnectionMs);
    log.debug("connection opened", { connection_id: connection.id });

    ws.on("ping", () => resetIdleTimer(connection));
    ws.on("message", (data, isBinary) => {
      if (connection.closing) return;
      if (isBinary) {
        closeConnection(connection, 1003, "Binary frames are not supported");
        return;
      }
      resetIdleTimer(connection);
      if (!takeToken()) {
        // What API Gateway answers a throttled message with; no route runs.
        ws.send(JSON.stringify({ message: "Too Many Requests", connectionId: connection.id, requestId: crypto.randomBytes(10).toString("base64") }));
        return;
      }
      const body = Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.concat(data as Buffer[]).toString("utf8");
      const routeKey = selectRoute(body);
      void runRoute(routeKey, connection, { body, isBase64Encoded: false, requestContext: requestContext(connection, routeKey, "MESSAGE") } as unknown as WebSocketEvent);
    });
    ws.on("error", (err) => log.debug("socket error", { connection_id: connection.id, ...describeError(err) }));
    ws.on("close", (code, reason) => {
      connection.timers.forEach(clearTimeout);
      connections.delete(connection.id);
      const context = { ...requestContext(connection, "$disconnect", "DISCONNECT"), disconnectStatusCode: code, disconnectReason: reason.toString() };
      void runRoute("$disconnect", connection, { requestContext: context, isBase64Encoded: false } as unknown as WebSocketEvent);
    });
  }

  server.on("upgrade", (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => undefined);
    handleUpgrade(request, socket, head).catch((err: unknown) => {
      log.error("upgrade failed", describeError(err));
      if (!socket.destroyed) refuseUpgrade(socket, 500);
    });
  });

  /**
   * Posts a frame to a connection the way a gateway does: accepted at once into the
   * connection's send buffer, never waiting for the client to read it. A client that lets
   * more than `maxUnsentBytes` pile up is cut off, and its posts answer 410.
   */
  function postFrame(connection: Connection, socket: WebSocket, body: Buffer): boolean {
    if (socket.bufferedAmount + body.length > limits.maxUnsentBytes) {
      log.warn("slow consumer closed", { connection_id: connection.id, unsent_bytes: socket.bufferedAmount });
      connection.closing = true;
      // The close handshake could not get through a full buffer: drop the socket.
      socket.terminate();
      return false;
    }
    socket.send(body.toString("utf8"), { binary: false }, (err) => {
      if (err) log.debug("post not written", { connection_id: connection.id, ...describeError(err) });
    });
    return true;
  }

  /** `/{stage}/@connections/{id}`: returns false when the request is not for this API. */
  function handleManagement(request: http.IncomingMessage, response: http.ServerResponse): boolean {
    const target = splitTarget(request.url);
    const match = target ? /^\/([^/]+)\/@connections\/([^/?]+)\/?$/.exec(target.path) : null;
    if (!match || match[1] !== options.stage) return false;
    const reply = (status: number, body?: object, errorType?: string) => {
      if (response.headersSent) return;
      response.writeHead(status, { "content-type": "application/json", ...(errorType ? { "x-amzn-errortype": errorType } : {}) });
      response.end(body ? JSON.stringify(body) : undefined);
    };
    let connectionId: string;
    try {
      connectionId = decodeURIComponent(match[2]);
    } catch {
      reply(400, { message: "Invalid connection id" }, "BadRequestException");
      return true;
    }
    // Refuse what is too big before reading it: by its declared length, or once it streams past the limit.
    const limit = limits.maxMessageBytes;
    const tooLarge = () => {
      reply(413, { message: "Request entity too large" }, "PayloadTooLargeException");
      request.resume();
    };
    const declared = Number(request.headers["content-length"] ?? 0);
    if (!Number.isFinite(declared) || declared > limit) {
      tooLarge();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    request.on("data", (chunk: Buffer) => {
      if (overflow) return;
      size += chunk.length;
      if (size > limit) {
        overflow = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    request.on("error", () => undefined);
    request.on("end", () => {
      if (overflow) return;
      const body = Buffer.concat(chunks);
      void track(
        verifySigV4({ method: request.method ?? "GET", url: request.url ?? "/", headers: request.headers, body }, options.credentials).then((check) => {
          if (!check.ok) {
            reply(check.status, { message: check.message }, check.errorType);
            return;
          }
          answer(request.method ?? "", connectionId, body, reply);
        }),
      ).catch((err: unknown) => {
        log.error("@connections request failed", describeError(err));
        reply(500, { message: "Internal server error" }, "InternalServerErrorException");
      });
    });
    return true;
  }

  function answer(method: string, connectionId: string, body: Buffer, reply: (status: number, body?: object, errorType?: string) => void): void {
    const connection = connections.get(connectionId);
    const socket = connection?.socket;
    if (!connection || !socket || connection.closing || socket.readyState !== WebSocket.OPEN) {
      reply(410, { message: "Gone" }, "GoneException");
      return;
    }
    const fault = method === "POST" ? postFaults.get(connection.id) : undefined;
    if (fault && fault.times > 0) {
      fault.times--;
      reply(fault.status, { message: fault.status === 429 ? "Too Many Requests" : "Internal server error" }, fault.status === 429 ? "LimitExceededException" : "InternalServerErrorException");
      return;
    }
    switch (method) {
      case "POST":
        if (postFrame(connection, socket, body)) reply(200, {});
        else reply(410, { message: "Gone" }, "GoneException");
        return;
      case "GET":
        reply(200, {
          connectedAt: new Date(connection.connectedAt).toISOString(),
          lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
          identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
        });
        return;
      case "DELETE":
        closeConnection(connection, 1000, "Connection closed by the server");
        reply(204);
        return;
      default:
        reply(405, { message: "Method not allowed" });
    }
  }

  return {
    handleManagement,
    connections,
    /** Makes the next `times` posts to a connection fail with `status`, as a throttled or failing API Gateway would. */
    failPosts(connectionId: string, status: 429 | 500, times: number): void {
      postFaults.set(connectionId, { status, times });
    },
    /** Closes every connection (each runs $disconnect) and waits for handlers in flight. */
    async close(): Promise<void> {
      for (const connection of connections.values()) closeConnection(connection, 1001, "Going away");
      const deadline = Date.now() + 5_000;
      while ((connections.size > 0 || pending.size > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      wss.close();
    },
  };
}

export type ApiGateway = ReturnType<typeof createApiGateway>;
