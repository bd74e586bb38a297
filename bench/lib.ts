/** Benchmark plumbing: a hub in its own process, pools of WebSocket clients, statistics, progress. */
import * as childProcess from "child_process";
import * as path from "path";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type { WebSocket } from "ws";
import { dynamoClient, sqsClient } from "../core/aws";
import { mapWithConcurrency } from "../core/fanout";
import { createNotifier, type Notifier } from "../server";
import type { LocalHubInfo } from "../local";
import type { AccountUsage } from "../local/apiGateway";
import { seedConnections } from "../test/support/seed";
import { closeAll, openClient } from "../test/support/wsClient";

const ROOT = path.resolve(__dirname, "..");

export function progress(label: string, done: number, total: number): void {
  if (!process.stderr.isTTY && done !== total && done % Math.max(1, Math.floor(total / 10)) !== 0) return;
  process.stderr.write(`${process.stderr.isTTY ? "\r\x1b[K" : ""}  ${label} ${done}/${total}${done === total || !process.stderr.isTTY ? "\n" : ""}`);
}

export function note(text: string): void {
  process.stderr.write(`  ${text}\n`);
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const median = (values: number[]) => percentile(values, 50);

export interface DeliveryMetric {
  id: string;
  delivered: number;
  items_read: number;
  capacity_units: number;
  handed_off?: number;
}

export interface HubProcess {
  info: LocalHubInfo;
  notifier: Notifier;
  metrics: DeliveryMetric[];
  /** The emulated account's counts, as the hub last reported them (every 500 ms). */
  usage(): AccountUsage | undefined;
  publish(roomId: string, data: unknown): Promise<{ messageId: string; sentAt: number }>;
  seedRows(count: number, roomCount: number): Promise<void>;
  /** SIGTERM: the hub closes its sockets (each runs $disconnect). `{ kill: true }`: SIGKILL, nothing runs (a bench's thousand members would run a thousand $disconnects). */
  stop(options?: { kill?: boolean }): Promise<void>;
}

export interface HubProcessOptions {
  mode: "ours" | "seed";
  largeRoomChunkSize?: number;
  workers?: number;
  bulkWorkers?: number;
  postsPerSecond?: number;
  account?: { requestsPerSecond?: number; requestsBurst?: number; newConnectionsPerSecond?: number };
  presence?: { enabled: boolean; graceSeconds?: number; sweepSeconds?: number; eventMembersLimit?: number; keepAliveSeconds?: number };
  /** `$disconnect` is dropped (local/testHooks.ts dropDisconnect) for connections of users whose id contains this (bench/sweep.ts: ghosts). */
  dropDisconnectOfUsers?: string;
  /** bcrypt cost of the tokens the parent's notifier issues (default 10, the SDK's). */
  bcryptCost?: number;
}

export async function startHubProcess(options: HubProcessOptions): Promise<HubProcess> {
  const child = childProcess.spawn(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(ROOT, "bench/hubProcess.ts"), JSON.stringify(options)], {
    cwd: ROOT,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const metrics: DeliveryMetric[] = [];
  let usage: AccountUsage | undefined;
  const info = await new Promise<LocalHubInfo>((resolve, reject) => {
    let buffer = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.startsWith("@@metric ")) metrics.push(JSON.parse(line.slice(9)) as DeliveryMetric);
        else if (line.startsWith("@@usage ")) usage = JSON.parse(line.slice(8)) as AccountUsage;
        else if (line.startsWith("{")) resolve(JSON.parse(line) as LocalHubInfo);
      }
    });
    child.on("exit", (code) => reject(new Error(`hub process exited (${code})`)));
  });
  const notifier = createNotifier({
    queueUrl: info.queueUrl,
    authTableName: info.authTableName,
    connectionsTableName: info.connectionsTableName,
    managementEndpoint: info.managementEndpoint,
    jwtSecret: info.jwtSecret,
    passcode: info.passcode,
    region: info.region,
    endpoints: { sqs: info.sqsEndpoint, dynamodb: info.dynamodbEndpoint },
    credentials: info.credentials,
    ...(info.presenceTableName ? { presenceTableName: info.presenceTableName } : {}),
    ...(options.bcryptCost !== undefined ? { bcryptCost: options.bcryptCost } : {}),
  });
  const sqs = sqsClient({ endpoint: info.sqsEndpoint, region: info.region });
  const db = dynamoClient({ endpoint: info.dynamodbEndpoint, region: info.region });
  return {
    info,
    notifier,
    metrics,
    usage: () => usage,
    async publish(roomId, data) {
      const sentAt = Date.now();
      const result = await sqs.send(new SendMessageCommand({ QueueUrl: info.queueUrl, MessageBody: JSON.stringify({ room_id: roomId, user_id: "bench", data }) }));
      return { messageId: result.MessageId ?? "", sentAt };
    },
    /** Rows of connections in other rooms (no socket behind them): the rest of a big table. */
    async seedRows(count, roomCount) {
      const rows = Array.from({ length: count }, (_, i) => ({
        connectionId: `background-${i}`,
        roomId: `background-room-${i % roomCount}`,
        userId: `background-user-${i % 997}`,
      }));
      await seedConnections(db, info.connectionsTableName, rows, {
        ttlSeconds: 3 * 3600,
        onProgress: (done, total) => {
          if (done % 2500 < 25 || done === total) progress("seeding table rows", done, total);
        },
      });
    },
    stop: (stopOptions) =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill(stopOptions?.kill ? "SIGKILL" : "SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
      }),
  };
}

/** Many WebSocket clients in one room, recording when each notification reached each client. */
export class ClientPool {
  readonly sockets: WebSocket[] = [];
  /** message id → receipt times (ms), one per client that got it. */
  readonly receipts = new Map<string, number[]>();
  duplicates = 0;

  static async connect(hub: HubProcess, roomId: string, count: number, options: { users?: number; label?: string } = {}): Promise<ClientPool> {
    const pool = new ClientPool();
    const users = Math.min(options.users ?? 100, count);
    // One token per user, shared by that user's tabs: the authorizer pays bcrypt once per user.
    const tokens = await mapWithConcurrency(
      Array.from({ length: users }, (_, i) => i),
      8,
      (i) => hub.notifier.issueToken({ userId: `${roomId}-user-${i}`, roomId, ttlSeconds: 3 * 3600 }),
    );
    let opened = 0;
    await mapWithConcurrency(
      Array.from({ length: count }, (_, i) => i),
      64,
      async (i) => {
        const seen = new Set<string>();
        const client = await openClient(`${hub.info.websocketUrl}?token=${tokens[i % users]}`, {
          perMessageDeflate: false,
          keepFrames: false,
          onFrame: (frame, at) => {
            const id = frame.id ?? "";
            if (seen.has(id)) {
              pool.duplicates++;
              return;
            }
            seen.add(id);
            const list = pool.receipts.get(id) ?? [];
            list.push(at);
            pool.receipts.set(id, list);
          },
        });
        pool.sockets.push(client.ws);
        opened++;
        if (opened % 500 === 0 || opened === count) progress(options.label ?? `connecting clients to ${roomId}`, opened, count);
      },
    );
    return pool;
  }

  received(id: string): number {
    return this.receipts.get(id)?.length ?? 0;
  }

  /** Waits until every client has `id`, or the timeout; returns the time of the last receipt. */
  async waitFor(id: string, timeoutMs = 60_000): Promise<{ received: number; lastAt: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.received(id) < this.sockets.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    const times = this.receipts.get(id) ?? [];
    return { received: times.length, lastAt: times.length ? Math.max(...times) : NaN };
  }

  async close(): Promise<void> {
    await closeAll(this.sockets);
    // Let the hub run $disconnect for every socket before the next measurement.
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
