/**
 * List prices the cost scenario (bench/cost.ts) multiplies its counts by. Looked up on
 * 2026-12-07 from AWS's public price pages (and pages quoting their worked examples: the
 * pages show most rates only through a calculator). The stacks deploy to eu-west-1, but its
 * rates could not be confirmed that day, so these are us-east-1's; eu-west-1 is usually
 * equal or up to ~15 % higher. Every figure is the first (most expensive) tier after the
 * free tier. The managed services' prices are their public list prices, same date.
 */
export interface PriceTable {
  date: string;
  region: string;
  source: string;
  lambda: { perMillionRequests: number; perGbSecondArm64: number };
  dynamodb: { perMillionReadUnits: number; perMillionWriteUnits: number };
  sqs: { perMillionRequests: number };
  apiGateway: { perMillionMessages: number; perMillionConnectionMinutes: number };
  managed: { ablyPerMillionMessages: number; appSyncEventsPerMillionOperations: number };
}

export const PRICES: PriceTable = {
  date: "2026-12-07",
  region: "us-east-1 (eu-west-1 could not be confirmed)",
  source: "AWS public price pages for Lambda, DynamoDB, SQS and API Gateway; ably.com and aws.amazon.com/appsync pricing",
  // Lambda, arm64: requests, and duration for the first 7.5 billion GB-s a month.
  lambda: { perMillionRequests: 0.2, perGbSecondArm64: 0.0000133334 },
  // DynamoDB on-demand, Standard table class (the prices since November 2024).
  dynamodb: { perMillionReadUnits: 0.125, perMillionWriteUnits: 0.625 },
  // SQS standard queues: every 64 KB chunk of a request is one request.
  sqs: { perMillionRequests: 0.4 },
  // API Gateway WebSocket APIs: messages (first billion a month, per 32 KB, sent and received) and connection minutes.
  apiGateway: { perMillionMessages: 1.0, perMillionConnectionMinutes: 0.25 },
  // List prices per message (Ably) and per operation (AppSync Events: a publish and each delivery are one each).
  managed: { ablyPerMillionMessages: 2.5, appSyncEventsPerMillionOperations: 1.0 },
};
