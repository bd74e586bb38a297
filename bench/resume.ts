/**
 * Room streams benchmark (docs/protocol.md#room-streams), on the local hub (dynalite, fauxqs, the emulator):
 * - resume: time from a `resume` request to `hub.resumed` for 100 and 1,000 missed
 *   notifications (p50/p99 over several runs), on a raw WebSocket;
 * - publish cost: stream items and capacity units written per notification (counted on the
 *   table), and the local time to deliver a burst to one listener with streams on and off.
 *
 *   node -r ts-node/register/transpile-only bench/resume.ts [--quick] [--json]
 */
import { parseArgs } from "util";
import { WebSocket } from "ws";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { dynamoClient } from "../core/aws";
import { startLocalHub, type LocalHub } from "../local";
import { percentile } from "./lib";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "boolean" } }, strict: true });
const quick = values.quick ?? false;
const RUNS = quick ? 5 : 20;
const BURST = quick ? 100 : 300;

async function publishMany(hub: LocalHub, room: string, count: number, data: (i: number) => unknown = (i) => ({ type: "n", data: i })) {
  for (let i = 0; i < count; i += 10) {
    await hub.notifier.publishBatch(Array.from({ length: Math.min(10, count - i) }, (_, j) => ({ roomId: room, data: data(i + j) })));
  }
}

async function waitStored(hub: LocalHub, room: string, seq: number) {
  while (((await hub.notifier.history({ roomId: room, last: 1 }))[0]?.seq ?? 0) < seq) await new Promise((resolve) => setTimeout(resolve, 50));
}

async function openSocket(hub: LocalHub, room: string, user: string): Promise<WebSocket> {
  const token = await hub.notifier.issueToken({ userId: user, roomId: room });
  const ws = new WebSocket(`${hub.websocketUrl}?token=${token}`);
  await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
  return ws;
}

/** ms from sending `resume` to receiving `hub.resumed`, with the frame count received in between. */
async function timeResume(ws: WebSocket, room: string, after: number): Promise<{ ms: number; frames: number }> {
  let frames = 0;
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const onMessage = (data: Buffer) => {
      const frame = JSON.parse(String(data)) as { seq?: number; data?: { type?: string } };
      if (frame.seq !== undefined) frames++;
      else if (frame.data?.type === "hub.resumed") {
        ws.off("message", onMessage);
        resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, frames });
      }
    };
    ws.on("message", onMessage);
    ws.send(JSON.stringify({ action: "resume", room_id: room, after }));
  });
}

async function resumeScenario(hub: LocalHub) {
  const out: Record<string, { p50: number; p99: number; runs: number }> = {};
  for (const missed of [100, 1_000]) {
    const room = `resume-${missed}`;
    await publishMany(hub, room, missed);
    await waitStored(hub, room, missed);
    const times: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      // A connection per run: each has its own replay budget (2,000 frames per 10 s), which
      // back-to-back runs on one connection would spend.
      const ws = await openSocket(hub, room, "bench");
      const { ms, frames } = await timeResume(ws, room, 0);
      ws.close();
      if (frames !== missed) throw new Error(`resume sent ${frames} frames, expected ${missed}`);
      times.push(ms);
    }
    out[`missed_${missed}`] = { p50: percentile(times, 50), p99: percentile(times, 99), runs: RUNS };
  }
  return out;
}

/** Stream items, and write capacity units as DynamoDB bills them (1 per KB, rounded up, per item). */
async function streamCost(hub: LocalHub, frameBytes: number) {
  const room = `cost-${frameBytes}`;
  const count = 50;
  await publishMany(hub, room, count, (i) => ({ type: "n", data: "x".repeat(frameBytes), i }));
  await waitStored(hub, room, count);
  const db = dynamoClient({ endpoint: hub.dynamodbEndpoint });
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, never> | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: hub.streamsTableName, ExclusiveStartKey: startKey }));
    items.push(...(page.Items ?? []).filter((item) => JSON.stringify(item.stream_id).includes(room)));
    startKey = page.LastEvaluatedKey as typeof startKey;
  } while (startKey);
  // Item size ≈ attribute names + values (DynamoDB's rule); 1 WCU per started KB.
  const wcu = items.reduce<number>((sum, item) => sum + Math.max(1, Math.ceil(Buffer.byteLength(JSON.stringify(item)) / 1024)), 0);
  return { items_per_publish: items.length / count, wcu_per_publish: wcu / count, frame_bytes: frameBytes };
}

/** Local time to get a burst of notifications to one listener, streams on vs off. */
async function burstMs(retentionHours: number): Promise<number> {
  const hub = await startLocalHub({ port: 0, bcryptCost: 4, history: { retentionHours } });
  try {
    const ws = await openSocket(hub, "burst", "listener");
    let got = 0;
    const done = new Promise<void>((resolve) => ws.on("message", () => ++got === BURST && resolve()));
    const started = process.hrtime.bigint();
    await publishMany(hub, "burst", BURST);
    await done;
    ws.close();
    return Number(process.hrtime.bigint() - started) / 1e6;
  } finally {
    await hub.stop();
  }
}

async function main() {
  const hub = await startLocalHub({ port: 0, bcryptCost: 4 });
  let resume;
  let cost;
  try {
    resume = await resumeScenario(hub);
    cost = [await streamCost(hub, 100), await streamCost(hub, 4_000)];
  } finally {
    await hub.stop();
  }
  const on = await burstMs(24);
  const off = await burstMs(0);
  const result = {
    date: new Date().toISOString(),
    quick,
    resume_ms: resume,
    cost,
    burst: { notifications: BURST, streams_on_ms: Math.round(on), streams_off_ms: Math.round(off), per_publish_on_ms: on / BURST, per_publish_off_ms: off / BURST },
  };
  process.stdout.write(values.json ? JSON.stringify(result) + "\n" : JSON.stringify(result, null, 2) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
