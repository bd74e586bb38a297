/**
 * The whole hub on one machine, no AWS account: dynalite (DynamoDB), fauxqs (SQS), an API
 * Gateway WebSocket emulator calling the real handler modules, and an SQS poller playing
 * the event source mapping.
 *
 * ```ts
 * import { startLocalHub } from "notification-hub/local";
 * const hub = await startLocalHub({ port: 0 });
 * const token = await hub.notifier.issueToken({ userId: "u1", roomId: "r1" });
 * const ws = new WebSocket(`${hub.websocketUrl}?token=${token}`);
 * ```
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as path from "path";
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { dynamoClient, sqsClient } from "../core/aws";
import type { HubEvent } from "../core/hubEvents";
import { createLogger, describeError, type Logger, type LogLevel } from "../core/log";
import { authTable, budgetTable, connectionsTable, createTableInput, DEFAULT_RETENTION_HOURS, presenceTable, streamsTable, type TableSchema } from "../core/schema";
import { GATEWAY_ANSWERED_ROUTE_KEYS, KEEP_ALIVE_ROUTE_KEY } from "../core/keepAlive";
import { touchConnection } from "../core/tables";
import { assertPeersInstalled } from "../core/peers";
import { checkBatchSize, checkLargeRoomChunkSize, checkMaxReceiveCount, checkMaxRoomsPerConnection, checkPostsPerSecond, checkPresence, checkRetentionHours, checkWholeNumber, DEFAULT_POSTS_PER_SECOND, type PresenceOptions } from "../core/hubOptions";
import { PRESENCE_DEFAULTS } from "../core/presence";
import { createNotifier, type Notifier } from "../server";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { checkDropDisconnect, createApiGateway, dropShare, urlHost, type AccountUsage, type ApiGatewayLimitOptions } from "./apiGateway";
import { newDevCredentials, type DevCredentials } from "./sigv4";
import { makePrivateDir, writePrivateFile } from "./privateFiles";
import { handleClientModule } from "./clientModules";
import { handleDemoRequest } from "./demo";
import { createHubConsole } from "./console";
import { startEventBridge, type BusEvent, type EventBridgeStandIn } from "./eventBridge";
import { checkEventsUrl, startEventsForwarder } from "./eventsForwarder";
import { loadDynalite } from "./dynalite";
import { loadFauxqs } from "./fauxqs";
import { createLocalHandlers, localEnvironment } from "./handlers";
import { startDeliverPool } from "./deliverPool";
import { HubEventBus } from "./hubEventBus";
import { startFaultProxy } from "./faultProxy";
import { startSqsPoller } from "./sqsPoller";
import { hookIdentity, testHooksOf } from "./testHooks";
import { writeStateFile } from "./stateFile";

export { findLocalHub, listHubs, locateLocalHub, LocalHubNotFound, type HubState, type RunningHub } from "./stateFile";
export type { BusEvent } from "./eventBridge";

export interface LocalHubOptions {
  /** HTTP/WebSocket port; 0 picks a free one. Default 8787. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1 (the demo endpoints issue tokens to anyone who asks). */
  host?: string;
  /** Stage, the WebSocket URL's path. Default "local". */
  stage?: string;
  /** Persist tables and the dev secrets here; default: in memory. Queued messages are always in memory. */
  dataDir?: string;
  /** Signing secret; default: random per start, or kept in dataDir. */
  jwtSecret?: string;
  /** Issuer passcode; default: random per start, or kept in dataDir. */
  passcode?: string;
  /** Whether the sendMessage route exists. Default true. */
  allowClientMessages?: boolean;
  /**
   * API Gateway limits, shorter for tests. `account`: the account's budget in the Region,
   * default AWS's (10,000 `@connections` requests per second with a burst of 5,000, 500 new
   * connections per second): past it `@connections` answers 429 and handshakes are refused with 429.
   */
  limits?: ApiGatewayLimitOptions;
  queue?: {
    /** Default 30 s (Lambda's 6 × 5 s would be unhandy locally). */
    visibilityTimeoutSeconds?: number;
    /** Default 5; 1 to 1000 (SQS's range: a test may dead-letter on the first failed receive; a deployed hub needs at least 5). */
    maxReceiveCount?: number;
    /**
     * Seconds before a record the deliver handler reported failed is received again. Default 2
     * (at most the visibility timeout): a bad record reaches the dead-letter queue about 10 s after
     * it was sent, its retries visible in the console's Messages tab on the way, instead of
     * maxReceiveCount × visibilityTimeoutSeconds (150 s), which is what a deployed hub takes (there,
     * 5 × six times the deliver timeout). A batch whose invocation threw or timed out still waits
     * the visibility timeout: it may still be running.
     */
    retryDelaySeconds?: number;
    /** Default 10; 1 to 10. */
    batchSize?: number;
    /** Concurrent pollers. Default 4. */
    concurrency?: number;
    /**
     * Concurrent pollers of the bulk queue (chunks of big rooms, the component's
     * `queue.bulkMaximumConcurrency`); with `deliverWorkers`, its own pool of this many workers.
     * 0: no bulk queue, chunks go to the notification queue (the design before it, for
     * comparison). Default: as `concurrency` (or `deliverWorkers`).
     */
    bulkConcurrency?: number;
    /** Long-poll wait. Default 2 s. */
    waitTimeSeconds?: number;
  };
  /**
   * Room streams (docs/protocol.md#room-streams): frames are kept this many hours (fractions allowed);
   * 0 turns streams off; at most 8760 (a year), as the component. Default 24.
   */
  history?: { retentionHours?: number };
  /**
   * The hub's `@connections` budget, every caller together, as the component's `delivery`
   * (10 to 100,000; default 5,000). The emulated account's own limit is `limits.account`.
   */
  delivery?: { postsPerSecond?: number };
  /** Connections one deliver call posts to before splitting the room (1 to 100,000). Default 1000. */
  largeRoomChunkSize?: number;
  /** Rooms one connection may subscribe to (1 to 1000, its user channel not counted). Default 100. */
  maxRoomsPerConnection?: number;
  /**
   * Presence (docs/protocol.md#presence), as the component's `presence`: off by default. Locally
   * `sweepSeconds`, `graceSeconds` and `keepAliveSeconds` may be fractions (tests shorten the timers).
   */
  presence?: PresenceOptions;
  /**
   * With presence on, POST each lifecycle event (docs/protocol.md#lifecycle-events) to this
   * URL, one per request, as an EventBridge API destination would (local/eventsForwarder.ts).
   */
  eventsUrl?: string;
  /**
   * The share of closes (0 to 1; default 0) whose `$disconnect` the emulated gateway never runs,
   * as API Gateway may (its `$disconnect` is best-effort): the socket closes, but the handlers
   * never hear of it, and presence's sweep must find the connection dead and end its membership
   * with reason `timed_out` (docs/protocol.md#presence). Each close draws its own lot; 1 drops
   * every one (what tests use, to count exactly). Needs presence on: without it nothing sweeps
   * what is left behind.
   */
  dropDisconnect?: number;
  /** Handler and hub log level. Default "warn". */
  logLevel?: LogLevel;
  logger?: Logger;
  /** Write endpoints and dev secrets to this file for the CLI; removed on stop. */
  stateFile?: string;
  /** Or to a file of this hub's own in this folder (`notification-hub dev` uses `.notification-hub`). */
  stateDir?: string;
  /** bcrypt cost for the convenience notifier. Default 10. */
  bcryptCost?: number;
  /**
   * Run deliver invocations in this many worker threads, each like its own Lambda execution
   * environment (own clients, own CPU time), instead of on the hub's thread. Default 0.
   */
  deliverWorkers?: number;
  // Test-only hooks (fault injection, a replacement deliver module, `$disconnect` dropped or
  // half-open connections for chosen users) are not options: see local/testing.ts.
}

export interface LocalHubInfo {
  websocketUrl: string;
  httpUrl: string;
  managementEndpoint: string;
  queueUrl: string;
  queueArn: string;
  /** The bulk queue (chunks of big rooms); absent with `queue.bulkConcurrency: 0`. */
  bulkQueueUrl?: string;
  deadLetterQueueUrl: string;
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  connectionsTableName: string;
  authTableName: string;
  /** Room streams' table (history, resume). */
  streamsTableName: string;
  /** Presence's table, when `presence` is on. */
  presenceTableName?: string;
  /** The `@connections` budget's windows (core/budget.ts). */
  budgetTableName: string;
  /** The bus of lifecycle events, when `presence` is on (the component's `eventBusName`). */
  eventBusName?: string;
  /** The EventBridge stand-in (PutEvents, local/eventBridge.ts), when `presence` is on. */
  eventsEndpoint?: string;
  jwtSecret: string;
  passcode: string;
  stage: string;
  region: string;
  /**
   * Dev credentials made for this run: the handlers sign their @connections calls with them
   * and the emulator verifies every signature, as AWS does. Pass them to clients you build
   * (`managementClient(endpoint, { credentials })`, `createNotifier({ credentials })`).
   */
  credentials: DevCredentials;
}

export interface LocalHub extends LocalHubInfo {
  /** An app-backend SDK already pointed at this hub. */
  notifier: Notifier;
  /**
   * Calls `listener` with every hub event its handlers report (core/hubEvents.ts: refused and
   * allowed handshakes, connects, disconnects, each queue record's outcome, failed and 410
   * posts), deliver worker threads included; returns what stops it. What the developer
   * console reads; for tests, instead of reading log lines.
   */
  onEvent(listener: (event: HubEvent) => void): () => void;
  /**
   * Calls `listener` with every lifecycle event the bus takes (presence on), as a rule's target
   * gets it; returns what stops it. Nothing with presence off.
   */
  onLifecycleEvent(listener: (event: BusEvent) => void): () => void;
  /**
   * What the emulated account budget admitted and refused since start: `@connections`
   * requests (every caller) and handshakes, each with the busiest second.
   */
  accountUsage(): AccountUsage;
  /** Restart nothing, just stop: closes sockets (each runs $disconnect), the poller and both servers. */
  stop(): Promise<void>;
}

export const LOCAL_REGION = "us-east-1";
export const DEFAULT_LOCAL_PORT = 8787;
/** See LocalHubOptions.queue.retryDelaySeconds. */
export const DEFAULT_RETRY_DELAY_SECONDS = 2;

async function startDynalite(dataDir: string | undefined): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const dynalite = loadDynalite();
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(dataDir ? { path: path.join(dataDir, "dynamodb") } : {}) });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * fauxqs's own startFauxqs listens on every interface whatever its `host` option says (that
 * option only names queue URLs), and serves queued bodies without auth: build its app and
 * listen on loopback ourselves.
 */
async function startFauxqsServer(): Promise<{ address: string; stop(): Promise<void> }> {
  const { buildApp } = await loadFauxqs();
  const app = buildApp({ logger: false, host: "localhost", defaultRegion: LOCAL_REGION });
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  return { address, stop: () => app.close() };
}

async function createQueue(sqsEndpoint: string, name: string, attributes: Record<string, string> = {}) {
  const sqs = sqsClient({ endpoint: sqsEndpoint, region: LOCAL_REGION });
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!QueueUrl) throw new Error(`fauxqs created no queue ${name}`);
  return { queueUrl: QueueUrl, queueArn: `arn:aws:sqs:${LOCAL_REGION}:000000000000:${name}` };
}

/** Creates the tables from the shared schema if missing, and waits until they are ACTIVE. */
export async function ensureTables(db: DynamoDBClient, names: { connections: string; auth: string; streams?: string; presence?: string; budget?: string }): Promise<void> {
  const tables: [string, TableSchema][] = [
    [names.connections, connectionsTable],
    [names.auth, authTable],
  ];
  if (names.streams) tables.push([names.streams, streamsTable]);
  if (names.presence) tables.push([names.presence, presenceTable]);
  if (names.budget) tables.push([names.budget, budgetTable]);
  for (const [name, schema] of tables) {
    try {
      await db.send(new CreateTableCommand(createTableInput(name, schema)));
    } catch (err) {
      if ((err as Error).name !== "ResourceInUseException") throw err; // kept from an earlier run (--data-dir)
    }
  }
  // CreateTable answers CREATING; on disk dynalite takes a moment to make the table ACTIVE.
  for (const [name] of tables) {
    for (let attempt = 0; ; attempt++) {
      const status = await db.send(new DescribeTableCommand({ TableName: name })).then(
        (r) => r.Table?.TableStatus,
        () => undefined,
      );
      if (status === "ACTIVE") break;
      if (attempt > 200) throw new Error(`table ${name} did not become ACTIVE`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Dev secrets: given, or kept in the data dir so tokens survive a restart, or fresh. */
function devSecrets(options: LocalHubOptions): { jwtSecret: string; passcode: string } {
  const fresh = () => crypto.randomBytes(32).toString("hex");
  const file = options.dataDir ? path.join(options.dataDir, "secrets.json") : undefined;
  const stored = file && fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as { jwtSecret: string; passcode: string }) : undefined;
  const secrets = { jwtSecret: options.jwtSecret ?? stored?.jwtSecret ?? fresh(), passcode: options.passcode ?? stored?.passcode ?? fresh() };
  if (file) writePrivateFile(file, JSON.stringify(secrets));
  return secrets;
}

const OWNER = "startLocalHub";

export async function startLocalHub(options: LocalHubOptions = {}): Promise<LocalHub> {
  // Optional peers of the package: a backend that uses only notification-hub/server has neither.
  assertPeersInstalled("the local hub (startLocalHub, notification-hub dev)", ["dynalite", "fauxqs"], __dirname);
  const stage = options.stage ?? "local";
  if (!/^[A-Za-z0-9_-]+$/.test(stage)) throw new Error(`startLocalHub: stage "${stage}" may only hold letters, digits, - and _`);
  const hubLog = options.logger ?? createLogger({ service: "notification-hub-local" }, undefined, options.logLevel ?? "warn");
  const names = { connections: "notification-hub-connections", auth: "notification-hub-auth", streams: "notification-hub-streams", budget: "notification-hub-budget" };
  // The component's rules (core/hubOptions.ts), checked before anything starts.
  const retentionHours = checkRetentionHours(options.history?.retentionHours ?? DEFAULT_RETENTION_HOURS, OWNER);
  // The table is named even with streams off (retention 0), as the component does: idempotency keys keep their claims there.
  const streams = { streamsTable: names.streams, retentionHours };
  const presence = checkPresence(options.presence, OWNER, PRESENCE_DEFAULTS);
  const presenceTableName = "notification-hub-presence";
  const eventBusName = "notification-hub-events";
  if (options.eventsUrl !== undefined) {
    checkEventsUrl(options.eventsUrl, OWNER);
    if (!presence) throw new TypeError(`${OWNER}: eventsUrl needs presence on (presence: { enabled: true }): lifecycle events exist only with presence`);
  }
  const dropDisconnect = checkDropDisconnect(options.dropDisconnect ?? 0, OWNER);
  if (dropDisconnect > 0 && !presence) throw new TypeError(`${OWNER}: dropDisconnect needs presence on (presence: { enabled: true }): without presence no sweep removes the connections it leaves behind`);
  if (options.maxRoomsPerConnection !== undefined) checkMaxRoomsPerConnection(options.maxRoomsPerConnection, OWNER);
  if (options.largeRoomChunkSize !== undefined) checkLargeRoomChunkSize(options.largeRoomChunkSize, "largeRoomChunkSize", OWNER);
  const queueSettings = { visibilityTimeoutSeconds: 30, maxReceiveCount: 5, batchSize: 10, concurrency: 4, waitTimeSeconds: 2, retryDelaySeconds: DEFAULT_RETRY_DELAY_SECONDS, ...options.queue };
  const retryDelaySeconds = Math.min(queueSettings.retryDelaySeconds, queueSettings.visibilityTimeoutSeconds);
  if (!(Number.isInteger(retryDelaySeconds) && retryDelaySeconds >= 0)) throw new Error(`${OWNER}: queue.retryDelaySeconds must be a whole number of seconds, 0 or more, got ${queueSettings.retryDelaySeconds}`);
  checkBatchSize(queueSettings.batchSize, OWNER);
  checkMaxReceiveCount(queueSettings.maxReceiveCount, OWNER);
  const postsPerSecond = checkPostsPerSecond(options.delivery?.postsPerSecond ?? DEFAULT_POSTS_PER_SECOND, OWNER);
  const bulkConcurrency = checkWholeNumber(queueSettings.bulkConcurrency ?? options.deliverWorkers ?? queueSettings.concurrency, "queue.bulkConcurrency", 0, 1000, OWNER);
  if (options.dataDir) makePrivateDir(options.dataDir);
  const { jwtSecret, passcode } = devSecrets(options);
  const hooks = testHooksOf(options);

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    const dynamo = await startDynalite(options.dataDir);
    stops.push(dynamo.stop);
    const fauxqs = await startFauxqsServer();
    stops.push(() => fauxqs.stop());
    const db = dynamoClient({ endpoint: dynamo.endpoint, region: LOCAL_REGION });
    await ensureTables(db, { ...names, ...(presence ? { presence: presenceTableName } : {}) });

    const deadLetters = await createQueue(fauxqs.address, "notification-hub-dead-letters");
    const consumedQueue = (name: string) =>
      createQueue(fauxqs.address, name, {
        VisibilityTimeout: String(queueSettings.visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetters.queueArn, maxReceiveCount: String(queueSettings.maxReceiveCount) }),
      });
    const queue = await consumedQueue("notification-hub-notifications");
    // The big-room lane, as the component's: its own queue, poller and workers, the same dead-letter queue.
    const bulkQueue = bulkConcurrency > 0 ? await consumedQueue("notification-hub-bulk-notifications") : undefined;

    const credentials = newDevCredentials();
    // Lifecycle events' bus (presence on): the handlers PutEvents to it as to EventBridge.
    let bus: EventBridgeStandIn | undefined;
    if (presence) {
      const standIn = await startEventBridge({ buses: [eventBusName], region: LOCAL_REGION, credentials });
      stops.push(standIn.stop);
      bus = standIn;
    }

    const server = http.createServer();
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? DEFAULT_LOCAL_PORT, options.host ?? "127.0.0.1", () => resolve());
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections(); // keep-alive clients of @connections would hold it open
        }),
    );
    const { port } = server.address() as AddressInfo;
    const host = urlHost(options.host && options.host !== "0.0.0.0" && options.host !== "::" ? options.host : "127.0.0.1");
    const info: LocalHubInfo = {
      websocketUrl: `ws://${host}:${port}/${stage}`,
      httpUrl: `http://${host}:${port}/`,
      managementEndpoint: `http://${host}:${port}/${stage}`,
      queueUrl: queue.queueUrl,
      queueArn: queue.queueArn,
      ...(bulkQueue ? { bulkQueueUrl: bulkQueue.queueUrl } : {}),
      deadLetterQueueUrl: deadLetters.queueUrl,
      dynamodbEndpoint: dynamo.endpoint,
      sqsEndpoint: fauxqs.address,
      connectionsTableName: names.connections,
      authTableName: names.auth,
      streamsTableName: names.streams,
      ...(presence ? { presenceTableName } : {}),
      budgetTableName: names.budget,
      ...(bus ? { eventBusName, eventsEndpoint: bus.endpoint } : {}),
      jwtSecret,
      passcode,
      stage,
      region: LOCAL_REGION,
      credentials,
    };
    // The handlers' events (worker threads' too) go to the bus; the developer console listens
    // to it and to the gateway (local/console.ts).
    const events = new HubEventBus();
    /** This hub's state file, once written: its HTTP server names it for `--hub PORT` (local/stateFile.ts). */
    let stateFile: string | undefined;
    const hubConsole = createHubConsole({
      info,
      retentionHours,
      dropDisconnect,
      log: hubLog,
      stateFile: () => stateFile,
      queue: { maxReceiveCount: queueSettings.maxReceiveCount, retryDelaySeconds },
    });
    events.subscribe(hubConsole.observe);
    if (bus) {
      bus.onEvent((event) => hubConsole.observeLifecycle(event));
      if (options.eventsUrl !== undefined) {
        const forwarder = startEventsForwarder(options.eventsUrl, hubLog);
        bus.onEvent((event) => forwarder.send(event));
        // Stopped after the sockets close (stops run in reverse): their last events still go, within 2 s.
        stops.unshift(async () => {
          await Promise.race([forwarder.idle(), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
          await forwarder.stop();
        });
      }
    }
    const log = hubLog;

    // With fault injection, the handlers (not the SDK or the tests) reach DynamoDB through a proxy that can be cut.
    const proxy = hooks.faultInjection ? await startFaultProxy({ host: "127.0.0.1", port: Number(new URL(dynamo.endpoint).port) }) : undefined;
    if (proxy) stops.push(proxy.stop);
    const handlerConfig = {
      dynamodbEndpoint: proxy?.endpoint ?? info.dynamodbEndpoint,
      sqsEndpoint: info.sqsEndpoint,
      managementEndpoint: info.managementEndpoint,
      queueUrl: info.queueUrl,
      bulkQueueUrl: info.bulkQueueUrl,
      budget: { table: names.budget, postsPerSecond },
      connectionsTable: names.connections,
      authTable: names.auth,
      jwtSecret,
      allowClientMessages: options.allowClientMessages ?? true,
      largeRoomChunkSize: options.largeRoomChunkSize,
      maxRoomsPerConnection: options.maxRoomsPerConnection,
      streams,
      ...(presence ? { presence: { presenceTable: presenceTableName, ...presence } } : {}),
      ...(bus ? { events: { eventBusName, endpoint: bus.endpoint } } : {}),
    };
    const handlers = createLocalHandlers({ ...handlerConfig, credentials, log, observe: events.emit });
    const api = createApiGateway(server, {
      stage,
      apiId: "local",
      region: LOCAL_REGION,
      authorizer: handlers.authorizer,
      routes: handlers.routes,
      // The deployed API's keep-alive route: no handler, no answer (components/hub/webSocketApi.ts);
      // with presence on, its integration writes seen_at on the connection's row, as on AWS.
      answeredByGateway: GATEWAY_ANSWERED_ROUTE_KEYS,
      ...(presence ? { gatewayIntegrations: { [KEEP_ALIVE_ROUTE_KEY]: (connectionId: string, at: number) => touchConnection(db, names.connections, connectionId, at) } } : {}),
      // A test's own choice of connections wins over the share.
      ...(hooks.dropDisconnect
        ? { dropDisconnect: (c: { id: string; authorizer: Record<string, unknown> }) => hooks.dropDisconnect!(hookIdentity(c)) }
        : dropDisconnect > 0
          ? { dropDisconnect: dropShare(dropDisconnect) }
          : {}),
      ...(hooks.halfOpen ? { halfOpen: (c: { id: string; authorizer: Record<string, unknown> }) => hooks.halfOpen!(hookIdentity(c)) } : {}),
      limits: options.limits,
      credentials,
      log,
      observer: hubConsole.observer,
    });
    stops.push(() => api.close());

    const notifier = createNotifier({
      queueUrl: info.queueUrl,
      authTableName: names.auth,
      connectionsTableName: names.connections,
      streamsTableName: names.streams,
      ...(presence ? { presenceTableName } : {}),
      managementEndpoint: info.managementEndpoint,
      jwtSecret,
      passcode,
      region: LOCAL_REGION,
      endpoints: { sqs: info.sqsEndpoint, dynamodb: info.dynamodbEndpoint },
      ...(presence ? { presenceTableName } : {}),
      credentials,
      bcryptCost: options.bcryptCost,
      // dynalite updates its indexes with the item: nothing to wait for.
      revokeRecheckMs: 0,
    });
    server.on("request", (request: http.IncomingMessage, response: http.ServerResponse) => {
      // Whatever the request, it is answered and the hub stays up (its queue lives in memory).
      request.on("error", () => undefined);
      try {
        if (api.handleManagement(request, response)) return;
        if (hubConsole.handle(request, response)) return;
        if (handleClientModule(request, response)) return;
        handleDemoRequest(request, response, { info, notifier, log, eventMembersLimit: presence?.eventMembersLimit });
      } catch (err) {
        log.error("request failed", describeError(err));
        if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ message: "Internal server error" }));
      }
    });

    hubConsole.attach({ api, notifier });
    // One pool and one poller per queue, like one event source mapping each with its own concurrency.
    const consumer = (target: { queueUrl: string; queueArn: string }, size: number) => {
      const pool = options.deliverWorkers
        ? startDeliverPool(size, { env: localEnvironment(handlerConfig), credentials, deliverModule: hooks.deliverModule }, log, { observe: events.emit })
        : undefined;
      if (pool) stops.push(pool.stop);
      const poller = startSqsPoller({
        sqs: sqsClient({ endpoint: info.sqsEndpoint, region: LOCAL_REGION }),
        queueUrl: target.queueUrl,
        queueArn: target.queueArn,
        region: LOCAL_REGION,
        handler: pool ? pool.invoke : handlers.deliver,
        batchSize: queueSettings.batchSize,
        concurrency: size,
        waitTimeSeconds: queueSettings.waitTimeSeconds,
        retryDelaySeconds,
        log,
      });
      // Stop order (reversed): pollers, then sockets, then servers.
      stops.push(() => poller.stop());
    };
    consumer(queue, options.deliverWorkers || queueSettings.concurrency);
    if (bulkQueue) consumer(bulkQueue, bulkConcurrency);
    // Presence's schedule: EventBridge on AWS, a timer here; one sweep at a time.
    if (handlers.sweep && presence) {
      const sweep = handlers.sweep;
      let running: Promise<unknown> | undefined;
      const timer = setInterval(() => {
        running ??= sweep()
          .catch((err) => log.warn("sweep failed", describeError(err)))
          .finally(() => (running = undefined));
      }, presence.sweepSeconds * 1000);
      timer.unref();
      stops.push(async () => {
        clearInterval(timer);
        await running;
      });
    }

    if (options.stateFile || options.stateDir) {
      const written = writeStateFile({ file: options.stateFile, dir: options.stateDir }, info);
      stateFile = written.file;
      stops.unshift(written.remove);
    }

    let stopping: Promise<void> | undefined;
    if (proxy) hooks.faults = { cutDynamo: () => proxy.cut(), restoreDynamo: () => proxy.restore(), failPosts: (id, status, times) => api.failPosts(id, status, times) };
    return {
      ...info,
      notifier,
      onEvent: (listener) => events.subscribe(listener),
      onLifecycleEvent: (listener) => (bus ? bus.onEvent((event) => listener(event)) : () => undefined),
      accountUsage: api.accountUsage,
      stop: () => (stopping ??= stopAll()),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
