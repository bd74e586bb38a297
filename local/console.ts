/**
 * The local hub's developer console: what the page at `/` (local/pages/console.html and console.js) reads and
 * does, as JSON endpoints under `/console/api/`. It watches the API Gateway emulator (live
 * connections, refused handshakes, closes and why) and the handlers' hub events
 * (core/hubEvents.ts: the authorizer's deny reasons, `$connect`'s refusals, each queue record's
 * outcome, rows a `$disconnect` left behind, 410s), reads the tables
 * and the dead-letter queue, and acts through the same doors an app would: `@connections`
 * POST and DELETE, the SDK's publish and revokeToken, SQS for a redrive.
 *
 * The Messages tab is every publish the deliver handler saw (SDK, CLI, console, raw SQS bodies),
 * one line per notification (or per queue record without one), from the same events: its room,
 * id and seq, and where it went (delivered to N connections, the room empty, rejected and why,
 * each failed receive with when the next comes, the dead-letter queue).
 *
 * With presence on, the Events tab is every lifecycle event the bus took (local/eventBridge.ts),
 * newest first, and the Connections tab names each room's members (the presence table).
 *
 * A developer tool on loopback only: the Streams tab reads the streams table whole (Scan),
 * which delivery never does; the connections it lists are the gateway's, their rows read by key.
 */
import * as crypto from "crypto";
import type * as http from "http";
import { ScanCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { DeleteConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
} from "@aws-sdk/client-sqs";
import { dynamoClient, managementClient, sqsClient } from "../core/aws";
import { parseQueueBody } from "../core/chunks";
import type { ConnectDenied, ConnectRefusalReason, HubEvent, RecordFailureCause } from "../core/hubEvents";
import { describeError, type LogFields, type Logger } from "../core/log";
import { getAuthRow, getConnections } from "../core/tables";
import { hasPresence, readPresence } from "../core/presence";
import type { BusEvent } from "./eventBridge";
import type { Notifier } from "../server";
import type { ApiGateway, CloseInfo, GatewayConnection, GatewayObserver, RefusalInfo } from "./apiGateway";
import { splitTarget } from "./apiGateway";
import { loopbackRefusal, NotFoundError, readJson, sendJson, sendPackageFile, statusOfError } from "./http";
import type { LocalHubInfo } from "./index";
import { HUB_STATE_PATH } from "./stateFile";

export interface HubConsoleOptions {
  info: LocalHubInfo;
  /** `history.retentionHours` (0: streams off). */
  retentionHours: number;
  /** `dropDisconnect`: the share of closes whose `$disconnect` the gateway drops (0: none), shown in the header. */
  dropDisconnect?: number;
  log: Logger;
  /** This hub's state file, if it keeps one: named (never read out) at HUB_STATE_PATH for `--hub PORT`. */
  stateFile?: () => string | undefined;
  /** The main queue's redrive and the poller's retry delay, for "receive k of N, next at T". */
  queue?: { maxReceiveCount: number; retryDelaySeconds: number };
}

export type MessageOutcome = "queued" | "delivered" | "room empty" | "retrying" | "rejected" | "dead-lettered";

/**
 * One publish as the Messages tab shows it: keyed by its notification id (a publish's message
 * id), or by its queue record's id when the record has none (a rejected raw body).
 */
export interface MessageLogEntry {
  key: string;
  notificationId?: string;
  /** The queue records it came in (a redrive or a chunk is a record of its own). */
  recordIds: string[];
  roomId?: string;
  seq?: number;
  outcome: MessageOutcome;
  /** The outcome in words. */
  text: string;
  /** Connections posted to so far (chunks add up). */
  delivered: number;
  /** The latest receive's count, and the queue's maxReceiveCount. */
  receives: number;
  maxReceives: number;
  /** When the next receive comes, for a record reported failed. */
  nextTryAt?: string;
  firstAt: string;
  updatedAt: string;
  /** Changes each time the entry does: the page redraws what moved. */
  version: number;
  /** Each thing that happened to it, oldest first. */
  steps: { time: string; text: string }[];
}

export type ConsoleEventKind = "connected" | "refused" | "disconnected" | "rejected" | "gone" | "action";

/** One line of the console's log: a summary sentence and the fields behind it (never a token). */
export interface ConsoleEvent {
  id: number;
  time: string;
  kind: ConsoleEventKind;
  text: string;
  fields: LogFields;
}

/** What the deliver handler last reported about a queue message, by message id. */
interface DeliveryNote {
  code: string;
  reason: string;
  /** The receive it reported on: how many the main queue had made when it gave up. */
  receiveCount?: number;
}

/** Events kept for the page; older ones fall off. */
const EVENTS_KEPT = 500;
/** Notes kept per kind (deny reasons by request id, delivery notes by message id). */
const NOTES_KEPT = 2_000;
/** Messages the Messages tab keeps; older ones fall off. */
const MESSAGES_KEPT = 500;
/** Lifecycle events the Events tab keeps; older ones fall off. */
const LIFECYCLE_KEPT = 500;
/** Rooms whose members the Connections tab shows, and members per room. */
const PRESENCE_ROOMS_SHOWN = 50;
const PRESENCE_MEMBERS_SHOWN = 100;
/** Dead-letter records one peek shows. */
const DEAD_LETTERS_SHOWN = 200;
/** How long a peeked or passed-over dead-letter record stays hidden before it is released (released at once normally). */
const PEEK_VISIBILITY_SECONDS = 10;

/** Why `$connect` refused a connection, in words. */
const CONNECT_REFUSALS: Record<ConnectRefusalReason, string> = {
  no_authorizer_context: "no authorizer context",
  row_not_written: "connection row not written",
  recheck_failed: "token row re-check failed",
  revoked_meanwhile: "token revoked meanwhile",
};

/** Why a valid record was not delivered, in words (the reason when the event carries no error). */
const RECORD_FAILURES: Record<RecordFailureCause, string> = {
  delivery_failed: "the delivery failed",
  stream_busy: "another invocation was storing the same message",
  requeue_failed: "its failed connections could not be put back on the queue",
  delivery_incomplete: "connections of a chunk kept failing",
  split_failed: "its rooms (a publish to several rooms) could not be put back on the queue one by one",
};

/** A Map that forgets its oldest entries past `max`. */
function boundedMap<K, V>(max: number) {
  const map = new Map<K, V>();
  return {
    get: (key: K) => map.get(key),
    take(key: K): V | undefined {
      const value = map.get(key);
      map.delete(key);
      return value;
    },
    set(key: K, value: V): void {
      map.delete(key);
      map.set(key, value);
      if (map.size > max) map.delete(map.keys().next().value as K);
    },
  };
}

/** The token's room grants from the authorizer context (a JSON array); none when unreadable. */
function grantsOf(connection: GatewayConnection): string[] {
  try {
    const grants: unknown = JSON.parse(text(connection.authorizer.grants) || "[]");
    return Array.isArray(grants) ? grants.map(String) : [];
  } catch {
    return [];
  }
}

const text = (value: unknown): string => (typeof value === "string" ? value : value === undefined || value === null ? "" : String(value));

/** Why the hub closed a connection, in words, from the gateway's close code. */
function hubCloseWords(code: number): string {
  switch (code) {
    case 1000:
      return "closed through @connections DELETE";
    case 1001:
      return "idle timeout, 2-hour limit, or the hub stopping";
    case 1003:
      return "binary frame refused";
    case 1009:
      return "frame over 32 KB";
    default:
      return "closed by the gateway";
  }
}

export function createHubConsole(options: HubConsoleOptions) {
  const { info } = options;
  const clientOptions = { region: info.region, credentials: info.credentials };
  const db = dynamoClient({ ...clientOptions, endpoint: info.dynamodbEndpoint });
  const sqs = sqsClient({ ...clientOptions, endpoint: info.sqsEndpoint });
  const management = managementClient(info.managementEndpoint, clientOptions);
  const log = options.log.child({ component: "console" });

  const events: ConsoleEvent[] = [];
  let nextEventId = 1;
  /** Tells an open page that the hub behind its address was restarted: its event ids start again. */
  const instance = crypto.randomUUID();
  const denyReasons = boundedMap<string, ConnectDenied>(NOTES_KEPT);
  /** Why the `$connect` handler refused a connection, by connection id. */
  const connectNotes = boundedMap<string, string>(NOTES_KEPT);
  const deliveryNotes = boundedMap<string, DeliveryNote>(NOTES_KEPT);
  /** Why the console itself closed a connection, until its close is seen. */
  const closeNotes = boundedMap<string, string>(NOTES_KEPT);
  let parts: { api: ApiGateway; notifier: Notifier } | undefined;
  const queue = options.queue ?? { maxReceiveCount: 5, retryDelaySeconds: 30 };
  /** The Messages tab, by key (insertion order is first seen). */
  const messageLog = new Map<string, MessageLogEntry>();
  /** Notification id or record id to the entry's key. */
  const messageKeys = boundedMap<string, string>(NOTES_KEPT);
  let messagesVersion = 0;
  /** The Events tab: lifecycle events as the bus took them (local/eventBridge.ts), oldest first. */
  const lifecycleLog: BusEvent[] = [];
  let lifecycleVersion = 0;
  /** The console's own receives of each dead letter (peeks, redrives): SQS counts them too. */
  const deadLetterPeeks = boundedMap<string, number>(NOTES_KEPT);

  /** The entry for a publish: found by its notification id or any of its record ids, else a new one. */
  function messageEntry(ids: { notificationId?: string; recordId?: string }): MessageLogEntry {
    const key =
      (ids.notificationId && messageKeys.get(ids.notificationId)) || (ids.recordId && messageKeys.get(ids.recordId)) || ids.notificationId || ids.recordId || crypto.randomUUID();
    let entry = messageLog.get(key);
    if (!entry) {
      const now = new Date().toISOString();
      entry = { key, recordIds: [], outcome: "queued", text: "queued", delivered: 0, receives: 0, maxReceives: queue.maxReceiveCount, firstAt: now, updatedAt: now, version: 0, steps: [] };
      messageLog.set(key, entry);
      if (messageLog.size > MESSAGES_KEPT) messageLog.delete(messageLog.keys().next().value as string);
    }
    if (ids.notificationId) {
      entry.notificationId = ids.notificationId;
      messageKeys.set(ids.notificationId, key);
    }
    if (ids.recordId && !entry.recordIds.includes(ids.recordId)) {
      entry.recordIds.push(ids.recordId);
      messageKeys.set(ids.recordId, key);
    }
    return entry;
  }

  function noteMessage(entry: MessageLogEntry, outcome: MessageOutcome, text: string, step = text): void {
    const now = new Date().toISOString();
    entry.outcome = outcome;
    entry.text = text;
    entry.updatedAt = now;
    entry.version = ++messagesVersion;
    entry.steps.push({ time: now, text: step });
    if (entry.steps.length > 50) entry.steps.splice(0, entry.steps.length - 50);
  }

  /** A failed receive: the next one and when, or the dead-letter queue after the last. */
  function failedReceive(entry: MessageLogEntry, receiveCount: number, why: string, rejected: boolean): void {
    entry.receives = receiveCount;
    const last = receiveCount >= queue.maxReceiveCount;
    if (last) {
      entry.nextTryAt = undefined;
      noteMessage(entry, "dead-lettered", `${rejected ? "rejected" : "failed"} on receive ${receiveCount} of ${queue.maxReceiveCount}: ${why}; to the dead-letter queue`);
      return;
    }
    entry.nextTryAt = new Date(Date.now() + queue.retryDelaySeconds * 1000).toISOString();
    const when = `retry ${receiveCount} of ${queue.maxReceiveCount - 1} in ${queue.retryDelaySeconds} s`;
    noteMessage(entry, rejected ? "rejected" : "retrying", `${rejected ? "rejected" : "failed"} on receive ${receiveCount} of ${queue.maxReceiveCount}: ${why}; ${when}`);
  }

  /** The Messages tab's view of a queue record's outcome (record.* events). */
  function observeMessage(event: HubEvent): void {
    switch (event.type) {
      case "record.delivered": {
        const entry = messageEntry({ notificationId: event.notificationId, recordId: event.messageId });
        entry.roomId = event.roomId;
        if (event.seq !== undefined) entry.seq = event.seq;
        entry.receives = event.receiveCount;
        entry.nextTryAt = undefined;
        entry.delivered = event.chunk ? entry.delivered + event.delivered : event.delivered;
        const extras = [
          event.handedOff ? `${event.handedOff} more handed to chunks` : "",
          event.gone ? `${event.gone} gone (410)` : "",
          event.failed ? `${event.failed} kept failing${event.requeued ? ", requeued" : ""}` : "",
          event.redelivered ? "a redelivery: the stream already held it" : "",
        ].filter(Boolean);
        const more = extras.length ? ` (${extras.join(", ")})` : "";
        const empty = !event.chunk && event.delivered + event.handedOff + event.gone + event.failed === 0;
        const stored = event.seq !== undefined ? `; stored as seq ${event.seq} for resume` : "";
        if (empty) noteMessage(entry, "room empty", `room empty: no connection in ${event.roomId}${stored}`);
        else {
          const text = `delivered to ${entry.delivered} connection(s)${more}`;
          noteMessage(entry, "delivered", text, event.chunk ? `chunk: posted to ${event.delivered} more connection(s)${more}` : text);
        }
        return;
      }
      case "record.rejected": {
        const entry = messageEntry({ recordId: event.messageId });
        failedReceive(entry, event.receiveCount, `${event.code}: ${event.reason}`, true);
        return;
      }
      case "record.failed": {
        const entry = messageEntry({ notificationId: event.notificationId, recordId: event.messageId });
        entry.roomId = event.roomId;
        const error = event.error ? ` (${event.error.name}: ${event.error.message})` : "";
        failedReceive(entry, event.receiveCount, `${event.cause}: ${RECORD_FAILURES[event.cause]}${error}`, false);
        return;
      }
      default:
        return;
    }
  }

  function record(kind: ConsoleEventKind, summary: string, fields: LogFields = {}): void {
    events.push({ id: nextEventId++, time: new Date().toISOString(), kind, text: summary, fields });
    if (events.length > EVENTS_KEPT) events.splice(0, events.length - EVENTS_KEPT);
  }

  /** The handlers' events the console turns into notes, Log lines and the Messages tab. */
  function observe(event: HubEvent): void {
    observeMessage(event);
    switch (event.type) {
      case "connect.denied":
        if (event.requestId !== undefined) denyReasons.set(event.requestId, event);
        return;
      case "connect.refused": {
        const words = CONNECT_REFUSALS[event.reason];
        connectNotes.set(event.connectionId, event.error ? `${words}: ${event.error.message}` : words);
        return;
      }
      case "record.rejected": {
        const { messageId, code, reason, receiveCount } = event;
        deliveryNotes.set(messageId, { code, reason, receiveCount });
        record("rejected", `queue record ${messageId} rejected (receive ${receiveCount}): ${code}: ${reason}`, { message_id: messageId, code, reason, receive_count: receiveCount });
        return;
      }
      case "record.failed": {
        const error = event.error ? `${event.error.name}: ${event.error.message}` : "";
        const failed = event.summary && event.summary.failed > 0 ? `${event.summary.failed} connection(s) failed` : "";
        deliveryNotes.set(event.messageId, { code: event.cause, reason: error || failed || RECORD_FAILURES[event.cause], receiveCount: event.receiveCount });
        return;
      }
      case "record.delivered":
        if (event.gone > 0) {
          record("gone", `${event.gone} connection(s) of room ${event.roomId} answered 410 Gone: closed, but their rows were left (stale rows are removed)`, {
            room_id: event.roomId,
            gone: event.gone,
            message_id: event.messageId,
          });
        }
        return;
      case "lifecycle.failed":
        record("rejected", `${event.events.length} lifecycle event(s) not put on the bus after ${event.attempts} attempt(s): ${event.error}${event.errorMessage ? `: ${event.errorMessage}` : ""}`, {
          error: event.error,
          event_ids: event.events.map((e) => e.event_id),
        });
        return;
      case "disconnect.failed":
        record("gone", `$disconnect could not delete the row of ${event.connectionId} (${event.error.message || event.error.name}): the next post to it answers 410 and removes it`, {
          connection_id: event.connectionId,
          error: event.error.name,
        });
        return;
      default:
        return;
    }
  }

  const who = (connection: GatewayConnection) => ({
    connection_id: connection.id,
    user_id: text(connection.authorizer.user_id),
    room_id: text(connection.authorizer.room_id),
  });

  /** Whether the token this connection came with no longer passes: its auth row is gone or newer. */
  async function tokenRevoked(connection: GatewayConnection): Promise<boolean> {
    const userId = text(connection.authorizer.user_id);
    const key = text(connection.authorizer.auth_key) || text(connection.authorizer.room_id);
    if (!userId || !key) return false;
    const row = await getAuthRow(db, info.authTableName, userId, key);
    const generation = text(connection.authorizer.generation);
    return !row || (generation !== "" && row.generation !== generation);
  }

  async function closeReason(connection: GatewayConnection, close: CloseInfo): Promise<string> {
    const noted = closeNotes.take(connection.id);
    if (noted) return noted;
    if (close.by === "client") return close.code === 1006 ? "connection dropped without a close frame" : "closed by the client";
    if (close.code === 1000 && (await tokenRevoked(connection).catch(() => false))) return "token revoked (revokeToken), closed through @connections DELETE";
    if (close.code === 1006) return close.reason;
    return hubCloseWords(close.code);
  }

  const observer: GatewayObserver = {
    refused(refusal: RefusalInfo) {
      const denied = refusal.requestId ? denyReasons.take(refusal.requestId) : undefined;
      const why =
        refusal.step === "request"
          ? refusal.status === 404
            ? `not the stage's path (/${info.stage})`
            : "not a valid WebSocket handshake (method, key, version or protocol list)"
          : refusal.step === "$connect"
            ? `$connect refused: ${(refusal.connectionId && connectNotes.take(refusal.connectionId)) || "the route answered an error"}`
            : denied?.reason || (refusal.status === 401 ? "authorizer: Unauthorized" : refusal.status === 500 ? "authorizer failed" : "authorizer denied");
      const user = denied?.userId ?? "";
      const room = denied?.roomId ?? "";
      record("refused", `handshake refused ${refusal.status}: ${why}${user ? ` (user ${user}${room ? `, room ${room}` : ""})` : ""}`, {
        status: refusal.status,
        step: refusal.step,
        reason: why,
        ...(user ? { user_id: user, room_id: denied?.roomId } : {}),
        source_ip: refusal.sourceIp,
      });
    },
    opened(connection) {
      const fields = who(connection);
      const grants = grantsOf(connection);
      const token = fields.room_id ? ` (token for room ${fields.room_id})` : grants.length ? ` (token grants ${grants.join(", ")})` : "";
      record("connected", `${fields.user_id || "?"} connected${token}`, { ...fields, grants });
    },
    closed(connection, close) {
      void closeReason(connection, close).then((reason) => {
        const fields = who(connection);
        const dropped = close.disconnectDropped ? "; its $disconnect was dropped (dropDisconnect): presence's sweep will find it dead" : "";
        record("disconnected", `${fields.user_id || "?"} disconnected: ${reason}; close code ${close.code}${close.reason ? ` "${close.reason}"` : ""}${dropped}`, {
          ...fields,
          code: close.code,
          close_reason: close.reason,
          closed_by: close.by,
          reason,
          ...(close.disconnectDropped ? { disconnect_dropped: true } : {}),
        });
      });
    },
  };

  function requireParts() {
    if (!parts) throw new Error("the console is not attached to a hub yet");
    return parts;
  }

  /** Every page of a Scan (a developer tool on a local table; delivery never scans). */
  async function scanAll(table: string, projection: string, names?: Record<string, string>): Promise<Record<string, AttributeValue>[]> {
    const items: Record<string, AttributeValue>[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await db.send(new ScanCommand({ TableName: table, ProjectionExpression: projection, ExpressionAttributeNames: names, ExclusiveStartKey: startKey }));
      items.push(...(page.Items ?? []));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  async function connectionList() {
    const { api } = requireParts();
    const live = [...api.connections.values()].filter((c) => c.socket);
    // Read by key from the rows (getConnections): the page polls every second, and a Scan read
    // every membership and every row left behind as well. A row's rooms never include its user
    // channel. A stray membership the row does not name (the subscribe/unsubscribe race
    // documented at removeRoom in core/tables.ts) is not shown; it lives until its TTL or a 410.
    const rows = await getConnections(db, info.connectionsTableName, live.map((c) => c.id));
    return live
      .map((c) => ({
        connectionId: c.id,
        userId: text(c.authorizer.user_id),
        rooms: [...(rows.get(c.id)?.rooms ?? [])].sort(),
        tokenRoom: text(c.authorizer.room_id),
        grants: grantsOf(c),
        connectedAt: new Date(c.connectedAt).toISOString(),
        lastActiveAt: new Date(c.lastActiveAt).toISOString(),
        sourceIp: c.sourceIp,
        closing: c.closing,
      }))
      .sort((a, b) => a.connectedAt.localeCompare(b.connectedAt));
  }

  /** Members per room of the live connections' rooms (presence on), as the presence table holds them. */
  async function presenceByRoom(connections: { rooms: string[] }[]) {
    const table = info.presenceTableName;
    if (!table) return undefined;
    const rooms = [...new Set(connections.flatMap((c) => c.rooms))].filter(hasPresence).sort().slice(0, PRESENCE_ROOMS_SHOWN);
    const pages = await Promise.all(rooms.map((room) => readPresence(db, table, room, { limit: PRESENCE_MEMBERS_SHOWN })));
    return Object.fromEntries(rooms.map((room, i) => [room, { count: pages[i].count, members: pages[i].members.map((m) => ({ userId: m.user_id, connections: m.connections })) }]));
  }

  async function deadLetterCount(): Promise<number> {
    const result = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: info.deadLetterQueueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }),
    );
    const attributes = result.Attributes ?? {};
    return Number(attributes.ApproximateNumberOfMessages ?? 0) + Number(attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
  }

  async function state(after: number) {
    const [connections, deadLetters] = await Promise.all([connectionList(), deadLetterCount()]);
    const presence = await presenceByRoom(connections);
    return {
      now: new Date().toISOString(),
      hub: { instance, websocketUrl: info.websocketUrl, queueUrl: info.queueUrl, deadLetterQueueUrl: info.deadLetterQueueUrl, stage: info.stage, retentionHours: options.retentionHours, dropDisconnect: options.dropDisconnect ?? 0 },
      connections,
      deadLetters,
      messagesVersion,
      ...(presence ? { presence } : {}),
      ...(info.eventBusName ? { lifecycleVersion } : {}),
      events: events.filter((e) => e.id > after),
    };
  }

  /** Each stream (room or user channel) with its head seq, the oldest seq kept and how many frames. */
  async function streams() {
    if (options.retentionHours <= 0) return { retentionHours: 0, streams: [] };
    const items = await scanAll(info.streamsTableName, "stream_id, seq");
    const byStream = new Map<string, { room: string; head: number; oldest: number; frames: number }>();
    for (const item of items) {
      const room = item.stream_id?.S;
      const seq = Number(item.seq?.N ?? 0);
      // Claims live under keys no stream id can take (core/streams.ts) and carry seq 0.
      if (!room || seq <= 0 || room.includes("\u001f")) continue;
      const entry = byStream.get(room) ?? { room, head: 0, oldest: Number.MAX_SAFE_INTEGER, frames: 0 };
      entry.head = Math.max(entry.head, seq);
      entry.oldest = Math.min(entry.oldest, seq);
      entry.frames++;
      byStream.set(room, entry);
    }
    return { retentionHours: options.retentionHours, streams: [...byStream.values()].sort((a, b) => a.room.localeCompare(b.room)) };
  }

  async function history(query: URLSearchParams) {
    const room = query.get("room") ?? "";
    const number = (key: string) => {
      const raw = query.get(key);
      if (raw === null || raw === "") return undefined;
      const value = Number(raw);
      if (!Number.isSafeInteger(value)) throw new RangeError(`${key} must be a whole number, got "${raw}"`);
      return value;
    };
    const after = number("after");
    const last = after === undefined ? (number("last") ?? 20) : undefined;
    const frames = await requireParts().notifier.history({ roomId: room, after, last, limit: 200 });
    return { room, after, last, frames };
  }

  /** One DLQ operation at a time: a peek and a redrive must not hide records from each other. */
  let dlqChain: Promise<unknown> = Promise.resolve();
  const serialDlq = <T>(work: () => Promise<T>): Promise<T> => {
    const run = dlqChain.then(work, work);
    dlqChain = run.catch(() => undefined);
    return run;
  };

  /** Receives every record of the DLQ (up to DEAD_LETTERS_SHOWN), hidden for a while; release() shows them again. */
  async function receiveDeadLetters(): Promise<Message[]> {
    const received: Message[] = [];
    while (received.length < DEAD_LETTERS_SHOWN) {
      const page = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: info.deadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: PEEK_VISIBILITY_SECONDS,
          MessageSystemAttributeNames: ["All"],
        }),
      );
      if (!page.Messages?.length) break;
      received.push(...page.Messages);
      for (const m of page.Messages) if (m.MessageId) deadLetterPeeks.set(m.MessageId, (deadLetterPeeks.get(m.MessageId) ?? 0) + 1);
    }
    return received;
  }

  async function release(messages: Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10).filter((m) => m.ReceiptHandle);
      if (batch.length === 0) continue;
      await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: info.deadLetterQueueUrl,
          Entries: batch.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
        }),
      );
    }
  }

  /** Why a dead-lettered record failed: what the deliver handler reported, or the same check run again. */
  function deadLetterReason(messageId: string, body: string): DeliveryNote & { source: "event" | "recomputed" | "unknown" } {
    const noted = deliveryNotes.get(messageId);
    if (noted) return { ...noted, source: "event" };
    const parsed = parseQueueBody(body, messageId);
    if (!parsed.ok) return { code: parsed.code, reason: parsed.reason, source: "recomputed" };
    return { code: "delivery_failed", reason: "a valid record whose delivery failed maxReceiveCount times (before this hub started, or its outcome was not kept)", source: "unknown" };
  }

  const peekDeadLetters = () =>
    serialDlq(async () => {
      const messages = await receiveDeadLetters();
      try {
        return messages.map((m) => {
          const body = m.Body ?? "";
          const attributes = m.Attributes ?? {};
          return {
            messageId: m.MessageId ?? "",
            body,
            // How often the main queue delivered it before it gave up: what the deliver handler last
            // reported, else SQS's count less the console's own receives (each peek is one).
            receiveCount: deliveryNotes.get(m.MessageId ?? "")?.receiveCount ?? Math.max(0, Number(attributes.ApproximateReceiveCount ?? 0) - (deadLetterPeeks.get(m.MessageId ?? "") ?? 0)),
            sentAt: attributes.SentTimestamp ? new Date(Number(attributes.SentTimestamp)).toISOString() : undefined,
            ...deadLetterReason(m.MessageId ?? "", body),
          };
        });
      } finally {
        await release(messages);
      }
    });

  /** Sends one dead-lettered record back to the main queue and deletes it from the DLQ. */
  const redrive = (messageId: string) =>
    serialDlq(async () => {
      const messages = await receiveDeadLetters();
      const found = messages.find((m) => m.MessageId === messageId);
      try {
        if (!found) throw new NotFoundError(`message ${messageId} is not in the dead-letter queue (redriven already?)`);
        const sent = await sqs.send(new SendMessageCommand({ QueueUrl: info.queueUrl, MessageBody: found.Body ?? "" }));
        // Said before the delete: the poller may take the new record (and log it) at once.
        record("action", `redrove dead-lettered record ${messageId} to the main queue as ${sent.MessageId}`, { message_id: messageId, new_message_id: sent.MessageId });
        await sqs.send(new DeleteMessageCommand({ QueueUrl: info.deadLetterQueueUrl, ReceiptHandle: found.ReceiptHandle! }));
        if (sent.MessageId) {
          // The same publish, again: its entry in the Messages tab follows the new record.
          const entry = messageLog.get(messageKeys.get(messageId) ?? "");
          if (entry) {
            entry.recordIds.push(sent.MessageId);
            messageKeys.set(sent.MessageId, entry.key);
            noteMessage(entry, "queued", `redriven from the dead-letter queue as record ${sent.MessageId}`);
          }
        }
        return { messageId, newMessageId: sent.MessageId };
      } finally {
        await release(messages.filter((m) => m !== found));
      }
    });

  function liveConnection(body: Record<string, unknown>): GatewayConnection {
    const id = body.connectionId;
    if (typeof id !== "string" || id === "") throw new TypeError("connectionId is required (a live connection's id)");
    const connection = requireParts().api.connections.get(id);
    if (!connection || connection.closing) throw new NotFoundError(`connection ${id} is not live (closed already?)`);
    return connection;
  }

  async function publish(body: Record<string, unknown>) {
    const { notifier } = requireParts();
    const mode = body.mode ?? "room";
    if (mode === "raw") {
      if (typeof body.body !== "string" || body.body === "") throw new TypeError("body is required: the raw queue message text");
      const sent = await sqs.send(new SendMessageCommand({ QueueUrl: info.queueUrl, MessageBody: body.body }));
      record("action", `sent a raw queue record ${sent.MessageId} (not validated)`, { message_id: sent.MessageId });
      if (sent.MessageId) noteMessage(messageEntry({ recordId: sent.MessageId }), "queued", "queued: a raw body from the console (not validated)");
      return { messageId: sent.MessageId };
    }
    if (!("data" in body) || body.data === undefined) throw new TypeError("data is required (any JSON value)");
    const sender = typeof body.userId === "string" && body.userId !== "" ? body.userId : null;
    // The SDK checks the key (docs/protocol.md#publishing-from-an-app-backend) and names what it refuses.
    const idempotencyKey = body.idempotencyKey as string | undefined;
    const keyed = idempotencyKey === undefined ? {} : { idempotency_key: idempotencyKey };
    if (mode === "user") {
      // The SDK's user-channel publish (docs/protocol.md#rooms-and-user-channels): every connection of that user, in any room.
      if (typeof body.toUserId !== "string" || body.toUserId === "") throw new TypeError("toUserId is required: the user to publish to");
      const { messageId } = await notifier.publishToUser({ userId: body.toUserId, data: body.data, senderId: sender, idempotencyKey });
      record("action", `published ${messageId} to user ${body.toUserId}`, { message_id: messageId, to_user_id: body.toUserId, ...keyed });
      queued(messageId, `user:${body.toUserId}`);
      return { messageId };
    }
    if (mode === "rooms") {
      const { messageId } = await notifier.publish({ roomIds: body.roomIds as string[], userId: sender, data: body.data, idempotencyKey });
      const count = Array.isArray(body.roomIds) ? body.roomIds.length : 0;
      record("action", `published ${messageId} to ${count} rooms`, { message_id: messageId, rooms: count, ...keyed });
      return { messageId };
    }
    if (mode !== "room") throw new TypeError(`mode must be "room", "rooms", "user" or "raw", got ${JSON.stringify(mode)}`);
    const { messageId } = await notifier.publish({ roomId: body.roomId as string, userId: sender, data: body.data, idempotencyKey });
    record("action", `published ${messageId} to room ${text(body.roomId)}`, { message_id: messageId, room_id: body.roomId, ...keyed });
    queued(messageId, text(body.roomId));
    return { messageId };
  }

  /** A publish from the console, in the Messages tab before the deliver handler takes it (unless it already has). */
  function queued(notificationId: string, roomId: string): void {
    const entry = messageEntry({ notificationId });
    entry.roomId ??= roomId;
    if (entry.version === 0) noteMessage(entry, "queued", "queued from the console");
  }

  async function sendFrame(body: Record<string, unknown>) {
    const connection = liveConnection(body);
    if (!("data" in body) || body.data === undefined) throw new TypeError("data is required: the JSON frame to send");
    await management.send(new PostToConnectionCommand({ ConnectionId: connection.id, Data: Buffer.from(JSON.stringify(body.data), "utf8") }));
    record("action", `sent a frame to ${connection.id} through @connections POST`, who(connection));
    return { sent: true };
  }

  async function closeOne(body: Record<string, unknown>) {
    const connection = liveConnection(body);
    closeNotes.set(connection.id, "closed from the console (@connections DELETE)");
    await management.send(new DeleteConnectionCommand({ ConnectionId: connection.id }));
    return { closed: true };
  }

  /**
   * Revokes the connection's token: by user and room for a one-room token, by user for a
   * rooms token (docs/protocol.md#tokens); with `scope: "user"` every token of the user. The SDK
   * closes every connection those tokens made.
   */
  async function revoke(body: Record<string, unknown>) {
    const { api, notifier } = requireParts();
    const connection = liveConnection(body);
    if (body.scope !== undefined && body.scope !== "token" && body.scope !== "user") throw new TypeError(`scope must be "token" or "user", got ${JSON.stringify(body.scope)}`);
    const { user_id: userId, room_id: roomId } = who(connection);
    const byRoom = roomId !== "" && body.scope !== "user";
    for (const other of api.connections.values()) {
      const same = text(other.authorizer.user_id) === userId && (!byRoom || text(other.authorizer.room_id) === roomId);
      if (same) closeNotes.set(other.id, `token revoked from the console (${byRoom ? `user ${userId} in room ${roomId}` : `every token of user ${userId}`})`);
    }
    const { closedConnections } = await notifier.revokeToken(byRoom ? { userId, roomId } : { userId });
    record("action", `revoked ${userId}'s token${byRoom ? ` for room ${roomId}` : "s"}: ${closedConnections} connection(s) closed`, { user_id: userId, room_id: roomId, closed: closedConnections });
    return { closedConnections };
  }

  const readers: Record<string, (query: URLSearchParams) => Promise<unknown>> = {
    "/console/api/state": (query) => state(Number(query.get("after") ?? 0) || 0),
    "/console/api/streams": () => streams(),
    "/console/api/history": history,
    "/console/api/dead-letters": () => peekDeadLetters(),
    // Newest first.
    "/console/api/messages": async () => ({ version: messagesVersion, maxReceiveCount: queue.maxReceiveCount, retryDelaySeconds: queue.retryDelaySeconds, messages: [...messageLog.values()].reverse() }),
    // Newest first.
    "/console/api/lifecycle": async () => ({ version: lifecycleVersion, eventBusName: info.eventBusName ?? null, events: [...lifecycleLog].reverse() }),
    // Where the CLI's `--hub PORT` finds this hub's endpoints and dev secrets: a path, no secret.
    [HUB_STATE_PATH]: async () => ({ httpUrl: info.httpUrl, pid: process.pid, stateFile: options.stateFile?.() ?? null }),
  };
  const actions: Record<string, (body: Record<string, unknown>) => Promise<unknown>> = {
    "/console/api/publish": publish,
    "/console/api/send": sendFrame,
    "/console/api/close": closeOne,
    "/console/api/revoke": revoke,
    "/console/api/redrive": (body) => {
      if (typeof body.messageId !== "string" || body.messageId === "") throw new TypeError("messageId is required (a dead-lettered record's id)");
      return redrive(body.messageId);
    },
  };

  /** Answers `/` and `/console/...`; false for any other path (the demo's). */
  function handle(request: http.IncomingMessage, response: http.ServerResponse): boolean {
    const target = splitTarget(request.url);
    if (!target || (target.path !== "/" && target.path !== "/console" && !target.path.startsWith("/console/"))) return false;
    const json = (status: number, body: unknown) => sendJson(response, status, body);
    const refusal = loopbackRefusal(request, info);
    if (refusal) {
      log.warn("console request refused", { reason: refusal, method: request.method });
      json(403, { message: `Forbidden: ${refusal}` });
      return true;
    }
    if (request.method === "GET" && (target.path === "/" || target.path === "/console")) {
      sendPackageFile(response, "local/pages/console.html");
      return true;
    }
    if (request.method === "GET" && target.path === "/console/console.js") {
      sendPackageFile(response, "local/pages/console.js");
      return true;
    }
    const reader = request.method === "GET" ? readers[target.path] : undefined;
    const action = request.method === "POST" ? actions[target.path] : undefined;
    if (!reader && !action) {
      json(404, { message: "Not Found" });
      return true;
    }
    const work = reader ? reader(target.query) : readJson(request).then((body) => action!(body));
    work.then(
      (result) => json(200, result),
      (err: unknown) => {
        const status = statusOfError(err);
        if (status === 500) log.error("console request failed", { path: target.path, ...describeError(err) });
        json(status, { error: (err as Error)?.message ?? String(err) });
      },
    );
    return true;
  }

  return {
    observer,
    /** Give it the handlers' hub events (the hub's event bus). */
    observe,
    /** Give it each lifecycle event the bus takes (local/eventBridge.ts): the Events tab. */
    observeLifecycle(event: BusEvent): void {
      lifecycleLog.push(event);
      if (lifecycleLog.length > LIFECYCLE_KEPT) lifecycleLog.splice(0, lifecycleLog.length - LIFECYCLE_KEPT);
      lifecycleVersion++;
    },
    attach(hubParts: { api: ApiGateway; notifier: Notifier }): void {
      parts = hubParts;
    },
    handle,
  };
}

export type HubConsole = ReturnType<typeof createHubConsole>;
