import * as crypto from "crypto";
import * as jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { createAuthorizerHandler, type AuthorizerHandler } from "../handlers/authorizer";
import { createNotifier, type Notifier } from "../server";
import { deriveTokenSecret } from "../core/tokens";
import { authorizerEvent } from "./support/events";
import { capturingLogger } from "./support/logs";
import { startManagementApi, type ManagementApi } from "./support/managementApi";
import { startDynamo, type Dynamo } from "./support/services";

const JWT_SECRET = "test-signing-secret-" + crypto.randomBytes(8).toString("hex");
const PASSCODE = "issuer-only-passcode";

let dynamo: Dynamo;
let management: ManagementApi;
let notifier: Notifier;
let authorize: AuthorizerHandler;
const captured = capturingLogger();

type Outcome = "allow" | "401" | "403" | "500";

async function outcome(event: ReturnType<typeof authorizerEvent>): Promise<Outcome> {
  try {
    const result = await authorize(event);
    if (!result) return "500"; // null is what the seed returned: API Gateway answers 500
    return result.policyDocument.Statement[0] && (result.policyDocument.Statement[0] as { Effect: string }).Effect === "Allow" ? "allow" : "403";
  } catch (err) {
    return (err as Error).message === "Unauthorized" ? "401" : "500";
  }
}

const connectWith = (token: string) => outcome(authorizerEvent({ token }));
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

beforeAll(async () => {
  dynamo = await startDynamo();
  management = await startManagementApi();
  notifier = createNotifier({
    queueUrl: "http://127.0.0.1:9/unused",
    authTableName: dynamo.authTable,
    connectionsTableName: dynamo.connectionsTable,
    managementEndpoint: management.endpoint,
    jwtSecret: JWT_SECRET,
    passcode: PASSCODE,
    region: "us-east-1",
    endpoints: { dynamodb: dynamo.endpoint },
    bcryptCost: 4,
  });
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
    expect(result.context).toEqual({ user_id: "alice", room_id: "acme" });
    expect(result.principalId).toBe("alice");
  });

  it("accepts numeric room ids as the seed issued them", async () => {
    const token = await notifier.issueToken({ userId: 7, roomId: 42 });
    const result = await authorize(authorizerEvent({ token }));
    expect(result.context).toEqual({ user_id: "7", room_id: "42" });
  });

  it("refuses every bad token with 401 or 403, never 500, and never logs the token", async () => {
    const good = await notifier.issueToken({ userId: "bob", roomId: "acme" });
    const goodClaims = jwt.decode(good) as { token: string; exp: number };
    await notifier.issueToken({ userId: "bob", roomId: "other-room" });
    const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
    const [header, payload, signature] = good.split(".");
    const sign = (claims: object, options: jwt.SignOptions = {}) => jwt.sign(claims, JWT_SECRET, { algorithm: "HS512", ...options });
    const base = { user_id: "bob", room_id: "acme", token: goodClaims.token, exp: inAnHour() };

    const revokedUserToken = await notifier.issueToken({ userId: "carol", roomId: "acme" });
    await notifier.revokeToken({ userId: "carol", roomId: "acme" });
    const reissued = await notifier.issueToken({ userId: "dave", roomId: "acme" });
    await notifier.revokeToken({ userId: "dave", roomId: "acme" });
    await notifier.issueToken({ userId: "dave", roomId: "acme" });

    // A row whose TTL passed but that DynamoDB has not swept yet.
    const staleSecret = deriveTokenSecret(PASSCODE, "erin", "acme", "gen-1");
    await dynamo.client.send(
      new PutItemCommand({
        TableName: dynamo.authTable,
        Item: {
          user_id: { S: "erin" },
          room_id: { S: "acme" },
          token: { S: (await import("bcryptjs")).hashSync(staleSecret, 4) },
          generation: { S: "gen-1" },
          expires_at: { N: String(Math.floor(Date.now() / 1000) - 10) },
        },
      }),
    );

    const cases: [string, () => Promise<Outcome>][] = [
      ["no query string at all", () => outcome(authorizerEvent(null))],
      ["no token parameter", () => outcome(authorizerEvent({ other: "x" }))],
      ["empty token", () => connectWith("")],
      ["garbage", () => connectWith("not-a-jwt")],
      ["three garbage segments", () => connectWith("aaa.bbb.ccc")],
      ["alg none", () => connectWith(`${b64({ alg: "none", typ: "JWT" })}.${b64(base)}.`)],
      ["HS256 with the right secret", () => connectWith(sign(base, { algorithm: "HS256" }))],
      ["RS256 signed", () => connectWith(jwt.sign(base, privateKey, { algorithm: "RS256" }))],
      ["RS256 header on an HS512 signature", () => connectWith(`${b64({ alg: "RS256", typ: "JWT" })}.${payload}.${signature}`)],
      ["wrong signing secret", () => connectWith(jwt.sign(base, "wrong-secret", { algorithm: "HS512" }))],
      ["tampered payload", () => connectWith(`${header}.${b64({ ...base, room_id: "other-room" })}.${signature}`)],
      ["expired", () => connectWith(sign({ ...base, exp: Math.floor(Date.now() / 1000) - 60 }))],
      ["nbf in the future", () => connectWith(sign({ ...base, nbf: inAnHour() }))],
      ["no exp", () => connectWith(sign({ user_id: "bob", room_id: "acme", token: goodClaims.token }))],
      ["no user_id", () => connectWith(sign({ room_id: "acme", token: goodClaims.token, exp: inAnHour() }))],
      ["room_id of the wrong type", () => connectWith(sign({ ...base, room_id: { $ne: null } }))],
      ["no token claim", () => connectWith(sign({ user_id: "bob", room_id: "acme", exp: inAnHour() }))],
      ["token claim of the wrong type", () => connectWith(sign({ ...base, token: 12345 }))],
      ["claims for a user with no stored row", () => connectWith(sign({ ...base, user_id: "mallory" }))],
      ["this room's secret presented for another room's row", () => connectWith(sign({ ...base, room_id: "other-room" }))],
      ["bcrypt mismatch", () => connectWith(sign({ ...base, token: crypto.randomBytes(32).toString("hex") }))],
      ["signing secret alone (forged secret without the passcode)", () =>
        connectWith(sign({ ...base, token: deriveTokenSecret("guessed", "bob", "acme", "x") }))],
      ["revoked", () => connectWith(revokedUserToken)],
      ["issued before a revoke, after a re-issue", () => connectWith(reissued)],
      ["row past its TTL", () => connectWith(sign({ user_id: "erin", room_id: "acme", token: staleSecret, exp: inAnHour() }))],
      ["over-long token", () => connectWith(good + "A".repeat(5000))],
      ["token in a header instead of the query string", () => outcome(authorizerEvent(null, { Authorization: `Bearer ${good}`, token: good }))],
    ];

    const results: string[] = [];
    for (const [name, attempt] of cases) {
      const result = await attempt();
      results.push(`${result}  ${name}`);
      expect(["401", "403"], `${name} gave ${result}`).toContain(result);
    }
    console.log(`authorizer: ${cases.length} bad tokens tried, ${cases.length} refused\n  ` + results.join("\n  "));

    const logs = captured.text();
    expect(logs).not.toContain(good);
    expect(logs).not.toContain(signature);
    expect(logs).not.toContain(goodClaims.token);
    expect(logs).not.toContain(revokedUserToken);
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
});
