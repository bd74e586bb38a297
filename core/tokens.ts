/**
 * Token rules, shared by the issuer (app-backend SDK) and the authorizer.
 *
 * A connect token is an HS512 JWT whose `token` claim is a secret derived from an
 * issuer-only passcode: HMAC(passcode, user, room, generation). The auth table keeps only a
 * bcrypt hash of that secret. So:
 * - tabs of one user in one room share a generation, hence a secret, and are valid together;
 * - revocation deletes the row; the next issue starts a new random generation, so every
 *   token issued before the revocation carries a secret that no longer matches;
 * - the JWT signing key alone cannot mint a token: the secret needs the passcode.
 */
import * as crypto from "crypto";
import * as bcrypt from "bcryptjs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import * as jwt from "jsonwebtoken";
import { normalizeId } from "./messages";
import { createAuthRow, extendAuthRow, getAuthRow } from "./tables";

export const JWT_ALGORITHM = "HS512" as const;
/** Longest token we look at; anything longer is garbage or an attack on the parser. */
export const MAX_TOKEN_LENGTH = 4096;
export const DEFAULT_TOKEN_TTL_SECONDS = 60 * 60;
export const MAX_TOKEN_TTL_SECONDS = 7 * 24 * 60 * 60;
/** bcryptjs cost; 10 is ~70 ms in plain JS, paid once per (warm authorizer, token secret). */
export const BCRYPT_COST = 10;

export interface ConnectClaims {
  userId: string;
  roomId: string;
  secret: string;
  exp: number;
}

export type TokenCheck = { ok: true; claims: ConnectClaims } | { ok: false; reason: string };

/** The per-(user, room, generation) secret whose bcrypt hash the auth table stores. */
export function deriveTokenSecret(passcode: string, userId: string, roomId: string, generation: string): string {
  return crypto.createHmac("sha256", passcode).update(`${userId}\n${roomId}\n${generation}`).digest("hex");
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
  /** Already normalized ids (normalizeId). */
  userId: string;
  roomId: string;
  /** Default DEFAULT_TOKEN_TTL_SECONDS, at most MAX_TOKEN_TTL_SECONDS. */
  ttlSeconds?: number;
  jwtSecret: string;
  /** Default: defaultPasscode(jwtSecret). */
  passcode?: string;
  /** Default BCRYPT_COST. */
  bcryptCost?: number;
}

/**
 * Issues a connect token. A live auth row means other tabs hold tokens of its generation:
 * share it and extend the row. No row (never issued, revoked, or expired) starts a new
 * generation that older tokens cannot match. A concurrent issuer that creates the row first
 * wins and we share its generation; three lost races in a row give up.
 */
export async function issueConnectToken(db: DynamoDBClient, authTableName: string, input: IssueConnectTokenInput): Promise<string> {
  const { userId, roomId, jwtSecret } = input;
  const passcode = input.passcode ?? defaultPasscode(jwtSecret);
  const now = Math.floor(Date.now() / 1000);
  const exp = tokenExpiry(input.ttlSeconds, now);
  for (let attempt = 0; attempt < 3; attempt++) {
    const row = await getAuthRow(db, authTableName, userId, roomId);
    if (row && row.generation && row.expiresAt > now) {
      await extendAuthRow(db, authTableName, row, exp);
      const secret = deriveTokenSecret(passcode, userId, roomId, row.generation);
      return signConnectToken({ userId, roomId, secret, exp }, jwtSecret);
    }
    const generation = newGeneration();
    const secret = deriveTokenSecret(passcode, userId, roomId, generation);
    const tokenHash = await bcrypt.hash(secret, input.bcryptCost ?? BCRYPT_COST);
    if (await createAuthRow(db, authTableName, { userId, roomId, tokenHash, generation, expiresAt: exp })) {
      return signConnectToken({ userId, roomId, secret, exp }, jwtSecret);
    }
  }
  throw new Error("issueToken: the token row kept changing under concurrent issue/revoke; try again");
}

export function signConnectToken(claims: ConnectClaims, jwtSecret: string): string {
  return jwt.sign({ user_id: claims.userId, room_id: claims.roomId, token: claims.secret, exp: claims.exp }, jwtSecret, {
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
  const room = normalizeId(payload.room_id, "room_id");
  if (!user.ok || !room.ok) return { ok: false, reason: "token_claims_invalid" };
  if (typeof payload.token !== "string" || payload.token.length === 0 || payload.token.length > 512) {
    return { ok: false, reason: "token_claims_invalid" };
  }
  return { ok: true, claims: { userId: user.value, roomId: room.value, secret: payload.token, exp: payload.exp } };
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
