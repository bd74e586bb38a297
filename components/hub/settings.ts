/** The component's arguments, validated and defaulted: what decides which resources exist. */
import * as pulumi from "@pulumi/pulumi";
import { PRESENCE_DEFAULTS } from "../../core/presence";
import {
  checkBatchSize,
  checkLargeRoomChunkSize,
  checkMaxReceiveCount,
  checkMaxRoomsPerConnection,
  checkOneOf,
  checkPostsPerSecond,
  checkPresence,
  checkRetentionHours,
  checkWholeNumber,
  DEFAULT_POSTS_PER_SECOND,
  HubOptionError,
  type PresenceSettingsChecked,
} from "../../core/hubOptions";
import { DEFAULT_MAX_ROOMS_PER_CONNECTION } from "../../core/rooms";
import { DEFAULT_RETENTION_HOURS } from "../../core/schema";
import type { NotificationHubArgs } from "../notificationHub";

export type ApiGatewayLogging = "off" | "ifUnset" | "existing";
export const API_GATEWAY_LOGGING: readonly ApiGatewayLogging[] = ["off", "ifUnset", "existing"];

export const DEFAULTS = {
  runtime: "nodejs22.x",
  logRetentionDays: 14,
  burstLimit: 500,
  rateLimit: 1000,
  batchSize: 10,
  maxReceiveCount: 5,
  maximumConcurrency: 10,
  bulkMaximumConcurrency: 10,
  postsPerSecond: DEFAULT_POSTS_PER_SECOND,
  deliverTimeoutSeconds: 30,
  largeRoomChunkSize: 1000,
};

/** Validated, defaulted settings that decide which resources exist. */
export interface Settings {
  stage: pulumi.Input<string>;
  runtime: pulumi.Input<string>;
  logRetentionDays: pulumi.Input<number>;
  allowClientMessages: boolean;
  burstLimit: pulumi.Input<number>;
  rateLimit: pulumi.Input<number>;
  batchSize: number;
  maxReceiveCount: number;
  visibilityTimeoutSeconds: number;
  maximumConcurrency: number;
  /** The bulk queue's mapping (chunks of big rooms). */
  bulkMaximumConcurrency: number;
  /** `delivery.postsPerSecond`: the hub's @connections budget, every caller together. */
  postsPerSecond: number;
  deliverTimeoutSeconds: number;
  largeRoomChunkSize: number;
  alarms: false | { email?: pulumi.Input<string> };
  protectData: boolean;
  apiGatewayLogging: ApiGatewayLogging;
  /** Room streams: hours frames are kept; 0 = off. */
  retentionHours: number;
  /** Rooms one connection may subscribe to, its user channel not counted. */
  maxRoomsPerConnection: number;
  /** Presence (core/presence.ts): undefined when off (no table, no routes, no schedule). */
  presence?: PresenceSettingsChecked;
}

const OWNER = "NotificationHub";
const wholeNumber = (value: number, name: string, min: number, max: number) => checkWholeNumber(value, name, min, max, OWNER);

/**
 * The retention periods CloudWatch Logs accepts (PutRetentionPolicy's `retentionInDays`):
 * any other number is refused by AWS only at deploy time, after the other resources were made.
 */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/** `logRetentionDays` as CloudWatch Logs accepts it, or an error naming the key and the allowed values. */
export function checkLogRetentionDays(value: number): number {
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(value)) {
    throw new HubOptionError(`NotificationHub: logRetentionDays must be one of CloudWatch Logs' retention periods (${LOG_RETENTION_DAYS.join(", ")}), got ${value}`);
  }
  return value;
}

export function normalizeArgs(args: NotificationHubArgs): Settings {
  const queue = args.queue ?? {};
  const deliverTimeoutSeconds = wholeNumber(queue.deliverTimeoutSeconds ?? DEFAULTS.deliverTimeoutSeconds, "queue.deliverTimeoutSeconds", 1, 900);
  const visibilityTimeoutSeconds = queue.visibilityTimeoutSeconds ?? 6 * deliverTimeoutSeconds;
  if (visibilityTimeoutSeconds < 6 * deliverTimeoutSeconds) {
    throw new HubOptionError(
      `NotificationHub: queue.visibilityTimeoutSeconds (${visibilityTimeoutSeconds}) must be at least 6 × the deliver timeout (${6 * deliverTimeoutSeconds}), or SQS redelivers messages still being delivered`,
    );
  }
  return {
    stage: args.stage ?? pulumi.getStack(),
    runtime: args.lambdaRuntime ?? DEFAULTS.runtime,
    // A plain number is checked here, before any resource exists; an Output or a Promise when it resolves.
    logRetentionDays: typeof (args.logRetentionDays ?? DEFAULTS.logRetentionDays) === "number"
      ? checkLogRetentionDays((args.logRetentionDays as number | undefined) ?? DEFAULTS.logRetentionDays)
      : pulumi.output(args.logRetentionDays as pulumi.Input<number>).apply(checkLogRetentionDays),
    allowClientMessages: args.allowClientMessages ?? true,
    burstLimit: args.throttle?.burstLimit ?? DEFAULTS.burstLimit,
    rateLimit: args.throttle?.rateLimit ?? DEFAULTS.rateLimit,
    batchSize: checkBatchSize(queue.batchSize ?? DEFAULTS.batchSize, OWNER),
    maxReceiveCount: checkMaxReceiveCount(queue.maxReceiveCount ?? DEFAULTS.maxReceiveCount, OWNER),
    visibilityTimeoutSeconds: wholeNumber(visibilityTimeoutSeconds, "queue.visibilityTimeoutSeconds", 0, 43_200),
    maximumConcurrency: wholeNumber(queue.maximumConcurrency ?? DEFAULTS.maximumConcurrency, "queue.maximumConcurrency", 2, 1000),
    bulkMaximumConcurrency: wholeNumber(queue.bulkMaximumConcurrency ?? DEFAULTS.bulkMaximumConcurrency, "queue.bulkMaximumConcurrency", 2, 1000),
    postsPerSecond: checkPostsPerSecond(args.delivery?.postsPerSecond ?? DEFAULTS.postsPerSecond, OWNER),
    deliverTimeoutSeconds,
    largeRoomChunkSize: checkLargeRoomChunkSize(queue.largeRoomChunkSize ?? DEFAULTS.largeRoomChunkSize, "queue.largeRoomChunkSize", OWNER),
    alarms: args.alarms === undefined || args.alarms === false ? false : args.alarms === true ? {} : args.alarms,
    protectData: args.protectData ?? false,
    apiGatewayLogging: checkOneOf(args.apiGatewayLogging ?? "off", "apiGatewayLogging", API_GATEWAY_LOGGING, OWNER),
    retentionHours: checkRetentionHours(args.history?.retentionHours ?? DEFAULT_RETENTION_HOURS, OWNER),
    maxRoomsPerConnection: checkMaxRoomsPerConnection(args.maxRoomsPerConnection ?? DEFAULT_MAX_ROOMS_PER_CONNECTION, OWNER),
    presence: checkPresence(args.presence, OWNER, PRESENCE_DEFAULTS),
  };
}

