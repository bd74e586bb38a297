/**
 * API Gateway's WebSocket limits and the timers and counters that enforce them: idle and
 * maximum connection time, stage throttling, frame and message sizes, unsent bytes.
 */
import { INTEGRATION_TIMEOUT_MS } from "../../core/events";
import { MAX_MESSAGE_BYTES } from "../../core/messages";

export interface ApiGatewayLimits {
  /** Close after this long without a client message. API Gateway: 10 minutes. */
  idleTimeoutMs: number;
  /** Close after this long, whatever happens. API Gateway: 2 hours. */
  maxConnectionMs: number;
  /** Whole message, across frames. API Gateway: 128 KB. */
  maxMessageBytes: number;
  /** One frame. API Gateway: 32 KB. */
  maxFrameBytes: number;
  /**
   * How long API Gateway waits for a route's integration. API Gateway: 29 s. Each route handler
   * is told what is left of it as Lambda's `getRemainingTimeInMillis()` (sendMessage stops
   * posting before it, handlers/sendMessage.ts); tests shorten it. The handler is not cut off.
   */
  integrationTimeoutMs: number;
  /** Stage throttling of client messages (token bucket), as the component sets it. */
  throttle: { burstLimit: number; rateLimit: number };
  /**
   * Bytes posted to one connection but not yet taken by its client. Past this the client
   * is not reading: the connection is closed (its posts answer 410) so it never holds up
   * posts to anyone else, as a gateway must.
   */
  maxUnsentBytes: number;
  /**
   * The account's budget in the Region, which AWS shares between every API of the account (and
   * every stack in it), not this API's own: `@connections` requests of every caller (posts,
   * GETs, DELETEs; the deliver Lambdas, the routes, an app revoking tokens) answer 429
   * `LimitExceededException` past it, and handshakes past the new-connection rate are refused
   * with 429 before the authorizer runs. Tests and benchmarks set small values.
   */
  account: AccountLimits;
}

/** API Gateway's account-level quotas, per Region (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html). */
export interface AccountLimits {
  /** Steady requests per second across the account's APIs and @connections calls. AWS: 10,000. */
  requestsPerSecond: number;
  /** Requests let through at once above the steady rate (token bucket depth). AWS: 5,000; default half of `requestsPerSecond`. */
  requestsBurst?: number;
  /** New WebSocket connections per second across the account. AWS: 500. */
  newConnectionsPerSecond: number;
}

/** API Gateway's quota on a WebSocket API's URL, in characters (not adjustable): a long `?token=` cannot fit, the header way can. */
export const MAX_URL_CHARACTERS = 4096;

export const API_GATEWAY_LIMITS: ApiGatewayLimits = {
  idleTimeoutMs: 10 * 60_000,
  maxConnectionMs: 2 * 60 * 60_000,
  integrationTimeoutMs: INTEGRATION_TIMEOUT_MS,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxFrameBytes: 32 * 1024,
  throttle: { burstLimit: 500, rateLimit: 1000 },
  maxUnsentBytes: 1024 * 1024,
  account: { requestsPerSecond: 10_000, requestsBurst: 5_000, newConnectionsPerSecond: 500 },
};

/** `limits` as the hub takes them: any part, `account` merged key by key. */
export type ApiGatewayLimitOptions = Partial<Omit<ApiGatewayLimits, "account">> & { account?: Partial<AccountLimits> };

export function resolveLimits(options: ApiGatewayLimitOptions = {}): ApiGatewayLimits {
  const account = { ...API_GATEWAY_LIMITS.account, ...options.account };
  // A rate given without its burst gets AWS's proportion (half a second's worth), not AWS's 5,000.
  if (options.account?.requestsPerSecond !== undefined && options.account.requestsBurst === undefined) account.requestsBurst = Math.max(1, Math.floor(account.requestsPerSecond / 2));
  return { ...API_GATEWAY_LIMITS, ...options, account };
}

/**
 * What the account budget let through and refused: every `@connections` request and every
 * handshake that reached the budget, with the busiest second (any 1 s span, in 100 ms steps).
 */
export interface AccountUsage {
  connectionsApi: { requests: number; throttled: number; peakPerSecond: number };
  newConnections: { accepted: number; throttled: number; peakPerSecond: number };
}

/** A counter of admitted events in 100 ms bins, to give the busiest 1 s span. */
function rateMeter() {
  const bins = new Map<number, number>();
  let peak = 0;
  return {
    add(now: number): void {
      const bin = Math.floor(now / 100);
      bins.set(bin, (bins.get(bin) ?? 0) + 1);
      let sum = 0;
      for (let b = bin - 9; b <= bin; b++) sum += bins.get(b) ?? 0;
      if (sum > peak) peak = sum;
      if (bins.size > 200) for (const key of bins.keys()) if (key < bin - 10) bins.delete(key);
    },
    get peak() {
      return peak;
    },
  };
}

/** The account budget: one token bucket for `@connections` requests, one for new connections, and their counts. */
export function accountBudget(account: AccountLimits) {
  const request = tokenBucket({ rateLimit: account.requestsPerSecond, burstLimit: account.requestsBurst ?? Math.max(1, Math.floor(account.requestsPerSecond / 2)) });
  const connection = tokenBucket({ rateLimit: account.newConnectionsPerSecond, burstLimit: account.newConnectionsPerSecond });
  const requests = rateMeter();
  const connections = rateMeter();
  const usage: AccountUsage = { connectionsApi: { requests: 0, throttled: 0, peakPerSecond: 0 }, newConnections: { accepted: 0, throttled: 0, peakPerSecond: 0 } };
  return {
    /** A `@connections` request: true when the budget admits it (else it answers 429). */
    admitRequest(): boolean {
      if (!request()) {
        usage.connectionsApi.throttled++;
        return false;
      }
      usage.connectionsApi.requests++;
      requests.add(Date.now());
      return true;
    },
    /** A handshake: true when the budget admits it (else it is refused with 429). */
    admitConnection(): boolean {
      if (!connection()) {
        usage.newConnections.throttled++;
        return false;
      }
      usage.newConnections.accepted++;
      connections.add(Date.now());
      return true;
    },
    usage(): AccountUsage {
      return {
        connectionsApi: { ...usage.connectionsApi, peakPerSecond: requests.peak },
        newConnections: { ...usage.newConnections, peakPerSecond: connections.peak },
      };
    },
  };
}


/** The stage's token bucket: a flood from one client is throttled before it reaches a Lambda. */
export function tokenBucket(throttle: ApiGatewayLimits["throttle"]): () => boolean {
  const bucket = { tokens: throttle.burstLimit, at: Date.now() };
  return () => {
    const now = Date.now();
    bucket.tokens = Math.min(throttle.burstLimit, bucket.tokens + ((now - bucket.at) / 1000) * throttle.rateLimit);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  };
}

/**
 * A connection's two clocks: idle (restarted by every client message or ping) and maximum
 * lifetime. Either one running out calls `expire`, which closes with 1001 as API Gateway does.
 */
export function connectionTimers(limits: Pick<ApiGatewayLimits, "idleTimeoutMs" | "maxConnectionMs">, expire: () => void) {
  let idle: NodeJS.Timeout | undefined;
  const lifetime = setTimeout(expire, limits.maxConnectionMs);
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(expire, limits.idleTimeoutMs);
  };
  touch();
  return {
    /** Client activity: the idle clock starts again. */
    touch,
    clear(): void {
      clearTimeout(idle);
      clearTimeout(lifetime);
    },
  };
}

/**
 * Watches the raw client→server byte stream for frame headers, since `ws` only reports
 * whole messages; API Gateway closes a connection whose frame exceeds 32 KB with 1009.
 */
export function frameSizeGuard(maxFrameBytes: number, onOversize: () => void): (chunk: Buffer) => void {
  let header = Buffer.alloc(0);
  let payloadLeft = 0;
  let tripped = false;
  return (chunk) => {
    let data = chunk;
    while (data.length > 0 && !tripped) {
      if (payloadLeft > 0) {
        const skipped = Math.min(payloadLeft, data.length);
        payloadLeft -= skipped;
        data = data.subarray(skipped);
        continue;
      }
      header = Buffer.concat([header, data]);
      data = Buffer.alloc(0);
      if (header.length < 2) return;
      let length = header[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (header.length < 4) return;
        length = header.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (header.length < 10) return;
        length = Number(header.readBigUInt64BE(2));
        offset = 10;
      }
      if (header[1] & 0x80) offset += 4; // masking key
      if (header.length < offset) return;
      if (length > maxFrameBytes) {
        tripped = true;
        onOversize();
        return;
      }
      data = header.subarray(offset);
      header = Buffer.alloc(0);
      payloadLeft = length;
    }
  };
}
