/**
 * Scenario `post-cost`: client CPU per @connections post, three ways, in one run, against
 * the same no-op HTTP sink in a separate process (so only the poster's CPU is counted):
 * - hub: the hub's fan-out path (core/fanout.ts postToConnections → core/connections.ts),
 *   64 posts in flight (one per socket), refilled in bursts;
 * - sdk: the AWS SDK v3 ApiGatewayManagementApiClient as core/fanout.ts used it before the
 *   post path (keep-alive, 64 sockets, 500 requests in flight);
 * - sdk_same_loop: the same SDK client driven exactly like the hub path (64 in flight, same
 *   loop), so the signer-vs-SDK difference can be read apart from the scheduling one;
 * - floor: unsigned keep-alive HTTP POSTs of the same body, driven like the hub path.
 * CPU is process.cpuUsage() (user + system) over a path's posts, divided by N. Rounds rotate
 * the order of the paths; each figure is the median of its rounds.
 */
import * as childProcess from "child_process";
import * as crypto from "crypto";
import * as http from "http";
import { PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { dynamoClient, managementClient, MANAGEMENT_MAX_SOCKETS } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { createLogger } from "../core/log";
import { DEFAULT_POST_CONCURRENCY, mapWithConcurrency, postToConnections } from "../core/fanout";
import { frameFor, serializeFrame, type Notification } from "../core/messages";
import { median, note } from "./lib";

/** A no-op @connections: drains each request and answers 200 "{}", keep-alive. */
const SINK = `
const http = require("http");
const server = http.createServer((req, res) => { req.resume(); req.on("end", () => { res.writeHead(200, { "content-type": "application/json", "content-length": "2" }); res.end("{}"); }); });
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
process.on("disconnect", () => process.exit(0));
`;

async function startSink(): Promise<{ endpoint: string; stop(): void }> {
  const child = childProcess.spawn(process.execPath, ["-e", SINK], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once("exit", (code) => reject(new Error(`post-cost sink exited (${code})`)));
  });
  return { endpoint: `http://127.0.0.1:${port}/bench`, stop: () => child.kill() };
}

export interface PostCostFigures {
  posts: number;
  rounds: number;
  concurrency: number;
  frame_bytes: number;
  hub_us_per_post: number;
  sdk_us_per_post: number;
  sdk_same_loop_us_per_post: number;
  floor_us_per_post: number;
  hub_vs_sdk: number;
  hub_vs_sdk_same_loop: number;
  hub_vs_floor: number;
}

/** Requests in flight in core/fanout.ts before the post path (the SDK baseline's setting). */
const SDK_FANOUT_CONCURRENCY = 500;

export async function postCostScenario(posts: number, rounds = 3): Promise<PostCostFigures> {
  const sink = await startSink();
  const credentials = { accessKeyId: "AKIDBENCH", secretAccessKey: "bench-secret", sessionToken: "bench-session-token" };
  const notification: Notification = { id: crypto.randomUUID(), roomId: "bench", userId: null, origin: "app", data: { type: "bench", data: "x".repeat(200) } };
  const payload = Buffer.from(serializeFrame(frameFor(notification)), "utf8");
  const ids = (round: number, count: number) => Array.from({ length: count }, (_, i) => crypto.createHash("sha1").update(`${round}-${i}`).digest("base64").slice(0, 14) + "=");
  const concurrency = DEFAULT_POST_CONCURRENCY;

  const hubApi = createConnectionsApi(sink.endpoint, { region: "eu-west-1", credentials });
  // The row deletion on 410 is never reached against the sink; the client is only a dependency.
  const hubDeps = { management: hubApi, db: dynamoClient({ endpoint: "http://127.0.0.1:9", region: "eu-west-1" }), connectionsTable: "unused", log: createLogger({}, () => undefined), concurrency };
  const sdk = managementClient(sink.endpoint, { region: "eu-west-1", credentials });
  const agent = new http.Agent({ keepAlive: true, maxSockets: MANAGEMENT_MAX_SOCKETS });
  const { hostname, port, pathname } = new URL(sink.endpoint);
  const floorPost = (id: string) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        { agent, hostname, port, method: "POST", path: `${pathname}/@connections/${encodeURIComponent(id)}`, headers: { "content-type": "application/octet-stream", "content-length": String(payload.length) } },
        (res) => {
          res.resume();
          res.once("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`sink answered ${res.statusCode}`))));
        },
      );
      req.once("error", reject);
      req.end(payload);
    });

  const sdkPost = (id: string) => sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: payload }));
  const paths: Record<"hub" | "sdk" | "sdk_same_loop" | "floor", (connectionIds: string[]) => Promise<void>> = {
    hub: async (connectionIds) => {
      const result = await postToConnections(hubDeps, notification, connectionIds);
      if (result.delivered !== connectionIds.length) throw new Error(`hub path delivered ${result.delivered} of ${connectionIds.length}`);
    },
    sdk: async (connectionIds) => {
      await mapWithConcurrency(connectionIds, SDK_FANOUT_CONCURRENCY, sdkPost);
    },
    sdk_same_loop: async (connectionIds) => {
      await mapWithConcurrency(connectionIds, concurrency, sdkPost);
    },
    floor: async (connectionIds) => {
      await mapWithConcurrency(connectionIds, concurrency, floorPost);
    },
  };
  const cpu: Record<keyof typeof paths, number[]> = { hub: [], sdk: [], sdk_same_loop: [], floor: [] };
  try {
    // Warm-up: JIT, sockets, the signing key.
    for (const run of Object.values(paths)) await run(ids(-1, Math.min(2_000, posts)));
    const order = Object.keys(paths) as (keyof typeof paths)[];
    for (let round = 0; round < rounds; round++) {
      for (const name of [...order.slice(round % order.length), ...order.slice(0, round % order.length)]) {
        const connectionIds = ids(round, posts);
        const started = process.cpuUsage();
        await paths[name](connectionIds);
        const used = process.cpuUsage(started);
        cpu[name].push((used.user + used.system) / posts);
      }
    }
  } finally {
    hubApi.destroy();
    sdk.destroy();
    agent.destroy();
    sink.stop();
  }
  const hub = median(cpu.hub);
  const sdkCost = median(cpu.sdk);
  const sdkSameLoop = median(cpu.sdk_same_loop);
  const floor = median(cpu.floor);
  const round1 = (n: number) => Math.round(n * 10) / 10;
  note(`µs of client CPU per post (rounds): ${Object.entries(cpu).map(([name, values]) => `${name} ${values.map(round1).join(", ")}`).join("; ")}`);
  return {
    posts,
    rounds,
    concurrency,
    frame_bytes: payload.length,
    hub_us_per_post: round1(hub),
    sdk_us_per_post: round1(sdkCost),
    sdk_same_loop_us_per_post: round1(sdkSameLoop),
    floor_us_per_post: round1(floor),
    hub_vs_sdk: Math.round((hub / sdkCost) * 1000) / 1000,
    hub_vs_sdk_same_loop: Math.round((hub / sdkSameLoop) * 1000) / 1000,
    hub_vs_floor: Math.round((hub / floor) * 100) / 100,
  };
}
