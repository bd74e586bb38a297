/** The token properties of docs/protocol.md#tokens, each as its own test, through the SDK and the authorizer. */
import * as crypto from "crypto";
import * as jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import { createAuthorizerHandler, type AuthorizerHandler } from "../handlers/authorizer";
import { createNotifier, type Notifier } from "../server";
import { deleteConnection, getConnection, putConnection } from "../core/tables";
import { grantsAuthKey, MAX_GRANTS_PER_TOKEN, membershipKey } from "../core/rooms";
import { defaultPasscode, issueConnectToken, MAX_TOKEN_LENGTH, MAX_TOKEN_TTL_SECONDS, tokenExpiry, verifyConnectToken } from "../core/tokens";
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

async function authRowCount(userId: string): Promise<number> {
  const result = await dynamo.client.send(
    new QueryCommand({ TableName: dynamo.authTable, KeyConditionExpression: "user_id = :u", ExpressionAttributeValues: { ":u": { S: userId } }, Select: "COUNT" }),
  );
  return result.Count ?? 0;
}

const secretOf = (token: string) => (jwt.decode(token) as { token: string }).token;

/** A 60-second token: its auth row (under authKey) carries its exp as TTL, and it is refused once past it. */
async function expectExpiry(token: string, authKey: string): Promise<void> {
  const { exp, user_id } = jwt.decode(token) as { exp: number; user_id: string };
  const row = await dynamo.client.send(new GetItemCommand({ TableName: dynamo.authTable, Key: { user_id: { S: user_id }, room_id: { S: authKey } } }));
  expect(Number(row.Item?.expires_at?.N)).toBe(exp);
  expect(await allowed(token)).toBe(true);
  clock = Date.now() + 61_000;
  try {
    expect(await allowed(token)).toBe(false);
  } finally {
    clock = Date.now();
  }
}

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
    await expectExpiry(await notifier.issueToken({ userId: "short", roomId: "r1", ttlSeconds: 60 }), "r1");
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
    expect(secretOf(direct)).toBe(secretOf(viaSdk));
    for (const token of [viaSdk, direct]) expect(await allowed(token)).toBe(true);
    // Without a passcode the secret is derived from the signing key, so each key gives its own.
    expect(defaultPasscode(JWT_SECRET)).not.toBe(defaultPasscode(JWT_SECRET + "x"));
  });
});

/** The same properties for tokens with `rooms` (docs/protocol.md#tokens), and the rules of the two forms. */
describe("tokens with rooms", () => {
  it("carry {user_id, rooms, token, exp} and no room_id; the grants come back normalized", async () => {
    const token = await notifier.issueToken({ userId: "grants", rooms: ["b", "acme/*", "b"] });
    const claims = jwt.decode(token) as Record<string, unknown>;
    expect(Object.keys(claims).sort()).toEqual(["exp", "iat", "rooms", "token", "user_id"]);
    expect(claims.rooms).toEqual(["acme/*", "b"]);
    const check = verifyConnectToken(token, JWT_SECRET);
    expect(check).toEqual({ ok: true, claims: { userId: "grants", grants: ["acme/*", "b"], authKey: grantsAuthKey(["acme/*", "b"]), secret: secretOf(token), exp: claims.exp } });
    // The seed form still reads as before, with grants [room] and the room as its auth key.
    const seed = verifyConnectToken(await notifier.issueToken({ userId: "grants", roomId: 7 }), JWT_SECRET);
    expect(seed.ok && seed.claims).toMatchObject({ userId: "grants", roomId: "7", grants: ["7"], authKey: "7" });
  });

  it("several tabs with one grant set (in any order) share a generation and are valid together", async () => {
    const tabs = await Promise.all([["a", "b/*"], ["b/*", "a"], ["a", "a", "b/*"]].map((rooms) => notifier.issueToken({ userId: "rtabs", rooms })));
    expect(new Set(tabs.map(secretOf)).size).toBe(1);
    for (const token of tabs) expect(await allowed(token)).toBe(true);
    // Another grant set is another row with its own generation, valid beside the first.
    const other = await notifier.issueToken({ userId: "rtabs", rooms: ["a"] });
    expect(secretOf(other)).not.toBe(secretOf(tabs[0]));
    expect(await allowed(other)).toBe(true);
    expect(await authRowCount("rtabs")).toBe(2);
  });

  it("the JWT signing secret alone cannot mint a rooms token nor widen a valid one", async () => {
    const genuine = await notifier.issueToken({ userId: "widen", rooms: ["team-1", "team-1/*"] });
    const claims = jwt.decode(genuine) as Record<string, unknown>;
    const resign = (changes: Record<string, unknown>) => jwt.sign({ ...claims, ...changes }, JWT_SECRET, { algorithm: "HS512" });
    for (const rooms of [["*"], ["team-1", "team-1/*", "team-2"], ["team-1", "team-*"], ["team-1"]]) expect(await allowed(resign({ rooms })), rooms.join()).toBe(false);
    // Nor mint one for a grant set that has no row, or for a user who has none.
    expect(await allowed(resign({ rooms: ["x"], token: crypto.randomBytes(32).toString("hex") }))).toBe(false);
    expect(await allowed(resign({ user_id: "stranger" }))).toBe(false);
    expect(await allowed(genuine)).toBe(true);
  });

  it("expire by the JWT's exp, and the row carries it as its TTL", async () => {
    await expectExpiry(await notifier.issueToken({ userId: "rshort", rooms: ["r1", "r2"], ttlSeconds: 60 }), grantsAuthKey(["r1", "r2"]));
  });

  it("revokeToken({ userId }) refuses every token of the user, of both forms, even after a re-issue", async () => {
    const seed = await notifier.issueToken({ userId: "all", roomId: "r1" });
    const grants = await notifier.issueToken({ userId: "all", rooms: ["r1", "r2/*"] });
    const bystander = await notifier.issueToken({ userId: "all-other", rooms: ["r1", "r2/*"] });
    for (const token of [seed, grants]) expect(await allowed(token)).toBe(true);
    await notifier.revokeToken({ userId: "all" });
    expect(await authRowCount("all")).toBe(0);
    const reissued = [await notifier.issueToken({ userId: "all", roomId: "r1" }), await notifier.issueToken({ userId: "all", rooms: ["r1", "r2/*"] })];
    for (const token of reissued) expect(await allowed(token)).toBe(true);
    for (const token of [seed, grants]) expect(await allowed(token)).toBe(false);
    expect(await allowed(bystander)).toBe(true);
  });

  it("revokeToken({ userId }) finds connections through the user channel and removes their rows and memberships itself", async () => {
    const now = Date.now() - 60_000;
    await putConnection(dynamo.client, dynamo.connectionsTable, { connectionId: "gus-1", userId: "gus", rooms: ["x", "y"], grants: ["*"], connectedAt: now, generation: "g", authKey: "k" });
    // A membership whose row is gone (a subscribe that raced its disconnect): closed and dropped too.
    await putConnection(dynamo.client, dynamo.connectionsTable, { connectionId: "gus-2", userId: "gus", rooms: [], grants: ["*"], connectedAt: now, generation: "g", authKey: "k" });
    await deleteConnection(dynamo.client, dynamo.connectionsTable, "gus-2");
    await putConnection(dynamo.client, dynamo.connectionsTable, { connectionId: "hal-1", userId: "hal", rooms: ["x"], grants: ["*"], connectedAt: now, generation: "g", authKey: "k" });
    management.deleted.length = 0;
    expect(await notifier.revokeToken({ userId: "gus" })).toEqual({ closedConnections: 2 });
    expect(management.deleted.sort()).toEqual(["gus-1", "gus-2"]);
    const keys = ["gus-1", ...["x", "y", "user:gus"].map((room) => membershipKey("gus-1", room)), membershipKey("gus-2", "user:gus")];
    for (const key of keys) {
      const item = await dynamo.client.send(new GetItemCommand({ TableName: dynamo.connectionsTable, Key: { connection_id: { S: key } }, ConsistentRead: true }));
      expect(item.Item, key).toBeUndefined();
    }
    expect(await getConnection(dynamo.client, dynamo.connectionsTable, "hal-1")).toBeDefined();
  });

  it("revokeToken({ userId, roomId }) is the seed form only: a rooms token granting that room stays good", async () => {
    const seed = await notifier.issueToken({ userId: "one", roomId: "r1" });
    const grants = await notifier.issueToken({ userId: "one", rooms: ["r1"] });
    await notifier.revokeToken({ userId: "one", roomId: "r1" });
    expect(await allowed(seed)).toBe(false);
    expect(await allowed(grants)).toBe(true);
  });

  it("refuses bad scopes at issue with errors that name the key, before writing a row", async () => {
    const issue = (input: Record<string, unknown>) => notifier.issueToken({ userId: "bad", ...input } as never);
    await expect(issue({})).rejects.toThrow('issueToken: pass exactly one of roomId (one room) or rooms (room ids and prefixes ending in "*")');
    await expect(issue({ roomId: "a", rooms: ["a"] })).rejects.toThrow(/exactly one of roomId .* or rooms/);
    await expect(issue({ roomId: "user:bad" })).rejects.toThrow(/roomId must not start with "user:"/);
    // A seed room is its token's one grant: "*" in it would read as a prefix (room "*" = every room).
    await expect(issue({ roomId: "*" })).rejects.toThrow(/roomId must not contain "\*"/);
    await expect(issue({ roomId: "team*" })).rejects.toThrow(/roomId must not contain "\*"/);
    const forged = jwt.sign({ user_id: "bad", room_id: "*", token: "x".repeat(64), exp: Math.floor(Date.now() / 1000) + 60 }, JWT_SECRET, { algorithm: "HS512" });
    expect(verifyConnectToken(forged, JWT_SECRET)).toEqual({ ok: false, reason: "token_claims_invalid" });
    await expect(issue({ rooms: ["a", "user:bad"] })).rejects.toThrow(/rooms\[1\] must not start with "user:"/);
    await expect(issue({ rooms: [] })).rejects.toThrow(`rooms must hold 1 to ${MAX_GRANTS_PER_TOKEN} entries`);
    await expect(issue({ rooms: "a,b" })).rejects.toThrow(/rooms must be an array/);
    await expect(issue({ rooms: ["a*b"] })).rejects.toThrow(/rooms\[0\] may hold "\*" only as its last character/);
    await expect(issue({ rooms: ["a", ""] })).rejects.toThrow(/rooms\[1\] must not be empty/);
    await expect(issue({ rooms: Array.from({ length: MAX_GRANTS_PER_TOKEN + 1 }, (_, i) => `r${i}`) })).rejects.toThrow(/1 to 100 entries/);
    expect(await authRowCount("bad")).toBe(0);
    // Every connection is in "user:{id}", which must fit the 256-character id rule too.
    await expect(notifier.issueToken({ userId: "u".repeat(252), roomId: "a" })).rejects.toThrow(/userId is longer than 251 characters/);
    expect(await notifier.issueToken({ userId: "u".repeat(251), roomId: "a" })).toEqual(expect.any(String));
  });

  it("a 100-grant token fits; one past MAX_TOKEN_LENGTH is refused with advice to use prefixes, and no row is written", async () => {
    const hundred = Array.from({ length: MAX_GRANTS_PER_TOKEN }, (_, i) => `org-${String(i).padStart(3, "0")}/project-dashboard-${i}/alerts`);
    const token = await notifier.issueToken({ userId: "wide", rooms: hundred });
    expect(token.length).toBeGreaterThan(4096); // past the old limit
    expect(token.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(await allowed(token)).toBe(true);
    const long = Array.from({ length: MAX_GRANTS_PER_TOKEN }, (_, i) => `${i}-${"x".repeat(120)}`);
    await expect(notifier.issueToken({ userId: "too-wide", rooms: long })).rejects.toThrow(/more than the 8192 a connect accepts; grant rooms by prefix/);
    expect(await authRowCount("too-wide")).toBe(0);
  });
});
