/**
 * Every kind of bad connect token we know, as (query string, headers) pairs, so the
 * authorizer's unit test and the local hub's end-to-end test try the same list.
 */
import * as crypto from "crypto";
import * as bcrypt from "bcryptjs";
import * as jwt from "jsonwebtoken";
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { grantsAuthKey } from "../../core/rooms";
import { deriveTokenSecret, MAX_TOKEN_LENGTH } from "../../core/tokens";
import type { Notifier } from "../../server";

export interface BadTokenCase {
  name: string;
  query: Record<string, string> | null;
  headers?: Record<string, string>;
  /** Token texts that must never show up in a log. */
  secrets: string[];
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

export async function badTokenCases(setup: {
  notifier: Notifier;
  jwtSecret: string;
  passcode: string;
  db: DynamoDBClient;
  authTable: string;
  /** Distinguishes users between calls that share a table. */
  prefix: string;
}): Promise<BadTokenCase[]> {
  const { notifier, jwtSecret, passcode, prefix } = setup;
  const user = `${prefix}-bob`;
  const good = await notifier.issueToken({ userId: user, roomId: "acme" });
  const goodClaims = jwt.decode(good) as { token: string; exp: number };
  await notifier.issueToken({ userId: user, roomId: "other-room" });
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const [header, payload, signature] = good.split(".");
  const inAnHour = Math.floor(Date.now() / 1000) + 3600;
  const sign = (claims: object, options: jwt.SignOptions = {}) => jwt.sign(claims, jwtSecret, { algorithm: "HS512", ...options });
  const base = { user_id: user, room_id: "acme", token: goodClaims.token, exp: inAnHour };

  const revoked = await notifier.issueToken({ userId: `${prefix}-carol`, roomId: "acme" });
  await notifier.revokeToken({ userId: `${prefix}-carol`, roomId: "acme" });
  const beforeRevoke = await notifier.issueToken({ userId: `${prefix}-dave`, roomId: "acme" });
  await notifier.revokeToken({ userId: `${prefix}-dave`, roomId: "acme" });
  await notifier.issueToken({ userId: `${prefix}-dave`, roomId: "acme" });

  // A row whose TTL passed but that DynamoDB has not swept yet.
  const staleSecret = deriveTokenSecret(passcode, `${prefix}-erin`, "acme", "gen-1");
  await setup.db.send(
    new PutItemCommand({
      TableName: setup.authTable,
      Item: {
        user_id: { S: `${prefix}-erin` },
        room_id: { S: "acme" },
        token: { S: bcrypt.hashSync(staleSecret, 4) },
        generation: { S: "gen-1" },
        expires_at: { N: String(Math.floor(Date.now() / 1000) - 10) },
      },
    }),
  );

  // The rooms form (docs/protocol.md#tokens): the grants are bound to the secret through the auth key.
  const grantsToken = await notifier.issueToken({ userId: user, rooms: ["acme", "ops/*"] });
  const grantsSecret = (jwt.decode(grantsToken) as { token: string }).token;
  const grantsBase = { user_id: user, rooms: ["acme", "ops/*"], token: grantsSecret, exp: inAnHour };
  const revokedByUser = await notifier.issueToken({ userId: `${prefix}-frank`, rooms: ["acme"] });
  await notifier.revokeToken({ userId: `${prefix}-frank` });
  await notifier.issueToken({ userId: `${prefix}-frank`, rooms: ["acme"] });
  // A seed-era row for a room id now reserved for user channels: its token must not reach that channel.
  const reservedSecret = deriveTokenSecret(passcode, user, "user:victim", "gen-1");
  await setup.db.send(
    new PutItemCommand({
      TableName: setup.authTable,
      Item: { user_id: { S: user }, room_id: { S: "user:victim" }, token: { S: bcrypt.hashSync(reservedSecret, 4) }, generation: { S: "gen-1" }, expires_at: { N: String(inAnHour) } },
    }),
  );

  const token = (name: string, value: string): BadTokenCase => ({ name, query: { token: value }, secrets: [value, goodClaims.token, grantsSecret, signature] });
  return [
    { name: "no query string at all", query: null, secrets: [] },
    { name: "no token parameter", query: { other: "x" }, secrets: [] },
    token("empty token", ""),
    token("garbage", "not-a-jwt"),
    token("three garbage segments", "aaa.bbb.ccc"),
    token("alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64(base)}.`),
    token("HS256 signed with the same secret", sign(base, { algorithm: "HS256" })),
    token("RS256 signed", jwt.sign(base, privateKey, { algorithm: "RS256" })),
    token("RS256 header on an HS512 signature", `${b64({ alg: "RS256", typ: "JWT" })}.${payload}.${signature}`),
    token("wrong signing secret", jwt.sign(base, "wrong-secret", { algorithm: "HS512" })),
    token("tampered payload", `${header}.${b64({ ...base, room_id: "other-room" })}.${signature}`),
    token("expired", sign({ ...base, exp: Math.floor(Date.now() / 1000) - 60 })),
    token("nbf in the future", sign({ ...base, nbf: inAnHour })),
    token("no exp", sign({ user_id: user, room_id: "acme", token: goodClaims.token })),
    token("no user_id", sign({ room_id: "acme", token: goodClaims.token, exp: inAnHour })),
    token("room_id of the wrong type", sign({ ...base, room_id: { $ne: null } })),
    token("no token claim", sign({ user_id: user, room_id: "acme", exp: inAnHour })),
    token("token claim of the wrong type", sign({ ...base, token: 12345 })),
    token("claims for a user with no stored row", sign({ ...base, user_id: `${prefix}-mallory` })),
    token("this room's secret against another room's row", sign({ ...base, room_id: "other-room" })),
    token("bcrypt mismatch", sign({ ...base, token: crypto.randomBytes(32).toString("hex") })),
    token("signing secret alone (no passcode)", sign({ ...base, token: deriveTokenSecret("guessed", user, "acme", "x") })),
    token("revoked", revoked),
    token("issued before a revoke, presented after a re-issue", beforeRevoke),
    token("row past its TTL", sign({ user_id: `${prefix}-erin`, room_id: "acme", token: staleSecret, exp: inAnHour })),
    token("over-long token", good + "A".repeat(MAX_TOKEN_LENGTH)),
    token("rooms widened by re-signing (signing secret without passcode)", sign({ ...grantsBase, rooms: ["*"] })),
    token("rooms narrowed by re-signing", sign({ ...grantsBase, rooms: ["acme"] })),
    token("both room_id and rooms", sign({ ...grantsBase, room_id: "acme" })),
    token("neither room_id nor rooms", sign({ user_id: user, token: grantsSecret, exp: inAnHour })),
    token("empty rooms", sign({ ...grantsBase, rooms: [] })),
    token("rooms naming a user channel", sign({ ...grantsBase, rooms: ["acme", "user:victim"] })),
    token("rooms of the wrong type", sign({ ...grantsBase, rooms: "acme" })),
    token("a rooms token's secret in the seed form", sign({ ...base, token: grantsSecret })),
    token("a seed token's secret in the rooms form", sign({ ...grantsBase, rooms: ["acme"], token: goodClaims.token })),
    token("rooms secret against a forged auth key", sign({ ...grantsBase, rooms: [grantsAuthKey(["acme", "ops/*"])] })),
    token("room_id in the reserved user: prefix (even with a stored row)", sign({ ...base, room_id: "user:victim", token: reservedSecret })),
    token("rooms token revoked by user, presented after a re-issue", revokedByUser),
    { name: "token in a header instead of the query string", query: null, headers: { Authorization: `Bearer ${good}`, token: good }, secrets: [good] },
    // A good token in a protocol list ws refuses (the emulator answers 400 before the
    // authorizer): the authorizer's older, looser reading found the token in both.
    { name: "good token in a protocol list that names a protocol twice", query: null, headers: { "Sec-WebSocket-Protocol": `notification-hub, notification-hub, ${good}` }, secrets: [good] },
    { name: "good token in a protocol list with an empty entry", query: null, headers: { "Sec-WebSocket-Protocol": `notification-hub,, ${good}` }, secrets: [good] },
  ];
}
