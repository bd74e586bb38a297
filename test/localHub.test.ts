/** The local hub end to end with real `ws` clients: handshake, routes, limits, @connections, the queue. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { DeleteConnectionCommand, GetConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { dynamoClient, managementClient, sqsClient } from "../core/aws";
import { getConnection } from "../core/tables";
import * as http from "http";
import { createLogger } from "../core/log";
import type { WebSocketEvent } from "../core/events";
import { startLocalHub, type LocalHub } from "../local";
import { roomRows } from "./support/seed";
import { recordingObserver } from "./support/hubEvents";
import { eventually, until } from "./support/wait";
import { connectAs, handshakeStatus, openClient } from "./support/wsClient";
import { newDevCredentials } from "../local/sigv4";
import { createApiGateway } from "../local/apiGateway";
import { KEEP_ALIVE_ROUTE_KEY } from "../core/keepAlive";
import { capturingLogger } from "./support/logs";

let hub: LocalHub;

beforeAll(async () => {
  hub = await startLocalHub({
    port: 0,
    stage: "test",
    bcryptCost: 4,
    queue: { visibilityTimeoutSeconds: 1, maxReceiveCount: 2, waitTimeSeconds: 1 },
  });
});
afterAll(async () => {
  await hub?.stop();
});

const connect = (userId: string, roomId: string) => connectAs(hub, userId, roomId);
const roomRowsOf = (roomId: string) => roomRows(hub.dynamodbEndpoint, hub.connectionsTableName, roomId);

describe("the local hub", () => {
  it("token → connect → publish the seed's body through the queue → received", async () => {
    const client = await connect("alice", "lobby");
    const sqs = sqsClient({ endpoint: hub.sqsEndpoint });
    const body = JSON.stringify({ room_id: "lobby", user_id: "backend", data: { type: "backup.done", data: { job: 42 } } });
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: hub.queueUrl, MessageBody: body }));
    const frame = await client.next((f) => f.id === sent.MessageId);
    expect(frame).toEqual({ id: sent.MessageId, room_id: "lobby", user_id: "backend", origin: "app", seq: expect.any(Number), data: { type: "backup.done", data: { job: 42 } } });
    client.ws.close();
  });

  it("works with browser code written the seed article's way (subscribers by type, unchanged data)", async () => {
    const token = await hub.notifier.issueToken({ userId: "seed", roomId: "seed-room" });
    // The seed's pattern: parse the frame, take .data, pick subscribers by .type, hand them .data.
    const subscribers: { type: string; callback: (data: unknown) => void }[] = [];
    const received: unknown[] = [];
    subscribers.push({ type: "alert", callback: (data) => received.push(data) });
    subscribers.push({ type: "info", callback: () => received.push("wrong subscriber") });
    const socket = new WebSocket(`${hub.websocketUrl}?token=${token}`);
    socket.onmessage = (evt) => {
      const notification = JSON.parse(String(evt.data));
      const message = notification.data;
      subscribers.forEach((subscriber) => {
        if (subscriber.type === message.type) subscriber.callback(message.data);
      });
    };
    await new Promise((resolve) => (socket.onopen = resolve));
    const payload = { level: "danger", text: "Backup failed", nested: [1, { ok: false }], unicode: "naïve ✓" };
    await hub.notifier.publish({ roomId: "seed-room", data: { type: "alert", data: payload } });
    await eventually(async () => received.length, (n) => n > 0);
    expect(received).toEqual([payload]);
    socket.close();
  });

  it("refuses bad tokens with 401/403 and writes no row", async () => {
    const good = await hub.notifier.issueToken({ userId: "bob", roomId: "vault" });
    await hub.notifier.revokeToken({ userId: "bob", roomId: "vault" });
    expect(await handshakeStatus(hub.websocketUrl)).toBe(403); // no token: the authorizer (no identity source) denies
    expect(await handshakeStatus(`${hub.websocketUrl}?token=`)).toBe(403);
    expect(await handshakeStatus(`${hub.websocketUrl}?token=garbage`)).toBe(403); // the authorizer's Deny, as on AWS
    expect(await handshakeStatus(`${hub.websocketUrl}?token=${good}`)).toBe(403); // revoked
    expect(await roomRowsOf("vault")).toEqual([]);
    expect(await handshakeStatus(`${hub.websocketUrl.replace("/test", "/other")}?token=${good}`)).toBe(404);
  });

  it("passes the authorizer's context to every route, routes sendMessage, and sends other frames to $default", async () => {
    const [ann, ben] = await Promise.all([connect("ann", "chat"), connect("ben", "chat")]);
    ann.ws.send(JSON.stringify({ action: "sendMessage", data: { type: "chat", data: "hi ben" } }));
    expect(await ben.next((f) => f.data?.type === "chat")).toMatchObject({ room_id: "chat", user_id: "ann", data: { type: "chat", data: "hi ben" } });
    ann.ws.send("not json at all");
    expect(await ann.next((f) => f.data?.type === "hub.error")).toMatchObject({ data: { type: "hub.error", data: { code: "invalid_json" } } });
    ann.ws.send(JSON.stringify({ action: "dance" }));
    ann.ws.send(JSON.stringify({ action: "ping" })); // keep-alive: no answer
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ann.frames.filter((f) => f.data?.type === "hub.error")).toHaveLength(2);
    expect(ben.frames.filter((f) => f.data?.type === "hub.error")).toHaveLength(0);
    ann.ws.close();
    ben.ws.close();
  });

  it("removes the row on close, and on an abrupt close", async () => {
    const polite = await connect("carl", "closing");
    const abrupt = await connect("dora", "closing");
    expect(await roomRowsOf("closing")).toHaveLength(2);
    polite.ws.close();
    abrupt.ws.terminate(); // no close frame: the TCP connection just dies
    const rows = await eventually(() => roomRowsOf("closing"), (r) => r.length === 0);
    expect(rows).toEqual([]);
  });

  it("serves @connections POST, GET and DELETE to the real SDK client; 410 for unknown ids", async () => {
    const client = await connect("eve", "admin");
    const [row] = await roomRowsOf("admin");
    const management = managementClient(hub.managementEndpoint, { credentials: hub.credentials });
    await management.send(new PostToConnectionCommand({ ConnectionId: row.connectionId, Data: Buffer.from('{"data":{"type":"direct"}}') }));
    expect(await client.next((f) => f.data?.type === "direct")).toBeTruthy();
    const info = await management.send(new GetConnectionCommand({ ConnectionId: row.connectionId }));
    expect(info.ConnectedAt).toBeInstanceOf(Date);
    expect(info.LastActiveAt).toBeInstanceOf(Date);
    expect(info.Identity?.SourceIp).toBe("127.0.0.1");
    await management.send(new DeleteConnectionCommand({ ConnectionId: row.connectionId }));
    expect((await client.closed).code).toBe(1000);
    await expect(management.send(new PostToConnectionCommand({ ConnectionId: row.connectionId, Data: Buffer.from("x") }))).rejects.toMatchObject({
      name: "GoneException",
    });
    expect(await eventually(() => getConnection(dynamoClient({ endpoint: hub.dynamodbEndpoint }), hub.connectionsTableName, row.connectionId), (r) => r === undefined)).toBeUndefined();
  });

  it("closes oversize frames with 1009, oversize messages with 1009, binary frames with 1003", async () => {
    const bigFrame = await connect("fred", "limits");
    bigFrame.ws.send(JSON.stringify({ action: "sendMessage", data: "x".repeat(40 * 1024) }));
    expect((await bigFrame.closed).code).toBe(1009);

    const bigMessage = await connect("fred", "limits");
    const chunk = "y".repeat(30 * 1024); // every frame under 32 KB, the message over 128 KB
    for (let i = 0; i < 5; i++) bigMessage.ws.send(chunk, { fin: i === 4 });
    expect((await bigMessage.closed).code).toBe(1009);

    const binary = await connect("fred", "limits");
    binary.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await binary.closed).code).toBe(1003);
    expect(await eventually(() => roomRowsOf("limits"), (r) => r.length === 0)).toEqual([]);
  });

  it("sends bad queue records to the dead-letter queue after maxReceiveCount, and delivers the good ones", async () => {
    const client = await connect("gus", "dlq");
    const sqs = sqsClient({ endpoint: hub.sqsEndpoint });
    await sqs.send(new SendMessageCommand({ QueueUrl: hub.queueUrl, MessageBody: "this is not json" }));
    await sqs.send(new SendMessageCommand({ QueueUrl: hub.queueUrl, MessageBody: JSON.stringify({ room_id: "dlq", data: { type: "fine" } }) }));
    expect(await client.next((f) => f.data?.type === "fine")).toBeTruthy();
    const dead = await eventually(
      () => sqs.send(new ReceiveMessageCommand({ QueueUrl: hub.deadLetterQueueUrl, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["All"] })),
      (r) => (r.Messages?.length ?? 0) > 0,
      15_000,
    );
    expect(dead.Messages?.[0].Body).toBe("this is not json");
    client.ws.close();
  });
});

describe("API Gateway's timeouts", () => {
  let short: LocalHub;
  beforeAll(async () => {
    short = await startLocalHub({ port: 0, bcryptCost: 4, limits: { idleTimeoutMs: 300, maxConnectionMs: 900 } });
  });
  afterAll(async () => {
    await short?.stop();
  });

  it("closes idle connections, and every connection at its maximum duration", async () => {
    const idle = await openClient(`${short.websocketUrl}?token=${await short.notifier.issueToken({ userId: "h", roomId: "t" })}`);
    expect((await idle.closed).code).toBe(1001);
    const busy = await openClient(`${short.websocketUrl}?token=${await short.notifier.issueToken({ userId: "i", roomId: "t" })}`);
    const keepAlive = setInterval(() => busy.ws.send(JSON.stringify({ action: "ping" })), 100);
    const started = Date.now();
    const { code } = await busy.closed;
    clearInterval(keepAlive);
    expect(code).toBe(1001);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800); // kept alive past the idle limit, closed at the maximum
  });
});

describe("the API Gateway emulator's handshake", () => {
  it("refuses the upgrade when $connect fails, and hands the authorizer's context to every route", async () => {
    const seen: { route: string; authorizer: unknown }[] = [];
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const record = (status: number) => async (event: WebSocketEvent) => {
      seen.push({ route: event.requestContext.routeKey, authorizer: event.requestContext.authorizer });
      return { statusCode: status };
    };
    const allow = async () => ({
      principalId: "p",
      policyDocument: { Version: "2012-10-17", Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: "*" }] },
      context: { user_id: "u", room_id: "r" },
    });
    let connectStatus = 500;
    createApiGateway(server, {
      stage: "s",
      apiId: "a",
      region: "us-east-1",
      authorizer: allow as never,
      routes: { $connect: (e) => record(connectStatus)(e), $disconnect: record(200), $default: record(200) },
      credentials: newDevCredentials(),
      log: createLogger({}, () => undefined),
    });
    const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}/s?token=t`;
    expect(await handshakeStatus(url)).toBe(500);
    connectStatus = 200;
    const { ws } = await openClient(url);
    ws.send("hello");
    ws.close();
    await eventually(async () => seen.length, (n) => n >= 4);
    expect(seen.map((s) => s.route)).toEqual(["$connect", "$connect", "$default", "$disconnect"]);
    for (const entry of seen.slice(1)) expect(entry.authorizer).toMatchObject({ user_id: "u", room_id: "r", principalId: "p" });
    server.close();
  });
});

describe("the API Gateway emulator's route table", () => {
  it("refuses a route key that would have both a handler and the gateway's own answer, as a route has one integration", () => {
    const handler = async () => ({ statusCode: 200 });
    const options = {
      stage: "s",
      apiId: "a",
      region: "us-east-1",
      authorizer: handler as never,
      routes: { $connect: handler, $disconnect: handler, $default: handler, ping: handler },
      credentials: newDevCredentials(),
      log: createLogger({}, () => undefined),
    };
    expect(() => createApiGateway(http.createServer(), { ...options, answeredByGateway: ["ping"] })).toThrow(/route ping cannot be answered by the gateway/);
    expect(() => createApiGateway(http.createServer(), { ...options, answeredByGateway: ["$default"] })).toThrow(/route \$default cannot/);
  });
});

describe("the keep-alive route, answered by the API Gateway emulator as AWS answers its MOCK integration", () => {
  const ping = JSON.stringify({ action: KEEP_ALIVE_ROUTE_KEY });
  type Line = { message: string; route?: string; connection_id?: string };
  const linesOf = (capture: ReturnType<typeof capturingLogger>, message: string, connectionId: string) =>
    capture.lines.map((l) => JSON.parse(l) as Line).filter((l) => l.message === message && l.connection_id === connectionId);
  /** The handlers that ran for a connection, one entry per invocation. */
  const invoked = (capture: ReturnType<typeof capturingLogger>, connectionId: string) => linesOf(capture, "route handler invoked", connectionId).map((l) => l.route);
  const answered = (capture: ReturnType<typeof capturingLogger>, connectionId: string) => linesOf(capture, "route answered by the gateway", connectionId).map((l) => l.route);
  const connectionOf = async (hub: LocalHub, roomId: string) => (await roomRows(hub.dynamodbEndpoint, hub.connectionsTableName, roomId))[0].connectionId;

  it("runs no handler for a ping and sends nothing back; an unknown action still reaches $default", async () => {
    const capture = capturingLogger();
    const hub = await startLocalHub({ port: 0, bcryptCost: 4, logger: capture.log });
    try {
      const client = await connectAs(hub, "pia", "keepalive");
      const id = await connectionOf(hub, "keepalive");
      for (let i = 0; i < 5; i++) client.ws.send(ping);
      // Frames of one socket are read in order: once $default has answered this, every ping was handled.
      client.ws.send(JSON.stringify({ action: "dance" }));
      await client.next((f) => f.data?.type === "hub.error");
      expect(answered(capture, id)).toEqual(Array(5).fill(KEEP_ALIVE_ROUTE_KEY));
      expect(invoked(capture, id)).toEqual(["$connect", "$default"]);
      expect(client.frames.map((f) => f.data?.data?.code)).toEqual(["unknown_action"]); // no pong, no error for the pings
      client.ws.close();
    } finally {
      await hub.stop();
    }
  });

  it("keeps a pinging connection open past the idle timeout while silent ones opened after it are closed, and still runs no handler", async () => {
    const capture = capturingLogger();
    const idleTimeoutMs = 1_500;
    const hub = await startLocalHub({ port: 0, bcryptCost: 4, logger: capture.log, limits: { idleTimeoutMs, maxConnectionMs: 10 * 60_000 } });
    try {
      const pinging = await connectAs(hub, "pat", "pinging");
      const id = await connectionOf(hub, "pinging");
      let sent = 0;
      // Far under the idle timeout, so only an event-loop stall of over a second could close it.
      const keepAlive = setInterval(() => {
        pinging.ws.send(ping);
        sent++;
      }, idleTimeoutMs / 10);
      let pingingClosed = false;
      void pinging.closed.then(() => (pingingClosed = true));
      try {
        // Ordering, not a clock: each silent connection opens after the pinging one (the second
        // after the first closed) and is closed for idleness, so the pinging one has outlived
        // two idle timeouts when the second goes.
        for (const room of ["silent-1", "silent-2"]) {
          const silent = await connectAs(hub, "sam", room);
          expect((await silent.closed).code).toBe(1001);
          expect(pingingClosed, `the pinging connection was closed before ${room}`).toBe(false);
        }
      } finally {
        clearInterval(keepAlive);
      }
      expect(pinging.ws.readyState).toBe(WebSocket.OPEN);
      expect(sent).toBeGreaterThan(0);
      // Every ping sent was taken in by the gateway and answered there: the pinging connection ran $connect, nothing else.
      await eventually(async () => answered(capture, id).length, (n) => n === sent);
      expect(invoked(capture, id)).toEqual(["$connect"]);
      expect(pinging.frames).toEqual([]);
      pinging.ws.close();
    } finally {
      await hub.stop();
    }
  });

  it("counts a ping as a message: it takes its token from the stage's throttle like any other", async () => {
    const hub = await startLocalHub({ port: 0, bcryptCost: 4, limits: { throttle: { burstLimit: 3, rateLimit: 0.001 } } });
    try {
      const client = await connectAs(hub, "tia", "throttled");
      for (let i = 0; i < 4; i++) client.ws.send(ping);
      // Three tokens: the fourth ping is refused as API Gateway refuses a throttled message.
      expect(await client.next()).toMatchObject({ message: "Too Many Requests" });
      client.ws.close();
      await client.closed;
      expect(client.frames).toHaveLength(1);
    } finally {
      await hub.stop();
    }
  });
});

describe("hub events", () => {
  it("reach onEvent listeners from the handlers and from deliver worker threads, as typed events", async () => {
    const workerHub = await startLocalHub({ port: 0, bcryptCost: 4, deliverWorkers: 1, queue: { waitTimeSeconds: 1 }, logger: createLogger({}, () => undefined, "error") });
    const events = recordingObserver();
    const stop = workerHub.onEvent(events.observe);
    try {
      const client = await connectAs(workerHub, "hana", "events");
      expect(await handshakeStatus(`${workerHub.websocketUrl}?token=not-a-jwt`)).toBe(403);
      const sqs = sqsClient({ endpoint: workerHub.sqsEndpoint });
      const bad = await sqs.send(new SendMessageCommand({ QueueUrl: workerHub.queueUrl, MessageBody: "not json" }));
      const { messageId } = await workerHub.notifier.publish({ roomId: "events", data: { type: "n", data: 1 } });
      await until(() => events.ofType("record.delivered").some((o) => o.notificationId === messageId) && events.ofType("record.rejected").some((o) => o.messageId === bad.MessageId));
      // From the worker thread, each record's outcome, once.
      expect(events.ofType("record.delivered").filter((o) => o.notificationId === messageId)).toEqual([
        expect.objectContaining({ roomId: "events", delivered: 1, gone: 0, failed: 0, requeued: false, chunk: false }),
      ]);
      expect(events.ofType("record.rejected").filter((o) => o.messageId === bad.MessageId)).toEqual([expect.objectContaining({ code: "invalid_json" })]);
      // From the hub's own thread: the handshakes.
      expect(events.ofType("connected")).toEqual([expect.objectContaining({ userId: "hana", roomId: "events" })]);
      expect(events.ofType("connect.denied")).toEqual([expect.objectContaining({ reason: "token_invalid" })]);
      client.ws.close();
      await until(() => events.ofType("disconnected").length === 1);
      // A stopped listener hears nothing more; one still listening hears the next delivery.
      stop();
      const seen = events.events.length;
      const later = recordingObserver();
      workerHub.onEvent(later.observe);
      const next = await workerHub.notifier.publish({ roomId: "events", data: { type: "n", data: 2 } });
      await until(() => later.ofType("record.delivered").some((o) => o.notificationId === next.messageId));
      expect(events.events.length).toBe(seen);
    } finally {
      stop();
      await workerHub.stop();
    }
  }, 60_000);
});
