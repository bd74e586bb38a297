/**
 * Token rules, shared by the issuer (app-backend SDK) and the authorizer.
 *
 * A connect token is an HS512 JWT of one of two forms (docs/protocol.md#tokens):
 * - the seed's `{user_id, room_id, token, exp}`: one room; its auth row's key is the room id;
 * - `{user_id, rooms, token, exp}`: grants (exact rooms, `prefix*`); its auth row's key is
 *   grantsAuthKey(grants) (core/rooms.ts), a hash of the normalized grant set.
 * The `token` claim is a secret derived from an issuer-only passcode: HMAC(passcode, user,
 * auth key, generation). The auth table keeps only a bcrypt hash of that secret. So:
 * - tabs of one user with one room (or one grant set) share a generation, hence a secret,
 *   and are valid together;
 * - the grants are bound to the secret through the auth key: re-signing a token with wider
 *   `rooms` points it at another row (none, or one whose hash its secret does not match);
 * - revocation deletes the row; the next issue starts a new random generation, so every
 *   token issued before the revocation carries a secret that no longer matches;
 * - the JWT signing key alone cannot mint a token: the secret needs the passcode.
 */
import * as crypto from "crypto";
import * as bcrypt from "bcryptjs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import * as jwt from "jsonwebtoken";
import type { APIGatewayAuthorizerResult } from "aws-lambda";
import type { HubAuthorizerContext } from "./events";
import { byteLength, fail, normalizeId, normalizeRecipient, type Parsed } from "./messages";
import { grantsAuthKey, normalizeGrants, normalizeRoomId } from "./rooms";
import { createAuthRow, extendAuthRow, getAuthRow } from "./tables";

export const JWT_ALGORITHM = "HS512" as const;
/**
 * Longest token we look at (a 100-grant token of long ids is about this long); anything
 * longer is garbage or an attack on the parser, and the issuer refuses to make one. The
 * authorizer result's own limit (below) is checked apart: a token under this length can still
 * make a result over it.
 */
export const MAX_TOKEN_LENGTH = 8192;

/**
 * API Gateway's quota on a WebSocket Lambda authorizer's result, 8 KB (not adjustable), read as
 * 8,192 bytes as the hub reads its 128 KB and 32 KB quotas. API Gateway measures the result
 * as the Lambda returned it: the UTF-8 JSON of the policy, principalId and context. The context
 * carries the grants as JSON inside a JSON string, so a `"` or `\` in a grant costs 4 bytes
 * there (2 in the token). The issuer refuses a token whose result could pass it
 * (`authorizerResultBytes` with WORST_CASE_METHOD_ARN); the local emulator refuses such a
 * result as API Gateway does.
 */
export const MAX_AUTHORIZER_RESULT_BYTES = 8 * 1024;

/**
 * The longest `methodArn` a deployed `$connect` can have, which the Allow policy repeats: the
 * longest partition and region names, a 12-digit account, a 10-character API id, a stage name
 * of 128 characters (API Gateway's most). The issuer measures with it, since it knows none of these.
 */
export const WORST_CASE_METHOD_ARN = `arn:aws-iso-b:execute-api:${"x".repeat(20)}:000000000000:${"a".repeat(10)}/${"s".repeat(128)}/$connect`;

/** What the authorizer returns; `context` only on Allow. */
export type AuthorizerResult = APIGatewayAuthorizerResult & { context?: HubAuthorizerContext };

/** The authorizer's answer for a handshake: Deny (403) or Allow with the connection's context. */
export function authorizerResult(effect: "Allow" | "Deny", principalId: string, methodArn: string, context?: HubAuthorizerContext): AuthorizerResult {
  return {
    principalId,
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{ Action: "execute-api:Invoke", Effect: effect, Resource: methodArn }],
    },
    ...(context ? { context } : {}),
  };
}

/** The context of an allowed connection: who, what the token grants, and the auth row it was checked against. */
export function authorizerContext(claims: Pick<ConnectClaims, "userId" | "roomId" | "grants" | "authKey">, generation: string): HubAuthorizerContext {
  return { user_id: claims.userId, room_id: claims.roomId ?? "", grants: JSON.stringify(claims.grants), auth_key: claims.authKey, generation };
}

/** The size API Gateway holds against MAX_AUTHORIZER_RESULT_BYTES: UTF-8 bytes of the result's JSON. */
export function authorizerResultBytes(result: unknown): number {
  return byteLength(JSON.stringify(result) ?? "");
}
export const DEFAULT_TOKEN_TTL_SECONDS = 60 * 60;
export const MAX_TOKEN_TTL_SECONDS = 7 * 24 * 60 * 60;
/** bcryptjs cost; 10 is ~70 ms in plain JS, paid once per (warm authorizer, token secret). */
export const BCRYPT_COST = 10;

export interface ConnectClaims {
  userId: string;
  /** The seed form's room; absent for a token with `rooms`. */
  roomId?: string;
  /** The rooms the token grants: `[roomId]` for the seed form, else its normalized `rooms`. */
  grants: string[];
  /** The auth row's sort key: roomId for the seed form, else grantsAuthKey(grants). */
  authKey: string;
  secret: string;
  exp: number;
}

export type TokenCheck = { ok: true; claims: ConnectClaims } | { ok: false; reason: string };

/** The per-(user, auth key, generation) secret whose bcrypt hash the auth table stores. */
export function deriveTokenSecret(passcode: string, userId: string, authKey: string, generation: string): string {
  return crypto.createHmac("sha256", passcode).update(`${userId}\n${authKey}\n${generation}`).digest("hex");
}

/** What a token is for: the seed's one room, or a grant set. */
export type TokenScope = { roomId: string; grants: string[]; authKey: string } | { roomId?: undefined; grants: string[]; authKey: string };

/** The scope of the seed form (`room_id`). */
function roomScope(roomId: string): TokenScope {
  return { roomId, grants: [roomId], authKey: roomId };
}

/** The scope of the rooms form: grants already normalized (normalizeGrants). */
function grantsScope(grants: string[]): TokenScope {
  return { grants, authKey: grantsAuthKey(grants) };
}

/**
 * Reads `roomId` or `rooms` (exactly one; the messages name the keys as the caller spelled
 * them): the seed room may not be a user channel, grants go through normalizeGrants.
 */
export function tokenScope(roomId: unknown, rooms: unknown, names: { roomId: string; rooms: string } = { roomId: "roomId", rooms: "rooms" }): Parsed<TokenScope> {
  if ((roomId === undefined) === (rooms === undefined)) {
    return fail("invalid_scope", `pass exactly one of ${names.roomId} (one room) or ${names.rooms} (room ids and prefixes ending in "*")`);
  }
  if (rooms !== undefined) {
    const grants = normalizeGrants(rooms, names.rooms);
    return grants.ok ? { ok: true, value: grantsScope(grants.value) } : grants;
  }
  const room = normalizeRoomId(roomId, names.roomId);
  return room.ok ? { ok: true, value: roomScope(room.value) } : room;
}

export function newGeneration(): string {
  return crypto.randomBytes(16).toString("hex");
}

/**
 * The passcode used when the issuer gives none: derived from the signing secret, so then the
 * signing key alone can mint tokens (the SDK's docs say to set a passcode in production).
 */
export function defaultPasscode(jwtSecret: string): string {
  return crypto.createHmac("sha256", jwtSecret).update("notification-hub/passcode").digest("hex");
}

/** A token's expiry (seconds since the epoch) for a lifetime; the lifetime is checked against the allowed range. */
export function tokenExpiry(ttlSeconds: number | undefined, nowSeconds: number): number {
  const ttl = ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TOKEN_TTL_SECONDS) {
    throw new RangeError(`issueToken: ttlSeconds must be a whole number from 1 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  return nowSeconds + ttl;
}

export interface IssueConnectTokenInput {
  /** An already normalized id (normalizeId). */
  userId: string;
  /** The seed form: one room (not a user channel). Exactly one of roomId and rooms. */
  roomId?: unknown;
  /** The rooms form: exact room ids and prefixes ending in `*` (normalizeGrants). */
  rooms?: unknown;
  /** Default DEFAULT_TOKEN_TTL_SECONDS, at most MAX_TOKEN_TTL_SECONDS. */
  ttlSeconds?: number;
  jwtSecret: string;
  /** Default: defaultPasscode(jwtSecret). */
  passcode?: string;
  /** Default BCRYPT_COST. */
  bcryptCost?: number;
}

/** Length of every derived secret (hex SHA-256), so a token's length is known before its row is written. */
const SECRET_LENGTH = 64;

/**
 * Issues a connect token. A live auth row means other tabs hold tokens of its generation:
 * share it and extend the row. No row (never issued, revoked, or expired) starts a new
 * generation that older tokens cannot match. A concurrent issuer that creates the row first
 * wins and we share its generation; three lost races in a row give up.
 */
export async function issueConnectToken(db: DynamoDBClient, authTableName: string, input: IssueConnectTokenInput): Promise<string> {
  const { userId, jwtSecret } = input;
  const scope = tokenScope(input.roomId, input.rooms);
  if (!scope.ok) throw new TypeError(`issueToken: ${scope.reason}`);
  // Every connection is in its user channel "user:{id}", which must be a valid room id too.
  const user = normalizeRecipient(userId, "userId");
  if (!user.ok) throw new TypeError(`issueToken: ${user.reason}`);
  const { authKey } = scope.value;
  const passcode = input.passcode ?? defaultPasscode(jwtSecret);
  const now = Math.floor(Date.now() / 1000);
  const exp = tokenExpiry(input.ttlSeconds, now);
  // Refuse before writing a row: the authorizer would refuse a token this long anyway.
  const length = signConnectToken({ userId, ...scope.value, secret: "0".repeat(SECRET_LENGTH), exp }, jwtSecret).length;
  if (length > MAX_TOKEN_LENGTH) {
    throw new RangeError(
      `issueToken: the token would be ${length} characters, more than the ${MAX_TOKEN_LENGTH} a connect accepts; grant rooms by prefix (rooms: ["acme/*"]) instead of one by one`,
    );
  }
  // And the Allow its connect gets must fit API Gateway's quota, or the handshake fails on AWS.
  const resultBytes = authorizerResultBytes(authorizerResult("Allow", userId, WORST_CASE_METHOD_ARN, authorizerContext({ userId, ...scope.value }, newGeneration())));
  if (resultBytes > MAX_AUTHORIZER_RESULT_BYTES) {
    throw new RangeError(
      `issueToken: a connect with this token would make an authorizer result of ${resultBytes} bytes, more than the ${MAX_AUTHORIZER_RESULT_BYTES} API Gateway takes (8 KB; each " or \\ in an id counts 4 bytes); grant rooms by prefix (rooms: ["acme/*"]) or use shorter ids`,
    );
  }
  const sign = (generation: string) => signConnectToken({ userId, ...scope.value, secret: deriveTokenSecret(passcode, userId, authKey, generation), exp }, jwtSecret);
  for (let attempt = 0; attempt < 3; attempt++) {
    const row = await getAuthRow(db, authTableName, userId, authKey);
    if (row && row.generation && row.expiresAt > now) {
      await extendAuthRow(db, authTableName, row, exp);
      return sign(row.generation);
    }
    const generation = newGeneration();
    const tokenHash = await bcrypt.hash(deriveTokenSecret(passcode, userId, authKey, generation), input.bcryptCost ?? BCRYPT_COST);
    if (await createAuthRow(db, authTableName, { userId, authKey, tokenHash, generation, expiresAt: exp })) return sign(generation);
  }
  throw new Error("issueToken: the token row kept changing under concurrent issue/revoke; try again");
}

/** The JWT of either form: `room_id` for the seed's, `rooms` for grants; never both. */
export function signConnectToken(claims: Omit<ConnectClaims, "authKey">, jwtSecret: string): string {
  const scope = claims.roomId !== undefined ? { room_id: claims.roomId } : { rooms: claims.grants };
  return jwt.sign({ user_id: claims.userId, ...scope, token: claims.secret, exp: claims.exp }, jwtSecret, {
    algorithm: JWT_ALGORITHM,
    noTimestamp: false,
  });
}

/**
 * The signing secret as a KeyObject. Given a string, jsonwebtoken first tries to parse it as
 * a public key and catches the failure, which costs more than the HMAC itself on every
 * connect; the authorizer converts once per secret.
 */
export function signingKey(jwtSecret: string): crypto.KeyObject {
  return crypto.createSecretKey(Buffer.from(jwtSecret, "utf8"));
}

/**
 * Verifies signature (HS512 only), expiry and claim types. Returns a reason instead of
 * throwing, and never echoes the token into the reason.
 */
export function verifyConnectToken(token: unknown, jwtSecret: string | crypto.KeyObject, nowSeconds = Math.floor(Date.now() / 1000)): TokenCheck {
  if (typeof token !== "string" || token.length === 0) return { ok: false, reason: "missing_token" };
  if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: "token_too_long" };
  let payload: string | jwt.JwtPayload;
  try {
    payload = jwt.verify(token, jwtSecret, { algorithms: [JWT_ALGORITHM], clockTimestamp: nowSeconds });
  } catch (err) {
    const name = err instanceof Error ? err.name : "Error";
    if (name === "TokenExpiredError") return { ok: false, reason: "token_expired" };
    if (name === "NotBeforeError") return { ok: false, reason: "token_not_yet_valid" };
    return { ok: false, reason: "token_invalid" };
  }
  if (typeof payload !== "object" || payload === null) return { ok: false, reason: "token_invalid" };
  // jsonwebtoken accepts tokens without exp; ours must expire.
  if (typeof payload.exp !== "number" || !Number.isFinite(payload.exp)) return { ok: false, reason: "token_without_exp" };
  const user = normalizeId(payload.user_id, "user_id");
  // Exactly one of room_id and rooms, read by the issuer's rules (a room_id of "user:..." names no room).
  const scope = tokenScope(payload.room_id, payload.rooms, { roomId: "room_id", rooms: "rooms" });
  if (!user.ok || !scope.ok) return { ok: false, reason: "token_claims_invalid" };
  if (typeof payload.token !== "string" || payload.token.length === 0 || payload.token.length > 512) {
    return { ok: false, reason: "token_claims_invalid" };
  }
  return { ok: true, claims: { userId: user.value, ...scope.value, secret: payload.token, exp: payload.exp } };
}

/**
 * Remembers which (stored hash, presented secret) pairs bcrypt already accepted, so a warm
 * authorizer pays bcrypt once per token secret. The stored hash is still read on every
 * connect, so a revoked or re-issued row is seen at once: a new row has a new hash.
 */
export function createVerifiedSecretCache(maxEntries = 10_000) {
  const verified = new Map<string, true>();
  const key = (hash: string, secret: string) => crypto.createHash("sha256").update(hash).update("\0").update(secret).digest("base64");
  return {
    has(hash: string, secret: string): boolean {
      return verified.has(key(hash, secret));
    },
    add(hash: string, secret: string): void {
      if (verified.size >= maxEntries) {
        const oldest = verified.keys().next().value;
        if (oldest !== undefined) verified.delete(oldest);
      }
      verified.set(key(hash, secret), true);
    },
    clear(): void {
      verified.clear();
    },
  };
}
export type VerifiedSecretCache = ReturnType<typeof createVerifiedSecretCache>;
