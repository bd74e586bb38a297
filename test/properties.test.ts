/**
 * Property-based tests (fast-check) of every parser a stranger can reach: queue bodies,
 * client frames, tokens and query strings, @connections paths, the emulator's HTTP surface.
 * For any input: nothing throws past its handler, each input is answered or rejected, the
 * hub stays up, and the good inputs of the same batch are delivered exactly once.
 * Runs are kept small so the suite stays fast.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConnectionsApi } from "../core/connections";
import { parseClientMessage } from "../core/messages";
import { parseQueueBody } from "../core/chunks";
import { verifyConnectToken } from "../core/tokens";
import { createAuthorizerHandler } from "../handlers/authorizer";
import { createDeliverHandler } from "../handlers/deliver";
import { createSendMessageHandler } from "../handlers/sendMessage";
import { startLocalHub, type LocalHub } from "../local";
import { authorizerEvent, routeEvent, sqsEvent, sqsRecord } from "./support/events";
import { capturingLogger } from "./support/logs";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { rawHttp } from "./support/rawSocket";
import { seedConnections } from "./support/seed";
import { startDynamo, type Dynamo } from "./support/services";

const RUNS = { numRuns: 40 };
const SLOW_RUNS = { numRuns: 15 };

/** Strings a stranger would try: JSON-ish, escapes, surrogates, control characters, near-valid bodies. */
const hostileText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.json({ maxDepth: 4 }),
  fc.constantFrom("", "{", "[]", "null", '{"room_id":null}', '{"room_id":"\\ud800","data":1}', '{"kind":"chunk"}', "[".repeat(5000) + "]".repeat(5000)),
  fc
    .record({
      kind: fc.option(fc.constantFrom("chunk", "other"), { nil: undefined }),
      room_id: fc.oneof(fc.string({ unit: "binary", maxLength: 20 }), fc.integer(), fc.constant(null), fc.double()),
      user_id: fc.oneof(fc.string({ unit: "binary", maxLength: 20 }), fc.constant(null), fc.boolean()),
      origin: fc.oneof(fc.constantFrom("app", "client"), fc.string({ maxLength: 5 })),
      id: fc.oneof(fc.string({ maxLength: 10 }), fc.integer()),
      connection_ids: fc.oneof(fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.integer()), { maxLength: 4 }), fc.constant("c")),
      data: fc.jsonValue({ maxDepth: 3 }),
    })
    .map((body) => JSON.stringify(body)),
);

describe("parsers, as pure functions", () => {
  it("parseQueueBody answers every body with ok or a code, and never throws", () => {
    fc.assert(
      fc.property(hostileText, (body) => {
        const parsed = parseQueueBody(body, "m");
        expect(parsed.ok || (typeof parsed.code === "string" && typeof parsed.reason === "string")).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("parseClientMessage answers every frame, and never throws", () => {
    fc.assert(
      fc.property(hostileText, (body) => {
        const parsed = parseClientMessage(body);
        expect(typeof parsed.ok).toBe("boolean");
      }),
      { numRuns: 300 },
    );
  });

  it("verifyConnectToken refuses every forged token with a reason, and never throws", () => {
    const jwtish = fc
      .tuple(fc.base64String({ maxLength: 60 }), fc.base64String({ maxLength: 120 }), fc.base64String({ maxLength: 90 }))
      .map(([a, b, c]) => `${a}.${b}.${c}`.replace(/=/g, ""));
    fc.assert(
      fc.property(fc.oneof(hostileText, jwtish, fc.anything()), (token) => {
        const check = verifyConnectToken(token, "secret");
        expect(check.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe("handlers under arbitrary input", () => {
  let dynamo: Dynamo;
  let management: StandaloneConnectionsEmulator;
  const { log } = capturingLogger();
  beforeAll(async () => {
    [dynamo, management] = await Promise.all([startDynamo(), startConnectionsEmulator()]);
    await seedConnections(dynamo.client, dynamo.connectionsTable, [
      { connectionId: "p-1", roomId: "prop", userId: "a" },
      { connectionId: "p-2", roomId: "prop", userId: "b" },
    ]);
  });
  afterAll(async () => {
    await Promise.all([management?.stop(), dynamo?.stop()]);
  });
  const deps = () => ({ db: dynamo.client, management: createConnectionsApi(management.endpoint), connectionsTable: dynamo.connectionsTable, log });

  it("deliver: in any batch, each good record is delivered exactly once and each bad one reported, never a thrown batch", async () => {
    const deliver = createDeliverHandler(deps());
    let batch = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(hostileText.map((body) => ({ good: false, body })), fc.jsonValue({ maxDepth: 3 }).map((data) => ({ good: true, data }))), { minLength: 1, maxLength: 10 }), async (items) => {
        batch++;
        management.received.clear();
        const records = items.map((item, i) =>
          item.good ? sqsRecord(JSON.stringify({ room_id: "prop", data: (item as { data: unknown }).data }), `good-${batch}-${i}`) : sqsRecord((item as { body: string }).body, `any-${batch}-${i}`),
        );
        const response = await deliver(sqsEvent(records));
        const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
        const received = (management.received.get("p-1") ?? []).map((f) => (JSON.parse(f) as { id: string }).id);
        for (const record of records) {
          const expectedOk = record.messageId.startsWith("good-") || parseQueueBody(record.body, record.messageId).ok;
          // A valid body for another room or a chunk for other connections is delivered elsewhere; only ours count here.
          if (record.messageId.startsWith("good-")) expect(received.filter((id) => id === record.messageId)).toHaveLength(1);
          if (!expectedOk) expect(failed.has(record.messageId), record.body.slice(0, 80)).toBe(true);
          if (record.messageId.startsWith("good-")) expect(failed.has(record.messageId)).toBe(false);
        }
      }),
      SLOW_RUNS,
    );
  });

  it("sendMessage: any frame is broadcast (200) or answered to its sender alone with hub.error (400)", async () => {
    const send = createSendMessageHandler(deps());
    await fc.assert(
      fc.asyncProperty(hostileText, async (body) => {
        management.received.clear();
        const result = await send(routeEvent("sendMessage", "p-1", { body, authorizer: { user_id: "a", room_id: "prop" } }));
        expect([200, 400]).toContain(result.statusCode);
        if (result.statusCode === 400) {
          expect([...management.received.keys()]).toEqual(["p-1"]);
          expect(JSON.parse(management.received.get("p-1")![0])).toMatchObject({ data: { type: "hub.error" } });
        } else {
          expect(JSON.parse(management.received.get("p-2")![0])).toMatchObject({ origin: "client", user_id: "a", room_id: "prop" });
        }
      }),
      SLOW_RUNS,
    );
  });

  it("authorizer: any query string is refused with 401 (thrown Unauthorized) or 403 (Deny), never another error", async () => {
    const authorize = createAuthorizerHandler({ db: dynamo.client, authTable: dynamo.authTable, jwtSecret: async () => "secret", log });
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(hostileText, fc.string({ maxLength: 40 }))), async (query) => {
        try {
          const result = await authorize(authorizerEvent(query));
          expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: "Deny" });
        } catch (err) {
          expect((err as Error).message).toBe("Unauthorized");
        }
      }),
      RUNS,
    );
  });
});

describe("the local hub's HTTP surface under arbitrary requests", () => {
  let hub: LocalHub;
  let port: number;
  beforeAll(async () => {
    hub = await startLocalHub({ port: 0, bcryptCost: 4 });
    port = Number(new URL(hub.httpUrl).port);
  });
  afterAll(async () => {
    await hub?.stop();
  });
  const health = () => rawHttp(port, "127.0.0.1", `GET /health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  /** Request-target characters: printable ASCII without space, as an HTTP parser lets through. */
  const targetChars = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });

  it("any request line is answered with a status (or closed by the HTTP parser), and the hub keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("GET", "POST", "DELETE", "PUT", "OPTIONS", "HEAD"), targetChars, async (method, target) => {
        const status = await rawHttp(port, "127.0.0.1", `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`);
        expect(status).toMatch(/^HTTP\/1\.1 \d{3}|^closed$/);
      }),
      RUNS,
    );
    expect(await health()).toBe("HTTP/1.1 200 OK");
  });

  it("any @connections path is answered 4xx without a valid signature, and the hub keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("GET", "POST", "DELETE"), targetChars, async (method, id) => {
        const status = await rawHttp(
          port,
          "127.0.0.1",
          `${method} /${hub.stage}/@connections/${id.replace(/[/?#]/g, "")}x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=${id}\r\nContent-Length: 0\r\n\r\n`,
        );
        expect(status).toMatch(/^HTTP\/1\.1 4\d\d|^closed$/);
      }),
      RUNS,
    );
    expect(await health()).toBe("HTTP/1.1 200 OK");
  });

  it("any handshake query string is refused with 400/401/403/404, and the hub keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(targetChars, async (query) => {
        const status = await rawHttp(
          port,
          "127.0.0.1",
          `GET /${hub.stage}?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
        expect(status).toMatch(/^HTTP\/1\.1 (400|401|403|404) |^closed$/);
      }),
      RUNS,
    );
    expect(await health()).toBe("HTTP/1.1 200 OK");
  });
});
