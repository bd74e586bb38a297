/**
 * List prices the cost scenario (bench/cost.ts) multiplies its counts by: eu-west-1 (Europe,
 * Ireland), the Region the stacks deploy to, on-demand, the first (most expensive) tier after
 * the free tier, as of 2026-12-07. AWS's price pages render their per-Region rates through a
 * calculator, not as page text, so each row says where its figure comes from and whether this
 * session could confirm it (`ROWS`): a row marked unconfirmed is the figure the project was
 * given for eu-west-1, checked for plausibility against us-east-1's published rate and
 * third-party lists, not read off AWS's page for the Region. The managed services' prices are
 * their public list prices, the same whatever the Region.
 */
export interface PriceTable {
  date: string;
  region: string;
  source: string;
  /** The stacks' functions are arm64 (components/hub/functions.ts); x86 is listed for comparison. */
  lambda: { perMillionRequests: number; perGbSecondArm64: number; perGbSecondX86: number };
  dynamodb: { perMillionReadUnits: number; perMillionWriteUnits: number };
  sqs: { perMillionRequests: number };
  apiGateway: { perMillionMessages: number; perMillionConnectionMinutes: number };
  /** The JWT secret's SecureString parameter is encrypted with a KMS key. Not in the per-notification figures. */
  kms: { perKeyMonth: number; perTenThousandRequests: number };
  /** Custom events put on a bus. Not in the per-notification figures (the hub puts none; presence's sweep schedule is free). */
  eventBridge: { perMillionCustomEvents: number };
  /** Every function's log lines. Not in the per-notification figures (depends on the log level and what a deployment keeps). */
  cloudWatchLogs: { perGbIngested: number };
  managed: { ablyPerMillionMessages: number; appSyncEventsPerMillionOperations: number };
}

/** Where one figure comes from. */
export interface PriceRow {
  item: string;
  price: string;
  /** The page the figure is published on. */
  url: string;
  /** Read for eu-west-1 this session (true), or given and only checked for plausibility (false). */
  confirmed: boolean;
  note?: string;
}

export const PRICES: PriceTable = {
  date: "2026-12-07",
  region: "eu-west-1 (Europe, Ireland)",
  source: "AWS price pages for API Gateway, Lambda, DynamoDB, SQS, KMS, EventBridge and CloudWatch (rows in bench/prices.ts ROWS); ably.com/pricing and aws.amazon.com/appsync/pricing",
  lambda: { perMillionRequests: 0.2, perGbSecondArm64: 0.0000133334, perGbSecondX86: 0.0000166667 },
  // On-demand, Standard table class, after the 50 % cut of November 2024.
  dynamodb: { perMillionReadUnits: 0.1415, perMillionWriteUnits: 0.7068 },
  // Standard queues: every 64 KB chunk of a request is one request.
  sqs: { perMillionRequests: 0.4 },
  // WebSocket APIs: messages (first billion a month, per 32 KB, sent and received) and connection minutes.
  apiGateway: { perMillionMessages: 1.14, perMillionConnectionMinutes: 0.285 },
  kms: { perKeyMonth: 1, perTenThousandRequests: 0.03 },
  eventBridge: { perMillionCustomEvents: 1 },
  cloudWatchLogs: { perGbIngested: 0.57 },
  // List prices per message (Ably) and per operation (AppSync Events: a publish and each delivery are one each).
  managed: { ablyPerMillionMessages: 2.5, appSyncEventsPerMillionOperations: 1.0 },
};

export const ROWS: readonly PriceRow[] = [
  {
    item: "API Gateway WebSocket messages",
    price: "$1.14 per million (first billion a month)",
    url: "https://aws.amazon.com/api-gateway/pricing/",
    confirmed: false,
    note: "AWS's page shows the rate only through its calculator; the same figure is on a third-party price list whose HTTP API rate ($1.11) is eu-west-1's (us-east-1: $1.00)",
  },
  { item: "API Gateway WebSocket connection minutes", price: "$0.285 per million", url: "https://aws.amazon.com/api-gateway/pricing/", confirmed: false, note: "as the row above" },
  { item: "Lambda requests", price: "$0.20 per million", url: "https://aws.amazon.com/lambda/pricing/", confirmed: false, note: "the same in us-east-1" },
  { item: "Lambda duration, arm64", price: "$0.0000133334 per GB-s (first 7.5 billion GB-s a month)", url: "https://aws.amazon.com/lambda/pricing/", confirmed: false, note: "the same in us-east-1" },
  { item: "Lambda duration, x86", price: "$0.0000166667 per GB-s (first 6 billion GB-s a month)", url: "https://aws.amazon.com/lambda/pricing/", confirmed: false, note: "the same in us-east-1; not used (the functions are arm64)" },
  {
    item: "DynamoDB on-demand write request units",
    price: "$0.7068 per million",
    url: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    confirmed: false,
    note: "half of eu-west-1's $1.4135 before the November 2024 cut, as us-east-1 went from $1.25 to $0.625 (eu-west-1's old rate from a third-party list)",
  },
  {
    item: "DynamoDB on-demand read request units",
    price: "$0.1415 per million",
    url: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    confirmed: false,
    note: "half of eu-west-1's $0.283 before the cut (same list); also quoted as $0.1413, a difference that moves the hub's figures below by less than $0.0001 and the seed's Scan-heavy room of 10 by $0.01",
  },
  { item: "SQS standard requests", price: "$0.40 per million (64 KB chunks)", url: "https://aws.amazon.com/sqs/pricing/", confirmed: false, note: "the same in us-east-1" },
  { item: "KMS", price: "$1 per key-month, $0.03 per 10,000 requests", url: "https://aws.amazon.com/kms/pricing/", confirmed: false, note: "the same in every commercial Region" },
  { item: "EventBridge custom events", price: "$1.00 per million", url: "https://aws.amazon.com/eventbridge/pricing/", confirmed: false },
  { item: "CloudWatch Logs ingestion (Standard class)", price: "$0.57 per GB", url: "https://aws.amazon.com/cloudwatch/pricing/", confirmed: false, note: "us-east-1: $0.50" },
  { item: "Ably messages", price: "$2.50 per million", url: "https://ably.com/pricing", confirmed: false, note: "unchanged from the table before" },
  { item: "AppSync Events operations", price: "$1.00 per million", url: "https://aws.amazon.com/appsync/pricing/", confirmed: false, note: "unchanged from the table before" },
];
