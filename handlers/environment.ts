/**
 * What a Lambda reads from its environment at cold start. The local hub sets the same
 * variables (plus endpoint overrides), so both run the handlers identically.
 */
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { dynamoClient, ENV, managementClient, optionalNumberEnv, requireEnv, sqsClient } from "../core/aws";
import { createLogger, type Logger } from "../core/log";
import { chunkEnqueuer } from "../core/queue";
import type { FanoutDeps } from "../core/fanout";
import { backoffDelay, DEFAULT_CHUNK_SIZE, DEFAULT_POST_CONCURRENCY, isRetryable, type RetryPolicy } from "../core/fanout";

export function loggerFor(handler: string): Logger {
  return createLogger({ handler });
}

export function dynamoFromEnvironment() {
  return dynamoClient({ endpoint: process.env[ENV.dynamodbEndpoint] });
}

export function managementFromEnvironment() {
  return managementClient(requireEnv(ENV.managementEndpoint));
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
    enqueueChunks: queueUrl ? chunkEnqueuer(sqsClient({ endpoint: process.env[ENV.sqsEndpoint] }), queueUrl) : undefined,
  };
}

/**
 * SSM answers a throttled GetParameter with a 400 ThrottlingException; those are worth
 * another try, as are 429, 5xx and network errors. ParameterNotFound or AccessDenied are not.
 */
function isSecretReadRetryable(err: unknown): boolean {
  return /Throttl|TooManyRequests|RequestLimitExceeded/.test((err as Error)?.name ?? "") || isRetryable(err);
}

/**
 * About 8 s at most (full jitter, so usually half of it): inside the authorizer's 10 s timeout,
 * and enough for a reconnect storm of cold containers to get through SSM's shared
 * GetParameter rate (40 per second by default) without refusing valid tokens.
 */
export const SECRET_READ_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 100, maxDelayMs: 2_000 };

/**
 * Reads a value once per container: retried with jittered backoff; concurrent callers share
 * the one read in flight; a failed read is not kept, so the next call tries again.
 */
export function readOncePerContainer(
  read: () => Promise<string>,
  retry: RetryPolicy = SECRET_READ_RETRY,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): () => Promise<string> {
  let pending: Promise<string> | undefined;
  const readWithRetries = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await read();
      } catch (err) {
        if (attempt >= retry.attempts || !isSecretReadRetryable(err)) throw err;
        await sleep(backoffDelay(attempt - 1, retry));
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
