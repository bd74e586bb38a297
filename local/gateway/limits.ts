/**
 * API Gateway's WebSocket limits and the timers and counters that enforce them: idle and
 * maximum connection time, stage throttling, frame and message sizes, unsent bytes.
 */
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
  /** Stage throttling of client messages (token bucket), as the component sets it. */
  throttle: { burstLimit: number; rateLimit: number };
  /**
   * Bytes posted to one connection but not yet taken by its client. Past this the client
   * is not reading: the connection is closed (its posts answer 410) so it never holds up
   * posts to anyone else, as a gateway must.
   */
  maxUnsentBytes: number;
}

/** API Gateway's quota on a WebSocket API's URL, in characters (not adjustable): a long `?token=` cannot fit, the header way can. */
export const MAX_URL_CHARACTERS = 4096;

export const API_GATEWAY_LIMITS: ApiGatewayLimits = {
  idleTimeoutMs: 10 * 60_000,
  maxConnectionMs: 2 * 60 * 60_000,
  maxMessageBytes: MAX_MESSAGE_BYTES,
  maxFrameBytes: 32 * 1024,
  throttle: { burstLimit: 500, rateLimit: 1000 },
  maxUnsentBytes: 1024 * 1024,
};

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
