/** Room streams' storage against dynalite: seq gap-free and exactly once, whatever the delivery does. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateTableCommand, PutItemCommand, QueryCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createTableInput, streamsTable } from "../core/schema";
import { appendOnce, readStream, StreamBusyError, streamFrame, type StreamDeps } from "../core/streams";
import type { Notification } from "../core/messages";
import { startDynamo, type Dynamo } from "./support/services";

let dynamo: Dynamo;
let tables = 0;

beforeAll(async () => {
  dynamo = await startDynamo();
});
afterAll(async () => {
  await dynamo?.stop();
});

async function freshStreams(overrides: Partial<StreamDeps> = {}): Promise<StreamDeps> {
  const name = `streams-${++tables}`;
  await dynamo.client.send(new CreateTableCommand(createTableInput(name, streamsTable)));
  return { db: dynamo.client, streamsTable: name, retentionHours: 1, ...overrides };
}

const note = (id: string, roomId = "acme"): Notification => ({ id, roomId, userId: null, origin: "app", data: { type: "t", data: id } });

/** Every item of one stream's partition, as stored. */
async function items(deps: StreamDeps, streamId: string) {
  const result = await deps.db.send(new QueryCommand({ TableName: deps.streamsTable, KeyConditionExpression: "stream_id = :s", ExpressionAttributeValues: { ":s": { S: streamId } }, ConsistentRead: true }));
  return (result.Items ?? []).map((item) => ({ seq: Number(item.seq.N), messageId: item.skip?.BOOL ? "(tombstone)" : item.message_id.S }));
}

/** Retries a redelivery the way SQS does: later, after a "busy" answer. */
async function deliverUntilStored(deps: StreamDeps, n: Notification) {
  for (;;) {
    try {
      return await appendOnce(deps, n);
    } catch (err) {
      if (!(err instanceof StreamBusyError)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/**
 * A DynamoDB client of an invocation that crashes, before or after the first command `match`
 * picks: that command and every later one fail (a crashed invocation makes no more requests).
 */
function crashingDb(db: DynamoDBClient, match: (input: Record<string, unknown>) => boolean, when: "before" | "after"): DynamoDBClient {
  let crashed = false;
  return {
    send: async (command: { input: Record<string, unknown> }) => {
      if (crashed) throw new Error("invocation crashed");
      if (match(command.input)) {
        crashed = true;
        if (when === "after") await db.send(command as never);
        throw new Error("invocation crashed");
      }
      return db.send(command as never);
    },
  } as unknown as DynamoDBClient;
}
const isFramePut = (input: Record<string, unknown>) => input.ConditionExpression === "attribute_not_exists(seq)";

describe("room streams", () => {
  it("numbers a room's frames 1, 2, 3… and stores the exact frame text with its seq", async () => {
    const deps = await freshStreams();
    const results = [];
    for (const id of ["a", "b", "c"]) results.push(await appendOnce(deps, note(id)));
    expect(results.map((r) => r.stored.seq)).toEqual([1, 2, 3]);
    expect(JSON.parse(results[1].stored.frame)).toEqual({ id: "b", room_id: "acme", user_id: null, origin: "app", seq: 2, data: { type: "t", data: "b" } });
    // Another room has its own numbering.
    expect((await appendOnce(deps, note("x", "other"))).stored.seq).toBe(1);
    const read = await readStream(deps.db, deps.streamsTable, "acme", { after: 1 });
    expect(read.frames.map((f) => f.frame)).toEqual(results.slice(1).map((r) => r.stored.frame));
    expect(read).toMatchObject({ lastSeq: 3, gone: false, truncated: false, after: 1 });
    expect((await readStream(deps.db, deps.streamsTable, "acme", { last: 1 })).frames.map((f) => f.seq)).toEqual([3]);
  });

  it("a redelivered message keeps its seq and bytes; nothing is stored twice", async () => {
    const deps = await freshStreams();
    const first = await appendOnce(deps, note("m1"));
    await appendOnce(deps, note("m2"));
    const again = await appendOnce(deps, note("m1"));
    expect(again).toEqual({ stored: first.stored, duplicate: true });
    expect(await items(deps, "acme")).toEqual([
      { seq: 1, messageId: "m1" },
      { seq: 2, messageId: "m2" },
    ]);
  });

  it("concurrent deliveries, each message delivered twice at once: gap-free, each once", async () => {
    const deps = await freshStreams();
    const messages = Array.from({ length: 12 }, (_, i) => note(`m${i}`));
    const results = await Promise.all([...messages, ...messages].map((n) => deliverUntilStored(deps, n)));
    const stored = await items(deps, "acme");
    expect(stored.map((s) => s.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(new Set(stored.map((s) => s.messageId)).size).toBe(12);
    // Both deliveries of a message agree on its seq.
    for (let i = 0; i < 12; i++) expect(results[i].stored.seq).toBe(results[i + 12].stored.seq);
  });

  it("an invocation that crashed after claiming: the redelivery waits while fresh, then takes over", async () => {
    let clock = 1_000_000;
    const deps = await freshStreams({ now: () => clock, claimStaleMs: 60_000 });
    await appendOnce(deps, note("before"));
    await expect(appendOnce({ ...deps, db: crashingDb(deps.db, isFramePut, "before") }, note("m"))).rejects.toThrow("crashed");
    await expect(appendOnce(deps, note("m"))).rejects.toBeInstanceOf(StreamBusyError);
    clock += 61_000;
    const taken = await appendOnce(deps, note("m"));
    expect(taken.stored.seq).toBe(2);
    expect(await items(deps, "acme")).toEqual([
      { seq: 1, messageId: "before" },
      { seq: 2, messageId: "m" },
    ]);
  });

  it("an invocation that crashed after writing the frame: the redelivery finds it, writes nothing new", async () => {
    let clock = 1_000_000;
    const deps = await freshStreams({ now: () => clock });
    await expect(appendOnce({ ...deps, db: crashingDb(deps.db, isFramePut, "after") }, note("m"))).rejects.toThrow("crashed");
    await appendOnce(deps, note("later")); // the stream moves on meanwhile
    clock += 61_000;
    const again = await appendOnce(deps, note("m"));
    expect(again).toMatchObject({ stored: { seq: 1, messageId: "m" }, duplicate: true });
    expect(await items(deps, "acme")).toEqual([
      { seq: 1, messageId: "m" },
      { seq: 2, messageId: "later" },
    ]);
  });

  it("a slow owner that wakes after a takeover cannot store the message a second time", async () => {
    let clock = 1_000_000;
    const deps = await freshStreams({ now: () => clock });
    // The slow owner records its candidate, then stalls before writing the frame.
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    const slowDb = {
      send: async (command: { input: Record<string, unknown> }) => {
        if (isFramePut(command.input)) await stalled;
        return deps.db.send(command as never);
      },
    } as unknown as DynamoDBClient;
    const slow = appendOnce({ ...deps, db: slowDb }, note("m"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    clock += 61_000;
    const successor = await appendOnce(deps, note("m"));
    await appendOnce(deps, note("next"));
    release();
    const late = await slow;
    expect(late.stored.seq).toBe(successor.stored.seq);
    expect(await items(deps, "acme")).toEqual([
      { seq: 1, messageId: "m" },
      { seq: 2, messageId: "next" },
    ]);
  });

  it("a stream stored by the design before the counter, with its writers still running during the upgrade: no seq lost or used twice", async () => {
    const deps = await freshStreams();
    // What the design before the counter wrote: frames 1..5, no counter item.
    const oldAppend = async (n: Notification) => {
      for (;;) {
        const head = Number((await deps.db.send(new QueryCommand({ TableName: deps.streamsTable, KeyConditionExpression: "stream_id = :s", ExpressionAttributeValues: { ":s": { S: "acme" } }, ScanIndexForward: false, Limit: 1, ConsistentRead: true }))).Items?.[0]?.seq?.N ?? 0);
        const seq = head + 1;
        try {
          await deps.db.send(new PutItemCommand({ TableName: deps.streamsTable, Item: { stream_id: { S: "acme" }, seq: { N: String(seq) }, message_id: { S: n.id }, frame: { S: streamFrame(n, seq) }, expires_at: { N: String(Math.ceil(Date.now() / 1000) + 3600) } }, ConditionExpression: "attribute_not_exists(seq)" }));
          return seq;
        } catch (err) {
          if ((err as Error).name !== "ConditionalCheckFailedException") throw err;
        }
      }
    };
    for (let i = 1; i <= 5; i++) await oldAppend(note(`old-${i}`));
    // New writers start the counter while old ones still append at head + 1.
    await Promise.all([...Array.from({ length: 8 }, (_, i) => appendOnce(deps, note(`new-${i}`))), ...Array.from({ length: 4 }, (_, i) => oldAppend(note(`late-old-${i}`)))]);
    const stored = await items(deps, "acme");
    expect(stored.map((s) => s.seq)).toEqual(Array.from({ length: 17 }, (_, i) => i + 1));
    expect(stored.slice(0, 5).map((s) => s.messageId)).toEqual(["old-1", "old-2", "old-3", "old-4", "old-5"]);
    expect(new Set(stored.map((s) => s.messageId)).size).toBe(17); // each once, no tombstone
    expect((await appendOnce(deps, note("after"))).stored.seq).toBe(18);
  });

  it("reads leave out expired frames and say so; more than the limit is truncated", async () => {
    let clock = 1_000_000_000;
    const deps = await freshStreams({ now: () => clock });
    for (let i = 1; i <= 5; i++) {
      await appendOnce(deps, note(`m${i}`));
      clock += 1_000_000; // ~17 minutes apart, retention 1 h
    }
    const nowSeconds = Math.floor(clock / 1000);
    const read = await readStream(deps.db, deps.streamsTable, "acme", { after: 0, nowSeconds });
    expect(read.frames.map((f) => f.seq)).toEqual([3, 4, 5]);
    expect(read.gone).toBe(true);
    expect((await readStream(deps.db, deps.streamsTable, "acme", { after: 2, nowSeconds })).gone).toBe(false);
    const page = await readStream(deps.db, deps.streamsTable, "acme", { after: 2, limit: 2, nowSeconds });
    expect(page).toMatchObject({ truncated: true, lastSeq: 5 });
    expect(page.frames.map((f) => f.seq)).toEqual([3, 4]);
  });
});
