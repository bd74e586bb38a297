/**
 * AWS clients and the configuration the handlers read from their environment.
 * Clients are built once per cold start (in the handler factories), never per event.
 */
import * as http from "http";
import * as https from "https";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";

export interface ClientOptions {
  region?: string;
  /** Override endpoints (the local hub, tests). Unset means the real AWS service. */
  endpoint?: string;
  /**
   * Explicit credentials (the local hub's dev credentials, which its @connections API
   * verifies). Unset means the SDK's default chain: on Lambda, the function role's.
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * How long one request may take before it is cut (socket destroyed, TimeoutError, which the
   * SDK retries). Default DEFAULT_REQUEST_TIMEOUT_MS; a long poll needs its wait on top.
   */
  timeoutMs?: number;
}

export type Credentials = NonNullable<ClientOptions["credentials"]>;

export function regionFor(options: ClientOptions): string {
  return options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
}

/**
 * The explicit credentials to use, or undefined for the SDK's default chain. Local stand-ins
 * get something to sign with when the machine has no AWS credentials at all.
 */
export function explicitCredentials(options: ClientOptions): Credentials | undefined {
  const isLocal = options.endpoint?.startsWith("http://") ?? false;
  return options.credentials ?? (isLocal && !process.env.AWS_ACCESS_KEY_ID ? { accessKeyId: "local", secretAccessKey: "local" } : undefined);
}

/** A DynamoDB or SQS call that takes longer than this is cut; theirs answer in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Connecting to a stand-in or an AWS endpoint never takes this long unless it is gone. */
const CONNECT_TIMEOUT_MS = 3_000;

/**
 * Timeouts that really abort. The SDK's default is none: a request whose answer never comes
 * (a peer that stops reading, a half-open keep-alive socket) keeps its await pending forever,
 * and with it the deliver invocation or the local hub's queue poller that made it. And the
 * installed @smithy/node-http-handler only logs a warning at `requestTimeout` unless
 * `throwOnRequestTimeout` is set.
 */
function requestHandlerOptions(options: ClientOptions) {
  return { requestTimeout: options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, connectionTimeout: CONNECT_TIMEOUT_MS, throwOnRequestTimeout: true };
}

function sharedOptions(options: ClientOptions) {
  const credentials = explicitCredentials(options);
  return { region: regionFor(options), ...(options.endpoint ? { endpoint: options.endpoint } : {}), ...(credentials ? { credentials } : {}) };
}

const NODE_WARNING_SWITCH = "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED";

/**
 * Builds an SDK client without the SDK's 7-line notice that Node.js < 22 loses support in
 * 2027: Lambdas run Node.js 22, and on a developer's Node 20 the notice buried the output of
 * every SDK script, the CLI and the local hub. The SDK reads its documented switch once, when
 * the first client of the process is built; we set it for that moment only, so the user's
 * environment and child processes stay as they were, and a user who set it either way wins.
 */
export function withoutNodeVersionWarning<T>(build: () => T): T {
  if (process.env[NODE_WARNING_SWITCH] !== undefined) return build();
  process.env[NODE_WARNING_SWITCH] = "true";
  try {
    return build();
  } finally {
    delete process.env[NODE_WARNING_SWITCH];
  }
}

export function dynamoClient(options: ClientOptions = {}): DynamoDBClient {
  return withoutNodeVersionWarning(() => new DynamoDBClient({ ...sharedOptions(options), requestHandler: requestHandlerOptions(options) }));
}

export function sqsClient(options: ClientOptions = {}): SQSClient {
  return withoutNodeVersionWarning(() => new SQSClient({ ...sharedOptions(options), requestHandler: requestHandlerOptions(options) }));
}

/** Keep-alive sockets per @connections endpoint, shared by the SDK client and the post path. */
export const MANAGEMENT_MAX_SOCKETS = 64;
/** How long one @connections request may take before it is cut (socket destroyed). */
export const MANAGEMENT_TIMEOUT_MS = 5_000;

/**
 * The SDK's @connections client, for single calls (the local console's buttons, tests). The hub
 * and its SDK do not use it: posts, the sweep's GET/DELETE and revokeToken's DELETEs go through
 * core/connections.ts. The SDK's own retries are
 * off (callers decide), and `throwOnRequestTimeout` makes the timeout real: without it the
 * installed @smithy/node-http-handler only logs a warning and the request hangs on.
 */
export function managementClient(endpoint: string, options: ClientOptions = {}): ApiGatewayManagementApiClient {
  const agentOptions = { keepAlive: true, maxSockets: MANAGEMENT_MAX_SOCKETS };
  return withoutNodeVersionWarning(
    () =>
      new ApiGatewayManagementApiClient({
        ...sharedOptions({ region: options.region, credentials: options.credentials, endpoint }),
        maxAttempts: 1,
        requestHandler: {
          httpAgent: new http.Agent(agentOptions),
          httpsAgent: new https.Agent(agentOptions),
          requestTimeout: options.timeoutMs ?? MANAGEMENT_TIMEOUT_MS,
          throwOnRequestTimeout: true,
        },
      }),
  );
}

/**
 * Names of the environment variables the handlers are configured with: the component sets
 * them on each Lambda (the ones its manifest entry lists, handlers/manifest.ts), the local
 * hub passes a record of the same names to the same builder (handlers/dependencies.ts).
 * The only place these names are written.
 */
export const ENV = {
  connectionsTable: "CONNECTIONS_TABLE",
  authTable: "AUTH_TABLE",
  managementEndpoint: "MANAGEMENT_ENDPOINT",
  queueUrl: "QUEUE_URL",
  jwtSecretParameter: "JWT_SECRET_PARAMETER",
  jwtSecret: "JWT_SECRET",
  dynamodbEndpoint: "DYNAMODB_ENDPOINT",
  sqsEndpoint: "SQS_ENDPOINT",
  ssmEndpoint: "SSM_ENDPOINT",
  largeRoomChunkSize: "LARGE_ROOM_CHUNK_SIZE",
  postConcurrency: "POST_CONCURRENCY",
  /** Room streams (core/streams.ts): the table, and `history.retentionHours` (0 or unset = off). */
  streamsTable: "STREAMS_TABLE",
  historyRetentionHours: "HISTORY_RETENTION_HOURS",
  allowClientMessages: "ALLOW_CLIENT_MESSAGES",
  /** The big-room lane's queue (chunks of big rooms); unset: chunks go to QUEUE_URL. */
  bulkQueueUrl: "BULK_QUEUE_URL",
  /** The `@connections` budget (core/budget.ts): its table and `delivery.postsPerSecond`; either unset = no budget. */
  budgetTable: "BUDGET_TABLE",
  postsPerSecond: "POSTS_PER_SECOND",
  /** Rooms one connection may subscribe to, its user channel not counted (core/rooms.ts). */
  maxRoomsPerConnection: "MAX_ROOMS_PER_CONNECTION",
  /** Presence (core/presence.ts): its table (unset = presence off), the grace and the single-event room size. */
  presenceTable: "PRESENCE_TABLE",
  presenceGraceSeconds: "PRESENCE_GRACE_SECONDS",
  presenceEventMembersLimit: "PRESENCE_EVENT_MEMBERS_LIMIT",
  /** Lifecycle events (core/lifecycleEvents.ts): the hub's EventBridge bus (unset = none are sent), and an endpoint override (the local hub's stand-in). */
  eventBusName: "EVENT_BUS_NAME",
  eventsEndpoint: "EVENTS_ENDPOINT",
  /** Presence's keep-alive (core/liveness.ts): told to clients (`keep_alive_ms`), and what the sweep calls stale. */
  presenceKeepAliveSeconds: "PRESENCE_KEEP_ALIVE_SECONDS",
  /** Not read: its change (a rotated secret) replaces every authorizer container. */
  jwtSecretVersion: "JWT_SECRET_VERSION",
} as const;

export type EnvKey = keyof typeof ENV;
/** Variables by name: process.env on Lambda, a plain record in the local hub. */
export type Environment = Readonly<Record<string, string | undefined>>;

export function requireEnv(name: string, env: Environment = process.env): string {
  const value = env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

export function optionalNumberEnv(name: string, fallback: number, env: Environment = process.env): number {
  const raw = env[name];
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`environment variable ${name} must be a positive integer, got "${raw}"`);
  return value;
}
