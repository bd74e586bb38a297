/**
 * Reading the JWT signing secret from SSM at cold start, with retries that fit the
 * authorizer's timeout. The rest of a handler's configuration is read in
 * handlers/dependencies.ts.
 */
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { backoffDelay, isRetryable, type RetryPolicy } from "../core/connections";

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
 * The JWT signing secret from an SSM SecureString parameter, read at run time and never
 * captured into the Lambda's code. Kept for the container's life: a reconnect storm of warm
 * containers makes no SSM call at all. A rotated secret reaches new containers because the
 * component puts the parameter's version in the function's environment (JWT_SECRET_VERSION),
 * and a configuration change replaces every container.
 */
export function jwtSecretReader(parameterName: string, ssmEndpoint?: string): () => Promise<string> {
  // The SDK's own retries are off: readOncePerContainer retries, with a budget that fits the timeout.
  const ssm = new SSMClient({ maxAttempts: 1, ...(ssmEndpoint ? { endpoint: ssmEndpoint } : {}) });
  return readOncePerContainer(async () => {
    const result = await ssm.send(new GetParameterCommand({ Name: parameterName, WithDecryption: true }));
    const value = result.Parameter?.Value;
    if (!value) throw new Error(`SSM parameter ${parameterName} has no value`);
    return value;
  });
}
