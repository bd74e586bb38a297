/** The token properties of CONTRACT section 5, each as its own test, through the SDK and the authorizer. */
import * as crypto from "crypto";
import * as jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { createAuthorizerHandler, type AuthorizerHandler } from "../handlers/authorizer";
import { createNotifier, type Notifier } from "../server";
import { getConnection } from "../core/tables";
import { defaultPasscode, issueConnectToken, MAX_TOKEN_TTL_SECONDS, tokenExpiry } from "../core/tokens";
import { authorizerEvent } from "./support/events";
import { capturingLogger } from "./support/logs";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { testNotifier } from "./support/notifier";
import { seedConnections } from "./support/seed";
import { startDynamo, type Dynamo } from "./support/services";

const JWT_SECRET = crypto.randomBytes(32).toString("hex");
let dynamo: Dynamo;
let management: StandaloneConnectionsEmulator;
let notifier: Notifier;
let authorize: AuthorizerHandler;
let clock = Date.now();

async function allowed(token: string): Promise<boolean> {
  try {
    const result = await authorize(authorizerEvent({ token }));
    return (result.policyDocument.Statement[0] as { Effect: string }).Effect === "Allow";
  } catch {
    return false;
  }
}

beforeAll(async () => {
  dynamo = await startDynamo();
  management = await startConnectionsEmulator();
  notifier = testNotifier(dynamo, management, { jwtSecret: JWT_SECRET, passcode: "passcode-known-only-to-the-issuer" });
  authorize = createAuthorizerHandler({
    db: dynamo.client,
    authTable: dynamo.authTable,
    jwtSecret: async () => JWT_SECRET,
    log: capturingLogger().log,
    now: () => clock,
  });
});

afterAll(async () => {
  await management?.stop();
  await dynamo?.stop();
});

describe("token properties", () => {
  it("several tabs or devices of one user in one room hold valid tokens at the same time", async () => {
    const tabs = await Promise.all([1, 2, 3, 4].map(() => notifier.issueToken({ userId: "tabs", roomId: "r1" })));
    const later = await notifier.issueToken({ userId: "tabs", roomId: "r1" });
    for (const token of [...tabs, later]) expect(await allowed(token)).toBe(true);
  });

  it("after revokeToken every earlier token fails, even once a new one is issued", async () => {
    const before = await notifier.issueToken({ userId: "rev", roomId: "r1" });
    const otherRoom = await notifier.issueToken({ userId: "rev", roomId: "r2" });
    expect(await allowed(before)).toBe(true);
    await notifier.revokeToken({ userId: "rev", roomId: "r1" });
    expect(await allowed(before)).toBe(false);
    const after = await notifier.issueToken({ userId: "rev", roomId: "r1" });
    expect(await allowed(after)).toBe(true);
    expect(await allowed(before)).toBe(false);
    expect(await allowed(otherRoom)).toBe(true); // revocation is per room
  });

  it("revokeToken closes that user's live connections in the room, and only those", async () => {
    await seedConnections(dynamo.client, dynamo.connectionsTable, [
      { connectionId: "victim-1", roomId: "r3", userId: "victim" },
      { connectionId: "victim-2", roomId: "r3", userId: "victim" },
      { connectionId: "bystander", roomId: "r3", userId: "someone" },
      { connectionId: "victim-elsewhere", roomId: "r4", userId: "victim" },
    ]);
    await notifier.issueToken({ userId: "victim", roomId: "r3" });
    const { closedConnections } = await notifier.revokeToken({ userId: "victim", roomId: "r3" });
    expect(closedConnections).toBe(2);
    expect(management.deleted.sort()).toEqual(["victim-1", "victim-2"]);
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "victim-1")).toBeUndefined();
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "bystander")).toBeDefined();
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "victim-elsewhere")).toBeDefined();
  });

  it("the JWT signing secret alone lets no one connect", async () => {
    const genuine = await notifier.issueToken({ userId: "target", roomId: "r1" });
    const claims = jwt.decode(genuine) as Record<string, unknown>;
    // Someone with the signing key, but not the passcode, mints tokens for an existing row...
    const guesses = [
      crypto.createHash("sha256").update("target" + "r1").digest("hex"), // the seed's scheme without the passcode
      crypto.randomBytes(32).toString("hex"),
      "",
    ].map((secret) => jwt.sign({ ...claims, token: secret }, JWT_SECRET, { algorithm: "HS512" }));
    for (const forged of guesses) expect(await allowed(forged)).toBe(false);
    // ...and for a user who never had one.
    const stranger = jwt.sign({ user_id: "stranger", room_id: "r1", token: "x", exp: claims.exp }, JWT_SECRET, { algorithm: "HS512" });
    expect(await allowed(stranger)).toBe(false);
    expect(await allowed(genuine)).toBe(true);
  });

  it("tokens expire: the JWT's exp, and the row carries it as its TTL", async () => {
    const token = await notifier.issueToken({ userId: "short", roomId: "r1", ttlSeconds: 60 });
    const { exp } = jwt.decode(token) as { exp: number };
    const row = await dynamo.client.send(
      new GetItemCommand({ TableName: dynamo.authTable, Key: { user_id: { S: "short" }, room_id: { S: "r1" } } }),
    );
    expect(Number(row.Item?.expires_at?.N)).toBe(exp);
    expect(await allowed(token)).toBe(true);
    clock = Date.now() + 61_000;
    try {
      expect(await allowed(token)).toBe(false);
    } finally {
      clock = Date.now();
    }
  });

  it("rejects bad issue input with a clear error", async () => {
    await expect(notifier.issueToken({ userId: "", roomId: "r1" })).rejects.toThrow(/userId must not be empty/);
    await expect(notifier.issueToken({ userId: "u", roomId: "r1", ttlSeconds: 0 })).rejects.toThrow(/ttlSeconds/);
    expect(() => createNotifier({ queueUrl: "", authTableName: "a" })).toThrow(/queueUrl must be a non-empty string/);
    await expect(createNotifier({ queueUrl: "q" }).issueToken({ userId: "u", roomId: "r" })).rejects.toThrow(/issueToken: authTableName is required/);
    await expect(createNotifier({ authTableName: "a" }).publish({ roomId: "r", data: 1 })).rejects.toThrow(/publish: queueUrl is required/);
  });

  it("the issuing rules live in core/tokens.ts: the SDK and a direct call share a generation", async () => {
    expect(tokenExpiry(undefined, 1000)).toBe(1000 + 3600);
    expect(tokenExpiry(MAX_TOKEN_TTL_SECONDS, 0)).toBe(MAX_TOKEN_TTL_SECONDS);
    for (const bad of [0, -1, 1.5, MAX_TOKEN_TTL_SECONDS + 1, Number.NaN]) {
      expect(() => tokenExpiry(bad, 0)).toThrow(new RangeError(`issueToken: ttlSeconds must be a whole number from 1 to ${MAX_TOKEN_TTL_SECONDS}`));
    }
    const viaSdk = await notifier.issueToken({ userId: "direct", roomId: "r1" });
    const direct = await issueConnectToken(dynamo.client, dynamo.authTable, {
      userId: "direct",
      roomId: "r1",
      jwtSecret: JWT_SECRET,
      passcode: "passcode-known-only-to-the-issuer",
    });
    const secretOf = (token: string) => (jwt.decode(token) as { token: string }).token;
    expect(secretOf(direct)).toBe(secretOf(viaSdk));
    for (const token of [viaSdk, direct]) expect(await allowed(token)).toBe(true);
    // Without a passcode the secret is derived from the signing key, so each key gives its own.
    expect(defaultPasscode(JWT_SECRET)).not.toBe(defaultPasscode(JWT_SECRET + "x"));
  });
});
