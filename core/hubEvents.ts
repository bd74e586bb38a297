/**
 * What the handlers did, as typed events: a refused or allowed handshake, a connection
 * recorded or refused, a disconnect, each queue record's outcome, a post that failed or
 * answered 410. Programs (the local hub's console, tests) read these; people read the
 * structured log line `logObserver` writes for each, which is all a Lambda does with them.
 *
 * Events carry ids, codes and counts, never a token, a secret or a whole Lambda event (which
 * holds the token in its query string or headers).
 */
import { describeError, type LogFields, type Logger, type LogLevel } from "./log";

/** An error as an event carries it: its name and message (and an SDK error's HTTP status). */
export interface ErrorSummary {
  name: string;
  message: string;
  httpStatus?: number;
}

export function errorSummary(err: unknown): ErrorSummary {
  const described = describeError(err);
  const httpStatus = typeof described.http_status === "number" ? described.http_status : undefined;
  return { name: String(described.error), message: String(described.error_message ?? described.error), ...(httpStatus ? { httpStatus } : {}) };
}

/** Who a handshake was for, as far as the token said: the room of a seed token, else how many rooms it grants. */
export interface TokenHolder {
  userId: string;
  roomId?: string;
  grantCount?: number;
}

/**
 * The authorizer refused a handshake (a Deny policy, 403). `reason` is a code: `missing_token`,
 * `token_expired`, `no_token_row`, `secret_unavailable`... (handlers/authorizer.ts).
 */
export interface ConnectDenied extends Partial<TokenHolder> {
  type: "connect.denied";
  requestId?: string;
  reason: string;
  /** What failed, when the refusal comes from a dependency (the secret, the auth table). */
  error?: ErrorSummary;
}

export interface ConnectAllowed extends TokenHolder {
  type: "connect.allowed";
  requestId?: string;
}

/** `$connect` recorded the connection. */
export interface Connected {
  type: "connected";
  connectionId: string;
  userId: string;
  roomId?: string;
}

/**
 * Why `$connect` refused a connection the authorizer had allowed: no authorizer context (the
 * route deployed without it), its row could not be written, its token row could not be read
 * again, or the token was revoked between the authorizer and `$connect`.
 */
export type ConnectRefusalReason = "no_authorizer_context" | "row_not_written" | "recheck_failed" | "revoked_meanwhile";

export interface ConnectRefused {
  type: "connect.refused";
  connectionId: string;
  userId?: string;
  roomId?: string;
  reason: ConnectRefusalReason;
  error?: ErrorSummary;
}

export interface Disconnected {
  type: "disconnected";
  connectionId: string;
}

/** `$disconnect` could not delete the row: the next post to it answers 410 and removes it. */
export interface DisconnectFailed {
  type: "disconnect.failed";
  connectionId: string;
  error: ErrorSummary;
}

/** What a delivery of one notification did: the fan-out's counts. */
export interface DeliverySummary {
  /** The notification's id (a publish's message id; a chunk carries its notification's). */
  notificationId: string;
  roomId: string;
  /** A chunk of a big room or a retry of failed connections, not the room's first delivery. */
  chunk: boolean;
  /** The frame's place in its room's stream; unset for chunks and with streams off. */
  seq?: number;
  /** The stream already held this notification (a redelivery): its first seq and bytes were sent again. */
  redelivered: boolean;
  delivered: number;
  gone: number;
  /** Connections whose posts kept failing, `deferred` ones included. */
  failed: number;
  /** Of `failed`, connections the budget held back (requeued with the same frame, never dead-lettered). */
  deferred?: number;
  /** Connections left to other invocations (chunks of a big room). */
  handedOff: number;
  itemsRead: number;
  capacityUnits: number;
  /**
   * Another queue message holds this notification (its idempotency key published again, or a
   * room of a multi-room publish sent twice) and delivers it: this record posted nothing.
   */
  heldBy?: string;
}

interface QueueRecord {
  /** The SQS message id of the record. */
  messageId: string;
  /** ApproximateReceiveCount: 1 the first time, more on each redelivery. */
  receiveCount: number;
}

/** The record is done: SQS deletes it. Connections that kept failing went back on the queue (`requeued`). */
export interface RecordDelivered extends QueueRecord, DeliverySummary {
  type: "record.delivered";
  requeued: boolean;
}

/** A publish to several rooms went back on the queue as one body per room, each delivered as its own record. */
export interface RecordSplit extends QueueRecord {
  type: "record.split";
  /** The publish's id (its rooms' notification ids are derived from it, or from its idempotency key). */
  notificationId: string;
  rooms: number;
}

/** A presence diff flush the hub queued for itself (core/presence.ts scheduleFlush): `sent` false when there was nothing left to send or its interval had not ended. */
export interface RecordFlushed extends QueueRecord {
  type: "record.flushed";
  roomId: string;
  sent: boolean;
}

/**
 * The record can never be delivered (not JSON, no room, wrong types, too big; `code` from
 * core/messages.ts, or `unexpected_error`): reported failed, it ends in the dead-letter queue.
 */
export interface RecordRejected extends QueueRecord {
  type: "record.rejected";
  code: string;
  reason: string;
  error?: ErrorSummary;
}

/**
 * Why a valid record was reported failed, for SQS to redeliver it: the delivery threw
 * (`delivery_failed`), another invocation is storing the same message (`stream_busy`), its
 * failed connections could not be requeued (`requeue_failed`), or connections of a chunk kept
 * failing (`delivery_incomplete`), or a multi-room publish's rooms could not be requeued (`split_failed`).
 */
export type RecordFailureCause = "delivery_failed" | "stream_busy" | "requeue_failed" | "delivery_incomplete" | "split_failed";

export interface RecordFailed extends QueueRecord {
  type: "record.failed";
  cause: RecordFailureCause;
  roomId: string;
  notificationId: string;
  error?: ErrorSummary;
  /** What the delivery did before it was given up (not for `delivery_failed` or `stream_busy`). */
  summary?: DeliverySummary;
}

/** One record's outcome in a deliver batch: only `record.delivered`, `record.split` and `record.flushed` are not reported in `batchItemFailures`. */
export type RecordOutcome = RecordDelivered | RecordSplit | RecordFlushed | RecordRejected | RecordFailed;

/** A post to one connection kept failing (retries spent, or a status not worth retrying). */
export interface PostFailed {
  type: "post.failed";
  connectionId: string;
  attempts: number;
  httpStatus?: number;
  /** The error type API Gateway answered, or the name of what was thrown. */
  error?: string;
  errorMessage?: string;
}

/**
 * A post answered 410 Gone: the connection's row was removed, kept (written within the
 * handshake grace: the client may still be opening), already absent, or could not be deleted
 * (TTL takes it).
 */
export interface PostGone {
  type: "post.gone";
  connectionId: string;
  row: "removed" | "kept" | "absent" | "not_deleted";
  error?: ErrorSummary;
}

/**
 * Lifecycle events (core/lifecycleEvents.ts) that could not be put on the bus: refused for good
 * (`error`: EventBridge's error type or entry code), or still failing when the retries ran out.
 * Each event whole (ids, reason, time: no secret), so it can be replayed from the log line.
 */
export interface LifecycleFailed {
  type: "lifecycle.failed";
  attempts: number;
  error: string;
  errorMessage: string;
  events: ({ detailType: string; event_id: string; at: number } & Record<string, unknown>)[];
}

/**
 * One run of presence's sweep (handlers/sweep.ts): leaves decided, diffs sent, and the liveness
 * pass (core/liveness.ts): rows read, suspects (stale `seen_at`), how many a GET found alive, how
 * many were removed as dead, and how many wait for the next run (past the run's share of the budget).
 */
export interface SweepDone {
  type: "sweep.done";
  /** Lifecycle events put on the bus from the outbox (core/lifecycleOutbox.ts), and those read and still kept (the bus refused again). */
  outboxDrained: number;
  outboxLeft: number;
  left: number;
  diffs: number;
  scanned: number;
  /** False: the Scan stopped at its deadline with rows left unread (core/liveness.ts). */
  scanComplete: boolean;
  suspects: number;
  alive: number;
  removed: number;
  /** Of the removed: closed with @connections DELETE, silent past their told ping rate (core/liveness.ts deadAfterMs). */
  closed: number;
  deferred: number;
  durationMs: number;
}

export type HubEvent = ConnectDenied | ConnectAllowed | Connected | ConnectRefused | Disconnected | DisconnectFailed | RecordOutcome | PostFailed | PostGone | LifecycleFailed | SweepDone;
export type HubEventType = HubEvent["type"];

/** Told every event; must return at once and never throw (see `safeObserver`). */
export type HubObserver = (event: HubEvent) => void;

/** Calls every observer given; one that throws is skipped, never the handler's problem. */
export function combineObservers(...observers: (HubObserver | undefined)[]): HubObserver {
  const present = observers.filter((o): o is HubObserver => o !== undefined);
  return (event) => {
    for (const observer of present) {
      try {
        observer(event);
      } catch {
        // An observer's fault must not change what a handler answers.
      }
    }
  };
}

const errorFields = (error: ErrorSummary | undefined): LogFields =>
  error ? { error: error.name, error_message: error.message, ...(error.httpStatus ? { http_status: error.httpStatus } : {}) } : {};

const holderFields = (holder: Partial<TokenHolder>): LogFields => ({ user_id: holder.userId, room_id: holder.roomId, grant_count: holder.grantCount });

const summaryFields = (summary: DeliverySummary): LogFields => ({
  id: summary.notificationId,
  room_id: summary.roomId,
  chunk: summary.chunk,
  seq: summary.seq,
  redelivered: summary.redelivered || undefined,
  delivered: summary.delivered,
  gone: summary.gone,
  failed: summary.failed,
  deferred: summary.deferred || undefined,
  handed_off: summary.handedOff,
  items_read: summary.itemsRead,
  capacity_units: summary.capacityUnits,
  held_by: summary.heldBy,
});

const CONNECT_REFUSALS: Record<ConnectRefusalReason, [LogLevel, string]> = {
  no_authorizer_context: ["error", "connect without authorizer context"],
  row_not_written: ["error", "connection row not written"],
  recheck_failed: ["error", "token row re-check failed"],
  revoked_meanwhile: ["info", "connect refused: token revoked meanwhile"],
};

const RECORD_FAILURES: Record<RecordFailureCause, [LogLevel, string]> = {
  delivery_failed: ["error", "delivery failed"],
  stream_busy: ["warn", "message being stored by another invocation; retried later"],
  requeue_failed: ["error", "failed connections not requeued"],
  delivery_incomplete: ["warn", "delivery incomplete; record will be redelivered"],
  split_failed: ["error", "rooms of a multi-room publish not requeued; record will be redelivered"],
};

/** The structured log line for an event: its level, message and snake_case fields. */
export function logLineOf(event: HubEvent): [LogLevel, string, LogFields] {
  switch (event.type) {
    case "connect.denied":
      return [event.error ? "error" : "info", "connect denied", { reason: event.reason, status: 403, request_id: event.requestId, ...holderFields(event), ...errorFields(event.error) }];
    case "connect.allowed":
      return ["info", "connect allowed", { ...holderFields(event), request_id: event.requestId }];
    case "connected":
      return ["info", "connected", { connection_id: event.connectionId, room_id: event.roomId, user_id: event.userId }];
    case "connect.refused": {
      const [level, message] = CONNECT_REFUSALS[event.reason];
      return [level, message, { connection_id: event.connectionId, room_id: event.roomId, user_id: event.userId, reason: event.reason, ...errorFields(event.error) }];
    }
    case "disconnected":
      return ["info", "disconnected", { connection_id: event.connectionId }];
    case "disconnect.failed":
      return ["error", "connection row not deleted", { connection_id: event.connectionId, ...errorFields(event.error) }];
    case "record.delivered": {
      const fields = { message_id: event.messageId, receive_count: event.receiveCount, ...summaryFields(event) };
      return event.requeued ? ["warn", "delivered; failed connections requeued", fields] : ["info", "delivered", fields];
    }
    case "record.split":
      return ["info", "split into one body per room", { message_id: event.messageId, receive_count: event.receiveCount, id: event.notificationId, rooms: event.rooms }];
    case "record.flushed":
      return ["info", event.sent ? "presence diff sent" : "presence diff: nothing to send", { message_id: event.messageId, receive_count: event.receiveCount, room_id: event.roomId }];
    case "record.rejected":
      return ["error", "record rejected", { message_id: event.messageId, receive_count: event.receiveCount, code: event.code, reason: event.reason, ...errorFields(event.error) }];
    case "record.failed": {
      const [level, message] = RECORD_FAILURES[event.cause];
      return [
        level,
        message,
        { message_id: event.messageId, receive_count: event.receiveCount, room_id: event.roomId, id: event.notificationId, ...(event.summary ? summaryFields(event.summary) : {}), ...errorFields(event.error) },
      ];
    }
    case "post.failed":
      return ["warn", "post to connection failed", { connection_id: event.connectionId, attempts: event.attempts, http_status: event.httpStatus, error: event.error, error_message: event.errorMessage }];
    case "post.gone":
      if (event.row === "kept") return ["info", "post answered 410 while the connection may still be opening; row kept", { connection_id: event.connectionId }];
      if (event.row === "not_deleted") return ["warn", "stale connection row not deleted", { connection_id: event.connectionId, ...errorFields(event.error) }];
      return ["debug", "post answered 410; connection removed", { connection_id: event.connectionId }];
    case "lifecycle.failed":
      return ["error", "lifecycle events not put on the bus", { attempts: event.attempts, error: event.error, error_message: event.errorMessage, count: event.events.length, events: event.events }];
    case "sweep.done":
      return [
        event.deferred > 0 || event.outboxLeft > 0 || !event.scanComplete ? "warn" : "info",
        !event.scanComplete
          ? "sweep done; the Scan stopped at its deadline with rows unread"
          : event.deferred > 0
            ? "sweep done; suspects left for the next run"
            : event.outboxLeft > 0
              ? "sweep done; lifecycle events still in the outbox"
              : "sweep done",
        { scan_complete: event.scanComplete, outbox_drained: event.outboxDrained, outbox_left: event.outboxLeft, left: event.left, diffs: event.diffs, scanned: event.scanned, suspects: event.suspects, alive: event.alive, removed: event.removed, closed: event.closed, deferred: event.deferred, duration_ms: event.durationMs },
      ];
  }
}

/** The default observer (a Lambda's): one structured JSON log line per event. */
export function logObserver(log: Logger): HubObserver {
  return (event) => {
    const [level, message, fields] = logLineOf(event);
    log[level](message, fields);
  };
}

/** The observer of a handler's dependencies: the one given (wrapped so it cannot throw), else the log's. */
export function observerOf(deps: { log: Logger; observe?: HubObserver }): HubObserver {
  return combineObservers(deps.observe ?? logObserver(deps.log));
}
