/**
 * `$connect` REQUEST authorizer. Allows a connection only for a valid HS512 token whose
 * secret matches the bcrypt hash stored for its (user, auth key): the room of a seed token,
 * grantsAuthKey(grants) of a token with `rooms` (core/tokens.ts). Every refusal is a Deny policy
 * (403); it never throws for a bad token, so a Lambda error (and the errors alarm) means a
 * real fault. The token comes in `Sec-WebSocket-Protocol` (beside `notification-hub`) or as
 * `?token=` (core/rooms.ts tokenFromRequest).
 * The token itself is never logged.
 */
import type { APIGatewayRequestAuthorizerEvent } from "aws-lambda";
import * as bcrypt from "bcryptjs";
import type { KeyObject } from "crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { errorSummary, observerOf, type ErrorSummary, type HubObserver, type TokenHolder } from "../core/hubEvents";
import type { Logger } from "../core/log";
import { tokenFromRequest } from "../core/rooms";
import { getAuthRow } from "../core/tables";
import { authorizerContext, authorizerResult, createVerifiedSecretCache, signingKey, verifyConnectToken, type AuthorizerResult, type VerifiedSecretCache } from "../core/tokens";
import { dynamoFrom, jwtSecretFrom, lambdaSource, observerFrom, requireVar, type HandlerSource } from "./dependencies";

export interface AuthorizerDeps {
  db: DynamoDBClient;
  authTable: string;
  jwtSecret: () => Promise<string>;
  log: Logger;
  /** Told each handshake's outcome (`connect.allowed`, `connect.denied`); default: a log line each. */
  observe?: HubObserver;
  cache?: VerifiedSecretCache;
  now?: () => number;
}

export type { AuthorizerResult } from "../core/tokens";
export type AuthorizerHandler = (event: APIGatewayRequestAuthorizerEvent) => Promise<AuthorizerResult>;

/**
 * API Gateway maps a thrown error with exactly this message to 401. The authorizer no longer
 * throws it (each throw is a Lambda error); the local emulator still understands it.
 */
export const UNAUTHORIZED = "Unauthorized";

export function createAuthorizerHandler(deps: AuthorizerDeps): AuthorizerHandler {
  const cache = deps.cache ?? createVerifiedSecretCache();
  const now = deps.now ?? Date.now;
  const observe = observerOf(deps);
  let key: { secret: string; key: KeyObject } | undefined;
  return async (event) => {
    const requestId = event.requestContext?.requestId;
    const methodArn = event.methodArn ?? "";
    const deny = (reason: string, holder: Partial<TokenHolder> = {}, error?: ErrorSummary): AuthorizerResult => {
      observe({ type: "connect.denied", requestId, reason, ...holder, ...(error ? { error } : {}) });
      return authorizerResult("Deny", "anonymous", methodArn);
    };

    // A Sec-WebSocket-Protocol that is not a valid list is refused, even beside a good
    // ?token=: `ws` (and so the local emulator) answers such a handshake 400 before any
    // authorizer, and whether API Gateway refuses it first is not documented. Reading a token
    // out of it by looser rules would let through what the emulator never shows us; the
    // reason is logged, never the header (it holds the token).
    // Both refusals below need no I/O: with no identity source every handshake reaches this
    // function, and a tokenless one should not cost a cold container its secret read.
    const request = tokenFromRequest(event);
    if (!request.ok) return deny(request.code);
    if (request.value.token === undefined || request.value.token === "") return deny("missing_token");

    let secret: string;
    try {
      secret = await deps.jwtSecret();
    } catch (err) {
      return deny("secret_unavailable", {}, errorSummary(err));
    }
    if (key?.secret !== secret) key = { secret, key: signingKey(secret) };
    const check = verifyConnectToken(request.value.token, key.key, Math.floor(now() / 1000));
    if (!check.ok) return deny(check.reason);
    const { userId, roomId, grants, authKey } = check.claims;
    // The grant list may be long: events carry the room of a seed token, else how many grants.
    const who: TokenHolder = roomId !== undefined ? { userId, roomId } : { userId, grantCount: grants.length };

    let generation: string;
    try {
      const row = await getAuthRow(deps.db, deps.authTable, userId, authKey);
      if (!row) return deny("no_token_row", who);
      if (row.expiresAt <= Math.floor(now() / 1000)) return deny("token_row_expired", who);
      if (row.userId !== userId || row.authKey !== authKey) return deny("token_row_mismatch", who);
      if (!cache.has(row.tokenHash, check.claims.secret)) {
        if (!(await bcrypt.compare(check.claims.secret, row.tokenHash))) return deny("token_secret_mismatch", who);
        cache.add(row.tokenHash, check.claims.secret);
      }
      generation = row.generation;
    } catch (err) {
      return deny("auth_table_error", who, errorSummary(err));
    }
    observe({ type: "connect.allowed", requestId, ...who });
    return authorizerResult("Allow", userId, methodArn, authorizerContext(check.claims, generation));
  };
}

/** Lambda entry (and the local hub's, with its source): clients and secret getter built once per cold start. */
export function authorizerFromEnvironment(source: HandlerSource = lambdaSource("authorizer")): AuthorizerHandler {
  return createAuthorizerHandler({
    db: dynamoFrom(source),
    authTable: requireVar(source, "authTable"),
    jwtSecret: jwtSecretFrom(source),
    log: source.log,
    observe: observerFrom(source),
  });
}
