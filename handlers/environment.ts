/**
 * What a Lambda reads from its environment at cold start. The local hub sets the same
 * variables (plus endpoint overrides), so both run the handlers identically.
 */
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { dynamoClient, ENV, optionalNumberEnv, requireEnv, sqsClient } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { createLogger, type Logger } from "../core/log";
import { chunkEnqueuer } from "../core/chunks";
import type { FanoutDeps } from "../core/fanout";
import type { StreamSettings } from "../core/streams";
import { backoffDelay, isRetryable, type RetryPolicy } from "../core/connections";
import { DEFAULT_CHUNK_SIZE, DEFAULT_POST_CONCURRENCY } from "../core/fanout";

export function loggerFor(handler: string): Logger {
  return createLogger({ handler });
}

export function dynamoFromEnvironment() {
  return dynamoClient({ endpoint: process.env[ENV.dynamodbEndpoint] });
}

/** The @connections post path (core/connections.ts), signed with the function role's credentials. */
export function managementFromEnvironment() {
  return createConnectionsApi(requireEnv(ENV.managementEndpoint));
}

/** Room streams: on when the component set a table and a retention above 0. */
export function streamsFromEnvironment(): StreamSettings | undefined {
  const table = process.env[ENV.streamsTable];
  const hours = Number(process.env[ENV.historyRetentionHours] ?? 0);
  if (!table || !(hours > 0)) return undefined;
  return { streamsTable: table, retentionHours: hours };
}

/** Fan-out dependencies; with QUEUE_URL set, big rooms and failures go back through the queue. */
export function fanoutFromEnvironment(log: Logger): FanoutDeps {
  const queueUrl = process.env[ENV.queueUrl];
  return {
    db: dynamoFromEnvironment(),
    management: managementFromEnvironment(),
    connectionsTable: requireEnv(ENV.connectionsTable),
    log,
    concurrency: optionalNumberEnv(ENV.postConcurrency, DEFAULT_POST_CONCURRENCY),
    chunkSize: optionalNumberEnv(ENV.largeRoomChunkSize, DEFAULT_CHUNK_SIZE),
    streams: streamsFromEnvironment(),
    enqueueChunks: queueUrl ? chunkEnqueuer(sqsClient({ endpoint: process.env[ENV.sqsEndpoint] }), queueUrl) : undefined,
  };
}

/**
 * SSM answers a throttled GetParameter with a 400 ThrottlingException; those are worth
 * another try, as are 429, 5xx and network errors. ParameterNotFound or AccessDenied are not.
 */
function isSecretReadRetryable(err: unknown): boolean {
  return /Throttl|TooManyRequests|RequestLimitExceeded/.test((err as Error)?.name ?? "") || isRetryable((err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode ?? 0);
}

/** How long and how often a container keeps trying to read its secret. */
export interface SecretReadRetry {
  /** Retries stop once this much time has passed since the first attempt. */
  budgetMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * 15 s: inside the authorizer's 20 s timeout (API Gateway waits up to 29 s). A reconnect
 * storm of cold containers shares SSM's GetParameter rate (40 a second by default, for the
 * whole account): 200 cold containers need at least 5 s of it, and jitter wastes some, so
 * 8 s was not enough. Delays of at most 1 s (full jitter) keep every waiting container
 * asking often enough to get its share.
 */
export const SECRET_READ_RETRY: SecretReadRetry = { budgetMs: 15_000, baseDelayMs: 100, maxDelayMs: 1_000 };

/**
 * Reads a value once per container: retried with jittered backoff within a time budget;
 * concurrent callers share the one read in flight; a failed read is not kept, so the next
 * call tries again.
 */
export function readOncePerContainer(
  read: () => Promise<string>,
  retry: SecretReadRetry = SECRET_READ_RETRY,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: () => number = Date.now,
): () => Promise<string> {
  let pending: Promise<string> | undefined;
  const policy: RetryPolicy = { attempts: Infinity, baseDelayMs: retry.baseDelayMs, maxDelayMs: retry.maxDelayMs };
  const readWithRetries = async () => {
    const started = now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await read();
      } catch (err) {
        const delay = backoffDelay(attempt, policy);
        if (!isSecretReadRetryable(err) || now() + delay - started > retry.budgetMs) throw err;
        await sleep(delay);
      }
    }
  };
  return () => {
    pending ??= readWithRetries().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}

/**
 * The JWT signing secret, read at run time and never captured into the Lambda's code:
 * from an SSM SecureString parameter on AWS, or from JWT_SECRET where no parameter store
 * exists (the local hub). Kept for the container's life: a reconnect storm of warm
 * containers makes no SSM call at all. A rotated secret reaches new containers because the
 * component puts the parameter's version in the function's environment (JWT_SECRET_VERSION),
 * and a configuration change replaces every container.
 */
export function jwtSecretFromEnvironment(): () => Promise<string> {
  const parameterName = process.env[ENV.jwtSecretParameter];
  if (!parameterName) {
    const secret = requireEnv(ENV.jwtSecret);
    return async () => secret;
  }
  // The SDK's own retries are off: readOncePerContainer retries, with a budget that fits the timeout.
  const ssm = new SSMClient({ maxAttempts: 1, ...(process.env[ENV.ssmEndpoint] ? { endpoint: process.env[ENV.ssmEndpoint] } : {}) });
  return readOncePerContainer(async () => {
    const result = await ssm.send(new GetParameterCommand({ Name: parameterName, WithDecryption: true }));
    const value = result.Parameter?.Value;
    if (!value) throw new Error(`SSM parameter ${parameterName} has no value`);
    return value;
  });
}
