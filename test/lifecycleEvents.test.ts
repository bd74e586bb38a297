/**
 * Lifecycle events (docs/protocol.md#lifecycle-events), counted: the EventBridge stand-in
 * refuses what PutEvents refuses, with its error names and messages; the publisher splits
 * into calls EventBridge accepts, retries what a call reports failed, never throws, and an event
 * sent again keeps its event_id; on the local hub with presence on, a connect, a subscribe, a
 * second tab and closing both give each event once, through the stand-in and to --events-url.
 */
import * as http from "http";
import type { AddressInfo } from "net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createEventBridgeApi, entrySize, PUT_EVENTS_MAX_BYTES, PutEventsError, type EventBridgeApi, type PutEventsEntry } from "../core/eventBridge";
import { QueryCommand } from "@aws-sdk/client-dynamodb";
import { ENV } from "../core/aws";
import type { HubEvent, LifecycleFailed, SweepDone } from "../core/hubEvents";
import { OUTBOX_PARTITION, OUTBOX_TTL_SECONDS } from "../core/lifecycleOutbox";
import { sweepFromEnvironment } from "../handlers/sweep";
import { startDynamo, type Dynamo } from "./support/services";
import { createLogger } from "../core/log";
import { batchEntries, createLifecyclePublisher, LIFECYCLE_SOURCE } from "../core/lifecycleEvents";
import { lifecycle, type LifecycleEvent } from "../core/presence";
import { startEventBridge, type BusEvent, type EventBridgeStandIn } from "../local/eventBridge";
import { newDevCredentials } from "../local/sigv4";
import { startLocalHub, type LocalHub } from "../local";
import { until } from "./support/wait";
import { openClient, type WsClient } from "./support/wsClient";

const REGION = "us-east-1";
const BUS = "hub-events";
const quiet = createLogger({}, () => undefined, "error");

describe("the EventBridge stand-in, as strict as PutEvents", () => {
  const credentials = newDevCredentials();
  let bus: EventBridgeStandIn;
  let api: EventBridgeApi;
  const entry = (detail: Record<string, unknown> = { n: 1 }): PutEventsEntry => ({ Source: LIFECYCLE_SOURCE, DetailType: "member.joined", Detail: JSON.stringify(detail), EventBusName: BUS });
  const refusal = (entries: PutEventsEntry[]) => api.putEvents(entries).then(() => undefined, (err: unknown) => err as PutEventsError);

  beforeAll(async () => {
    bus = await startEventBridge({ buses: [BUS], region: REGION, credentials });
    api = createEventBridgeApi({ endpoint: bus.endpoint, region: REGION, credentials });
  });
  afterAll(async () => {
    api?.destroy();
    await bus?.stop();
  });

  it("refuses an 11-entry call and a call of 256 KB or more whole, with EventBridge's error names and messages; takes 10 entries and 256 KB less a byte", async () => {
    const received: BusEvent[] = [];
    const stop = bus.onEvent((event) => received.push(event));
    const eleven = await refusal(Array.from({ length: 11 }, (_, n) => entry({ n })));
    expect(eleven).toBeInstanceOf(PutEventsError);
    expect([eleven!.name, eleven!.status]).toEqual(["ValidationException", 400]);
    expect(eleven!.message).toBe("1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10");

    // Two entries of 128 KB of detail each: over the limit together, as EventBridge measures (Source + DetailType + Detail).
    const big = (fill: number) => entry({ fill: "x".repeat(fill) });
    const half = PUT_EVENTS_MAX_BYTES / 2;
    const overhead = entrySize(big(0));
    const tooBig = await refusal([big(half - overhead), big(half - overhead)]);
    expect([tooBig!.name, tooBig!.status, tooBig!.message]).toEqual(["ValidationException", 400, "Total size of the entries in the request is over the limit."]);
    expect(received).toEqual([]);

    // At the limits: 10 entries, and 256 KB less one byte.
    expect((await api.putEvents(Array.from({ length: 10 }, (_, n) => entry({ n })))).FailedEntryCount).toBe(0);
    const justUnder = [big(half - overhead), big(half - overhead - 1)];
    expect(justUnder.reduce((sum, e) => sum + entrySize(e), 0)).toBe(PUT_EVENTS_MAX_BYTES - 1);
    expect((await api.putEvents(justUnder)).FailedEntryCount).toBe(0);
    expect(received.length).toBe(12);
    stop();
  });

  it("fails bad entries one by one (200, FailedEntryCount) and refuses a request not signed with the hub's credentials", async () => {
    const answer = await api.putEvents([entry(), { ...entry(), Detail: "[1]" }, { ...entry(), Source: "" }, { ...entry(), EventBusName: "nope" }]);
    expect(answer.FailedEntryCount).toBe(3);
    expect(answer.Entries.map((e) => e.ErrorCode ?? "ok")).toEqual(["ok", "MalformedDetail", "InvalidArgument", "ResourceNotFoundException"]);
    expect(answer.Entries[2].ErrorMessage).toBe("Parameter Source is not valid. Reason: Source is a required argument.");
    const stranger = createEventBridgeApi({ endpoint: bus.endpoint, region: REGION, credentials: newDevCredentials() });
    const refused = await stranger.putEvents([entry()]).then(() => undefined, (err: unknown) => err as PutEventsError);
    expect([refused?.name, refused?.status]).toEqual(["UnrecognizedClientException", 403]);
    stranger.destroy();
  });
});

describe("the lifecycle publisher", () => {
  const credentials = newDevCredentials();
  let bus: EventBridgeStandIn;
  let api: EventBridgeApi;
  const received: BusEvent[] = [];
  const failures: LifecycleFailed[] = [];
  const publisher = (overrides: Partial<Parameters<typeof createLifecyclePublisher>[0]> = {}) =>
    createLifecyclePublisher({
      api,
      eventBusName: BUS,
      log: quiet,
      observe: (event: HubEvent) => void (event.type === "lifecycle.failed" && failures.push(event)),
      sleep: () => Promise.resolve(), // counts, not time
      ...overrides,
    });
  const events = (count: number, room = "r"): LifecycleEvent[] => Array.from({ length: count }, (_, i) => lifecycle("member.joined", 1_000 + i, { room_id: room, user_id: `u${i}` }, `${room}/u${i}/1`));
  const callsSince = (from: number) => bus.calls.slice(from).map((c) => [c.entries, c.failed, c.status]);
  const idsOf = (room: string) => received.filter((e) => e.detail.room_id === room).map((e) => e.detail.event_id as string);

  beforeAll(async () => {
    bus = await startEventBridge({ buses: [BUS], region: REGION, credentials });
    bus.onEvent((event) => received.push(event));
    api = createEventBridgeApi({ endpoint: bus.endpoint, region: REGION, credentials });
  });
  afterAll(async () => {
    api?.destroy();
    await bus?.stop();
  });

  it("splits 25 events into 3 calls (10, 10, 5); each arrives once with its id, source and detail", async () => {
    const from = bus.calls.length;
    const batch = events(25, "split");
    await publisher()(batch);
    expect(callsSince(from)).toEqual([
      [10, 0, 200],
      [10, 0, 200],
      [5, 0, 200],
    ]);
    expect(idsOf("split")).toEqual(batch.map((e) => e.detail.event_id));
    const first = received.find((e) => e.detail.room_id === "split")!;
    expect(first).toMatchObject({ source: "notification-hub", "detail-type": "member.joined", detail: { room_id: "split", user_id: "u0", at: 1_000 } });
    expect(failures).toEqual([]);
  });

  it("splits by size as EventBridge measures entries: each call under 256 KB, the stand-in takes every one", async () => {
    const entries: PutEventsEntry[] = Array.from({ length: 5 }, (_, n) => ({ Source: LIFECYCLE_SOURCE, DetailType: "room.occupied", Detail: JSON.stringify({ n, pad: "é".repeat(50_000) }), EventBusName: BUS }));
    const { calls, oversize } = batchEntries(entries);
    expect(calls.map((c) => c.length)).toEqual([2, 2, 1]); // 100 KB each (é is 2 bytes in UTF-8)
    expect(oversize).toEqual([]);
    for (const call of calls) {
      expect(call.reduce((sum, e) => sum + entrySize(e), 0)).toBeLessThan(PUT_EVENTS_MAX_BYTES);
      expect((await api.putEvents(call)).FailedEntryCount).toBe(0);
    }
  });

  it("retries the entries a call reports failed (FailedEntryCount, ErrorCode), alone: each event arrives once", async () => {
    const from = bus.calls.length;
    bus.failEntries(3, "ThrottlingException");
    const batch = events(10, "partial");
    await publisher()(batch);
    expect(callsSince(from)).toEqual([
      [10, 3, 200],
      [3, 0, 200],
    ]);
    const ids = idsOf("partial");
    expect(ids.length).toBe(10);
    expect(new Set(ids)).toEqual(new Set(batch.map((e) => e.detail.event_id)));
    expect(failures).toEqual([]);
  });

  it("sends a call again when its answer is lost: the bus has it twice, with the same event_ids, so a consumer dedupes to once each", async () => {
    bus.loseAnswers(1);
    const batch = events(4, "lost");
    await publisher()(batch);
    const ids = idsOf("lost");
    expect(ids.length).toBe(8); // at least once: twice here
    expect(new Set(ids).size).toBe(4);
    expect(new Set(ids)).toEqual(new Set(batch.map((e) => e.detail.event_id)));
  });

  it("never throws: entries still failing when the retries run out, and a bus that does not answer, are lifecycle.failed hub events with each event", async () => {
    bus.failEntries(1_000, "InternalFailure");
    const batch = events(2, "failing");
    await expect(publisher({ retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, budgetMs: 60_000 } })(batch)).resolves.toBeUndefined();
    bus.failEntries(0);
    expect(failures.map((f) => [f.error, f.attempts, f.events.map((e) => e.event_id)])).toEqual([["RetriesExhausted", 3, batch.map((e) => e.detail.event_id)]]);
    expect(failures[0].events[0]).toMatchObject({ detailType: "member.joined", room_id: "failing", user_id: "u0" });
    failures.length = 0;

    const nowhere = createEventBridgeApi({ endpoint: "http://127.0.0.1:9", region: REGION, credentials });
    await expect(publisher({ api: nowhere, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1, budgetMs: 60_000 } })(events(1, "nowhere"))).resolves.toBeUndefined();
    expect(failures.map((f) => [f.error, f.attempts, f.events.length])).toEqual([["ECONNREFUSED", 2, 1]]);
    nowhere.destroy();
  });

  it("gives one event the same event_id each time it is decided from the same identity; a connection's close is one id whoever finds it", () => {
    const a = lifecycle("member.left", 1, { room_id: "r", user_id: "u", reason: "closed" }, "r/u/5");
    const b = lifecycle("member.left", 2, { room_id: "r", user_id: "u", reason: "timed_out" }, "r/u/5");
    expect(a.detail.event_id).toBe(b.detail.event_id);
    expect(a.detail.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(lifecycle("room.vacated", 1, { room_id: "r" }, "r/u/5").detail.event_id).not.toBe(a.detail.event_id);
    const closed = lifecycle("connection.closed", 1, { connection_id: "c1", reason: "closed" });
    expect(lifecycle("connection.closed", 9, { connection_id: "c1", reason: "timed_out" }).detail.event_id).toBe(closed.detail.event_id);
    expect(lifecycle("connection.opened", 1, { connection_id: "c1" }).detail.event_id).not.toBe(closed.detail.event_id);
  });
});

describe("the lifecycle outbox: what the bus refuses for a passing reason is kept in the presence table and the sweep puts it on the bus", () => {
  const credentials = newDevCredentials();
  let bus: EventBridgeStandIn;
  let api: EventBridgeApi;
  let dynamo: Dynamo;
  const presenceTable = `presence-outbox-${process.pid}`;
  const received: BusEvent[] = [];
  const failures: LifecycleFailed[] = [];
  const outbox = () => ({ db: dynamo.client, presenceTable });
  const publisher = (overrides: Partial<Parameters<typeof createLifecyclePublisher>[0]> = {}) =>
    createLifecyclePublisher({
      api,
      eventBusName: BUS,
      log: quiet,
      observe: (event: HubEvent) => void (event.type === "lifecycle.failed" && failures.push(event)),
      outbox: outbox(),
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, budgetMs: 60_000 },
      sleep: () => Promise.resolve(), // counts, not time
      ...overrides,
    });
  const events = (count: number, room: string): LifecycleEvent[] => Array.from({ length: count }, (_, i) => lifecycle("member.joined", 1_000 + i, { room_id: room, user_id: `u${i}` }, `${room}/u${i}/1`));
  const kept = async () => {
    const page = await dynamo.client.send(new QueryCommand({ TableName: presenceTable, KeyConditionExpression: "room_id = :p", ExpressionAttributeValues: { ":p": { S: OUTBOX_PARTITION } }, ConsistentRead: true }));
    return (page.Items ?? []).map((item) => ({ key: item.user_id!.S!, event: JSON.parse(item.event!.S!) as LifecycleEvent, expiresAt: Number(item.expires_at!.N) }));
  };
  const idsOf = (room: string) => received.filter((e) => e.detail.room_id === room).map((e) => e.detail.event_id as string);

  beforeAll(async () => {
    bus = await startEventBridge({ buses: [BUS], region: REGION, credentials });
    bus.onEvent((event) => received.push(event));
    api = createEventBridgeApi({ endpoint: bus.endpoint, region: REGION, credentials });
    dynamo = await startDynamo({ connectionsTable: `connections-outbox-${process.pid}`, authTable: `auth-outbox-${process.pid}`, presenceTable });
  });
  afterAll(async () => {
    api?.destroy();
    await bus?.stop();
    await dynamo?.stop();
  });

  it("a bus refusing every call (500, then throttled): 12 events are 12 outbox items, oldest first, one per event_id (sent again: still 12); a sweep run with the bus healthy puts each on it once and empties the outbox, and on Lambda writes each run's metric line", async () => {
    const batch = events(12, "outage");
    const from = bus.calls.length;
    bus.refuseCalls(1_000, 500, "InternalFailure");
    await publisher()(batch);
    bus.refuseCalls(1_000, 400, "ThrottlingException");
    await publisher()(batch.slice(0, 5)); // the same events decided again (a retried route): the same items
    bus.refuseCalls(0);
    // 2 calls (10, 2) x 3 tries, then 1 call x 3 tries; none taken.
    expect(bus.calls.slice(from).map((c) => [c.entries, c.status])).toEqual([...Array(3).fill([10, 500]), ...Array(3).fill([2, 500]), ...Array(3).fill([5, 400])]);
    expect(idsOf("outage")).toEqual([]);
    expect(failures).toEqual([]);
    const items = await kept();
    expect(items.map((i) => i.event.detail.event_id)).toEqual(batch.map((e) => e.detail.event_id));
    expect(items[0].key).toBe(`0000000001000\u001f${batch[0].detail.event_id}`);
    expect(items[0].event).toEqual(batch[0]);
    expect(items.every((i) => i.expiresAt > Date.now() / 1000 + OUTBOX_TTL_SECONDS - 60)).toBe(true);

    // The sweep, as deployed (its environment: PRESENCE_TABLE, EVENT_BUS_NAME; the name Lambda gives it), drains first.
    const env: Record<string, string> = {
      AWS_LAMBDA_FUNCTION_NAME: "hub-sweep",
      [ENV.presenceTable]: presenceTable,
      [ENV.connectionsTable]: dynamo.connectionsTable,
      [ENV.dynamodbEndpoint]: dynamo.endpoint,
      [ENV.managementEndpoint]: "http://127.0.0.1:9", // no connections: never called
      [ENV.eventBusName]: BUS,
      [ENV.eventsEndpoint]: bus.endpoint,
    };
    const sweeps: SweepDone[] = [];
    const sweep = sweepFromEnvironment({ env, credentials, log: quiet, observe: (event) => void (event.type === "sweep.done" && sweeps.push(event)) });
    // Its embedded-metric lines (core/sweepMetrics.ts) go to stdout itself; everything else passes through.
    const metricLines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const stdout = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => (String(chunk).startsWith('{"_aws"') ? metricLines.push(String(chunk)) > 0 : write(chunk)));
    let run, again;
    try {
      run = await sweep();
      again = await sweep();
    } finally {
      stdout.mockRestore();
    }
    expect([run.outboxDrained, run.outboxLeft]).toEqual([12, 0]);
    expect(sweeps.map((s) => [s.outboxDrained, s.outboxLeft])).toEqual([
      [12, 0],
      [0, 0],
    ]);
    expect(metricLines.map((line) => JSON.parse(line) as Record<string, unknown>)).toEqual(
      Array(2).fill(expect.objectContaining({ FunctionName: "hub-sweep", SweepOutboxLeft: 0, SweepDeferred: 0, SweepScanIncomplete: 0 })),
    );
    expect(idsOf("outage")).toEqual(batch.map((e) => e.detail.event_id));
    expect(await kept()).toEqual([]);
    expect([again.outboxDrained, again.outboxLeft]).toEqual([0, 0]);
    expect(idsOf("outage").length).toBe(12);
    expect(failures).toEqual([]);
  });

  it("a drain the bus still refuses leaves the items (no new ones) and stops at the first refused call; the next drain takes them", async () => {
    const batch = events(15, "still-down");
    bus.refuseCalls(1_000);
    await publisher()(batch);
    const from = bus.calls.length;
    const drain = await publisher().drainOutbox();
    expect(bus.calls.slice(from).map((c) => [c.entries, c.status])).toEqual(Array(3).fill([10, 500])); // the second call (5) never made
    expect(drain).toEqual({ drained: 0, left: 15 });
    expect((await kept()).length).toBe(15);
    bus.refuseCalls(0);
    expect(await publisher().drainOutbox()).toEqual({ drained: 15, left: 0 });
    expect(idsOf("still-down")).toEqual(batch.map((e) => e.detail.event_id));
    expect(await kept()).toEqual([]);
    expect(failures).toEqual([]);
  });

  it("a refusal that will never pass (400 ValidationException, MalformedDetail) is lifecycle.failed only, not kept; an outbox write that fails is lifecycle.failed too", async () => {
    bus.refuseCalls(1, 400, "ValidationException");
    const refused = events(2, "invalid");
    await publisher()(refused);
    const malformed = { ...events(1, "malformed")[0], detailType: "" as LifecycleEvent["detailType"] };
    await publisher()([malformed]);
    expect(failures.map((f) => [f.error, f.attempts, f.events.length])).toEqual([
      ["ValidationException", 1, 2],
      ["InvalidArgument", 1, 1],
    ]);
    expect(await kept()).toEqual([]);
    failures.length = 0;

    bus.refuseCalls(1_000);
    await publisher({ outbox: { db: dynamo.client, presenceTable: "no-such-table" } })(events(3, "nowhere"));
    bus.refuseCalls(0);
    expect(failures.map((f) => [f.error, f.attempts, f.events.map((e) => e.event_id)])).toEqual([["InternalFailure", 3, events(3, "nowhere").map((e) => e.detail.event_id)]]);
    expect(failures[0].errorMessage).toMatch(/not kept in the outbox either: ResourceNotFoundException/);
    failures.length = 0;
  });
});

describe("lifecycle events on the local hub (presence on), through the stand-in and --events-url", () => {
  let hub: LocalHub;
  let webhook: http.Server;
  const onBus: BusEvent[] = [];
  const posted: BusEvent[] = [];
  let webhookRequests = 0;
  const clients: WsClient[] = [];

  beforeAll(async () => {
    // The app's webhook: the first request answers 503, so the forwarder's retry is counted too.
    webhook = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        webhookRequests++;
        if (webhookRequests === 1) {
          response.writeHead(503).end();
          return;
        }
        expect(request.headers["content-type"]).toBe("application/json");
        posted.push(JSON.parse(Buffer.concat(chunks).toString("utf8")) as BusEvent);
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
    const eventsUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hooks/hub`;
    hub = await startLocalHub({ port: 0, bcryptCost: 4, logger: quiet, presence: { enabled: true, graceSeconds: 1, sweepSeconds: 0.2 }, eventsUrl });
    hub.onLifecycleEvent((event) => onBus.push(event));
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.ws.terminate();
    await hub?.stop();
    await new Promise((resolve) => webhook?.close(resolve));
  });

  async function tab(token: string): Promise<WsClient> {
    const client = await openClient(`${hub.websocketUrl}?token=${token}`);
    clients.push(client);
    const from = client.frames.length;
    client.ws.send(JSON.stringify({ action: "subscribe", room_id: "lobby" }));
    await client.next((f) => client.frames.indexOf(f) >= from && f.data?.type === "hub.subscribed");
    return client;
  }
  const ofType = (type: string) => onBus.filter((e) => e["detail-type"] === type);

  it("connect + subscribe: connection.opened, member.joined, room.occupied; a second tab: connection.opened only; closing both: two connection.closed, then member.left (closed) and room.vacated, each once", async () => {
    const token = await hub.notifier.issueToken({ userId: "ann", rooms: ["lobby"] });
    const first = await tab(token);
    await until(() => ofType("room.occupied").length === 1);
    const second = await tab(token);
    await until(() => ofType("connection.opened").length === 2);
    second.ws.close();
    await until(() => ofType("connection.closed").length === 1);
    first.ws.close();
    await until(() => ofType("room.vacated").length === 1, 20_000);

    expect(onBus.map((e) => e["detail-type"]).sort()).toEqual(["connection.closed", "connection.closed", "connection.opened", "connection.opened", "member.joined", "member.left", "room.occupied", "room.vacated"]);
    expect(onBus.every((e) => e.source === "notification-hub")).toBe(true);
    expect(ofType("member.joined")[0].detail).toMatchObject({ room_id: "lobby", user_id: "ann" });
    expect(ofType("member.left")[0].detail).toMatchObject({ room_id: "lobby", user_id: "ann", reason: "closed" });
    expect(ofType("room.occupied")[0].detail).toMatchObject({ room_id: "lobby" });
    for (const closed of ofType("connection.closed")) expect(closed.detail).toMatchObject({ user_id: "ann", reason: "closed" });
    const opened = ofType("connection.opened").map((e) => e.detail.connection_id);
    expect(new Set(ofType("connection.closed").map((e) => e.detail.connection_id))).toEqual(new Set(opened));
    expect(onBus.every((e) => typeof e.detail.at === "number" && e.detail.at > 0)).toBe(true);
    const ids = onBus.map((e) => e.detail.event_id);
    expect(new Set(ids).size).toBe(ids.length);

    // The webhook got each event once (one per request), after one 503 that was retried.
    await until(() => posted.length === onBus.length);
    expect(webhookRequests).toBe(onBus.length + 1);
    expect(posted.map((e) => e.detail.event_id).sort()).toEqual([...ids].sort());
    expect(posted.every((e) => e.version === "0" && e.source === "notification-hub" && e["detail-type"] !== undefined)).toBe(true);
    console.log(`SUMMARY lifecycle events: ${onBus.length} events on the bus for 2 tabs of one user, each once; ${posted.length} POSTed to --events-url in ${webhookRequests} requests (one 503 retried)`);
  }, 60_000);
});
