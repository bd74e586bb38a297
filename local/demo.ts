/**
 * The local hub's demo page (local/pages/demo.html and demo.js) and the small endpoints it
 * needs, playing the app backend: issue a token (one room, or several with `rooms`), publish a
 * notification through the queue (to a room, or to a user's channel), and say whether a token
 * the page holds still passes (so after a disconnect the page tells a revoked token from a
 * dropped socket, instead of quietly asking for a new token). With presence on, the page shows
 * who is in each of its rooms (the client's onMember). Local development only.
 */
import type * as http from "http";
import * as bcrypt from "bcryptjs";
import { dynamoClient } from "../core/aws";
import { describeError, type Logger } from "../core/log";
import { getAuthRow } from "../core/tables";
import { verifyConnectToken } from "../core/tokens";
import type { Notifier } from "../server";
import { splitTarget } from "./apiGateway";
import { readJson, sameOriginRefusal, sendJson, sendPackageFile, statusOfError } from "./http";
import type { LocalHubInfo } from "./index";

interface DemoContext {
  info: LocalHubInfo;
  notifier: Notifier;
  log: Logger;
  /** The hub's presence.eventMembersLimit; undefined: presence is off. */
  eventMembersLimit?: number;
}

/** Why a token no longer passes, in words the page shows (the authorizer's checks, same order). */
export type TokenStatus = { valid: true } | { valid: false; reason: "revoked" | "expired" | "replaced" | "invalid"; words: string };

const clients = new WeakMap<LocalHubInfo, ReturnType<typeof dynamoClient>>();

/** Runs the authorizer's checks on a token (signature and expiry, its row, its secret), never logging it. */
export async function tokenStatus(info: LocalHubInfo, token: unknown): Promise<TokenStatus> {
  const check = verifyConnectToken(token, info.jwtSecret);
  if (!check.ok) {
    return check.reason === "token_expired"
      ? { valid: false, reason: "expired", words: "the token expired" }
      : { valid: false, reason: "invalid", words: `the hub no longer accepts this token (${check.reason}; a hub restarted without --data-dir has new secrets)` };
  }
  const db = clients.get(info) ?? dynamoClient({ endpoint: info.dynamodbEndpoint, region: info.region, credentials: info.credentials });
  clients.set(info, db);
  const { userId, authKey, secret } = check.claims;
  const row = await getAuthRow(db, info.authTableName, userId, authKey);
  if (!row) return { valid: false, reason: "revoked", words: `${userId}'s token was revoked (revokeToken: the console's Revoke token, the CLI's revoke, or the app)` };
  if (row.expiresAt <= Math.floor(Date.now() / 1000)) return { valid: false, reason: "expired", words: "the token expired" };
  if (!(await bcrypt.compare(secret, row.tokenHash))) return { valid: false, reason: "replaced", words: `${userId}'s token was revoked, and a newer one issued since` };
  return { valid: true };
}

export function handleDemoRequest(request: http.IncomingMessage, response: http.ServerResponse, context: DemoContext): void {
  const json = (status: number, body: unknown) => sendJson(response, status, body);
  const target = splitTarget(request.url);
  if (!target) return json(400, { message: "Bad Request" });
  const refusal = sameOriginRefusal(request, context.info);
  if (refusal) {
    context.log.warn("demo request refused", { reason: refusal, method: request.method });
    return json(403, { message: `Forbidden: ${refusal}` });
  }
  const route = `${request.method} ${target.path}`;
  switch (route) {
    case "GET /demo":
      // "/" is the developer console (local/console.ts); the demo is one of its tabs.
      return sendPackageFile(response, "local/pages/demo.html");
    case "GET /demo/demo.js":
      return sendPackageFile(response, "local/pages/demo.js");
    case "GET /health":
      return json(200, { ok: true });
    case "GET /demo/info":
      // No secrets: what the page connects to and shows, read again so an open tab follows a restart.
      // `presence`: the hub's eventMembersLimit (the client's option of that name), or null with presence off.
      return json(200, { websocketUrl: context.info.websocketUrl, queueUrl: context.info.queueUrl, presence: context.eventMembersLimit === undefined ? null : { eventMembersLimit: context.eventMembersLimit } });
    case "POST /demo/token-status":
      readJson(request)
        .then(async (body) => json(200, await tokenStatus(context.info, body.token)))
        .catch((err: unknown) => {
          const status = statusOfError(err);
          if (status === 500) context.log.error("demo request failed", { route, ...describeError(err) });
          json(status, { error: (err as Error).message });
        });
      return;
    case "POST /demo/token":
    case "POST /demo/publish":
      readJson(request)
        .then(async (body) => {
          if (route === "POST /demo/token") {
            const userId = body.userId as string;
            const token = await context.notifier.issueToken(Array.isArray(body.rooms) ? { userId, rooms: body.rooms as string[] } : { userId, roomId: body.roomId as string });
            return json(200, { token });
          }
          // To one user's channel with toUserId, else to a room; userId is the sender either way.
          const sender = (body.userId as string) ?? null;
          const { messageId } =
            body.toUserId !== undefined
              ? await context.notifier.publish({ toUserId: body.toUserId as string, userId: sender, data: body.data })
              : await context.notifier.publish({ roomId: body.roomId as string, userId: sender, data: body.data });
          return json(200, { messageId });
        })
        .catch((err: unknown) => {
          const status = statusOfError(err);
          if (status === 500) context.log.error("demo request failed", { route, ...describeError(err) });
          json(status, { error: (err as Error).message });
        });
      return;
    default:
      return json(404, { message: "Not Found" });
  }
}
