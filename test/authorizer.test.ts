import * as crypto from "crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthorizerHandler, type AuthorizerHandler } from "../handlers/authorizer";
import type { Notifier } from "../server";
import { grantsAuthKey } from "../core/rooms";
import { badTokenCases } from "./support/badTokens";
import { authorizerEvent } from "./support/events";
import { capturingLogger } from "./support/logs";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { testNotifier } from "./support/notifier";
import { startDynamo, type Dynamo } from "./support/services";

const JWT_SECRET = "test-signing-secret-" + crypto.randomBytes(8).toString("hex");
const PASSCODE = "issuer-only-passcode";

let dynamo: Dynamo;
let management: StandaloneConnectionsEmulator;
let notifier: Notifier;
let authorize: AuthorizerHandler;
const captured = capturingLogger();

type Outcome = "allow" | "403" | "500" | "threw";

async function outcome(event: ReturnType<typeof authorizerEvent>): Promise<Outcome> {
  try {
    const result = await authorize(event);
    if (!result) return "500"; // null is what the seed returned: API Gateway answers 500
    return result.policyDocument.Statement[0] && (result.policyDocument.Statement[0] as { Effect: string }).Effect === "Allow" ? "allow" : "403";
  } catch {
    return "threw"; // a Lambda error: API Gateway answers 401 or 500, and the errors alarm counts it
  }
}


beforeAll(async () => {
  dynamo = await startDynamo();
  management = await startConnectionsEmulator();
  notifier = testNotifier(dynamo, management, { jwtSecret: JWT_SECRET, passcode: PASSCODE });
  authorize = createAuthorizerHandler({
    db: dynamo.client,
    authTable: dynamo.authTable,
    jwtSecret: async () => JWT_SECRET,
    log: captured.log,
  });
});

afterAll(async () => {
  await management?.stop();
  await dynamo?.stop();
});

describe("authorizer", () => {
  it("allows a freshly issued token and passes user and room as context", async () => {
    const token = await notifier.issueToken({ userId: "alice", roomId: "acme" });
    const result = await authorize(authorizerEvent({ token }));
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: "Allow", Resource: expect.stringContaining("$connect") });
    expect(result.context).toEqual({ user_id: "alice", room_id: "acme", grants: '["acme"]', auth_key: "acme", generation: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(result.principalId).toBe("alice");
  });

  it("the largest token issueToken allows gives an authorizer result under API Gateway's 8 KB WebSocket limit", async () => {
    // API Gateway refuses a WebSocket authorizer result over 8 KB (a quota that cannot be
    // raised); the grants ride in its context, so MAX_TOKEN_LENGTH must keep it under that.
    const userId = "u".repeat(251);
    let token: string | undefined;
    for (let length = 80; !token && length > 10; length--) {
      const rooms = Array.from({ length: 100 }, (_, i) => `${String(i).padStart(3, "0")}-${"r".repeat(length)}`);
      token = await notifier.issueToken({ userId, rooms }).catch(() => undefined);
    }
    expect(token!.length).toBeGreaterThan(7_800); // close to MAX_TOKEN_LENGTH (8192)
    const result = await authorize(authorizerEvent({ token: token! }));
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: "Allow" });
    expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThan(8 * 1024);
  });

  it("allows a rooms token: context has room_id \"\", its grants as a JSON array and its grant set's auth key", async () => {
    const token = await notifier.issueToken({ userId: "alice", rooms: ["ops/*", "acme"] });
    const result = await authorize(authorizerEvent({ token }));
    expect(result.context).toEqual({ user_id: "alice", room_id: "", grants: '["acme","ops/*"]', auth_key: grantsAuthKey(["acme", "ops/*"]), generation: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(result.principalId).toBe("alice");
    // Its generation is its own row's, not the seed token's for "acme".
    const seed = await authorize(authorizerEvent({ token: await notifier.issueToken({ userId: "alice", roomId: "acme" }) }));
    expect(seed.context?.generation).not.toBe(result.context?.generation);
  });

  it("accepts numeric room ids as the seed issued them", async () => {
    const token = await notifier.issueToken({ userId: 7, roomId: 42 });
    const result = await authorize(authorizerEvent({ token }));
    expect(result.context).toEqual({ user_id: "7", room_id: "42", grants: '["42"]', auth_key: "42", generation: expect.any(String) });
  });

  it("reads the token from Sec-WebSocket-Protocol beside notification-hub, whatever the header name's case or the entries' order and spacing", async () => {
    const token = await notifier.issueToken({ userId: "alice", roomId: "acme" });
    const spellings: Record<string, string>[] = [
      { "Sec-WebSocket-Protocol": `notification-hub, ${token}` }, // a browser's new WebSocket(url, ["notification-hub", token])
      { "sec-websocket-protocol": `notification-hub,${token}` }, // lower-cased, as HTTP/2 and some proxies send it
      { "SEC-WEBSOCKET-PROTOCOL": `${token} ,\tnotification-hub` },
    ];
    for (const headers of spellings) {
      const result = await authorize(authorizerEvent(null, headers));
      expect(result.context, JSON.stringify(Object.keys(headers))).toMatchObject({ user_id: "alice", room_id: "acme" });
    }
  });

  it("with notification-hub named, the token must be the one other entry: alone, or with two more, is a Deny even beside a good ?token=", async () => {
    const token = await notifier.issueToken({ userId: "alice", roomId: "acme" });
    const cases: [string, Record<string, string>][] = [
      ["only the protocol", { "Sec-WebSocket-Protocol": "notification-hub" }],
      ["two extra entries", { "Sec-WebSocket-Protocol": `notification-hub, ${token}, other` }],
      ["a bad token beside it", { "Sec-WebSocket-Protocol": "notification-hub, x.y.z" }],
      ["the protocol and an empty entry", { "Sec-WebSocket-Protocol": "notification-hub, " }],
    ];
    for (const [name, headers] of cases) expect(await outcome(authorizerEvent({ token }, headers)), name).toBe("403");
    // Without our protocol, the header is someone else's business: the query's token counts.
    expect(await outcome(authorizerEvent({ token }, { "Sec-WebSocket-Protocol": "graphql-ws" }))).toBe("allow");
    // Header wins over the query when both carry a token.
    expect(await outcome(authorizerEvent({ token: "x.y.z" }, { "Sec-WebSocket-Protocol": `notification-hub, ${token}` }))).toBe("allow");
    // No token anywhere: the authorizer (which has no identity source) denies.
    expect(await outcome(authorizerEvent(null))).toBe("403");
  });

  it("refuses every bad token with a Deny policy (403), never by throwing (a Lambda error), and never logs the token", async () => {
    const cases = await badTokenCases({ notifier, jwtSecret: JWT_SECRET, passcode: PASSCODE, db: dynamo.client, authTable: dynamo.authTable, prefix: "unit" });
    const results: string[] = [];
    for (const { name, query, headers } of cases) {
      const result = await outcome(authorizerEvent(query, headers));
      results.push(`${result}  ${name}`);
      expect(result, `${name} gave ${result}`).toBe("403");
    }
    console.log(`SUMMARY authorizer: ${cases.length} bad tokens tried, ${cases.length} denied (403), 0 allowed, 0 thrown\n  ` + results.join("\n  "));
    const logs = captured.text();
    for (const { name, secrets } of cases) for (const secret of secrets.filter((s) => s.length > 8)) expect(logs, name).not.toContain(secret);
  });

  it("denies (403, not 500) when the auth table cannot be read", async () => {
    const broken = createAuthorizerHandler({ db: dynamo.client, authTable: "no-such-table", jwtSecret: async () => JWT_SECRET, log: captured.log });
    const token = await notifier.issueToken({ userId: "alice", roomId: "acme" });
    const result = await broken(authorizerEvent({ token }));
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: "Deny" });
  });

  it("denies when the signing secret cannot be loaded", async () => {
    const broken = createAuthorizerHandler({
      db: dynamo.client,
      authTable: dynamo.authTable,
      jwtSecret: async () => {
        throw new Error("parameter store down");
      },
      log: captured.log,
    });
    const result = await broken(authorizerEvent({ token: "x.y.z" }));
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: "Deny" });
  });

  it("refuses a handshake with no token, or a malformed protocol list, without reading the signing secret", async () => {
    let reads = 0;
    const counting = createAuthorizerHandler({ db: dynamo.client, authTable: dynamo.authTable, jwtSecret: async () => (reads++, JWT_SECRET), log: captured.log });
    for (const event of [authorizerEvent(null), authorizerEvent({}, { "Sec-WebSocket-Protocol": "notification-hub" }), authorizerEvent(null, { "Sec-WebSocket-Protocol": "a,,b" })]) {
      expect((await counting(event)).policyDocument.Statement[0]).toMatchObject({ Effect: "Deny" });
    }
    expect(reads).toBe(0);
    await counting(authorizerEvent({ token: "x.y.z" }));
    expect(reads).toBe(1);
  });
});
