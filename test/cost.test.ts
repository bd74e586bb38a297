/**
 * The cost arithmetic (bench/costModel.ts): counts times prices, per million deliveries and
 * per connection-month. Known inputs, known dollars; nothing is timed.
 */
import { describe, expect, it } from "vitest";
import { connectionMonth, dollarsFor, gbSeconds, managedPerMillionDeliveries, perMillionDeliveries, ZERO_COUNTS, type BilledCounts } from "../bench/costModel";
import type { PriceTable } from "../bench/prices";
import { PRICES } from "../bench/prices";

/** Round prices, so every sum below can be checked by hand. */
const ROUND: PriceTable = {
  ...PRICES,
  lambda: { ...PRICES.lambda, perMillionRequests: 0.2, perGbSecondArm64: 0.00001 },
  dynamodb: { perMillionReadUnits: 0.1, perMillionWriteUnits: 1 },
  sqs: { perMillionRequests: 0.5 },
  apiGateway: { perMillionMessages: 1, perMillionConnectionMinutes: 0.25 },
  managed: { ablyPerMillionMessages: 2.5, appSyncEventsPerMillionOperations: 1 },
};

describe("cost arithmetic", () => {
  it("multiplies each service's counts by its prices", () => {
    const counts: BilledCounts = { lambdaInvocations: 1_000_000, lambdaGbSeconds: 100_000, dynamodbReadUnits: 10_000_000, dynamodbWriteUnits: 2_000_000, sqsRequests: 4_000_000, apiGatewayMessages: 3_000_000, connectionMinutes: 8_000_000 };
    const d = dollarsFor(counts, ROUND);
    expect(d.lambda).toBeCloseTo(0.2 + 1, 10);
    expect(d.dynamodb).toBeCloseTo(1 + 2, 10);
    expect(d.sqs).toBeCloseTo(2, 10);
    expect(d.apiGateway).toBeCloseTo(3 + 2, 10);
    expect(d.total).toBeCloseTo(11.2, 10);
  });

  it("spreads one notification's cost over its room's deliveries", () => {
    // One notification to 1,000 connections: 1 invocation, 1,000 posts, 10 read units, 2 write units, 3 SQS requests.
    const perNotification: BilledCounts = { ...ZERO_COUNTS, lambdaInvocations: 1, dynamodbReadUnits: 10, dynamodbWriteUnits: 2, sqsRequests: 3, apiGatewayMessages: 1_000 };
    const d = perMillionDeliveries(perNotification, 1_000, ROUND);
    // 1,000 notifications make a million deliveries.
    expect(d.apiGateway).toBeCloseTo(1, 10);
    expect(d.lambda).toBeCloseTo(0.0002, 10);
    expect(d.dynamodb).toBeCloseTo(0.001 + 0.002, 10);
    expect(d.sqs).toBeCloseTo(0.0015, 10);
    expect(d.total).toBeCloseTo(1.0047, 10);
  });

  it("turns handler time into GB-seconds", () => {
    expect(gbSeconds(1_000, 1_024)).toBe(1);
    expect(gbSeconds(200, 256)).toBeCloseTo(0.05, 12);
  });

  it("prices a connection-month: minutes, pings and a reconnect every 2 hours", () => {
    const month = connectionMonth({ keepAliveMinutes: 8, maxConnectionMinutes: 120, perReconnect: { ...ZERO_COUNTS, lambdaInvocations: 3, dynamodbWriteUnits: 4 } });
    expect(month.connectionMinutes).toBe(43_200);
    expect(month.apiGatewayMessages).toBe(5_400);
    expect(month.lambdaInvocations).toBe(1_080);
    expect(month.dynamodbWriteUnits).toBe(1_440);
    const d = dollarsFor(month, ROUND);
    expect(d.apiGateway).toBeCloseTo(0.0108 + 0.0054, 10);
    expect(d.lambda).toBeCloseTo(0.000216, 10);
    expect(d.dynamodb).toBeCloseTo(0.00144, 10);
  });

  it("gives the managed services' list price per delivery, the publish shared by the room", () => {
    expect(managedPerMillionDeliveries(10, ROUND).ably).toBeCloseTo(2.75, 10);
    expect(managedPerMillionDeliveries(1_000, ROUND).appSyncEvents).toBeCloseTo(1.001, 10);
  });
});
