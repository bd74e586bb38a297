/**
 * An API Gateway WebSocket API on this machine: `$connect` with a REQUEST authorizer,
 * route selection on `$request.body.action`, `$disconnect` on every close, the
 * `@connections` API (POST, GET, DELETE), and API Gateway's limits. It calls the same
 * handler modules the Lambdas run, with event shapes as AWS documents them.
 *
 * This file ties the parts together around the live sockets: gateway/handshake.ts (upgrade,
 * authorizer, events, route selection), gateway/limits.ts (timers, throttling, sizes) and
 * gateway/connectionsApi.ts (`@connections`, also started standalone by tests).
 */
import type * as http from "http";
import type { Duplex } from "stream";
import { WebSocket, WebSocketServer } from "ws";
import type { WebSocketEvent, WebSocketResult } from "../core/events";
import { HubOptionError, type OptionOwner } from "../core/hubOptions";
import { describeError, type Logger } from "../core/log";
import type { AuthorizerHandler } from "../handlers/authorizer";
import type { DevCredentials } from "./sigv4";
import { createConnectionsEmulator, type ConnectionTarget, type FaultStatus } from "./gateway/connectionsApi";
import {
  answeredProtocol,
  authorize,
  authorizerEvent,
  connectEvent,
  disconnectEvent,
  messageEvent,
  newGatewayId,
  readUpgrade,
  refuseUpgrade,
  routeFor,
  selectRoute,
  sourceIpOf,
  urlHost,
  type ConnectionIdentity,
  type Routes,
  type StageInfo,
} from "./gateway/handshake";
import { accountBudget, connectionTimers, frameSizeGuard, resolveLimits, tokenBucket, type ApiGatewayLimitOptions, type ApiGatewayLimits } from "./gateway/limits";

export { API_GATEWAY_LIMITS, type AccountLimits, type AccountUsage, type ApiGatewayLimitOptions, type ApiGatewayLimits } from "./gateway/limits";
export { splitTarget, urlHost } from "./gateway/handshake";

export interface ApiGatewayOptions {
  stage: string;
  apiId: string;
  region: string;
  authorizer: AuthorizerHandler;
  routes: Routes;
  /**
   * Routes API Gateway answers itself, with no route response (the keep-alive,
   * core/keepAlive.ts): like any message they are throttled and restart the idle timer, and
   * then nothing runs and nothing is sent back. A key cannot also have a handler.
   */
  answeredByGateway?: readonly string[];
  /**
   * What an AWS-service integration does for a route answered by the gateway (presence's
   * keep-alive writes `seen_at`, components/hub/webSocketApi.ts buildLivenessRoute): called with
   * the connection's id and the request's time, still with no reply. A failure (no row) is
   * logged, as API Gateway's integration error would be.
   */
  gatewayIntegrations?: Readonly<Record<string, (connectionId: string, requestTimeEpoch: number) => Promise<unknown>>>;
  /**
   * When it says true for a closing connection, its `$disconnect` never runs (the socket still
   * closes), as API Gateway may do: the hub must find the connection dead on its own. The local
   * hub's `dropDisconnect` share (a coin per close), or a test's own choice (local/testHooks.ts).
   */
  dropDisconnect?: (connection: ConnectionIdentity) => boolean;
  /**
   * Tests: asked at each client frame and at the client's close; true makes the connection
   * half-open from then on, as a peer that vanished without a TCP close is to API Gateway: its
   * frames and its close never reach the gateway, `$disconnect` never runs, posts vanish, and
   * `@connections` GET answers 200 until the idle timeout (or a DELETE) ends it.
   */
  halfOpen?: (connection: ConnectionIdentity) => boolean;
  limits?: ApiGatewayLimitOptions;
  /** The hub's dev credentials: `@connections` calls must be SigV4-signed with them. */
  credentials: DevCredentials;
  log: Logger;
  /** Who watches the gateway's handshakes and closes (the developer console, local/console.ts). */
  observer?: GatewayObserver;
}

/** How a connection ended, as the gateway saw it: who closed, with which code and reason. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** "hub": the gateway closed it (@connections DELETE, idle, limits); "client": the peer did. */
  by: "hub" | "client";
  /** The gateway dropped this close's `$disconnect` (`dropDisconnect`): the connection's row stays until the hub finds it dead. */
  disconnectDropped?: true;
}

/** A refused handshake: the status the client got, and what the gateway knows of why. */
export interface RefusalInfo {
  status: number;
  /** Which step refused: before any authorizer (no token, wrong path), the authorizer, or `$connect`. */
  step: "request" | "authorizer" | "$connect";
  /** The authorizer event's requestId (the authorizer logs its deny reason with it). */
  requestId?: string;
  /** For a `$connect` refusal: the connection id the route saw (its handler logs with it). */
  connectionId?: string;
  sourceIp: string;
}

export interface GatewayObserver {
  refused?(refusal: RefusalInfo): void;
  opened?(connection: GatewayConnection): void;
  closed?(connection: GatewayConnection, close: CloseInfo): void;
}

export interface GatewayConnection extends ConnectionIdentity {
  socket?: WebSocket;
  /** When a frame last came from the client or went to it (`@connections` GET's lastActiveAt). */
  lastActiveAt: number;
  timers?: ReturnType<typeof connectionTimers>;
  closing: boolean;
  /** Set when the gateway itself closes: the $disconnect's code and reason from the peer may differ. */
  closedBy?: { code: number; reason: string };
  /** The `halfOpen` test hook said so: the gateway hears nothing more from the peer. */
  halfOpen?: boolean;
}
type Connection = GatewayConnection;

/**
 * `startLocalHub({ dropDisconnect })`: the share of closes whose `$disconnect` the emulator
 * never runs, from 0 (none, the default) to 1 (every one). A number, not a switch: API Gateway
 * drops some, so a hub must stay right with a few ghosts among real closes; tests use 1 so
 * that they count exactly.
 */
export function checkDropDisconnect(value: number, owner: OptionOwner): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new HubOptionError(`${owner}: dropDisconnect must be a number from 0 to 1 (the share of closes whose $disconnect never runs), got ${value}`);
  }
  return value;
}

/** A coin per close that comes up "drop" for `share` of them (Math.random: 1 drops every one, 0 none). */
export function dropShare(share: number): (connection: ConnectionIdentity) => boolean {
  return () => Math.random() < share;
}

export function createApiGateway(server: http.Server, options: ApiGatewayOptions) {
  const limits: ApiGatewayLimits = resolveLimits(options.limits);
  const account = accountBudget(limits.account);
  const answeredByGateway = new Set(options.answeredByGateway ?? []);
  // One integration per route, as on AWS: a key with both would hide which one the hub runs.
  for (const key of answeredByGateway) {
    if (key.startsWith("$") || routeFor(options.routes, key)) throw new Error(`route ${key} cannot be answered by the gateway: it is a handler's route or a reserved one`);
  }
  const connections = new Map<string, Connection>();
  /** Set by close(): the API is going away, new handshakes are refused (clients back off and come back to the next hub). */
  let stopping = false;
  const pending = new Set<Promise<unknown>>();
  // ws would answer with the client's first protocol on its own; API Gateway answers with
  // what $connect returned, or none (gateway/handshake.ts answeredProtocol).
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxMessageBytes, perMessageDeflate: false, handleProtocols: () => false });
  const answers = new WeakMap<http.IncomingMessage, string>();
  wss.on("headers", (headers: string[], request: http.IncomingMessage) => {
    const protocol = answers.get(request);
    if (protocol !== undefined) headers.push(`Sec-WebSocket-Protocol: ${protocol}`);
  });
  const log = options.log.child({ component: "api-gateway" });
  const takeToken = tokenBucket(limits.throttle);
  const stage: StageInfo = {
    stage: options.stage,
    apiId: options.apiId,
    region: options.region,
    domainName() {
      const address = server.address();
      if (typeof address !== "object" || !address) return "127.0.0.1";
      const host = address.address === "0.0.0.0" || address.address === "::" ? "127.0.0.1" : address.address;
      return `${urlHost(host)}:${address.port}`;
    },
  };

  /** Keeps handler work visible to close(), which waits for it. */
  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => undefined);
    return promise;
  };

  /** Runs a handler like Lambda would: an exception is a 500, never a crash of the hub. */
  async function runRoute(routeKey: string, connection: ConnectionIdentity, event: WebSocketEvent): Promise<WebSocketResult> {
    const handler = routeFor(options.routes, routeKey) ?? options.routes.$default;
    // One line per Lambda invocation AWS would bill (tests count them).
    log.debug("route handler invoked", { route: routeKey, connection_id: connection.id });
    // Lambda's context, as far as a route reads it: what is left of API Gateway's wait.
    const endsAt = Date.now() + limits.integrationTimeoutMs;
    const context = { getRemainingTimeInMillis: () => Math.max(0, endsAt - Date.now()) };
    try {
      return await track(handler(event, context));
    } catch (err) {
      log.error("route handler threw", { route: routeKey, connection_id: connection.id, ...describeError(err) });
      return { statusCode: 500 };
    }
  }

  /** An observer's fault never reaches the gateway: it is logged and forgotten. */
  function notify(call: (observer: GatewayObserver) => void): void {
    if (!options.observer) return;
    try {
      call(options.observer);
    } catch (err) {
      log.warn("gateway observer failed", describeError(err));
    }
  }

  /** Whether the peer is gone without the gateway knowing (the `halfOpen` hook, asked once it says true no more). */
  function halfOpen(connection: Connection): boolean {
    connection.halfOpen ||= options.halfOpen?.(connection) ?? false;
    return connection.halfOpen;
  }

  /** The gateway forgets a connection: its timers, its entry, the observer told. */
  function forget(connection: Connection, close: CloseInfo): void {
    connection.timers?.clear();
    connections.delete(connection.id);
    notify((o) => o.closed?.(connection, close));
  }

  function closeConnection(connection: Connection, code: number, reason: string): void {
    if (connection.closing) return;
    connection.closing = true;
    connection.closedBy = { code, reason };
    if (connection.halfOpen && connection.socket?.readyState !== WebSocket.OPEN) {
      // Its socket closed long ago unseen: the gateway's own close (idle timeout, DELETE) ends it now, without $disconnect.
      forget(connection, { code, reason, by: "hub" });
      return;
    }
    connection.socket?.close(code, reason);
    // A peer that never answers the close handshake is cut off, as API Gateway would.
    setTimeout(() => connection.socket?.terminate(), 2_000).unref();
  }

  async function handleUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const sourceIp = sourceIpOf(request);
    if (stopping) {
      refuseUpgrade(socket, 503);
      return;
    }
    const upgrade = readUpgrade(request, options.stage, sourceIp);
    if ("status" in upgrade) {
      refuseUpgrade(socket, upgrade.status);
      notify((o) => o.refused?.({ status: upgrade.status, step: "request", sourceIp }));
      return;
    }
    // The account's new-connection rate is spent before anything of the hub runs.
    if (!account.admitConnection()) {
      refuseUpgrade(socket, 429);
      notify((o) => o.refused?.({ status: 429, step: "request", sourceIp }));
      return;
    }
    const authEvent = authorizerEvent(stage, upgrade);
    const verdict = await authorize(() => track(options.authorizer(authEvent)));
    if (!("context" in verdict)) {
      if (verdict.status === 500) log.error("authorizer failed", describeError(verdict.error));
      refuseUpgrade(socket, verdict.status);
      notify((o) => o.refused?.({ status: verdict.status, step: "authorizer", requestId: authEvent.requestContext?.requestId, sourceIp }));
      return;
    }
    const connection: Connection = { ...upgrade.identity, authorizer: verdict.context, lastActiveAt: Date.now(), closing: false };

    const connectResult = await runRoute("$connect", connection, connectEvent(stage, { ...upgrade, identity: connection }));
    if (connectResult.statusCode < 200 || connectResult.statusCode > 299) {
      refuseUpgrade(socket, connectResult.statusCode);
      notify((o) => o.refused?.({ status: connectResult.statusCode, step: "$connect", connectionId: connection.id, sourceIp }));
      return;
    }
    const protocol = answeredProtocol(connectResult);
    if (protocol !== undefined) answers.set(request, protocol);
    if (socket.destroyed) {
      // The client left while we were connecting: API Gateway still runs $disconnect.
      await runRoute("$disconnect", connection, disconnectEvent(stage, connection));
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
    connection.timers = connectionTimers(limits, () => closeConnection(connection, 1001, "Going away"));
    const touch = () => {
      connection.lastActiveAt = Date.now();
      connection.timers?.touch();
    };
    log.debug("connection opened", { connection_id: connection.id });
    notify((o) => o.opened?.(connection));

    ws.on("ping", () => {
      if (!halfOpen(connection)) touch();
    });
    ws.on("message", (data, isBinary) => {
      if (connection.closing || halfOpen(connection)) return;
      if (isBinary) {
        closeConnection(connection, 1003, "Binary frames are not supported");
        return;
      }
      touch();
      if (!takeToken()) {
        // What API Gateway answers a throttled message with; no route runs.
        ws.send(JSON.stringify({ message: "Too Many Requests", connectionId: connection.id, requestId: newGatewayId() }));
        return;
      }
      const body = Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.concat(data as Buffer[]).toString("utf8");
      const routeKey = selectRoute(options.routes, body, answeredByGateway);
      if (answeredByGateway.has(routeKey)) {
        // A MOCK integration (or an AWS-service one) with no route response: accepted, nothing comes back.
        log.debug("route answered by the gateway", { route: routeKey, connection_id: connection.id });
        const integration = options.gatewayIntegrations?.[routeKey];
        if (integration) void track(integration(connection.id, Date.now())).catch((err) => log.warn("gateway integration failed", { route: routeKey, connection_id: connection.id, ...describeError(err) }));
        return;
      }
      void runRoute(routeKey, connection, messageEvent(stage, connection, routeKey, body));
    });
    ws.on("error", (err) => log.debug("socket error", { connection_id: connection.id, ...describeError(err) }));
    ws.on("close", (code, reason) => {
      // A half-open peer's close never reaches the gateway: the connection stays until the idle timeout or a DELETE.
      if (!connection.closedBy && halfOpen(connection)) return;
      // Decided before the observer hears of the close, so that it can say the $disconnect never ran.
      const dropped = !connection.halfOpen && (options.dropDisconnect?.(connection) ?? false);
      const close: CloseInfo = connection.closedBy ? { ...connection.closedBy, by: "hub" } : { code, reason: reason.toString(), by: "client" };
      forget(connection, dropped ? { ...close, disconnectDropped: true } : close);
      if (connection.halfOpen) {
        log.debug("$disconnect of a half-open connection never runs (test hook)", { connection_id: connection.id });
        return;
      }
      if (dropped) {
        log.debug("$disconnect dropped (dropDisconnect)", { connection_id: connection.id });
        return;
      }
      void runRoute("$disconnect", connection, disconnectEvent(stage, connection, { code, reason: reason.toString() }));
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
      connection.closedBy = { code: 1006, reason: `slow consumer: more than ${limits.maxUnsentBytes} bytes unsent` };
      // The close handshake could not get through a full buffer: drop the socket.
      socket.terminate();
      return false;
    }
    connection.lastActiveAt = Date.now(); // a frame went out: API Gateway's lastActiveAt counts both ways
    socket.send(body.toString("utf8"), { binary: false }, (err) => {
      if (err) log.debug("post not written", { connection_id: connection.id, ...describeError(err) });
    });
    return true;
  }

  /** A live connection as `@connections` sees it; closing or closed ones are gone. */
  function target(connectionId: string): ConnectionTarget | undefined {
    const connection = connections.get(connectionId);
    const socket = connection?.socket;
    if (!connection || !socket || connection.closing) return undefined;
    if (!connection.halfOpen && socket.readyState !== WebSocket.OPEN) return undefined;
    return {
      // A half-open peer gets nothing, and API Gateway cannot tell: the post is accepted.
      post: (body) => (connection.halfOpen ? ((connection.lastActiveAt = Date.now()), true) : postFrame(connection, socket, body)),
      describe: () => ({
        connectedAt: new Date(connection.connectedAt).toISOString(),
        lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
        identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
      }),
      close: () => closeConnection(connection, 1000, "Connection closed by the server"),
    };
  }

  const management = createConnectionsEmulator({
    stage: options.stage,
    find: target,
    credentials: options.credentials,
    maxMessageBytes: limits.maxMessageBytes,
    admit: account.admitRequest,
    track,
    log,
  });

  return {
    /** Answers `/{stage}/@connections/{id}`; false when the request is not for this API. */
    handleManagement: management.handle,
    connections,
    /** What the account budget admitted and refused so far (`@connections` requests, handshakes). */
    accountUsage: account.usage,
    /** Makes the next `times` posts to a connection fail with `status`, as a throttled or failing API Gateway would. */
    failPosts(connectionId: string, status: FaultStatus, times: number): void {
      management.fault(connectionId, { status, times, method: "POST" });
    },
    /** Closes every connection (each runs $disconnect) and waits for handlers in flight. */
    async close(): Promise<void> {
      // A client that reconnects at once (full jitter can wait 0 ms) must not land on a hub that is stopping.
      stopping = true;
      for (const connection of connections.values()) closeConnection(connection, 1001, "Going away");
      // Each $disconnect is a few DynamoDB requests (the row, then its memberships): hundreds of
      // them on a busy machine outlast 5 s, and dynalite throws at requests that reach it after
      // the hub stopped it. The wait ends as soon as they are done.
      const deadline = Date.now() + 30_000;
      while ((connections.size > 0 || pending.size > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      wss.close();
    },
  };
}

export type ApiGateway = ReturnType<typeof createApiGateway>;
