/**
 * App-backend SDK: issue and revoke connect tokens, publish notifications.
 *
 * ```ts
 * import { createNotifier } from "notification-hub/server";
 * const hub = createNotifier({ queueUrl, authTableName, connectionsTableName, managementEndpoint, jwtSecret, passcode });
 * const token = await hub.issueToken({ userId: "u1", roomId: "acme" });
 * await hub.publish({ roomId: "acme", data: { type: "backup.done", data: { job: 42 } } });
 * await hub.publishToUser({ userId: "u1", data: { type: "export.ready", data: { url } } });
 * await hub.publish({ roomIds: ["acme", "acme/ops"], data: { type: "deploy.done" }, idempotencyKey: "deploy-981" });
 * // With presence on (and presenceTableName):
 * const { members, count, next } = await hub.presence({ roomId: "acme" });
 * const { connections, users } = await hub.occupancy({ roomId: "acme" });
 * ```
 */
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { dynamoClient, sqsClient, type ClientOptions } from "../core/aws";
import { createConnectionsApi, requestWithRetries, type PostResponse, type RetryPolicy } from "../core/connections";
import { errorSummary } from "../core/hubEvents";
import { buildMultiRoomBodies, buildPublish, normalizeId, normalizeRecipient, type HubFrame } from "../core/messages";
import { sendBatches } from "../core/queue";
import { MAX_FRAMES_PER_READ, readStream } from "../core/streams";
import { isGrantsAuthKey, isUserChannel, membershipKey, userChannel } from "../core/rooms";
import { MAX_PRESENCE_PAGE, readOccupancy, readPresence, type Member } from "../core/presence";
import { deleteAuthRow, getAuthRow, deleteConnection, getConnection, markRevoked, removeConnectionItems, removeMemberships, roomPages, userAuthRows, type AuthRow, type ConnectionRow } from "../core/tables";
import { BCRYPT_COST, issueConnectToken } from "../core/tokens";

/** Each method needs only its own options: publish needs queueUrl; issueToken authTableName and jwtSecret; revokeToken the tables and managementEndpoint. */
export interface NotifierOptions {
  queueUrl?: string;
  authTableName?: string;
  connectionsTableName?: string;
  /** The room streams' table (component output `streamsTableName`): used by history. */
  streamsTableName?: string;
  /** `https://host/{stage}`: used by revokeToken to close live connections. */
  managementEndpoint?: string;
  /** The HS512 signing secret the authorizer verifies with. */
  jwtSecret?: string;
  /**
   * Issuer-only passcode the token secret is derived from; never given to the hub. Without
   * it the secret is derived from `jwtSecret`, and then the signing key alone can mint
   * tokens: set one in production.
   */
  passcode?: string;
  region?: string;
  endpoints?: { sqs?: string; dynamodb?: string; management?: string };
  /** bcrypt cost for new token rows. Default 10. */
  bcryptCost?: number;
  /**
   * revokeToken looks for the user's connections twice: at once, and again after this long,
   * for a connection whose `$connect` wrote its row just before the revocation but which the
   * room index (eventually consistent) did not show yet. Default 1000 ms.
   */
  revokeRecheckMs?: number;
  /**
   * How revokeToken retries a `@connections` DELETE that API Gateway throttled (429
   * `LimitExceededException`), failed (5xx) or did not answer: full-jitter backoff (a random
   * wait up to `baseDelayMs × 2^n`, at most `maxDelayMs`), `attempts` in all per connection.
   * Default REVOKE_RETRY (8 attempts, 100 ms, 2 s: about 3.5 s of throttling survived per
   * connection on average). What still fails is reported by RevocationIncompleteError.
   */
  revokeRetry?: Partial<RetryPolicy>;
  /**
   * Presence's table (component output `presenceTableName`), when the hub has presence on: read
   * by presence and occupancy. With it, revokeToken marks each connection it closes as revoked and leaves its row to the hub (its
   * `$disconnect`, or the sweep if none comes), which leaves the connection's rooms with reason
   * `revoked` at once; its memberships still go at once, so nothing more is delivered to it.
   * Without it on a hub with presence, the revoked user stays a member (a ghost).
   */
  presenceTableName?: string;
  /** Explicit credentials for the AWS clients (the local hub's dev credentials). Default: the SDK's chain. */
  credentials?: ClientOptions["credentials"];
}

/**
 * A connect token for one room (the seed's form, claim `room_id`) or for several rooms
 * (claim `rooms`: exact room ids and prefixes ending in `*`, 1 to 100 entries): exactly one.
 */
export type IssueTokenInput = {
  userId: string | number;
  /** Token lifetime. Default 3600 s, at most 7 days. */
  ttlSeconds?: number;
} & ({ roomId: string | number; rooms?: undefined } | { rooms: readonly string[]; roomId?: undefined });

/**
 * revokeToken's retries of a DELETE (NotifierOptions `revokeRetry`): more and longer than a
 * delivery post's (core/connections.ts DEFAULT_RETRY: 4, 50 ms, 1 s), because a revocation is
 * rare and a connection left open is a revoked user still being served, while a post that
 * gives up is requeued by its caller. Revocation is not held to `delivery.postsPerSecond`
 * (ARCHITECTURE.md, The @connections budget), so it must bear the account's 429s itself.
 */
export const REVOKE_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 100, maxDelayMs: 2_000 };

/** A connection revokeToken could not close: API Gateway's last answer (`status` 0: none) and its error type. */
export interface UnclosedConnection {
  connectionId: string;
  status: number;
  error?: string;
}

/**
 * revokeToken revoked the tokens (no reconnect with them passes the authorizer) and closed
 * every connection it could, but API Gateway kept refusing (429, 5xx, no answer, after
 * REVOKE_RETRY's attempts) or forbade (403) the DELETE of these: they are still open and
 * their memberships kept, so calling revokeToken again with the same input finds and closes
 * them. Thrown, not returned as a field, so a revocation is never silently partial: an
 * `await revokeToken(...)` that does not look at its result still fails. With presence on,
 * each is marked revoked already: the hub's sweep removes its row and memberships (nothing
 * more is delivered to it) if no retry closes it first.
 */
export class RevocationIncompleteError extends Error {
  override readonly name = "RevocationIncompleteError";
  constructor(
    /** The connections still open, each with API Gateway's last answer. */
    readonly notClosed: readonly UnclosedConnection[],
    /** The connections this call did close (revokeToken's `closedConnections`). */
    readonly closedConnections: number,
  ) {
    const listed = notClosed.slice(0, 5).map((c) => `${c.connectionId}: ${c.status || "no answer"}${c.error ? ` ${c.error}` : ""}`);
    const more = notClosed.length > listed.length ? `, and ${notClosed.length - listed.length} more` : "";
    super(
      `revokeToken: ${notClosed.length} connection(s) not closed (${listed.join("; ")}${more}); the tokens are revoked and ${closedConnections} other connection(s) closed; call revokeToken again to close the rest`,
    );
  }
}

/** `{ userId }` revokes every token of the user; `{ userId, roomId }` the user's seed-form token for that room. */
export interface RevokeTokenInput {
  userId: string | number;
  roomId?: string | number;
}

export interface PublishInput {
  roomId: string | number;
  /** The sender, shown to clients as `user_id`; not a filter. */
  userId?: string | number | null;
  data: unknown;
  /**
   * 1 to 128 visible ASCII characters (0x21–0x7E). Publishes to the same room (or user) with
   * the same key within 24 hours (or the streams' retention, if longer) are one notification:
   * same id (derived from the key and returned as `messageId`), same seq, stored and seen once.
   */
  idempotencyKey?: string;
}

/**
 * One notification to each of up to 1,000 rooms: each room gets it once, with its own seq
 * and its own id (derived from the returned `messageId` and the room; with an idempotency
 * key, the id a publish to that room alone with that key gets). Sent in as few queue
 * messages as SQS's 256 KiB allows; a room's failure never affects another's.
 */
export interface MultiRoomPublishInput {
  roomIds: readonly (string | number)[];
  /** The sender, shown to clients as `user_id`; not a filter. */
  userId?: string | number | null;
  data: unknown;
  /** As PublishInput's, for each room: a retry delivers nothing twice to any room. */
  idempotencyKey?: string;
}

/**
 * A notification for one user's channel as publish and publishBatch take it: the queue body's
 * own shape (`to_user_id`, `user_id` = sender), so `userId` is the sender in every publish
 * input, as on the wire. publishToUser is the same with the recipient named `userId`.
 */
export interface UserPublishInput {
  /** The recipient: every connection of this user, in any room (channel `user:{id}`). */
  toUserId: string | number;
  /** The sender, shown to clients as `user_id`; not a filter. */
  userId?: string | number | null;
  data: unknown;
  /** As PublishInput's, for this user's channel. */
  idempotencyKey?: string;
}

export interface PublishToUserInput {
  /** The recipient: every connection of this user, in any room (channel `user:{id}`). */
  userId: string | number;
  /** The sender, shown to clients as `user_id` (publish's `userId`; here `userId` is the recipient). */
  senderId?: string | number | null;
  data: unknown;
  /** As PublishInput's, for this user's channel. */
  idempotencyKey?: string;
}

export interface HistoryInput {
  roomId: string | number;
  /** Frames with seq greater than this (default 0: from the oldest kept). */
  after?: number;
  /** Instead of `after`: the newest this many. */
  last?: number;
  /** At most this many frames (1 to 1,000; default 1,000). */
  limit?: number;
}

export interface PresenceInput {
  roomId: string | number;
  /** The previous page's `next`: the page after it. */
  after?: string;
  /** Members per page, 1 to 1,000 (default 1,000). */
  limit?: number;
}

/** One page of a room's members, by user id; `count` is the room's total, `next` the cursor of the next page or null. */
export interface PresencePage {
  members: Member[];
  count: number;
  next: string | null;
}

export interface Notifier {
  /** A room's stored frames in seq order, as clients got them (docs/protocol.md#room-streams); tombstones left out, so seqs may skip. */
  history(input: HistoryInput): Promise<HubFrame[]>;
  issueToken(input: IssueTokenInput): Promise<string>;
  /**
   * Deletes the token rows, then closes the user's connections made with them. Throws
   * RevocationIncompleteError, after trying every connection, if some stay open.
   */
  revokeToken(input: RevokeTokenInput): Promise<{ closedConnections: number }>;
  /** To a room (`roomId`), to several (`roomIds`, up to 1,000), or with `toUserId` to one user's channel. */
  publish(input: PublishInput | MultiRoomPublishInput | UserPublishInput): Promise<{ messageId: string }>;
  /** To every connection of `userId`, in any room; stored in the user's stream `user:{userId}`. */
  publishToUser(input: PublishToUserInput): Promise<{ messageId: string }>;
  /** Rooms and users mixed: `{ roomId, ... }` and `{ toUserId, ... }` items. */
  publishBatch(inputs: (PublishInput | UserPublishInput)[]): Promise<{ messageIds: string[] }>;
  /**
   * One page of a room's members (docs/protocol.md#presence), read from the presence table as
   * the hub's `presence` action reads it: per user (tabs and devices merge), by user id, at most
   * `limit`; pass `next` back as `after` for the next page. Needs `presenceTableName` (the hub
   * with `presence` on).
   *
   * ```ts
   * const members = [];
   * let after: string | undefined;
   * do {
   *   const page = await notifier.presence({ roomId: "acme", after });
   *   members.push(...page.members);
   *   after = page.next ?? undefined;
   * } while (after);
   * ```
   */
  presence(input: PresenceInput): Promise<PresencePage>;
  /** A room's connections and member users: one read of the room's counter, whatever its size. Needs `presenceTableName`. */
  occupancy(input: { roomId: string | number }): Promise<{ connections: number; users: number }>;
}

/** NotifierOptions `revokeRetry` over REVOKE_RETRY, each number checked. */
function revokeRetryFrom(given: Partial<RetryPolicy> | undefined): RetryPolicy {
  if (given === undefined) return REVOKE_RETRY;
  if (typeof given !== "object" || given === null) throw new TypeError("createNotifier: revokeRetry must be { attempts?, baseDelayMs?, maxDelayMs? }");
  const policy = { ...REVOKE_RETRY, ...given };
  if (!Number.isSafeInteger(policy.attempts) || policy.attempts < 1 || policy.attempts > 20) throw new RangeError("createNotifier: revokeRetry.attempts must be a whole number from 1 to 20");
  for (const key of ["baseDelayMs", "maxDelayMs"] as const) {
    if (!Number.isFinite(policy[key]) || policy[key] < 0 || policy[key] > 60_000) throw new RangeError(`createNotifier: revokeRetry.${key} must be a number of milliseconds from 0 to 60000`);
  }
  return policy;
}

type StringOption = "queueUrl" | "authTableName" | "connectionsTableName" | "streamsTableName" | "presenceTableName" | "managementEndpoint" | "jwtSecret";

/** Each method needs only some options (a publish-only backend needs just queueUrl); it says which is missing. */
function requireOption(options: NotifierOptions, key: StringOption, method: string): string {
  const value = options[key];
  if (typeof value !== "string" || value.length === 0) throw new TypeError(`${method}: ${key} is required (pass it to createNotifier)`);
  return value;
}

function idOrThrow(value: unknown, field: string): string {
  const id = normalizeId(value, field);
  if (!id.ok) throw new TypeError(id.reason);
  return id.value;
}

export function createNotifier(options: NotifierOptions): Notifier {
  if (typeof options !== "object" || options === null) throw new TypeError("createNotifier: options are required");
  for (const key of ["queueUrl", "authTableName", "connectionsTableName", "streamsTableName", "presenceTableName", "managementEndpoint", "jwtSecret", "passcode", "region"] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== "string" || value.length === 0)) throw new TypeError(`createNotifier: ${key} must be a non-empty string`);
  }
  const region = options.region;
  const credentials = options.credentials;
  const db = dynamoClient({ region, credentials, endpoint: options.endpoints?.dynamodb });
  const sqs = sqsClient({ region, credentials, endpoint: options.endpoints?.sqs });
  const managementEndpoint = options.endpoints?.management ?? options.managementEndpoint;
  const management = managementEndpoint ? createConnectionsApi(managementEndpoint, { region, credentials }) : undefined;
  const recheckMs = options.revokeRecheckMs ?? 1_000;
  if (!Number.isFinite(recheckMs) || recheckMs < 0) throw new TypeError("createNotifier: revokeRecheckMs must be a number of milliseconds ≥ 0");
  const revokeRetry = revokeRetryFrom(options.revokeRetry);
  const cost = options.bcryptCost ?? BCRYPT_COST;
  const presenceOn = options.presenceTableName !== undefined;

  async function issueToken(input: IssueTokenInput): Promise<string> {
    const authTableName = requireOption(options, "authTableName", "issueToken");
    const jwtSecret = requireOption(options, "jwtSecret", "issueToken");
    if (typeof input !== "object" || input === null) throw new TypeError("issueToken: expected { userId, roomId } or { userId, rooms }");
    const userId = idOrThrow(input.userId, "userId");
    return issueConnectToken(db, authTableName, { userId, roomId: input.roomId, rooms: input.rooms, ttlSeconds: input.ttlSeconds, jwtSecret, passcode: options.passcode, bcryptCost: cost });
  }

  async function revokeToken(input: RevokeTokenInput): Promise<{ closedConnections: number }> {
    const authTableName = requireOption(options, "authTableName", "revokeToken");
    const connectionsTableName = requireOption(options, "connectionsTableName", "revokeToken");
    requireOption(options, "managementEndpoint", "revokeToken");
    if (typeof input !== "object" || input === null) throw new TypeError("revokeToken: expected { userId } or { userId, roomId }");
    const userId = idOrThrow(input.userId, "userId");
    // A key given as undefined is most likely a missing value, not a wish to revoke everything.
    if ("roomId" in input && input.roomId === undefined) throw new TypeError("revokeToken: roomId is undefined; omit it to revoke every token of the user");
    const roomId = input.roomId === undefined ? undefined : idOrThrow(input.roomId, "roomId");

    // The rows being revoked, and their generations: the second look below must spare
    // connections made with a token issued after this revocation (a client reconnecting at
    // once with a fresh token).
    const revoked: AuthRow[] = [];
    if (roomId === undefined) {
      for await (const row of userAuthRows(db, authTableName, userId)) revoked.push(row);
    } else {
      const row = await getAuthRow(db, authTableName, userId, roomId);
      if (row) revoked.push(row);
    }
    const generations = new Set(revoked.map((row) => row.generation));
    // Rows first: from here on no revoked token passes the authorizer, and a $connect
    // already past the authorizer drops its own row when it re-reads its auth row.
    if (roomId === undefined) {
      for (const row of revoked) await deleteAuthRow(db, authTableName, userId, row.authKey);
    } else {
      await deleteAuthRow(db, authTableName, userId, roomId);
    }

    // Where the user's affected connections are listed. By user: the user channel, which every
    // connection is in, plus each revoked seed row's room for connections from before user
    // channels. By room: that room and the user channel (a connection of that token may have
    // unsubscribed from its room, and could subscribe again), where only connections made with
    // its seed token count (a rooms token that merely subscribed to it is still good).
    const rooms = roomId !== undefined ? [roomId, userChannel(userId)] : [userChannel(userId), ...revoked.map((row) => row.authKey).filter((key) => !isGrantsAuthKey(key))];
    const madeWithRevoked = (row: ConnectionRow) => roomId === undefined || row.authKey === undefined || row.authKey === roomId;
    const closed = new Set<string>();
    // Connections whose DELETE still failed; the second look tries them again.
    const notClosed = new Map<string, UnclosedConnection>();
    const closeConnection = async (connectionId: string): Promise<PostResponse> => {
      try {
        return (await requestWithRetries(() => management!.delete!(connectionId), revokeRetry)).response;
      } catch (err) {
        // Signing failed (no credentials): reported with the connection, like a refusal.
        return { status: 0, errorType: errorSummary(err).name };
      }
    };
    // keep: decides from the connection row; without it every listed connection goes.
    const closeAll = async (keep?: (row: ConnectionRow | undefined) => boolean) => {
      // A connection listed in several of the rooms is read and decided once per pass.
      const decided = new Set<string>();
      for (const room of rooms) {
        for await (const page of roomPages(db, connectionsTableName, room)) {
          for (const { connectionId, userId: owner } of page.connections) {
            if (owner !== userId || closed.has(connectionId) || decided.has(connectionId)) continue;
            decided.add(connectionId);
            const row = await getConnection(db, connectionsTableName, connectionId);
            if (keep?.(row)) continue;
            // Presence on: marked before the close, so the $disconnect that follows leaves with `revoked`.
            const marked = row !== undefined && presenceOn && (await markRevoked(db, connectionsTableName, connectionId, Date.now()));
            const response = await closeConnection(connectionId);
            // 410: already gone. Anything else still failing: the others go on, it is reported at the end (its items kept for a retry).
            if (!(response.status === 410 || (response.status >= 200 && response.status < 300))) {
              notClosed.set(connectionId, { connectionId, status: response.status, ...(response.errorType ? { error: response.errorType } : {}) });
              continue;
            }
            notClosed.delete(connectionId);
            // $disconnect removes it too, but is best effort: remove the row and its memberships here.
            // No row: the listed item is an orphan membership of this room (its TTL would keep it listed).
            if (row && marked) await removeMemberships(db, connectionsTableName, row);
            else if (row) await removeConnectionItems(db, connectionsTableName, row);
            else await deleteConnection(db, connectionsTableName, membershipKey(connectionId, room));
            closed.add(connectionId);
          }
        }
      }
    };
    // Every such connection of the user now predates the revocation.
    await closeAll(roomId === undefined ? undefined : (row) => row !== undefined && !madeWithRevoked(row));
    // A $connect that re-read its auth row just before the delete wrote its connection row
    // before that, but the room index may not show it yet: look once more after the index
    // settles, closing what holds a revoked generation (or none: rows from before generations).
    if (recheckMs > 0) await new Promise((resolve) => setTimeout(resolve, recheckMs));
    await closeAll((row) => row === undefined || !madeWithRevoked(row) || (row.generation !== undefined && !generations.has(row.generation)));
    if (notClosed.size > 0) throw new RevocationIncompleteError([...notClosed.values()], closed.size);
    return { closedConnections: closed.size };
  }

  async function publish(input: PublishInput | MultiRoomPublishInput | UserPublishInput, method = "publish"): Promise<{ messageId: string }> {
    const queueUrl = requireOption(options, "queueUrl", method);
    if (method === "publish" && typeof input === "object" && input !== null && "roomIds" in input && input.roomIds !== undefined) {
      // Everything is checked before anything is sent; the bodies share the publish's id.
      const { bodies, messageId } = buildMultiRoomBodies(input, method);
      if (bodies.length === 1) await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: bodies[0] }));
      else await sendBatches(sqs, queueUrl, bodies, method);
      return { messageId };
    }
    const { body, messageId } = buildPublish(input as PublishInput | UserPublishInput, method);
    const result = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    if (!result.MessageId) throw new Error(`${method}: SQS returned no MessageId`);
    return { messageId: messageId ?? result.MessageId };
  }

  async function publishToUser(input: PublishToUserInput): Promise<{ messageId: string }> {
    if (typeof input !== "object" || input === null) throw new TypeError("publishToUser: expected { userId, data, senderId? }");
    if (input.userId === undefined || input.userId === null) throw new TypeError("publishToUser: userId (the recipient) is required");
    // Checked here too, so a refusal names this method's own key (userId), not the body's toUserId.
    const recipient = normalizeRecipient(input.userId, "userId");
    if (!recipient.ok) throw new TypeError(`publishToUser: ${recipient.reason}`);
    return publish({ toUserId: input.userId, userId: input.senderId, data: input.data, idempotencyKey: input.idempotencyKey }, "publishToUser");
  }

  async function publishBatch(inputs: (PublishInput | UserPublishInput)[]): Promise<{ messageIds: string[] }> {
    const queueUrl = requireOption(options, "queueUrl", "publishBatch");
    if (!Array.isArray(inputs)) throw new TypeError("publishBatch: expected an array of notifications");
    // Validate everything before sending anything, so a bad item never half-sends a batch.
    const built = inputs.map((input, i) => {
      try {
        return buildPublish(input);
      } catch (err) {
        throw new (err instanceof RangeError ? RangeError : TypeError)(`publishBatch[${i}]: ${(err as Error).message}`);
      }
    });
    const sent = await sendBatches(
      sqs,
      queueUrl,
      built.map((b) => b.body),
      "publishBatch",
    );
    // An item with an idempotency key has the id its key gives it, whichever message carried it.
    return { messageIds: sent.map((id, i) => built[i].messageId ?? id) };
  }

  async function history(input: HistoryInput): Promise<HubFrame[]> {
    const table = requireOption(options, "streamsTableName", "history");
    if (typeof input !== "object" || input === null) throw new TypeError("history: expected { roomId, after?, last?, limit? }");
    const roomId = idOrThrow(input.roomId, "roomId");
    const whole = (key: "after" | "last" | "limit", min: number, max: number) => {
      const value = input[key];
      if (value !== undefined && (!Number.isSafeInteger(value) || value < min || value > max)) throw new RangeError(`history: ${key} must be a whole number from ${min} to ${max}`);
      return value;
    };
    const after = whole("after", 0, Number.MAX_SAFE_INTEGER);
    const last = whole("last", 0, MAX_FRAMES_PER_READ);
    const limit = whole("limit", 1, MAX_FRAMES_PER_READ);
    if (after !== undefined && last !== undefined) throw new TypeError("history: pass after or last, not both");
    const read = await readStream(db, table, roomId, { after, last, limit });
    // A tombstone (a seq whose writer died: no message id) holds no notification.
    return read.frames.filter((stored) => stored.messageId !== "").map((stored) => JSON.parse(stored.frame) as HubFrame);
  }

  /** The presence table, or an error that says presence is off or the option missing. */
  function presenceTable(method: string): string {
    if (typeof options.presenceTableName === "string" && options.presenceTableName.length > 0) return options.presenceTableName;
    throw new TypeError(
      `${method}: presenceTableName is required (pass the component's presenceTableName output to createNotifier; it is set only when the hub has presence: { enabled: true })`,
    );
  }

  function presenceRoom(input: unknown, method: string, shape: string): string {
    if (typeof input !== "object" || input === null) throw new TypeError(`${method}: expected ${shape}`);
    const roomId = idOrThrow((input as { roomId?: unknown }).roomId, "roomId");
    // User channels have no presence (core/presence.ts hasPresence): nobody is a member of one.
    if (isUserChannel(roomId)) throw new TypeError(`${method}: ${roomId} is a user channel, which has no presence`);
    return roomId;
  }

  async function presence(input: PresenceInput): Promise<PresencePage> {
    const table = presenceTable("presence");
    const roomId = presenceRoom(input, "presence", "{ roomId, after?, limit? }");
    const { after, limit } = input;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PRESENCE_PAGE)) throw new RangeError(`presence: limit must be a whole number from 1 to ${MAX_PRESENCE_PAGE}`);
    if (after !== undefined && (typeof after !== "string" || after.length === 0)) throw new TypeError("presence: after must be the next cursor of a previous page");
    return readPresence(db, table, roomId, { after, limit });
  }

  async function occupancy(input: { roomId: string | number }): Promise<{ connections: number; users: number }> {
    const table = presenceTable("occupancy");
    return readOccupancy(db, table, presenceRoom(input, "occupancy", "{ roomId }"));
  }

  return { issueToken, revokeToken, publish: (input) => publish(input), publishToUser, publishBatch, history, presence, occupancy };
}
