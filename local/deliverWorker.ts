/**
 * One "Lambda execution environment" for the deliver handler, in a worker thread: its own
 * clients, its own module state, its own CPU time, as each concurrent Lambda has on AWS.
 * The local hub's poller hands it SQS events; log lines go back to the hub's logger.
 */
import { parentPort, workerData } from "worker_threads";
import type { SQSEvent } from "aws-lambda";
import { dynamoClient, sqsClient, type ClientOptions } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { DEFAULT_CHUNK_SIZE, type FanoutDeps } from "../core/fanout";
import { createLogger, type LogLevel } from "../core/log";
import { chunkEnqueuer } from "../core/chunks";
import { createDeliverHandler, type DeliverHandler } from "../handlers/deliver";
import type { StreamSettings } from "../core/streams";

export interface DeliverWorkerConfig {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  managementEndpoint: string;
  queueUrl: string;
  connectionsTable: string;
  largeRoomChunkSize?: number;
  /** What @connections posts are signed with (the hub's dev credentials); default as core/aws.ts. */
  credentials?: ClientOptions["credentials"];
  /** Room streams (issue 13), as the hub's own handlers. */
  streams?: StreamSettings;
  /** A module exporting `(deps, config) => handler`, replacing the hub's deliver handler (benchmarks). */
  deliverModule?: { path: string; exportName: string };
}

export type WorkerRequest = { id: number; event: SQSEvent };
export type WorkerReply = { id: number; response?: unknown; error?: string } | { log: string; level: LogLevel };

const config = workerData as DeliverWorkerConfig;
const port = parentPort!;
const log = createLogger({ handler: "deliver" }, (line, level) => port.postMessage({ log: line, level } satisfies WorkerReply), "debug");
const deps: FanoutDeps = {
  db: dynamoClient({ endpoint: config.dynamodbEndpoint }),
  management: createConnectionsApi(config.managementEndpoint, { credentials: config.credentials }),
  connectionsTable: config.connectionsTable,
  log,
  chunkSize: config.largeRoomChunkSize ?? DEFAULT_CHUNK_SIZE,
  streams: config.streams,
  enqueueChunks: chunkEnqueuer(sqsClient({ endpoint: config.sqsEndpoint }), config.queueUrl),
};
let handler: DeliverHandler;
if (config.deliverModule) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const factory = (require(config.deliverModule.path) as Record<string, (d: FanoutDeps, c: DeliverWorkerConfig) => DeliverHandler>)[config.deliverModule.exportName];
  handler = factory(deps, config);
} else {
  handler = createDeliverHandler(deps);
}

port.on("message", (request: WorkerRequest) => {
  handler(request.event).then(
    (response) => port.postMessage({ id: request.id, response } satisfies WorkerReply),
    (err: unknown) => port.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
  );
});
