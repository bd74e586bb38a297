/**
 * `--events-url` (`startLocalHub({ eventsUrl })`): each lifecycle event the local bus takes
 * (local/eventBridge.ts) is POSTed to the URL, one event per request, as an EventBridge API
 * destination sends it: the event's JSON (`version`, `id`, `detail-type`, `source`, `time`,
 * `detail`...) with `content-type: application/json`. Deployed, an app reaches the same webhook
 * with a rule on the hub's bus and an API destination target.
 *
 * One request at a time, in the order the bus took them. No answer, 429 or 5xx: sent again
 * with backoff (FORWARD_RETRY); any other status or the last failure: one error log line
 * naming the URL, the event and why, and the next event goes. An API destination retries
 * for up to 24 hours; a local hub's few tries keep a dead URL from holding the rest.
 */
import * as http from "http";
import * as https from "https";
import type { Logger } from "../core/log";
import type { BusEvent } from "./eventBridge";

export interface ForwardRetry {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const FORWARD_RETRY: ForwardRetry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 3_000 };
/** Events waiting past this are dropped (said in the log): a dead URL must not grow the hub's memory. */
export const FORWARD_QUEUE_LIMIT = 10_000;
const REQUEST_TIMEOUT_MS = 5_000;

export interface EventsForwarder {
  send(event: BusEvent): void;
  /** Resolves once every event sent so far is delivered or given up. */
  idle(): Promise<void>;
  /** Delivered, given up and dropped so far. */
  readonly counts: { delivered: number; failed: number; dropped: number };
  stop(): Promise<void>;
}

/** The URL, checked: http(s) only. */
export function checkEventsUrl(raw: string, owner: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`${owner}: eventsUrl must be an http:// or https:// URL, got "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`${owner}: eventsUrl must be an http:// or https:// URL, got "${raw}"`);
  return url;
}

function post(url: URL, body: string): Promise<{ status: number; error?: string }> {
  return new Promise((resolve) => {
    const request = (url.protocol === "https:" ? https : http).request(
      url,
      { method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) }, timeout: REQUEST_TIMEOUT_MS },
      (response) => {
        response.resume();
        response.once("end", () => resolve({ status: response.statusCode ?? 0 }));
        response.once("error", (err: NodeJS.ErrnoException) => resolve({ status: 0, error: err.code ?? err.message }));
      },
    );
    request.once("timeout", () => request.destroy(Object.assign(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`), { code: "TimeoutError" })));
    request.once("error", (err: NodeJS.ErrnoException) => resolve({ status: 0, error: err.code ?? err.message }));
    request.end(body);
  });
}

export function startEventsForwarder(rawUrl: string, log: Logger, retry: ForwardRetry = FORWARD_RETRY): EventsForwarder {
  const url = checkEventsUrl(rawUrl, "startLocalHub");
  const queue: BusEvent[] = [];
  const counts = { delivered: 0, failed: 0, dropped: 0 };
  let running: Promise<void> | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function deliver(event: BusEvent): Promise<void> {
    const body = JSON.stringify(event);
    for (let attempt = 1; ; attempt++) {
      const { status, error } = await post(url, body);
      if (status >= 200 && status < 300) {
        counts.delivered++;
        return;
      }
      const passing = status === 0 || status === 429 || status >= 500;
      if (!passing || attempt >= retry.attempts || stopped) {
        counts.failed++;
        log.error(`--events-url: lifecycle event not delivered to ${url.href}`, {
          event_id: event.detail.event_id,
          detail_type: event["detail-type"],
          attempts: attempt,
          ...(status ? { http_status: status } : { error }),
          gave_up: passing ? "retries spent" : `HTTP ${status} is not retried`,
        });
        return;
      }
      await sleep(Math.floor(Math.random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt)));
    }
  }

  async function drain(): Promise<void> {
    while (queue.length && !stopped) await deliver(queue.shift()!);
    running = undefined;
  }

  return {
    counts,
    send(event) {
      if (stopped) return;
      if (queue.length >= FORWARD_QUEUE_LIMIT) {
        counts.dropped++;
        log.error(`--events-url: ${FORWARD_QUEUE_LIMIT} events already waiting for ${url.href}; dropped one`, { event_id: event.detail.event_id, detail_type: event["detail-type"] });
        return;
      }
      queue.push(event);
      running ??= drain();
    },
    idle: async () => {
      while (running) await running;
    },
    async stop() {
      stopped = true;
      wake?.();
      await running;
      if (queue.length) log.warn(`--events-url: hub stopping; ${queue.length} lifecycle event(s) not sent to ${url.href}`);
    },
  };
}
