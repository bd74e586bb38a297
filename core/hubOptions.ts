/**
 * The rules of the hub's options, in one place for the two places that take them: the
 * component's arguments (components/hub/settings.ts `normalizeArgs`) and the local hub's
 * options (local/index.ts `startLocalHub`). Pure functions: each returns the value or throws a
 * {@link HubOptionError} naming the owner, the key and the allowed range.
 *
 * @example
 * checkRetentionHours(24, "NotificationHub"); // 24
 * checkRetentionHours(-1, "startLocalHub");   // throws: startLocalHub: history.retentionHours must be ...
 */
import { MAX_ROOMS_PER_CONNECTION_LIMIT } from "./rooms";

/** Who takes the option: the message starts with it. */
export type OptionOwner = "NotificationHub" | "startLocalHub";

export class HubOptionError extends RangeError {
  override readonly name = "HubOptionError";
}

/** A whole number within [min, max]. */
export function checkWholeNumber(value: number, key: string, min: number, max: number, owner: OptionOwner): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new HubOptionError(`${owner}: ${key} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/** One of the allowed strings. */
export function checkOneOf<T extends string>(value: string, key: string, allowed: readonly T[], owner: OptionOwner): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new HubOptionError(`${owner}: ${key} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got "${value}"`);
  }
  return value as T;
}

/** The most hours frames are kept: a year. */
export const MAX_RETENTION_HOURS = 8760;

/** `history.retentionHours`: hours from 0 (streams off) to a year; fractions allowed. */
export function checkRetentionHours(value: number, owner: OptionOwner): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_RETENTION_HOURS) {
    throw new HubOptionError(`${owner}: history.retentionHours must be a number of hours from 0 (streams off) to ${MAX_RETENTION_HOURS}, got ${value}`);
  }
  return value;
}

/** `maxRoomsPerConnection`: rooms one connection may subscribe to, its user channel not counted. */
export function checkMaxRoomsPerConnection(value: number, owner: OptionOwner): number {
  return checkWholeNumber(value, "maxRoomsPerConnection", 1, MAX_ROOMS_PER_CONNECTION_LIMIT, owner);
}

/** `largeRoomChunkSize` (the component's `queue.largeRoomChunkSize`): connections one deliver call posts to before splitting the room. */
export function checkLargeRoomChunkSize(value: number, key: string, owner: OptionOwner): number {
  return checkWholeNumber(value, key, 1, 100_000, owner);
}

/** The default `delivery.postsPerSecond`: half the account's default 10,000, leaving the rest to the account's other APIs. */
export const DEFAULT_POSTS_PER_SECOND = 5_000;

/**
 * `delivery.postsPerSecond`: the most `@connections` requests per second the hub makes, every
 * caller together. At least 10 (one per 100 ms window of core/budget.ts), at most 100,000 (an
 * account quota raised tenfold).
 */
export function checkPostsPerSecond(value: number, owner: OptionOwner): number {
  return checkWholeNumber(value, "delivery.postsPerSecond", 10, 100_000, owner);
}

/** `queue.batchSize`: SQS hands a consumer 1 to 10 messages per receive. */
export function checkBatchSize(value: number, owner: OptionOwner): number {
  return checkWholeNumber(value, "queue.batchSize", 1, 10, owner);
}

/**
 * `queue.maxReceiveCount`: receives before a message moves to the dead-letter queue. SQS takes
 * 1 to 1000. A deployed hub needs at least 5, so a notification survives the retries of a
 * passing fault; the local hub takes SQS's whole range, so a test can dead-letter in seconds.
 */
export function checkMaxReceiveCount(value: number, owner: OptionOwner): number {
  return checkWholeNumber(value, "queue.maxReceiveCount", owner === "NotificationHub" ? 5 : 1, 1000, owner);
}

/** The component's and the local hub's `presence`, validated and defaulted (core/presence.ts). */
export interface PresenceOptions {
  enabled?: boolean;
  graceSeconds?: number;
  sweepSeconds?: number;
  eventMembersLimit?: number;
  /** How often clients send their keep-alive while presence is on (core/liveness.ts). */
  keepAliveSeconds?: number;
}

export interface PresenceSettingsChecked {
  graceSeconds: number;
  sweepSeconds: number;
  eventMembersLimit: number;
  keepAliveSeconds: number;
}

/**
 * `presence`: undefined when off. On AWS `sweepSeconds` is whole minutes from 60 (an
 * EventBridge schedule's `rate` has minutes); the local hub takes fractions, for tests.
 */
export function checkPresence(value: PresenceOptions | undefined, owner: OptionOwner, defaults: PresenceSettingsChecked): PresenceSettingsChecked | undefined {
  if (!value?.enabled) return undefined;
  const local = owner === "startLocalHub";
  const number = (v: number | undefined, key: string, fallback: number, min: number, max: number) => {
    const n = v ?? fallback;
    if (typeof n !== "number" || !Number.isFinite(n) || n < min || n > max || (!local && !Number.isInteger(n))) {
      throw new HubOptionError(`${owner}: presence.${key} must be a ${local ? "number" : "whole number"} from ${min} to ${max}, got ${n}`);
    }
    return n;
  };
  const sweepSeconds = number(value.sweepSeconds, "sweepSeconds", defaults.sweepSeconds, local ? 0.05 : 60, 3600);
  if (!local && sweepSeconds % 60 !== 0) throw new HubOptionError(`${owner}: presence.sweepSeconds must be whole minutes (60, 120, ...), got ${sweepSeconds}`);
  return {
    graceSeconds: number(value.graceSeconds, "graceSeconds", defaults.graceSeconds, 0, 3600),
    sweepSeconds,
    eventMembersLimit: checkWholeNumber(value.eventMembersLimit ?? defaults.eventMembersLimit, "presence.eventMembersLimit", 1, 10_000, owner),
    // At least 10 s on AWS (each ping is a billed message and a write); at most 540 s, under
    // API Gateway's 10-minute idle timeout with a minute of timer lateness to spare.
    keepAliveSeconds: number(value.keepAliveSeconds, "keepAliveSeconds", defaults.keepAliveSeconds, local ? 0.05 : 10, 540),
  };
}
