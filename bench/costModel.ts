/**
 * The arithmetic of "What it costs": counts of billed units times a price table. Pure: the
 * cost scenario (bench/cost.ts) measures the counts, the tests check the sums.
 */
import type { PriceTable } from "./prices";

/** Billed units, for whatever the counts are of (one notification to a room, one connection-month). */
export interface BilledCounts {
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  dynamodbReadUnits: number;
  dynamodbWriteUnits: number;
  sqsRequests: number;
  apiGatewayMessages: number;
  connectionMinutes: number;
}

export interface Dollars {
  lambda: number;
  dynamodb: number;
  sqs: number;
  apiGateway: number;
  total: number;
}

export const ZERO_COUNTS: BilledCounts = { lambdaInvocations: 0, lambdaGbSeconds: 0, dynamodbReadUnits: 0, dynamodbWriteUnits: 0, sqsRequests: 0, apiGatewayMessages: 0, connectionMinutes: 0 };

/** Counts × prices, by service. */
export function dollarsFor(counts: BilledCounts, prices: PriceTable): Dollars {
  const lambda = (counts.lambdaInvocations * prices.lambda.perMillionRequests) / 1e6 + counts.lambdaGbSeconds * prices.lambda.perGbSecondArm64;
  const dynamodb = (counts.dynamodbReadUnits * prices.dynamodb.perMillionReadUnits + counts.dynamodbWriteUnits * prices.dynamodb.perMillionWriteUnits) / 1e6;
  const sqs = (counts.sqsRequests * prices.sqs.perMillionRequests) / 1e6;
  const apiGateway = (counts.apiGatewayMessages * prices.apiGateway.perMillionMessages + counts.connectionMinutes * prices.apiGateway.perMillionConnectionMinutes) / 1e6;
  return { lambda, dynamodb, sqs, apiGateway, total: lambda + dynamodb + sqs + apiGateway };
}

/** Every field of `dollars` times `factor`. */
export function scaleDollars(dollars: Dollars, factor: number): Dollars {
  return { lambda: dollars.lambda * factor, dynamodb: dollars.dynamodb * factor, sqs: dollars.sqs * factor, apiGateway: dollars.apiGateway * factor, total: dollars.total * factor };
}

/** Dollars per million deliveries (one notification reaching one connection), from the counts of one notification to a room of `roomSize`. */
export function perMillionDeliveries(perNotification: BilledCounts, roomSize: number, prices: PriceTable): Dollars {
  return scaleDollars(dollarsFor(perNotification, prices), 1e6 / roomSize);
}

/** Lambda GB-seconds: handler milliseconds at a memory size in MB (Lambda's GB is 1,024 MB). */
export function gbSeconds(handlerMs: number, memoryMb: number): number {
  return (handlerMs / 1000) * (memoryMb / 1024);
}

/** The managed services' list price per million deliveries: one publish shared by the room, plus one message per recipient. */
export function managedPerMillionDeliveries(roomSize: number, prices: PriceTable): { ably: number; appSyncEvents: number } {
  const units = 1 + 1 / roomSize;
  return { ably: prices.managed.ablyPerMillionMessages * units, appSyncEvents: prices.managed.appSyncEventsPerMillionOperations * units };
}

/** 30 days. */
export const MINUTES_PER_MONTH = 43_200;

/**
 * One client connected for a month: its connection minutes, its keep-alive pings (answered by
 * API Gateway, no Lambda), and a reconnect each time API Gateway closes it (every 2 hours),
 * each reconnect costing `perReconnect` (authorizer, $connect, $disconnect and their table units).
 */
export function connectionMonth(options: { keepAliveMinutes: number; maxConnectionMinutes: number; perReconnect: BilledCounts }): BilledCounts {
  const pings = Math.floor(MINUTES_PER_MONTH / options.keepAliveMinutes);
  const reconnects = MINUTES_PER_MONTH / options.maxConnectionMinutes;
  const r = options.perReconnect;
  return {
    lambdaInvocations: r.lambdaInvocations * reconnects,
    lambdaGbSeconds: r.lambdaGbSeconds * reconnects,
    dynamodbReadUnits: r.dynamodbReadUnits * reconnects,
    dynamodbWriteUnits: r.dynamodbWriteUnits * reconnects,
    sqsRequests: r.sqsRequests * reconnects,
    apiGatewayMessages: pings + r.apiGatewayMessages * reconnects,
    connectionMinutes: MINUTES_PER_MONTH,
  };
}
