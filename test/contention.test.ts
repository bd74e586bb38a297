/**
 * A busy room: many writers at once into one stream, through the real handlers against dynalite
 * and the @connections emulator, with every DynamoDB request counted by a recording proxy.
 * Counts, not times: what was stored, refused, lost, and what it cost in requests.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { dynamoClient } from "../core/aws";
import { createConnectionsApi } from "../core/connections";
import { DEFAULT_RETRY, type FanoutDeps } from "../core/fanout";
import { appendOnce, headSeq, readStream, tombstoneFrame, type StreamDeps } from "../core/streams";
import type { Notification } from "../core/messages";
import { createDeliverHandler } from "../handlers/deliver";
import { createSendMessageHandler } from "../handlers/sendMessage";
import { createNotifier } from "../server";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { dynamoRequests, startRecorder, type Recorder } from "./support/awsRecorder";
import { routeEvent, sqsEvent, sqsRecord } from "./support/events";
import { capturingLogger } from "./support/logs";
import { seedConnections } from "./support/seed";
import { startDynamo, type Dynamo } from "./support/services";

type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });
type Frame = { id?: string; seq?: number; room_id?: string | null; skip?: boolean; data?: { type?: string; data?: Record<string, unknown> } };

const CONTEXT = { partition: "aws", region: "us-east-1", account: "123456789012" };
const STREAMS = "contention-streams";
const WRITERS = 6;
const EACH = 20;
const TOTAL = WRITERS * EACH;

let dynamo: Dynamo;
let recorder: Recorder;
let db: DynamoDBClient;
let management: StandaloneConnectionsEmulator;

beforeAll(async () => {
  [dynamo, management] = await Promise.all([startDynamo({ connectionsTable: "contention-connections", authTable: "contention-auth", streamsTable: STREAMS }), startConnectionsEmulator()]);
  recorder = await startRecorder(dynamo.endpoint, dynamoRequests(CONTEXT));
  db = dynamoClient({ endpoint: recorder.endpoint, region: "us-east-1" });
}, 60_000);

afterAll(async () => {
  await Promise.all([recorder?.stop(), management?.stop(), dynamo?.stop()]);
});

function deps(): FanoutDeps {
  return {
    db,
    management: createConnectionsApi(management.endpoint),
    connectionsTable: dynamo.connectionsTable,
    streams: { streamsTable: STREAMS, retentionHours: 1 },
    log: capturingLogger().log,
    retry: { ...DEFAULT_RETRY, baseDelayMs: 1, maxDelayMs: 5 },
  };
}

/** The DynamoDB requests `work` made, by table (streams, connections). */
async function counting(work: () => Promise<unknown>) {
  const mark = recorder.requests.length;
  await work();
  const made = recorder.requests.slice(mark);
  const on = (table: string) => made.filter((r) => r.resource.endsWith(`table/${table}`) || r.resource.includes(`table/${table}/`));
  return { all: made, streams: on(STREAMS), connections: on(dynamo.connectionsTable) };
}

const parse = (text: string) => JSON.parse(text) as Frame;
const framesOf = (connectionId: string) => (management.received.get(connectionId) ?? []).map(parse);
const seqsOf = (frames: Frame[]) => frames.filter((f) => typeof f.seq === "number").map((f) => f.seq!);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("a busy room: many writers into one stream at once", () => {
  it(`${WRITERS} members sending ${EACH} messages each at once: ${TOTAL} stored with seq 1..${TOTAL}, none refused or lost, a bounded number of DynamoDB requests per message`, async () => {
    const room = "busy";
    const members = range(1, WRITERS).map((i) => `member-${i}`);
    await seedConnections(dynamo.client, dynamo.connectionsTable, members.map((id) => ({ connectionId: id, roomId: room, userId: id })));
    const sendMessage = createSendMessageHandler(deps());
    const refs = members.flatMap((id) => range(1, EACH).map((n) => ({ id, ref: `${id}/${n}` })));
    const counted = await counting(() =>
      Promise.all(refs.map(({ id, ref }) => sendMessage(routeEvent("sendMessage", id, { body: JSON.stringify({ action: "sendMessage", room_id: room, ref, data: { ref } }) })))),
    );

    const stored = await readStream(dynamo.client, STREAMS, room, { after: 0 });
    const refused = members.flatMap((id) => framesOf(id).filter((f) => f.data?.type === "hub.error"));
    expect(refused.map((f) => f.data?.data?.code)).toEqual([]);
    expect(stored.frames.map((f) => f.seq)).toEqual(range(1, TOTAL));
    expect(new Set(stored.frames.map((f) => (parse(f.frame).data as { ref?: string }).ref)).size).toBe(TOTAL);
    // Every member got every message once, by its stored bytes, and an answer to each of its own.
    for (const id of members) {
      const frames = framesOf(id);
      expect(seqsOf(frames).sort((a, b) => a - b), id).toEqual(range(1, TOTAL));
      const sent = frames.filter((f) => f.data?.type === "hub.sent").map((f) => f.data!.data!);
      expect(sent.map((s) => s.ref).sort(), id).toEqual(range(1, EACH).map((n) => `${id}/${n}`).sort());
      for (const s of sent) expect(stored.frames.find((f) => f.seq === s.seq)?.messageId).toBe(s.id);
    }
    const lost = TOTAL * WRITERS - members.reduce((sum, id) => sum + new Set(seqsOf(framesOf(id))).size, 0);
    expect(lost).toBe(0);
    // Per message: claim put, counter update, claim update, frame put; and for a writer that
    // finds no counter yet (the room's first burst), the head Query and the counter's start.
    const perMessage = counted.streams.length / TOTAL;
    expect(counted.streams.length).toBeLessThanOrEqual(6 * TOTAL);
    expect(counted.streams.filter((r) => r.action === "dynamodb:PutItem").length).toBe(2 * TOTAL); // no lost race, no tombstone
    // Plus the sender's row and the room index page.
    expect(counted.all.length).toBeLessThanOrEqual(8 * TOTAL);

    // The same again into the room, now with its counter: 4 requests per message on the streams table.
    const warm = await counting(() =>
      Promise.all(refs.map(({ id, ref }) => sendMessage(routeEvent("sendMessage", id, { body: JSON.stringify({ action: "sendMessage", room_id: room, ref: `${ref}+`, data: { ref: `${ref}+` } }) })))),
    );
    expect((await readStream(dynamo.client, STREAMS, room, { after: TOTAL })).frames.map((f) => f.seq)).toEqual(range(TOTAL + 1, 2 * TOTAL));
    expect(warm.streams.length).toBe(4 * TOTAL);
    console.log(
      `SUMMARY contention: ${WRITERS} writers x ${EACH} at once -> ${stored.frames.length} stored (seq 1..${stored.lastSeq}), ${refused.length} refused, ${lost} lost; ` +
        `DynamoDB requests per message on the streams table: ${perMessage.toFixed(2)} for the room's first burst (counter started by many), ${(warm.streams.length / TOTAL).toFixed(2)} after; ` +
        `${(counted.all.length / TOTAL).toFixed(2)} / ${(warm.all.length / TOTAL).toFixed(2)} in all`,
    );
  }, 120_000);

  it(`${WRITERS} deliver invocations of ${EACH} records at once, then every record redelivered: same seq, stored once, nothing appended`, async () => {
    const room = "busy-deliver";
    await seedConnections(dynamo.client, dynamo.connectionsTable, [{ connectionId: "listener", roomId: room, userId: "listener" }]);
    const batches = range(1, WRITERS).map((w) => range(1, EACH).map((n) => sqsRecord(JSON.stringify({ room_id: room, data: { w, n } }), `busy-${w}-${n}`)));
    const handlers = batches.map(() => createDeliverHandler(deps()));
    const first = await counting(async () => {
      const answers = await Promise.all(batches.map((records, i) => handlers[i](sqsEvent(records))));
      expect(answers.flatMap((a) => a.batchItemFailures)).toEqual([]);
    });
    const stored = await readStream(dynamo.client, STREAMS, room, { after: 0 });
    expect(stored.frames.map((f) => f.seq)).toEqual(range(1, TOTAL));
    const seqById = new Map(stored.frames.map((f) => [f.messageId, f.seq]));
    expect(seqById.size).toBe(TOTAL);
    // 4 per message, and the counter's start (a Query and an update) for each writer that found none.
    expect(first.streams.length).toBeLessThanOrEqual(4 * TOTAL + 2 * WRITERS);

    // SQS delivers every record again, all at once, to other invocations.
    management.received.delete("listener");
    const again = await counting(async () => {
      const answers = await Promise.all(batches.map((records) => createDeliverHandler(deps())(sqsEvent(records))));
      expect(answers.flatMap((a) => a.batchItemFailures)).toEqual([]);
    });
    const redelivered = framesOf("listener");
    expect(redelivered).toHaveLength(TOTAL);
    for (const frame of redelivered) expect(frame.seq).toBe(seqById.get(frame.id!));
    expect((await readStream(dynamo.client, STREAMS, room, { after: 0 })).frames).toEqual(stored.frames);
    // The failed claim put, the claim and the frame read back: no write lands, no seq is reserved.
    expect(again.streams.filter((r) => r.action !== "dynamodb:GetItem" && r.action !== "dynamodb:PutItem")).toEqual([]);
    expect(again.streams.length).toBe(3 * TOTAL);
    console.log(`SUMMARY contention: ${TOTAL} records redelivered -> same seq for all, 0 stored again, ${again.streams.length / TOTAL} requests each`);
  }, 120_000);
});

describe("a writer that reserves a seq and dies", () => {
  const note = (id: string, roomId: string): Notification => ({ id, roomId, userId: null, origin: "app", data: { type: "t", data: id } });
  /** A client of an invocation that dies right after its first counter update: it makes no more requests. */
  const diesAfterReserving = (inner: DynamoDBClient): DynamoDBClient => {
    let dead = false;
    return {
      send: async (command: { input: Record<string, unknown> }) => {
        if (dead) throw new Error("invocation crashed");
        const result = await inner.send(command as never);
        if (String(command.input.UpdateExpression ?? "").startsWith("ADD")) {
          dead = true;
          throw new Error("invocation crashed");
        }
        return result;
      },
    } as unknown as DynamoDBClient;
  };

  it("readers stop before its seq instead of calling it gone; after the stale time the next writer tombstones it; the stream reads through", async () => {
    let clock = Date.now();
    const room = "hole";
    const streams: StreamDeps = { db: dynamo.client, streamsTable: STREAMS, retentionHours: 1, now: () => clock };
    await appendOnce(streams, note("h1", room));
    await appendOnce(streams, note("h2", room));
    await expect(appendOnce({ ...streams, db: diesAfterReserving(dynamo.client) }, note("dies", room))).rejects.toThrow("crashed");
    await appendOnce(streams, note("h4", room));

    // Seq 3 is missing under seq 4: in flight as far as anyone can tell.
    expect(await headSeq(dynamo.client, STREAMS, room)).toBe(2);
    const early = await readStream(dynamo.client, STREAMS, room, { after: 2 });
    expect(early).toMatchObject({ frames: [], lastSeq: 2, gone: false, truncated: false, inFlight: true }); // frames beyond 2 exist: a reader holding one keeps it
    expect((await readStream(dynamo.client, STREAMS, room, { after: 0 })).frames.map((f) => f.seq)).toEqual([1, 2]);

    // The next writer after the stale time fills it.
    clock += 61_000;
    const later = await appendOnce(streams, note("h5", room));
    expect(later.stored.seq).toBe(5);
    const read = await readStream(dynamo.client, STREAMS, room, { after: 2 });
    expect(read).toMatchObject({ lastSeq: 5, gone: false, truncated: false, inFlight: false });
    expect(read.frames.map((f) => [f.seq, f.messageId])).toEqual([
      [3, ""],
      [4, "h4"],
      [5, "h5"],
    ]);
    expect(JSON.parse(read.frames[0].frame)).toEqual({ seq: 3, room_id: room, skip: true });
    expect(read.frames[0].frame).toBe(tombstoneFrame(room, 3));
    // The dead writer's message, redelivered, is stored once, at a seq of its own.
    const redelivered = await appendOnce(streams, note("dies", room));
    expect(redelivered).toMatchObject({ duplicate: false, stored: { seq: 6 } });
    // An app reading the room's history sees its notifications, not the tombstone.
    const notifier = createNotifier({ queueUrl: "http://127.0.0.1:9/q", authTableName: "unused", connectionsTableName: "unused", managementEndpoint: "http://127.0.0.1:9", jwtSecret: "s", streamsTableName: STREAMS, endpoints: { dynamodb: dynamo.endpoint } });
    expect((await notifier.history({ roomId: room })).map((frame) => frame.seq)).toEqual([1, 2, 4, 5, 6]);
  });

  it("in a room that never goes quiet, the hole is tombstoned within two stale periods, once, and the sweeps cost a bounded number of requests", async () => {
    let clock = Date.now();
    const room = "busy-hole";
    const streams: StreamDeps = { db, streamsTable: STREAMS, retentionHours: 1, now: () => clock };
    await appendOnce(streams, note("b1", room));
    await expect(appendOnce({ ...streams, db: diesAfterReserving(db) }, note("dies", room))).rejects.toThrow("crashed");
    // A message every 10 s for 3 minutes: never 60 s without a reservation.
    const counted = await counting(async () => {
      for (let i = 0; i < 18; i++) {
        clock += 10_000;
        await appendOnce(streams, note(`b${i + 3}`, room));
      }
    });
    const read = await readStream(dynamo.client, STREAMS, room, { after: 0 });
    expect(read.frames.map((f) => f.seq)).toEqual(range(1, 20));
    expect(read.frames.filter((f) => f.messageId === "").map((f) => f.seq)).toEqual([2]);
    // 4 per message, and per sweep (one a minute): its claim, its read, its end; one tombstone.
    const sweeps = counted.streams.filter((r) => r.action === "dynamodb:Query").length;
    expect(sweeps).toBeLessThanOrEqual(3);
    expect(counted.streams.length).toBeLessThanOrEqual(4 * 18 + 3 * 3 + 1);
  });

  it("a tombstone is counted in sequence by the browser client and reaches no subscriber", async () => {
    const { connect } = (await import("../client/index.mjs")) as ClientModule;
    const sockets: FakeSocket[] = [];
    class FakeSocket {
      static OPEN = 1;
      readyState = 0;
      sent: string[] = [];
      onopen?: () => void;
      onmessage?: (event: { data: string }) => void;
      onclose?: () => void;
      onerror?: () => void;
      constructor() {
        sockets.push(this);
        setTimeout(() => {
          this.readyState = 1;
          this.onopen?.();
        }, 0);
      }
      send(text: string) {
        this.sent.push(text);
      }
      close() {
        this.readyState = 3;
      }
      deliver(frame: unknown) {
        this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
      }
    }
    const client = connect({ url: "ws://hub.invalid", token: "e30.e30.sig", room: "skips", WebSocket: FakeSocket as unknown as typeof WebSocket, reconnect: false });
    const got: Frame[] = [];
    client.subscribe("*", (_data, frame) => got.push(frame as Frame));
    while (sockets[0]?.readyState !== 1) await new Promise((resolve) => setTimeout(resolve, 1));
    const socket = sockets[0];
    const frame = (seq: number) => ({ id: `f${seq}`, room_id: "skips", user_id: null, origin: "app", seq, data: { type: "n", data: seq } });
    // The baseline (the resume the client asks on connect), then 1, the tombstone at 2 after 3 (out of order), 4.
    socket.deliver({ id: "r", room_id: null, user_id: null, data: { type: "hub.resumed", data: { room_id: "skips", after: 0, last_seq: 0, recovered: true } } });
    socket.deliver(frame(1));
    socket.deliver(frame(3));
    socket.deliver(tombstoneFrame("skips", 2));
    socket.deliver(frame(4));
    expect(got.filter((f) => f.room_id === "skips").map((f) => f.seq)).toEqual([1, 3, 4]);
    expect(client.lastSeq("skips")).toBe(4);
    // No resume was asked for: the tombstone closed the gap.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(socket.sent.map((text) => JSON.parse(text) as { action: string; after?: number }).filter((r) => r.action === "resume" && r.after !== undefined)).toEqual([]);
    client.close();
  });
});
