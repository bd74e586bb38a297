/** The component's arguments, validated and defaulted: what decides which resources exist. */
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_MAX_ROOMS_PER_CONNECTION, MAX_ROOMS_PER_CONNECTION_LIMIT } from "../../core/rooms";
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
  deliverTimeoutSeconds: number;
  largeRoomChunkSize: number;
  alarms: false | { email?: pulumi.Input<string> };
  protectData: boolean;
  apiGatewayLogging: ApiGatewayLogging;
  /** Room streams: hours frames are kept; 0 = off. */
  retentionHours: number;
  /** Rooms one connection may subscribe to, its user channel not counted. */
  maxRoomsPerConnection: number;
}

function wholeNumber(value: number, name: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`NotificationHub: ${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
  return value;
}

function oneOf<T extends string>(value: string, name: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(`NotificationHub: ${name} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got "${value}"`);
  }
  return value as T;
}

/**
 * The retention periods CloudWatch Logs accepts (PutRetentionPolicy's `retentionInDays`):
 * any other number is refused by AWS only at deploy time, after the other resources were made.
 */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

/** `logRetentionDays` as CloudWatch Logs accepts it, or an error naming the key and the allowed values. */
export function checkLogRetentionDays(value: number): number {
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(value)) {
    throw new Error(`NotificationHub: logRetentionDays must be one of CloudWatch Logs' retention periods (${LOG_RETENTION_DAYS.join(", ")}), got ${value}`);
  }
  return value;
}

/** Hours from 0 (streams off) to a year; fractions allowed. */
function retentionHours(value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 8760) {
    throw new Error(`NotificationHub: history.retentionHours must be a number of hours from 0 (streams off) to 8760, got ${value}`);
  }
  return value;
}

export function normalizeArgs(args: NotificationHubArgs): Settings {
  const queue = args.queue ?? {};
  const deliverTimeoutSeconds = wholeNumber(queue.deliverTimeoutSeconds ?? DEFAULTS.deliverTimeoutSeconds, "queue.deliverTimeoutSeconds", 1, 900);
  const visibilityTimeoutSeconds = queue.visibilityTimeoutSeconds ?? 6 * deliverTimeoutSeconds;
  if (visibilityTimeoutSeconds < 6 * deliverTimeoutSeconds) {
    throw new Error(
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
    batchSize: wholeNumber(queue.batchSize ?? DEFAULTS.batchSize, "queue.batchSize", 1, 10),
    maxReceiveCount: wholeNumber(queue.maxReceiveCount ?? DEFAULTS.maxReceiveCount, "queue.maxReceiveCount", 5, 1000),
    visibilityTimeoutSeconds: wholeNumber(visibilityTimeoutSeconds, "queue.visibilityTimeoutSeconds", 0, 43_200),
    maximumConcurrency: wholeNumber(queue.maximumConcurrency ?? DEFAULTS.maximumConcurrency, "queue.maximumConcurrency", 2, 1000),
    deliverTimeoutSeconds,
    largeRoomChunkSize: wholeNumber(queue.largeRoomChunkSize ?? DEFAULTS.largeRoomChunkSize, "queue.largeRoomChunkSize", 1, 100_000),
    alarms: args.alarms === undefined || args.alarms === false ? false : args.alarms === true ? {} : args.alarms,
    protectData: args.protectData ?? false,
    apiGatewayLogging: oneOf(args.apiGatewayLogging ?? "off", "apiGatewayLogging", API_GATEWAY_LOGGING),
    retentionHours: retentionHours(args.history?.retentionHours ?? DEFAULT_RETENTION_HOURS),
    maxRoomsPerConnection: wholeNumber(args.maxRoomsPerConnection ?? DEFAULT_MAX_ROOMS_PER_CONNECTION, "maxRoomsPerConnection", 1, MAX_ROOMS_PER_CONNECTION_LIMIT),
  };
}

