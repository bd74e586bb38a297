/**
 * Liveness (presence on): finding connections whose `$disconnect` never came. API Gateway runs
 * `$disconnect` on a best-effort basis, so a connection it has closed can keep its row, its
 * memberships and its user's presence forever (a ghost). ARCHITECTURE.md "Liveness and the
 * sweep" has the bound, the request counts and the prices.
 *
 * Evidence: `seen_at` (epoch ms) on the connection's row, written by `$connect` and then by
 * every keep-alive ping, which API Gateway itself writes to DynamoDB (an AWS-service
 * integration on the `ping` route: no Lambda per ping, components/hub/webSocketApi.ts; the
 * emulator does the same write locally). Each ping also keeps the one before as `prev_seen_at`
 * (core/keepAlive.ts PING_UPDATE_EXPRESSION). Clients ping every `keepAliveSeconds` (told
 * `keep_alive_ms` in `hub.subscribed`). Only pings move `seen_at`.
 *
 * The sweep (every `sweepSeconds`) reads the connections table (a parallel Scan, rows only
 * projected) for suspects: rows whose `seen_at` is older than `keepAliveSeconds + 15 s`
 * (staleAfterMs), in a room or not (a connection in no room still owes its `connection.closed`).
 * A late ping (Chrome's intensive throttling wakes a hidden tab's timers once a minute) only
 * makes a suspect, so each one is confirmed with `@connections` GET: 410 is dead, 200 is alive
 * (its `confirmed_at` is set: not asked again for a stale period; `seen_at` stays).
 *
 * A half-open connection (the peer vanished without a TCP close: a laptop asleep, a mobile
 * drop) answers GET 200 until API Gateway's own 10-minute idle timeout. So a connection known
 * to ping at the hub's rate is held to it: its last ping interval (`seen_at - prev_seen_at`) was
 * at most 2 × keepAlive (it was told, and follows), and if its `seen_at` is older than
 * deadAfterMs (2 × keepAlive + 30 s: a throttled hidden tab pings up to ~60 s late) it is dead
 * whatever GET would say: DELETEd on `@connections` (API Gateway closes it; 410 is fine) and
 * removed. A client that pings at its own slower rate (a bare WebSocket client's 8-minute
 * keep-alive) is never told apart from a half-open one by time, so it keeps the GET rule.
 *
 * Those GETs and DELETEs take tokens of the hub's shared budget (core/budget.ts, bulk lane) and
 * at most `confirmShare` of `delivery.postsPerSecond`, within the run's `deadline`; suspects past
 * one run's share or deadline wait for the next run, oldest first. A connection older than API
 * Gateway's 2-hour maximum is dead without asking; a revoked one (revokeToken marked it, then
 * closed it) too.
 *
 * A dead one is removed like a 410 removes it (its row, then its memberships) and leaves its
 * rooms with `timed_out`, the grace counted from its `seen_at`: it stopped answering at least
 * `keepAliveSeconds + 15 s` ago, more than the default 30 s grace, so the leave is decided at
 * once; a grace longer than that still holds (a user reconnecting in time neither leaves nor joins).
 */
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { NOT_SENT, type PostResponse } from "./connections";
import { mapWithConcurrency } from "./fanout";
import { hasPresence, lifecycle, presenceLeave, PRESENCE_DEFAULTS, type LeaveReason, type PresenceDeps } from "./presence";
import { markConfirmed, markTimedOut, removeConnection, type ConnectionRow } from "./tables";

/** A ping may be this late before its connection is a suspect (network delay, a timer woken late); a third of a shorter keep-alive (the local hub's test timers). */
export const STALE_SLACK_MS = 15_000;

/** How long without evidence makes a suspect: the keep-alive plus its slack (45 s + 15 s = 60 s by default). */
export function staleAfterMs(keepAliveMs: number): number {
  return keepAliveMs + Math.min(STALE_SLACK_MS, keepAliveMs / 3);
}

/** What deadAfterMs adds to two keep-alives: a hidden tab's throttled timers (up to ~60 s late) and a slow link; a third of two shorter keep-alives (test timers). */
export const DEAD_SLACK_MS = 30_000;

/**
 * How long a connection that pings at its told rate may go without a ping before it is dead
 * whatever `@connections` GET says (a half-open one answers 200): 2 × keepAlive + 30 s, 120 s by
 * default. Two whole intervals missed, and more than a throttled tab's worst lateness.
 */
export function deadAfterMs(keepAliveMs: number): number {
  return 2 * keepAliveMs + Math.min(DEAD_SLACK_MS, (2 * keepAliveMs) / 3);
}

/**
 * Whether a row's client pings at the rate the hub told it: its last ping interval (`seen_at -
 * prev_seen_at`, both written by pings) was at most two keep-alives. A client only told
 * `keep_alive_ms` pings that often; one on its own 8-minute keep-alive never does, nor a row
 * pinged at most once since its `$connect` with no `seen_at` before (`prev_seen_at` 0).
 */
export function pingsAtToldRate(row: { seenAt?: number; prevSeenAt?: number }, keepAliveMs: number): boolean {
  const { seenAt, prevSeenAt } = row;
  return seenAt !== undefined && prevSeenAt !== undefined && prevSeenAt > 0 && seenAt - prevSeenAt <= 2 * keepAliveMs;
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
  /**
   * Epoch ms: no GET or DELETE starts (nor waits for a budget token) after this; the rest wait
   * for the next run, counted in `deferred`. The sweep sets it from the invocation's remaining time.
   * The Scan reads no new page past half the time to it (`scanComplete` false): confirmations keep the rest.
   */
  deadline?: number;
  /** Items a Scan page reads (DynamoDB's `Limit`); unset, pages of 1 MB. Tests only. */
  scanPageItems?: number;
}

export interface LivenessResult {
  scanned: number;
  suspects: number;
  alive: number;
  removed: number;
  /** Of the removed: closed with `@connections` DELETE, having stopped pinging at their told rate (deadAfterMs). */
  closed: number;
  deferred: number;
  /**
   * False: the Scan stopped at its deadline with pages left (a connections table too big for one
   * run's time: `segments` should grow); the rows past it were not looked at this run. A warning.
   */
  scanComplete: boolean;
}

/** The share of the hub's budget the sweep's confirmations may take. */
export function livenessSettings(keepAliveMs: number, postsPerSecond: number): LivenessSettings {
  return { keepAliveMs, confirmsPerSecond: Math.max(1, Math.floor(postsPerSecond * CONFIRM_SHARE)) };
}

/** A number attribute of a scanned row. */
const num = (item: Record<string, AttributeValue>, name: string): number | undefined => (item[name]?.N === undefined ? undefined : Number(item[name]!.N));
/** When a suspect's connection went quiet: its last evidence, else its connect. */
const lastSeen = (item: Record<string, AttributeValue>) => num(item, "seen_at") ?? num(item, "connected_at") ?? 0;

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

/** The lines a run draws, epoch ms: stale (a suspect) and dead (for a row pinging at its told rate). */
interface Lines {
  stale: number;
  dead: number;
}

/**
 * Rows whose last evidence is older than the stale line (in a room or not), and revoked rows: one
 * parallel Scan. A row GET found alive within the stale line is skipped unless it is past the
 * dead line too (it may ping at its told rate: the caller decides).
 */
async function findSuspects(deps: PresenceDeps, lines: Lines, segments: number, until?: number, pageItems?: number): Promise<{ scanned: number; suspects: Record<string, AttributeValue>[]; complete: boolean }> {
  let scanned = 0;
  let complete = true;
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
            ProjectionExpression: "connection_id, seen_at, prev_seen_at, connected_at, confirmed_at, revoked_at",
            FilterExpression:
              "NOT contains(connection_id, :sep) AND (attribute_exists(revoked_at) OR ((seen_at < :stale OR (attribute_not_exists(seen_at) AND connected_at < :stale)) AND (attribute_not_exists(confirmed_at) OR confirmed_at < :stale OR seen_at < :dead)))",
            ExpressionAttributeValues: { ":sep": { S: "#" }, ":stale": { N: String(lines.stale) }, ":dead": { N: String(lines.dead) } },
            ExclusiveStartKey: startKey,
            ...(pageItems ? { Limit: pageItems } : {}),
          }),
        );
        scanned += page.ScannedCount ?? 0;
        suspects.push(...(page.Items ?? []));
        startKey = page.LastEvaluatedKey;
        if (startKey && until !== undefined && Date.now() >= until) {
          complete = false;
          break;
        }
      } while (startKey);
    }),
  );
  return { scanned, suspects, complete };
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

const answered = (response: PostResponse) => response.status >= 200 && response.status < 300;

/** One liveness pass of the sweep: finds the suspects, confirms (or closes) them within the share and the deadline, removes the dead. */
export async function sweepConnections(deps: PresenceDeps, settings: LivenessSettings): Promise<LivenessResult> {
  const { get, delete: close } = deps.management;
  if (!get || !close) throw new Error("the sweep needs @connections GET and DELETE (core/connections.ts createConnectionsApi)");
  const now = (deps.now ?? Date.now)();
  const keepAliveMs = settings.keepAliveMs || PRESENCE_DEFAULTS.keepAliveSeconds * 1000;
  const lines: Lines = { stale: now - staleAfterMs(keepAliveMs), dead: now - deadAfterMs(keepAliveMs) };
  // The Scan gets at most half the time to the deadline: the confirmations and removals need the rest.
  const scanUntil = settings.deadline === undefined ? undefined : Date.now() + Math.max(0, settings.deadline - Date.now()) / 2;
  const { scanned, suspects: found, complete } = await findSuspects(deps, lines, settings.segments ?? SCAN_SEGMENTS, scanUntil, settings.scanPageItems);
  const result: LivenessResult = { scanned, suspects: 0, alive: 0, removed: 0, closed: 0, deferred: 0, scanComplete: complete };

  const remove = async (connectionId: string, reason: LeaveReason, since: number): Promise<boolean> => {
    let removed: ConnectionRow | undefined;
    let failure: unknown;
    // The row goes first; its membership deletes may still throw. The presence step runs with the
    // removed row either way: once the row is gone, nothing else would find its rooms' members.
    await removeConnection(deps.db, deps.connectionsTable, connectionId, { removed: (row) => (removed = row) }).catch((err) => (failure = err));
    const row: ConnectionRow | undefined = removed;
    if (!row) {
      if (failure !== undefined) throw failure;
      return false; // its $disconnect (or a 410) got there first
    }
    result.removed++;
    await connectionGone(deps, row, reason, since);
    if (failure !== undefined) throw failure;
    return true;
  };

  // Dead without asking: revoked (already closed), or past API Gateway's 2-hour maximum.
  // Dead whatever GET says: pinging at its told rate, and silent past the dead line (DELETE).
  const toAsk: { item: Record<string, AttributeValue>; close: boolean }[] = [];
  const known: Promise<unknown>[] = [];
  for (const item of found) {
    const id = item.connection_id!.S!;
    const connectedAt = num(item, "connected_at") ?? 0;
    const seenAt = lastSeen(item);
    const close = pingsAtToldRate({ seenAt: num(item, "seen_at"), prevSeenAt: num(item, "prev_seen_at") }, keepAliveMs) && seenAt < lines.dead;
    const ancient = connectedAt > 0 && connectedAt + MAX_CONNECTION_AGE_MS <= now;
    // Returned for the dead line only, but not pinging at its told rate: GET said alive within the stale line.
    if (!item.revoked_at?.N && !ancient && !close && (num(item, "confirmed_at") ?? 0) >= lines.stale) continue;
    result.suspects++;
    if (item.revoked_at?.N) known.push(remove(id, "revoked", Number(item.revoked_at.N)));
    else if (ancient) known.push(remove(id, "timed_out", Math.min(seenAt, connectedAt + MAX_CONNECTION_AGE_MS)));
    else toAsk.push({ item, close });
  }
  await Promise.all(known);

  // The rest, oldest first, up to this run's share and deadline; the others wait for the next run.
  toAsk.sort((a, b) => lastSeen(a.item) - lastSeen(b.item));
  const cap = settings.maxConfirmsPerRun ?? Math.floor(settings.confirmsPerSecond * CONFIRM_SECONDS_PER_RUN);
  const asked = toAsk.slice(0, cap);
  result.deferred = toAsk.length - asked.length;
  const pace = pacer(settings.confirmsPerSecond);
  const deadline = settings.deadline;
  const late = () => deadline !== undefined && Date.now() >= deadline;
  // The bulk lane: small messages keep their share of every budget window; no token waited for past the deadline.
  const options = { lane: "bulk" as const, ...(deadline === undefined ? {} : { deadline }) };
  await mapWithConcurrency(asked, 16, async ({ item, close: closing }) => {
    const id = item.connection_id!.S!;
    if (late()) return void result.deferred++;
    await pace();
    if (late()) return void result.deferred++;
    let response: PostResponse;
    if (closing) {
      // Half-open or not, it stopped pinging at its rate: API Gateway closes it (410: already gone), then it goes.
      // Marked first: on AWS the DELETE may run its $disconnect, which then leaves with `timed_out` too.
      if (!(await markTimedOut(deps.db, deps.connectionsTable, id, lastSeen(item)))) return; // its $disconnect got there first
      response = await close.call(deps.management, id, options);
      if (answered(response) || response.status === 410) {
        if (await remove(id, "timed_out", lastSeen(item))) result.closed++;
        return;
      }
    } else {
      response = await get.call(deps.management, id, options);
      if (response.status === 410) return void (await remove(id, "timed_out", lastSeen(item)));
      if (answered(response)) {
        result.alive++;
        await markConfirmed(deps.db, deps.connectionsTable, id, (deps.now ?? Date.now)());
        return;
      }
    }
    // Throttled, not sent within the budget or the deadline, or no answer: asked again next run.
    if (response.errorType !== NOT_SENT) deps.log.warn("sweep: connection not confirmed", { connection_id: id, method: closing ? "DELETE" : "GET", http_status: response.status || undefined, error: response.errorType });
    result.deferred++;
  });
  return result;
}
