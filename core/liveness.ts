/**
 * Liveness (presence on): finding connections whose `$disconnect` never came. API Gateway runs
 * `$disconnect` on a best-effort basis, so a connection it has closed can keep its row, its
 * memberships and its user's presence forever (a ghost). ARCHITECTURE.md "Liveness and the
 * sweep" has the bound, the request counts and the prices.
 *
 * Evidence: `seen_at` (epoch ms) on the connection's row, written by `$connect` and then by
 * every keep-alive ping, which API Gateway itself writes to DynamoDB (an AWS-service
 * integration on the `ping` route: no Lambda per ping, components/hub/webSocketApi.ts; the
 * emulator does the same write locally). Clients ping every `keepAliveSeconds` (told
 * `keep_alive_ms` in `hub.subscribed`).
 *
 * The sweep (every `sweepSeconds`) reads the connections table (a parallel Scan, rows only
 * projected to four attributes) for suspects: rows in at least one room whose `seen_at` is older
 * than `keepAliveSeconds + 15 s` (staleAfterMs). A late ping (Chrome's intensive throttling wakes a
 * hidden tab's timers once a minute) only makes a suspect, so each one is confirmed with
 * `@connections` GET: 410 is dead, 200 is alive (its `seen_at` is moved to now). Those GETs take
 * tokens of the hub's shared budget (core/budget.ts, bulk lane) and at most `confirmShare` of
 * `delivery.postsPerSecond`; suspects past one run's share wait for the next run, oldest first.
 * A connection older than API Gateway's 2-hour maximum is dead without asking; a revoked one
 * (revokeToken marked it, then closed it) too.
 *
 * A dead one is removed like a 410 removes it (its row, then its memberships) and leaves its
 * rooms with `timed_out`, the grace counted from its `seen_at`: it stopped answering at least
 * `keepAliveSeconds + 15 s` ago, more than the default 30 s grace, so the leave is decided at
 * once; a grace longer than that still holds (a user reconnecting in time neither leaves nor joins).
 */
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { NOT_SENT } from "./connections";
import { mapWithConcurrency } from "./fanout";
import { hasPresence, lifecycle, presenceLeave, PRESENCE_DEFAULTS, type LeaveReason, type PresenceDeps } from "./presence";
import { removeConnection, touchConnection, type ConnectionRow } from "./tables";

/** A ping may be this late before its connection is a suspect (network delay, a timer woken late); a third of a shorter keep-alive (the local hub's test timers). */
export const STALE_SLACK_MS = 15_000;

/** How long without evidence makes a suspect: the keep-alive plus its slack (45 s + 15 s = 60 s by default). */
export function staleAfterMs(keepAliveMs: number): number {
  return keepAliveMs + Math.min(STALE_SLACK_MS, keepAliveMs / 3);
}
/** API Gateway ends every connection at 2 hours: a row older than that is dead without asking. */
export const MAX_CONNECTION_AGE_MS = 2 * 60 * 60 * 1000;
/** The sweep's GETs take at most this share of `delivery.postsPerSecond`. */
export const CONFIRM_SHARE = 0.1;
/** Seconds of one run spent confirming at that rate (the sweep's Lambda has 50 s; the Scan and leaves need the rest). */
export const CONFIRM_SECONDS_PER_RUN = 30;
/** Parallel Scan segments: one per concurrent reader. */
export const SCAN_SEGMENTS = 4;

export interface LivenessSettings {
  keepAliveMs: number;
  /** GETs per second the sweep may start (CONFIRM_SHARE × postsPerSecond). */
  confirmsPerSecond: number;
  /** At most this many GETs in one run; more suspects wait for the next. Default confirmsPerSecond × CONFIRM_SECONDS_PER_RUN. */
  maxConfirmsPerRun?: number;
  segments?: number;
}

export interface LivenessResult {
  scanned: number;
  suspects: number;
  alive: number;
  removed: number;
  deferred: number;
}

/** The share of the hub's budget the sweep's confirmations may take. */
export function livenessSettings(keepAliveMs: number, postsPerSecond: number): LivenessSettings {
  return { keepAliveMs, confirmsPerSecond: Math.max(1, Math.floor(postsPerSecond * CONFIRM_SHARE)) };
}

/** When a suspect's connection went quiet: its last evidence, else its connect. */
const lastSeen = (item: Record<string, AttributeValue>) => Number(item.seen_at?.N ?? item.connected_at?.N ?? 0);

/**
 * A connection removed without its `$disconnect` (the sweep, a 410, a revocation): its rooms
 * lose it (core/presence.ts decides per user whether the user leaves) and the app's
 * `connection.closed` lifecycle event goes out. `since`: when it went quiet (the grace counts from there).
 */
export async function connectionGone(deps: PresenceDeps, row: ConnectionRow, reason: LeaveReason, since?: number): Promise<void> {
  const now = (deps.now ?? Date.now)();
  await leaveRooms(deps, row, reason, since);
  await deps.emit?.([lifecycle("connection.closed", now, { connection_id: row.connectionId, user_id: row.userId, reason })]);
}

/** Presence of a removed connection's rooms: one leave each (core/presence.ts decides if the user leaves). */
export async function leaveRooms(deps: PresenceDeps, row: ConnectionRow, reason: LeaveReason, since?: number): Promise<void> {
  const rooms = row.rooms.filter(hasPresence);
  await Promise.all(rooms.map((roomId) => presenceLeave(deps, { roomId, userId: row.userId, connectionId: row.connectionId }, reason, since)));
}

/** Rows in a room whose last evidence is older than `staleBefore`, and revoked rows: one parallel Scan, four attributes projected. */
async function findSuspects(deps: PresenceDeps, staleBefore: number, segments: number): Promise<{ scanned: number; suspects: Record<string, AttributeValue>[] }> {
  let scanned = 0;
  const suspects: Record<string, AttributeValue>[] = [];
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let startKey: Record<string, AttributeValue> | undefined;
      do {
        const page = await deps.db.send(
          new ScanCommand({
            TableName: deps.connectionsTable,
            Segment: segment,
            TotalSegments: segments,
            // Membership items (`{connection}#{room}`) are read (a Scan is charged by what it reads) but never returned.
            ProjectionExpression: "connection_id, seen_at, connected_at, revoked_at",
            FilterExpression:
              "NOT contains(connection_id, :sep) AND (attribute_exists(revoked_at) OR (attribute_exists(#rooms) AND (seen_at < :stale OR (attribute_not_exists(seen_at) AND connected_at < :stale))))",
            ExpressionAttributeNames: { "#rooms": "rooms" },
            ExpressionAttributeValues: { ":sep": { S: "#" }, ":stale": { N: String(staleBefore) } },
            ExclusiveStartKey: startKey,
          }),
        );
        scanned += page.ScannedCount ?? 0;
        suspects.push(...(page.Items ?? []));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }),
  );
  return { scanned, suspects };
}

/** Starts at most `perSecond` calls a second (this run's share of the budget; the budget's own tokens come on top). */
function pacer(perSecond: number): () => Promise<void> {
  const gapMs = 1000 / perSecond;
  let next = Date.now();
  return async () => {
    const now = Date.now();
    const at = Math.max(next, now);
    next = at + gapMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  };
}

/** One liveness pass of the sweep: finds the suspects, confirms them within the share, removes the dead. */
export async function sweepConnections(deps: PresenceDeps, settings: LivenessSettings): Promise<LivenessResult> {
  const get = deps.management.get;
  if (!get) throw new Error("the sweep needs @connections GET (core/connections.ts createConnectionsApi)");
  const now = (deps.now ?? Date.now)();
  const keepAliveMs = settings.keepAliveMs || PRESENCE_DEFAULTS.keepAliveSeconds * 1000;
  const { scanned, suspects } = await findSuspects(deps, now - staleAfterMs(keepAliveMs), settings.segments ?? SCAN_SEGMENTS);
  const result: LivenessResult = { scanned, suspects: suspects.length, alive: 0, removed: 0, deferred: 0 };

  const remove = async (connectionId: string, reason: LeaveReason, since: number) => {
    let removed: ConnectionRow | undefined;
    await removeConnection(deps.db, deps.connectionsTable, connectionId, { removed: (row) => (removed = row) });
    const row: ConnectionRow | undefined = removed;
    if (!row) return; // its $disconnect (or a 410) got there first
    result.removed++;
    await connectionGone(deps, row, reason, since);
  };

  // Dead without asking: revoked (already closed), or past API Gateway's 2-hour maximum.
  const toAsk: Record<string, AttributeValue>[] = [];
  const known: Promise<void>[] = [];
  for (const item of suspects) {
    const id = item.connection_id!.S!;
    const connectedAt = Number(item.connected_at?.N ?? 0);
    if (item.revoked_at?.N) known.push(remove(id, "revoked", Number(item.revoked_at.N)));
    else if (connectedAt > 0 && connectedAt + MAX_CONNECTION_AGE_MS <= now) known.push(remove(id, "timed_out", Math.min(lastSeen(item), connectedAt + MAX_CONNECTION_AGE_MS)));
    else toAsk.push(item);
  }
  await Promise.all(known);

  // The rest, oldest first, up to this run's share; the others wait for the next run.
  toAsk.sort((a, b) => lastSeen(a) - lastSeen(b));
  const cap = settings.maxConfirmsPerRun ?? Math.floor(settings.confirmsPerSecond * CONFIRM_SECONDS_PER_RUN);
  const asked = toAsk.slice(0, cap);
  result.deferred = toAsk.length - asked.length;
  const pace = pacer(settings.confirmsPerSecond);
  await mapWithConcurrency(asked, 16, async (item) => {
    const id = item.connection_id!.S!;
    await pace();
    // The bulk lane: small messages keep their share of every budget window.
    const response = await get.call(deps.management, id, { lane: "bulk" });
    if (response.status === 410) await remove(id, "timed_out", lastSeen(item));
    else if (response.status >= 200 && response.status < 300) {
      result.alive++;
      await touchConnection(deps.db, deps.connectionsTable, id, (deps.now ?? Date.now)());
    } else {
      // Throttled, not sent within the budget, or no answer: asked again next run.
      if (response.errorType !== NOT_SENT) deps.log.warn("sweep: connection not confirmed", { connection_id: id, http_status: response.status || undefined, error: response.errorType });
      result.deferred++;
    }
  });
  return result;
}
