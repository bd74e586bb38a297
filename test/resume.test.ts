/**
 * Room streams end to end (docs/protocol.md#room-streams), against the local hub's real parts: the browser client
 * module (in Node with `ws`, and in Chromium), the emulator, the queue, the poller, dynalite.
 * A client that misses notifications gets each one exactly once and in seq order.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { SQSEvent } from "aws-lambda";
import { BatchWriteItemCommand } from "@aws-sdk/client-dynamodb";
import { dynamoClient } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { createLogger } from "../core/log";
import { createDeliverHandler } from "../handlers/deliver";
import { startLocalHub, type LocalHub, type LocalHubOptions } from "../local";
import { gatedWebSocket } from "./support/clientSocket";
type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });
type Frame = { id: string; seq?: number; data: { type: string; data: unknown } };

let connect: ClientModule["connect"];
beforeAll(async () => {
  ({ connect } = await import("../client/index.mjs"));
});

const hubs: LocalHub[] = [];
const tempDirs: string[] = [];
afterEach(async () => {
  // One hub at a time: each runs its own pollers.
  for (const hub of hubs.splice(0)) await hub.stop();
});
afterAll(async () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

async function hubWith(options: LocalHubOptions = {}): Promise<LocalHub> {
  const hub = await startLocalHub({ port: 0, bcryptCost: 4, queue: { waitTimeSeconds: 1 }, ...options });
  hubs.push(hub);
  return hub;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met in time`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A client module connection with a collecting subscriber. */
function follow(hub: LocalHub, room: string, gate: ReturnType<typeof gatedWebSocket>, extra: { onGap?: (gap: unknown) => void; persistSeq?: boolean } = {}) {
  const got: Frame[] = [];
  const control: Frame[] = [];
  const connection = connect({
    url: hub.websocketUrl,
    getToken: () => hub.notifier.issueToken({ userId: "reader", roomId: room }),
    WebSocket: gate.WebSocket,
    room,
    minBackoffMs: 50,
    maxBackoffMs: 200,
    ...extra,
  });
  connection.subscribe("*", (_data, frame) => ((frame as Frame).seq === undefined ? control : got).push(frame as Frame));
  return { connection, got, control };
}

async function publishMany(hub: LocalHub, room: string, from: number, count: number): Promise<string[]> {
  const inputs = Array.from({ length: count }, (_, i) => ({ roomId: room, data: { type: "n", data: from + i } }));
  const ids: string[] = [];
  for (let i = 0; i < inputs.length; i += 10) ids.push(...(await hub.notifier.publishBatch(inputs.slice(i, i + 10))).messageIds);
  return ids;
}

async function storedUpTo(hub: LocalHub, room: string, seq: number) {
  // A deadline for a hung hub only: a busy host stores a thousand notifications slowly.
  await until(async () => ((await hub.notifier.history({ roomId: room, last: 1 }))[0]?.seq ?? 0) >= seq, 120_000, `seq ${seq} stored`);
}

function expectExactlyOnceInOrder(got: Frame[], count: number) {
  expect(got.map((f) => f.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  expect(new Set(got.map((f) => f.id)).size).toBe(count);
}

/** Baseline, 3 live, cut, 50 while away, back: 53 exactly once in order. */
async function missFiftyAndResume(hub: LocalHub, room: string, gate: ReturnType<typeof gatedWebSocket>, away: () => Promise<void>, back: () => Promise<LocalHub> = async () => hub) {
  const { connection, got } = follow(hub, room, gate);
  try {
    await until(() => connection.lastSeq(room) !== undefined, 20_000, "baseline");
    await publishMany(hub, room, 1, 3);
    await until(() => got.length === 3, 20_000, "3 live frames");
    await away();
    const current = await back();
    await publishMany(current, room, 4, 50);
    await storedUpTo(current, room, 53);
    gate.restore();
    await until(() => got.length >= 53, 30_000, "53 frames");
    await new Promise((resolve) => setTimeout(resolve, 300)); // any duplicate would arrive now
    expectExactlyOnceInOrder(got, 53);
    // seq follows delivery order (a standard queue), not necessarily publish order.
    expect(new Set(got.map((f) => f.data.data))).toEqual(new Set(Array.from({ length: 53 }, (_, i) => i + 1)));
  } finally {
    connection.close();
  }
}

/** A bare `ws` connection to a room that keeps every frame it gets. */
async function rawSocket(hub: LocalHub, room: string) {
  const token = await hub.notifier.issueToken({ userId: "raw", roomId: room });
  const ws = new WebSocket(`${hub.websocketUrl}?token=${encodeURIComponent(token)}`);
  const frames: Frame[] = [];
  ws.on("message", (data) => frames.push(JSON.parse(String(data)) as Frame));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, frames };
}

/** Stores frames 1..count of a room's stream directly (as deliver would have), without the queue. */
async function seedStream(hub: LocalHub, room: string, count: number) {
  const db = dynamoClient({ endpoint: hub.dynamodbEndpoint });
  const expires = Math.floor(Date.now() / 1000) + 3600;
  for (let from = 1; from <= count; from += 25) {
    const items = Array.from({ length: Math.min(25, count - from + 1) }, (_, i) => {
      const seq = from + i;
      const frame = JSON.stringify({ id: `${room}-${seq}`, room_id: room, user_id: null, origin: "app", seq, data: { type: "n", data: seq } });
      return { PutRequest: { Item: { stream_id: { S: room }, seq: { N: String(seq) }, message_id: { S: `${room}-${seq}` }, frame: { S: frame }, expires_at: { N: String(expires) } } } };
    });
    await db.send(new BatchWriteItemCommand({ RequestItems: { [hub.streamsTableName]: items } }));
  }
}

const errorsOf = (frames: Frame[]) => frames.filter((f) => f.data.type === "hub.error").map((f) => (f.data.data as { code: string }).code);

describe("room streams end to end", () => {
  it("disconnected while 50 are published: after the reconnect, every one exactly once, in seq order", async () => {
    const hub = await hubWith();
    const gate = gatedWebSocket();
    await missFiftyAndResume(hub, "fifty", gate, async () => gate.cut());
  }, 90_000);

  it("the same across the emulator's forced maximum-duration close", async () => {
    const hub = await hubWith({ limits: { maxConnectionMs: 2_500 } });
    const gate = gatedWebSocket();
    gate.state.closeOnForcedClose = true;
    await missFiftyAndResume(hub, "max-duration", gate, () => until(() => gate.state.closed, 10_000, "forced close"));
    expect(gate.state.sockets.length).toBeGreaterThan(1);
  }, 90_000);

  it("the same across a local hub restart with a data dir", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-streams-"));
    tempDirs.push(dataDir);
    const first = await startLocalHub({ port: 0, bcryptCost: 4, dataDir, queue: { waitTimeSeconds: 1 } });
    const port = Number(new URL(first.httpUrl).port);
    let second: LocalHub | undefined;
    const gate = gatedWebSocket();
    // The client keeps its hub object: getToken reads through whichever hub is up.
    const proxy = new Proxy(first, { get: (_t, key) => Reflect.get(second ?? first, key) });
    await missFiftyAndResume(
      proxy,
      "restart",
      gate,
      async () => {
        gate.cut();
        await first.stop();
      },
      async () => {
        second = await hubWith({ port, dataDir });
        return second;
      },
    );
  }, 90_000);

  it("the same when SQS delivers some messages twice, at once and later", async () => {
    const hub = await hubWith();
    const room = "twice";
    const gate = gatedWebSocket();
    // A second deliver "invocation" of the real handler against the hub's parts, fed copies
    // of queue messages (same id, same body), as SQS does when it delivers a message twice.
    const deliver = createDeliverHandler({
      db: dynamoClient({ endpoint: hub.dynamodbEndpoint }),
      management: createConnectionsApi(hub.managementEndpoint, { credentials: hub.credentials }),
      connectionsTable: hub.connectionsTableName,
      streams: { streamsTable: hub.streamsTableName, retentionHours: 24 },
      log: createLogger({ handler: "deliver-duplicate" }, () => undefined),
    });
    const { connection, got } = follow(hub, room, gate);
    try {
      await until(() => connection.lastSeq(room) !== undefined, 20_000, "baseline");
      gate.cut();
      const bodies = Array.from({ length: 50 }, (_, i) => JSON.stringify({ room_id: room, user_id: null, data: { type: "n", data: i + 1 } }));
      const ids = await publishMany(hub, room, 1, 50);
      const records = ids.map((messageId, i) => ({ messageId, body: bodies[i], attributes: { ApproximateReceiveCount: "2" } }));
      // Every third message again, while the poller delivers the originals; then all of them again later.
      let pendingRecords = records.filter((_, i) => i % 3 === 0);
      while (pendingRecords.length > 0) {
        const { batchItemFailures } = await deliver({ Records: pendingRecords } as unknown as SQSEvent);
        const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
        pendingRecords = pendingRecords.filter((r) => failed.has(r.messageId)); // busy: retried later, as SQS would
        if (pendingRecords.length) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await storedUpTo(hub, room, 50);
      expect((await deliver({ Records: records } as unknown as SQSEvent)).batchItemFailures).toEqual([]);
      const history = await hub.notifier.history({ roomId: room });
      expect(history.map((f) => f.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(new Set(history.map((f) => f.id)).size).toBe(50);
      gate.restore();
      await until(() => got.length >= 50, 30_000, "50 frames");
      await new Promise((resolve) => setTimeout(resolve, 300));
      expectExactlyOnceInOrder(got, 50);
    } finally {
      connection.close();
    }
  }, 90_000);

  it("live frames racing a replay: none lost, none twice, in order (client module in Node)", async () => {
    const hub = await hubWith();
    const room = "race";
    const gate = gatedWebSocket();
    const { connection, got } = follow(hub, room, gate);
    try {
      await until(() => connection.lastSeq(room) !== undefined, 20_000, "baseline");
      gate.cut();
      await publishMany(hub, room, 1, 150);
      await storedUpTo(hub, room, 150);
      gate.restore();
      // While the client reconnects and the replay runs, more arrive live.
      await publishMany(hub, room, 151, 100);
      await until(() => got.length >= 250, 40_000, "250 frames");
      await new Promise((resolve) => setTimeout(resolve, 300));
      expectExactlyOnceInOrder(got, 250);
    } finally {
      connection.close();
    }
  }, 90_000);

  it("retention passed: hub.resumed says recovered false, retention_exceeded, and onGap is called", async () => {
    const hub = await hubWith({ history: { retentionHours: 1 / 3600 } }); // one second
    const room = "forgotten";
    const gate = gatedWebSocket();
    const gaps: unknown[] = [];
    const { connection, got, control } = follow(hub, room, gate, { onGap: (gap) => gaps.push(gap) });
    try {
      await until(() => connection.lastSeq(room) !== undefined, 20_000, "baseline");
      await publishMany(hub, room, 1, 2);
      await until(() => got.length === 2, 20_000, "2 live frames");
      gate.cut();
      await publishMany(hub, room, 3, 3);
      await storedUpTo(hub, room, 5);
      await new Promise((resolve) => setTimeout(resolve, 2_500)); // seq 3 to 5 expire
      await publishMany(hub, room, 6, 2);
      await storedUpTo(hub, room, 7);
      gate.restore();
      await until(() => gaps.length > 0 && got.length >= 4, 20_000, "gap and the kept frames").catch((err) => {
        throw new Error(`${(err as Error).message}: ${JSON.stringify({ gaps, got, control })}`);
      });
      expect(gaps[0]).toEqual({ roomId: room, after: 2, lastSeq: 7, reason: "retention_exceeded" });
      const resumed = control.find((f) => (f.data.data as { after?: number }).after === 2);
      expect(resumed?.data.data).toEqual({ room_id: room, after: 2, last_seq: 7, recovered: false, reason: "retention_exceeded" });
      expect(got.map((f) => f.seq)).toEqual([1, 2, 6, 7]);
    } finally {
      connection.close();
    }
  }, 60_000);

  it("resume of a room the connection is not in: hub.error not_subscribed", async () => {
    const hub = await hubWith();
    const { ws, frames } = await rawSocket(hub, "mine");
    try {
      ws.send(JSON.stringify({ action: "resume", room_id: "theirs", after: 0 }));
      await until(() => errorsOf(frames).length > 0, 10_000, "hub.error");
      expect(errorsOf(frames)).toEqual(["not_subscribed"]);
      expect(frames.some((f) => f.data.type === "hub.resumed")).toBe(false);
    } finally {
      ws.close();
    }
  }, 30_000);

  it("malformed resume requests: hub.error invalid_resume, and the connection still resumes afterwards", async () => {
    const hub = await hubWith();
    const room = "strict";
    const { ws, frames } = await rawSocket(hub, room);
    try {
      const bad = [
        { room_id: room, after: 0, last: 1 },
        { room_id: room },
        { room_id: room, after: -1 },
        { room_id: room, after: 1.5 },
        { room_id: room, after: "3" },
        { room_id: room, last: -2 },
        { room_id: room, last: 2.5 },
        { room_id: room, last: 1001 },
        { after: 0 },
        { room_id: "", after: 0 },
      ];
      for (const request of bad) ws.send(JSON.stringify({ action: "resume", ...request }));
      await until(() => errorsOf(frames).length >= bad.length, 15_000, `${bad.length} hub.error frames`);
      expect(errorsOf(frames)).toEqual(bad.map(() => "invalid_resume"));
      ws.send(JSON.stringify({ action: "resume", room_id: room, after: 0 }));
      await until(() => frames.some((f) => f.data.type === "hub.resumed"), 10_000, "hub.resumed");
      expect(frames.find((f) => f.data.type === "hub.resumed")?.data.data).toEqual({ room_id: room, after: 0, last_seq: 0, recovered: true });
    } finally {
      ws.close();
    }
  }, 30_000);

  it("streams off (retention 0): frames carry no seq, resume answers hub.error streams_off", async () => {
    const hub = await hubWith({ history: { retentionHours: 0 } });
    const room = "nostream";
    const { ws, frames } = await rawSocket(hub, room);
    try {
      await hub.notifier.publish({ roomId: room, data: { type: "n", data: 1 } });
      await until(() => frames.some((f) => f.data.type === "n"), 20_000, "live frame");
      const live = frames.find((f) => f.data.type === "n") as Frame & Record<string, unknown>;
      expect("seq" in live).toBe(false);
      ws.send(JSON.stringify({ action: "resume", room_id: room, after: 0 }));
      await until(() => errorsOf(frames).length > 0, 10_000, "hub.error");
      expect(errorsOf(frames)).toEqual(["streams_off"]);
    } finally {
      ws.close();
    }
  }, 30_000);

  it("more than 1,000 missed: the first 1,000 in order then too_many; the client module pages on to every frame once", async () => {
    const hub = await hubWith();
    const room = "many";
    const total = 1_050;
    // The client module follows the room from seq 0, then misses all of them.
    const gate = gatedWebSocket();
    const gaps: unknown[] = [];
    const { connection, got, control } = follow(hub, room, gate, { onGap: (gap) => gaps.push(gap) });
    try {
      await until(() => connection.lastSeq(room) !== undefined, 20_000, "baseline");
      expect(connection.lastSeq(room)).toBe(0);
      gate.cut();
      await publishMany(hub, room, 1, total);
      await storedUpTo(hub, room, total);
      // What the hub sends a bare connection for one resume call.
      const { ws, frames } = await rawSocket(hub, room);
      try {
        ws.send(JSON.stringify({ action: "resume", room_id: room, after: 0 }));
        await until(() => frames.some((f) => f.data.type === "hub.resumed"), 30_000, "hub.resumed");
        const resumedAt = frames.findIndex((f) => f.data.type === "hub.resumed");
        expect(frames.slice(0, resumedAt).map((f) => f.seq)).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
        expect(frames[resumedAt].data.data).toEqual({ room_id: room, after: 0, last_seq: total, recovered: false, reason: "too_many" });
      } finally {
        ws.close();
      }
      gate.restore();
      await until(() => got.length >= total, 120_000, `${total} frames`).catch((err) => {
        throw new Error(`${(err as Error).message}: got ${got.length}, control ${JSON.stringify(control.map((f) => f.data))}`);
      });
      await new Promise((resolve) => setTimeout(resolve, 300)); // any duplicate would arrive now
      expectExactlyOnceInOrder(got, total);
      expect(gaps).toEqual([]);
      // The baseline, the first page (too_many), then the rest (of this room: the client resumes its user channel too).
      expect(control.filter((f) => f.data.type === "hub.resumed" && (f.data.data as { room_id?: string }).room_id === room).map((f) => (f.data.data as { reason?: string }).reason)).toEqual([undefined, "too_many", undefined]);
      expect(connection.lastSeq(room)).toBe(total);
    } finally {
      connection.close();
    }
  }, 300_000);

  it("a resume storm (40 resume last:1000 at once from one connection) is sent at most the connection's replay budget, 2,000 frames; the other resumes are refused resume_throttled naming the room, and a bystander in another room still gets its notification", async () => {
    const hub = await hubWith();
    const room = "storm";
    await seedStream(hub, room, 1_000);
    const bystander = await rawSocket(hub, "bystander");
    const { ws, frames } = await rawSocket(hub, room);
    try {
      // The budget is per 10 s window from the epoch: start the storm well inside one, so that it is counted against one budget.
      while (Date.now() % 10_000 > 6_000) await new Promise((resolve) => setTimeout(resolve, 50));
      for (let i = 0; i < 40; i++) ws.send(JSON.stringify({ action: "resume", room_id: room, last: 1_000 }));
      await hub.notifier.publish({ roomId: "bystander", data: { type: "n", data: "meanwhile" } });
      const answers = () => frames.filter((f) => f.data.type === "hub.resumed" || f.data.type === "hub.error");
      await until(() => answers().length === 40, 60_000, "40 answers");
      await until(() => bystander.frames.some((f) => f.data.data === "meanwhile"), 20_000, "the bystander's notification");
      const replayed = frames.filter((f) => f.seq !== undefined).length;
      const resumed = frames.filter((f) => f.data.type === "hub.resumed").map((f) => f.data.data as { recovered: boolean; reason?: string; last_seq: number });
      const refused = frames.filter((f) => f.data.type === "hub.error").map((f) => f.data.data as { code: string; room_id?: string; temporary: boolean; retry_after_ms: number });
      // Without the budget: 40,000 frames. With it, the window's 2,000: two whole pages, charged by
      // concurrent invocations that never together pass the budget.
      expect(replayed).toBe(2_000);
      expect(resumed).toEqual([1, 2].map(() => ({ room_id: room, after: 0, last_seq: 1_000, recovered: true })));
      expect(refused).toHaveLength(38);
      for (const error of refused) {
        expect(error).toMatchObject({ code: "resume_throttled", room_id: room, temporary: true });
        expect(error.retry_after_ms).toBeGreaterThan(0);
        expect(error.retry_after_ms).toBeLessThanOrEqual(10_000);
      }
    } finally {
      ws.close();
      bystander.ws.close();
    }
  }, 90_000);

  it("persistSeq: a new client instance with the same sessionStorage (a page reload) resumes where the last left off", async () => {
    const hub = await hubWith();
    const room = "reload";
    const items = new Map<string, string>();
    const storage = {
      getItem: (key: string) => items.get(key) ?? null,
      setItem: (key: string, value: string) => void items.set(key, String(value)),
      removeItem: (key: string) => void items.delete(key),
    };
    const previous = Object.getOwnPropertyDescriptor(globalThis, "sessionStorage");
    Object.defineProperty(globalThis, "sessionStorage", { value: storage, configurable: true, writable: true });
    try {
      const first = follow(hub, room, gatedWebSocket(), { persistSeq: true });
      try {
        await until(() => first.connection.lastSeq(room) !== undefined, 20_000, "baseline");
        await publishMany(hub, room, 1, 5);
        await until(() => first.got.length === 5, 20_000, "5 live frames");
      } finally {
        first.connection.close();
      }
      // One entry per stream the client follows: this room's, and the user channel's (user:reader, nothing sent to it).
      const roomKey = `notification-hub:seq:${hub.websocketUrl}:${room}`;
      expect(Object.fromEntries(items)).toEqual({ [roomKey]: "5", [`notification-hub:seq:${hub.websocketUrl}:user:reader`]: "0" });
      await publishMany(hub, room, 6, 20);
      await storedUpTo(hub, room, 25);
      const second = follow(hub, room, gatedWebSocket(), { persistSeq: true });
      try {
        await until(() => second.got.length >= 20, 20_000, "20 missed frames");
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(second.got.map((f) => f.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 6));
        expect(second.connection.lastSeq(room)).toBe(25);
        expect(items.get(roomKey)).toBe("25");
      } finally {
        second.connection.close();
      }
    } finally {
      if (previous) Object.defineProperty(globalThis, "sessionStorage", previous);
      else delete (globalThis as { sessionStorage?: unknown }).sessionStorage;
    }
  }, 60_000);
});
