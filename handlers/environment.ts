/**
 * What a Lambda reads from its environment at cold start. The local hub sets the same
 * variables (plus endpoint overrides), so both run the handlers identically.
 */
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { dynamoClient, ENV, optionalNumberEnv, requireEnv, sqsClient } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { createLogger, type Logger } from "../core/log";
import { chunkEnqueuer } from "../core/queue";
import type { FanoutDeps } from "../core/fanout";
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
 * The JWT signing secret, read at run time and never captured into the Lambda's code:
 * from an SSM SecureString parameter on AWS (cached for five minutes so a rotation is
 * picked up), or from JWT_SECRET where no parameter store exists (the local hub).
 */
export function jwtSecretFromEnvironment(): () => Promise<string> {
  const parameterName = process.env[ENV.jwtSecretParameter];
  if (!parameterName) {
    const secret = requireEnv(ENV.jwtSecret);
    return async () => secret;
  }
  const ssm = new SSMClient({ ...(process.env[ENV.ssmEndpoint] ? { endpoint: process.env[ENV.ssmEndpoint] } : {}) });
  let cached: { value: string; until: number } | undefined;
  return async () => {
    if (cached && cached.until > Date.now()) return cached.value;
    const result = await ssm.send(new GetParameterCommand({ Name: parameterName, WithDecryption: true }));
    const value = result.Parameter?.Value;
    if (!value) throw new Error(`SSM parameter ${parameterName} has no value`);
    cached = { value, until: Date.now() + 5 * 60_000 };
    return value;
  };
}
