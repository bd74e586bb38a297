/**
 * One "Lambda execution environment" for the deliver handler, in a worker thread: its own
 * clients, its own module state, its own CPU time, as each concurrent Lambda has on AWS.
 * The local hub's poller hands it SQS events; log lines go back to the hub's logger and hub
 * events (core/hubEvents.ts) to the hub's listeners, as messages to the parent thread.
 */
import { parentPort, workerData } from "worker_threads";
import type { SQSEvent } from "aws-lambda";
import { ENV, requireEnv, type Credentials, type Environment } from "../core/aws";
import type { FanoutDeps } from "../core/fanout";
import type { HubEvent } from "../core/hubEvents";
import { createLogger, type LogLevel } from "../core/log";
import { fanoutFrom, type HandlerSource } from "../handlers/dependencies";
import { deliverFromEnvironment, type DeliverHandler } from "../handlers/deliver";

export interface DeliverWorkerConfig {
  /** The deliver Lambda's variables, as the hub gives its own handlers (local/handlers.ts localEnvironment). */
  env: Environment;
  /** What @connections posts are signed with (the hub's dev credentials); default as core/aws.ts. */
  credentials?: Credentials;
  /** A module exporting `(deps, { managementEndpoint, credentials }) => handler`, replacing the hub's deliver handler (benchmarks). */
  deliverModule?: { path: string; exportName: string };
}

export type WorkerRequest = { id: number; event: SQSEvent; remainingMs?: number };
export type WorkerReply = { id: number; response?: unknown; error?: string } | { log: string; level: LogLevel } | { event: HubEvent };

type DeliverFactory = (deps: FanoutDeps, config: { managementEndpoint: string; credentials?: Credentials }) => DeliverHandler;

const config = workerData as DeliverWorkerConfig;
const port = parentPort!;
const source: HandlerSource = {
  env: config.env,
  credentials: config.credentials,
  log: createLogger({ handler: "deliver" }, (line, level) => port.postMessage({ log: line, level } satisfies WorkerReply), "debug"),
  // Events are plain data: they cross to the hub as they are (structured clone).
  observe: (event) => port.postMessage({ event } satisfies WorkerReply),
};
let handler: DeliverHandler;
if (config.deliverModule) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const factory = (require(config.deliverModule.path) as Record<string, DeliverFactory>)[config.deliverModule.exportName];
  handler = factory(fanoutFrom(source), { managementEndpoint: requireEnv(ENV.managementEndpoint, config.env), credentials: config.credentials });
} else {
  handler = deliverFromEnvironment(source);
}

port.on("message", (request: WorkerRequest) => {
  const endsAt = request.remainingMs === undefined ? undefined : Date.now() + request.remainingMs;
  const context = endsAt === undefined ? undefined : { getRemainingTimeInMillis: () => Math.max(0, endsAt - Date.now()) };
  handler(request.event, context).then(
    (response) => port.postMessage({ id: request.id, response } satisfies WorkerReply),
    (err: unknown) => port.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
  );
});
