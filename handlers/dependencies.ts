/**
 * The one place a handler's dependencies are built from its configuration: the variables the
 * component sets (core/aws.ts ENV; each handler's list is in handlers/manifest.ts). On Lambda
 * they come from process.env; the local hub and its deliver worker threads pass a record of
 * the same names, with the hub's dev credentials, logger and event listener, to the same functions.
 */
import { dynamoClient, ENV, optionalNumberEnv, requireEnv, sqsClient, type Credentials, type Environment } from "../core/aws";
import { createConnectionsApi, type ConnectionsApi, type PostDeps } from "../core/connections";
import { connectionGone } from "../core/liveness";
import { DEFAULT_CHUNK_SIZE, DEFAULT_POST_CONCURRENCY, type FanoutDeps } from "../core/fanout";
import { combineObservers, logObserver, type HubObserver } from "../core/hubEvents";
import { createLogger, describeError, type Logger } from "../core/log";
import { sharedPostBudget, type PostBudget } from "../core/budget";
import { chunkEnqueuer } from "../core/chunks";
import { sendBatches } from "../core/queue";
import type { StreamSettings } from "../core/streams";
import { DIFF_FLUSH_KIND, PRESENCE_DEFAULTS, removalReason, type PresenceDeps } from "../core/presence";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { createEventBridgeApi } from "../core/eventBridge";
import { createLifecyclePublisher, type LifecyclePublisher } from "../core/lifecycleEvents";
import { jwtSecretReader } from "./environment";

/** What a handler is built from. */
export interface HandlerSource {
  env: Environment;
  log: Logger;
  /**
   * Told every hub event the handler reports, after its log line is written (the local hub's
   * console and tests; a worker thread passes them to the hub). Unset on Lambda: the log is all.
   */
  observe?: HubObserver;
  /** Unset on Lambda: the SDK's default chain (the function role's credentials). */
  credentials?: Credentials;
}

/** A Lambda's source: its environment and a JSON logger naming the handler. */
export function lambdaSource(handler: string): HandlerSource {
  return { env: process.env, log: createLogger({ handler }) };
}

export function requireVar(source: HandlerSource, key: keyof typeof ENV): string {
  return requireEnv(ENV[key], source.env);
}

export function dynamoFrom(source: HandlerSource) {
  return dynamoClient({ endpoint: source.env[ENV.dynamodbEndpoint], credentials: source.credentials });
}

/** A handler's observer: a structured log line per event, then the source's listener if any. */
export function observerFrom(source: HandlerSource): HubObserver {
  return combineObservers(logObserver(source.log), source.observe);
}

/**
 * The hub's shared `@connections` budget (core/budget.ts), from BUDGET_TABLE and
 * POSTS_PER_SECOND; one per post path, so one per container.
 */
export function budgetFrom(source: HandlerSource): PostBudget | undefined {
  const table = source.env[ENV.budgetTable];
  const postsPerSecond = Number(source.env[ENV.postsPerSecond] ?? 0);
  if (!table || !(postsPerSecond > 0)) return undefined;
  const log = source.log;
  let warned = 0;
  return sharedPostBudget({
    db: dynamoFrom(source),
    table,
    postsPerSecond,
    // While the table fails the container keeps to a quarter window alone; say so at most once a minute.
    onError: (err) => {
      if (Date.now() - warned < 60_000) return;
      warned = Date.now();
      log.warn("post budget table not reachable; keeping to a local share", describeError(err));
    },
  });
}

/** The @connections post path (core/connections.ts), every request within the hub's budget. */
export function managementFrom(source: HandlerSource) {
  return createConnectionsApi(requireVar(source, "managementEndpoint"), { credentials: source.credentials, budget: budgetFrom(source) });
}

/**
 * Room streams: on when STREAMS_TABLE is set and HISTORY_RETENTION_HOURS is above 0. With the
 * table and retention 0 (streams off), the settings still name the table: publishes with an
 * idempotency key and multi-room publishes keep their claims there (core/streams.ts frameToSend).
 */
export function streamsFrom(source: HandlerSource): StreamSettings | undefined {
  const table = source.env[ENV.streamsTable];
  const hours = Number(source.env[ENV.historyRetentionHours] ?? 0);
  return table ? { streamsTable: table, retentionHours: hours > 0 ? hours : 0 } : undefined;
}

/** Sends publish bodies to QUEUE_URL (core/queue.ts sendBatches); none without it. */
export function bodyEnqueuerFrom(source: HandlerSource): ((bodies: string[]) => Promise<void>) | undefined {
  const queueUrl = source.env[ENV.queueUrl];
  if (!queueUrl) return undefined;
  const sqs = sqsClient({ endpoint: source.env[ENV.sqsEndpoint], credentials: source.credentials });
  return async (bodies) => {
    await sendBatches(sqs, queueUrl, bodies, "room bodies");
  };
}

/** Fan-out dependencies; with QUEUE_URL set, big rooms and failures go back through the queue. */
export function fanoutFrom(source: HandlerSource): FanoutDeps {
  const queueUrl = source.env[ENV.queueUrl];
  const bulkQueueUrl = source.env[ENV.bulkQueueUrl] || undefined;
  const management = managementFrom(source);
  return {
    db: dynamoFrom(source),
    management,
    removed: goneHookFrom(source, management),
    connectionsTable: requireVar(source, "connectionsTable"),
    log: source.log,
    observe: observerFrom(source),
    concurrency: optionalNumberEnv(ENV.postConcurrency, DEFAULT_POST_CONCURRENCY, source.env),
    chunkSize: optionalNumberEnv(ENV.largeRoomChunkSize, DEFAULT_CHUNK_SIZE, source.env),
    streams: streamsFrom(source),
    enqueueChunks: queueUrl ? chunkEnqueuer(sqsClient({ endpoint: source.env[ENV.sqsEndpoint], credentials: source.credentials }), queueUrl, bulkQueueUrl) : undefined,
    bulkQueueName: queueUrl && bulkQueueUrl ? bulkQueueUrl.split("/").pop() : undefined,
  };
}

/** ALLOW_CLIENT_MESSAGES: anything but "false" allows (the component always sets it). */
export function clientMessagesAllowed(source: HandlerSource): boolean {
  return source.env[ENV.allowClientMessages] !== "false";
}

/**
 * The JWT signing secret: from the SSM parameter JWT_SECRET_PARAMETER names (AWS), else from
 * JWT_SECRET (the local hub, which has no parameter store).
 */
export function jwtSecretFrom(source: HandlerSource): () => Promise<string> {
  const parameterName = source.env[ENV.jwtSecretParameter];
  if (!parameterName) {
    const secret = requireVar(source, "jwtSecret");
    return async () => secret;
  }
  return jwtSecretReader(parameterName, source.env[ENV.ssmEndpoint]);
}

/** Presence: on when PRESENCE_TABLE is set; what its hooks in the routes need (core/presence.ts). */
export function presenceFrom(source: HandlerSource, management = source.env[ENV.managementEndpoint] ? managementFrom(source) : undefined, emit = lifecycleFrom(source)): PresenceDeps | undefined {
  const presenceTable = source.env[ENV.presenceTable];
  if (!presenceTable) return undefined;
  if (!management) throw new Error(`${ENV.presenceTable} is set but ${ENV.managementEndpoint} is not: member events need the @connections API`);
  const deps: PresenceDeps = {
    db: dynamoFrom(source),
    management,
    connectionsTable: requireVar(source, "connectionsTable"),
    log: source.log,
    observe: observerFrom(source),
    emit,
    // A member event's post that finds a connection gone removes it: its rooms lose it too.
    removed: (row) => goneHook(deps)(row),
    presence: {
      presenceTable,
      graceMs: Number(source.env[ENV.presenceGraceSeconds] ?? PRESENCE_DEFAULTS.graceSeconds) * 1000,
      eventMembersLimit: optionalNumberEnv(ENV.presenceEventMembersLimit, PRESENCE_DEFAULTS.eventMembersLimit, source.env),
      keepAliveMs: Number(source.env[ENV.presenceKeepAliveSeconds] ?? PRESENCE_DEFAULTS.keepAliveSeconds) * 1000,
    },
    scheduleFlush: diffFlushScheduler(source),
  };
  return deps;
}

/** A room's diff flush as a delayed message to QUEUE_URL, which deliver reads (core/presence.ts DIFF_FLUSH_KIND); unset without it (the sweep flushes). */
function diffFlushScheduler(source: HandlerSource): PresenceDeps["scheduleFlush"] {
  const queueUrl = source.env[ENV.queueUrl];
  if (!queueUrl) return undefined;
  const sqs = sqsClient({ endpoint: source.env[ENV.sqsEndpoint], credentials: source.credentials });
  return async (roomId, delaySeconds) => {
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ kind: DIFF_FLUSH_KIND, room_id: roomId }), DelaySeconds: delaySeconds }));
  };
}

/**
 * What a post path does with a connection a 410 removed (core/connections.ts PostDeps.removed):
 * with presence on, its rooms lose it with `timed_out` (found dead without its `$disconnect`;
 * the grace still counts, from now: it may have died a moment ago, e.g. API Gateway's 2-hour
 * rotation), or with `revoked` at once for a row revokeToken marked (its close raced the post).
 * Unset with presence off.
 */
export function goneHookFrom(source: HandlerSource, management: ConnectionsApi): PostDeps["removed"] {
  const presence = presenceFrom(source, management);
  return presence ? goneHook(presence) : undefined;
}

/** The one 410 hook of every post path (presence's own posts included): the row's rooms, and its connection.closed, say why (core/presence.ts removalReason). */
function goneHook(presence: PresenceDeps): NonNullable<PostDeps["removed"]> {
  return (row) => {
    const { reason, since } = removalReason(row, "timed_out");
    return connectionGone(presence, row, reason, since);
  };
}

/**
 * Lifecycle events (core/lifecycleEvents.ts): on when EVENT_BUS_NAME is set (the functions that
 * emit, with presence on); EVENTS_ENDPOINT points them at a stand-in (the local hub's). What
 * the bus refuses for a passing reason is kept in the presence table's outbox
 * (core/lifecycleOutbox.ts; PRESENCE_TABLE is set for the same functions) for the sweep.
 */
export function lifecycleFrom(source: HandlerSource): LifecyclePublisher | undefined {
  const eventBusName = source.env[ENV.eventBusName];
  if (!eventBusName) return undefined;
  const api = createEventBridgeApi({ endpoint: source.env[ENV.eventsEndpoint] || undefined, credentials: source.credentials });
  const presenceTable = source.env[ENV.presenceTable];
  const outbox = presenceTable ? { db: dynamoFrom(source), presenceTable } : undefined;
  return createLifecyclePublisher({ api, eventBusName, log: source.log, observe: observerFrom(source), outbox });
}
