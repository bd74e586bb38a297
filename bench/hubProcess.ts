/**
 * Runs one local hub in its own process for the benchmarks (clients live in the parent:
 * 10,000 sockets on each side would not fit one process's file limit). Prints the hub's
 * endpoints as one JSON line, then the deliver handler's summaries as "@@metric {...}" lines.
 * Usage: node -r ts-node/register/transpile-only bench/hubProcess.ts '{"mode":"ours"|"seed", ...}'
 */
import { createLogger } from "../core/log";
import { startTestHub } from "../local/testing";

interface HubProcessOptions {
  mode: "ours" | "seed";
  largeRoomChunkSize?: number;
  /** Concurrent deliver invocations, each in its own worker thread (like concurrent Lambdas). */
  workers?: number;
  /** The bulk queue's workers; 0: no bulk queue (chunks on the notification queue). Default as `workers`. */
  bulkWorkers?: number;
  /** `delivery.postsPerSecond`. */
  postsPerSecond?: number;
  /** The emulated account's budget (`limits.account`). */
  account?: { requestsPerSecond?: number; requestsBurst?: number; newConnectionsPerSecond?: number };
  /** The hub's `presence` option (bench/presence.ts). */
  presence?: { enabled: boolean; graceSeconds?: number; sweepSeconds?: number; eventMembersLimit?: number; keepAliveSeconds?: number };
  /** `$disconnect` is dropped (local/testHooks.ts dropDisconnect) for connections of users whose id contains this (bench/sweep.ts: ghosts). */
  dropDisconnectOfUsers?: string;
}

async function main() {
  const options = JSON.parse(process.argv[2] ?? "{}") as HubProcessOptions;
  const logger = createLogger({}, (line) => {
    const entry = JSON.parse(line) as { message?: string; level?: string };
    if (entry.message === "delivered" || entry.message?.startsWith("delivered;")) process.stdout.write(`@@metric ${line}\n`);
    else if (entry.level === "error" || entry.level === "warn") process.stderr.write(line + "\n");
  }, "info");
  const hub = await startTestHub(
    {
      port: 0,
      logger,
      largeRoomChunkSize: options.largeRoomChunkSize,
      queue: { waitTimeSeconds: 1, batchSize: 10, ...(options.bulkWorkers !== undefined ? { bulkConcurrency: options.bulkWorkers } : {}) },
      limits: { idleTimeoutMs: 60 * 60_000, ...(options.account ? { account: options.account } : {}) },
      ...(options.postsPerSecond ? { delivery: { postsPerSecond: options.postsPerSecond } } : {}),
      deliverWorkers: options.workers ?? 4,
      ...(options.presence ? { presence: options.presence } : {}),
    },
    {
      deliverModule: options.mode === "seed" ? { path: require.resolve("./baselines/seedDelivery"), exportName: "createSeedDeliverHandler" } : undefined,
      ...(options.dropDisconnectOfUsers ? { dropDisconnect: ({ userId }: { userId?: string }) => userId?.includes(options.dropDisconnectOfUsers!) ?? false } : {}),
    },
  );
  const { notifier: _notifier, stop, faults: _faults, ...info } = hub;
  void _faults;
  void _notifier;
  process.stdout.write(JSON.stringify(info) + "\n");
  // What the emulated account admitted and refused, for the parent to read (bench/budget.ts).
  setInterval(() => process.stdout.write(`@@usage ${JSON.stringify(hub.accountUsage())}\n`), 500).unref();
  const shutdown = () => void stop().then(() => process.exit(0));
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
