/**
 * Posting to connections: everything between "this frame goes to that connection" and the
 * @connections API. Fan-out (deliver, sendMessage) and error replies post only through here.
 *
 * API Gateway has no broadcast, so each recipient is one signed HTTPS request and the
 * deliver Lambda's cost is its CPU per post. The SDK client spends most of a post in its
 * middleware stack; this path keeps only what a post needs:
 * - the SDK's own SigV4 signer (`@smithy/signature-v4`, no hand-written signing) with a
 *   node:crypto hash; the signing key is derived once a day and cached by the signer;
 * - the payload hash computed once per notification and handed to the signer as
 *   `x-amz-content-sha256` (the header the SDK client signs as well), so a room of 1,000
 *   hashes a 100 KB frame once, not 1,000 times;
 * - keep-alive sockets, capped per endpoint;
 * - a timeout that really aborts: the request's socket is destroyed. Requests in flight are
 *   capped at the socket count, so a post never waits in the agent's queue behind a slow one
 *   and its timer measures only its own request.
 *
 * Retries: 410 Gone removes the connection (its row and memberships); 429, 5xx and timeouts/broken sockets are
 * retried with full jitter; what still fails is returned for the caller to requeue.
 *
 * Budget: with a `budget` (core/budget.ts, `delivery.postsPerSecond`), every request of this
 * path waits for a token of the hub's shared budget after it has its socket and before it
 * is signed, so the budget counts requests as they start. A post whose caller's deadline
 * comes first is not sent and comes back `deferred`, as does one still throttled (429) after
 * its retries: the caller requeues it with its notification's frame.
 */
import * as crypto from "crypto";
import * as http from "http";
import * as https from "https";
import { SignatureV4 } from "@smithy/signature-v4";
import type { ChecksumConstructor } from "@smithy/types";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { explicitCredentials, MANAGEMENT_MAX_SOCKETS, MANAGEMENT_TIMEOUT_MS, regionFor, type ClientOptions, type Credentials } from "./aws";
import type { PostBudget, PostLane } from "./budget";
import { errorSummary, observerOf, type HubObserver } from "./hubEvents";
import { describeError, type Logger } from "./log";
import { removeConnection, type ConnectionRow } from "./tables";

/**
 * The @smithy/types Checksum the signer asks for, over node:crypto. HMACs keyed by a string
 * are memoized: in SigV4 only the steps that depend on the credentials alone use a string key
 * (the signer recomputes one of them, its cache key, on every request), so each is computed
 * once per credentials instead of once per post.
 */
export function sha256Class(): ChecksumConstructor {
  // Created per post path at run time (not at module level): Pulumi serializes module-level
  // values into the Lambda's code, and a cache has no business there.
  const memo = new Map<string, Uint8Array>();
  return class Sha256 {
    private hash: crypto.Hash | crypto.Hmac | undefined;
    private memoKey: string | undefined;
    constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {}
    private current(): crypto.Hash | crypto.Hmac {
      const secret = this.secret;
      if (!this.hash) {
        if (secret === undefined) this.hash = crypto.createHash("sha256");
        else if (typeof secret === "string") this.hash = crypto.createHmac("sha256", secret);
        else this.hash = crypto.createHmac("sha256", ArrayBuffer.isView(secret) ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength) : new Uint8Array(secret));
      }
      return this.hash;
    }
    update(data: Uint8Array): void {
      if (typeof this.secret === "string" && this.memoKey === undefined && !this.hash) {
        this.memoKey = `${this.secret}\u0000${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64")}`;
        if (memo.has(this.memoKey)) return;
      } else if (this.memoKey !== undefined) {
        this.memoKey = undefined; // more than one update: not a memoizable call
        throw new Error("Sha256: a keyed hash takes a single update");
      }
      this.current().update(data);
    }
    digest(): Promise<Uint8Array> {
      const key = this.memoKey;
      if (key !== undefined) {
        let value = memo.get(key);
        if (!value) {
          value = new Uint8Array(this.current().digest());
          if (memo.size >= 64) memo.clear(); // rotated credentials: start over
          memo.set(key, value);
        }
        return Promise.resolve(value);
      }
      return Promise.resolve(this.current().digest());
    }
    reset(): void {
      this.hash = undefined;
      this.memoKey = undefined;
    }
  };
}

/** A frame ready to post to any number of connections: its bytes and their hash, computed once. */
export interface PreparedFrame {
  readonly body: Buffer;
  /** The same bytes as text when prepared from text: node sends headers and a string body in one write. */
  readonly text?: string;
  readonly sha256: string;
  readonly contentLength: string;
}

/** What one POST got: `status` 0 means no response at all (timeout, refused, reset). */
export interface PostResponse {
  status: number;
  /** API Gateway's x-amzn-errortype, or the network error's code. */
  errorType?: string;
}

/** The signed request for one post: what goes on the wire. */
export interface SignedPost {
  method: "POST";
  path: string;
  headers: Record<string, string>;
}

/** How one post spends the budget: its lane, and when to give up waiting for a token (epoch ms). */
export interface PostOptions {
  lane?: PostLane;
  deadline?: number;
}

/** The errorType of a post that was never sent: its caller's deadline came before a budget token. */
export const NOT_SENT = "NotSentBudgetDeadline";

export interface ConnectionsApi {
  readonly endpoint: string;
  prepare(frame: string | Uint8Array): PreparedFrame;
  sign(connectionId: string, frame: PreparedFrame, signingDate?: Date): Promise<SignedPost>;
  post(connectionId: string, frame: PreparedFrame, options?: PostOptions): Promise<PostResponse>;
  /**
   * `GET @connections/{id}`: 200 while API Gateway holds the connection, 410 once it is gone
   * (the sweep's confirmation, core/liveness.ts). Same budget, sockets and timeout as a post.
   */
  get?(connectionId: string, options?: PostOptions): Promise<PostResponse>;
  /**
   * `DELETE @connections/{id}`: API Gateway closes the connection (2xx; 410 if already gone).
   * The sweep's end of a connection that stopped pinging at the rate it was told
   * (core/liveness.ts: a half-open one still answers GET 200). Same budget, sockets and timeout.
   */
  delete?(connectionId: string, options?: PostOptions): Promise<PostResponse>;
  /** Closes the keep-alive sockets. */
  destroy(): void;
}

export interface ConnectionsApiOptions extends ClientOptions {
  /** Cut (destroy) a request that has no complete response this long after it started. */
  timeoutMs?: number;
  maxSockets?: number;
  /** The hub's shared `@connections` budget; unset: requests go as fast as the sockets allow. */
  budget?: PostBudget;
}

/** The SDK's path encoding (encodeURIComponent plus !'()*), so the canonical request matches its. */
function encodePathSegment(segment: string): string {
  const encoded = encodeURIComponent(segment);
  return /[!'()*]/.test(encoded) ? encoded.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : encoded;
}

/**
 * A post path for one @connections endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`
 * or the local hub's). Credentials: `options.credentials`, else the SDK's default chain (on
 * Lambda the role's env credentials, session token included), memoized and refreshed by it
 * before they expire.
 */
export function createConnectionsApi(endpoint: string, options: ConnectionsApiOptions = {}): ConnectionsApi {
  const url = new URL(endpoint);
  const secure = url.protocol === "https:";
  if (!secure && url.protocol !== "http:") throw new Error(`management endpoint must be http(s)://, got "${endpoint}"`);
  const basePath = url.pathname.replace(/\/+$/, "");
  // What the SDK signs as host: the hostname, plus the port when it is not the default.
  const hostHeader = url.host;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const timeoutMs = options.timeoutMs ?? MANAGEMENT_TIMEOUT_MS;
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? MANAGEMENT_MAX_SOCKETS };
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const request = secure ? https.request : http.request;
  const fixed = explicitCredentials({ ...options, endpoint });
  const credentials: () => Promise<Credentials> = fixed ? () => Promise.resolve(fixed) : defaultProvider();
  const signer = new SignatureV4({ credentials, region: regionFor(options), service: "execute-api", sha256: sha256Class() });

  const signAs = async <M extends "POST" | "GET" | "DELETE">(method: M, connectionId: string, frame: PreparedFrame, signingDate?: Date): Promise<{ method: M; path: string; headers: Record<string, string> }> => {
    const path = `${basePath}/@connections/${encodePathSegment(connectionId)}`;
    const signed = await signer.sign(
      {
        method,
        protocol: url.protocol,
        hostname: url.hostname,
        port,
        path,
        query: {},
        headers:
          method === "POST"
            ? { "content-type": "application/octet-stream", "content-length": frame.contentLength, host: hostHeader, "x-amz-content-sha256": frame.sha256 }
            : { host: hostHeader, "x-amz-content-sha256": frame.sha256 },
        ...(method === "POST" ? { body: frame.body } : {}),
      },
      signingDate ? { signingDate } : undefined,
    );
    return { method, path, headers: signed.headers };
  };
  const sign = (connectionId: string, frame: PreparedFrame, signingDate?: Date): Promise<SignedPost> => signAs("POST", connectionId, frame, signingDate);

  // Requests in flight are capped at the socket count here, for every caller of this api
  // together: nothing waits in the agent's queue, so the timeout below counts from the
  // request's start and measures only the wire.
  let free = agentOptions.maxSockets;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  };

  const send = (signed: { method: "POST" | "GET" | "DELETE"; path: string; headers: Record<string, string> }, frame: PreparedFrame): Promise<PostResponse> =>
    new Promise((resolve) => {
      // Declared before use: Pulumi's closure serializer cannot see later declarations.
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const settle = (response: PostResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(response);
      };
      // Headers as a flat list: node writes them as given, without per-header bookkeeping.
      const headers: string[] = [];
      for (const name in signed.headers) headers.push(name, signed.headers[name]);
      const req = request({ agent, hostname, port, method: signed.method, path: signed.path, headers: headers as unknown as http.OutgoingHttpHeaders }, (res) => {
        const status = res.statusCode ?? 0;
        // Headers are parsed lazily: only a failure needs them.
        const errorType = status >= 300 ? res.headers["x-amzn-errortype"] : undefined;
        // Drain the (tiny) body so the socket goes back to the pool.
        res.resume();
        res.once("end", () => settle(typeof errorType === "string" ? { status, errorType: errorType.split(":")[0] } : { status }));
        res.once("error", (err: NodeJS.ErrnoException) => settle({ status: 0, errorType: err.code ?? err.name }));
      });
      timer = setTimeout(() => req.destroy(Object.assign(new Error(`no response within ${timeoutMs} ms`), { code: "TimeoutError" })), timeoutMs);
      req.once("error", (err: NodeJS.ErrnoException) => settle({ status: 0, errorType: err.code ?? err.name }));
      if (signed.method !== "POST") req.end();
      else req.end(frame.text ?? frame.body);
    });

  const budget = options.budget;
  const requestOf = async (method: "POST" | "GET" | "DELETE", connectionId: string, frame: PreparedFrame, postOptions?: PostOptions): Promise<PostResponse> => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      if (budget && !(await budget.take(postOptions?.lane, postOptions?.deadline))) return { status: 0, errorType: NOT_SENT };
      return await send(await signAs(method, connectionId, frame), frame);
    } finally {
      release();
    }
  };
  const post = (connectionId: string, frame: PreparedFrame, postOptions?: PostOptions) => requestOf("POST", connectionId, frame, postOptions);
  const prepare = (frame: string | Uint8Array): PreparedFrame => {
    const body = typeof frame === "string" ? Buffer.from(frame, "utf8") : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    const text = typeof frame === "string" ? frame : undefined;
    return { body, text, sha256: crypto.createHash("sha256").update(body).digest("hex"), contentLength: String(body.length) };
  };
  // A GET has no body: the hash of nothing, once.
  const empty = prepare("");

  return {
    endpoint,
    prepare,
    sign,
    post,
    get: (connectionId, getOptions) => requestOf("GET", connectionId, empty, getOptions),
    delete: (connectionId, deleteOptions) => requestOf("DELETE", connectionId, empty, deleteOptions),
    destroy: () => agent.destroy(),
  };
}

export interface RetryPolicy {
  /** Attempts per connection, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * A 410 for a connection whose row is younger than this does not delete the row. $connect
 * writes the row before API Gateway has opened the connection, and until it has, a post
 * answers 410 ("posted before the connection was established"). A deliver in that window used
 * to delete the row of a connection about to open: the client then sat connected and
 * unreachable until it reconnected, with nothing logged (the local hub's "stopped delivering"
 * under load, where handshakes take seconds). The window ends with $connect's integration
 * (API Gateway cuts it at 29 s); a row truly gone that young is deleted by $disconnect, or
 * by the first 410 after the grace, or by its TTL.
 */
export const HANDSHAKE_GRACE_MS = 30_000;

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 50, maxDelayMs: 1_000 };

/** What posting with retries needs. */
export interface PostDeps {
  management: ConnectionsApi;
  db: DynamoDBClient;
  connectionsTable: string;
  log: Logger;
  /** Told each post that failed or answered 410 (`post.failed`, `post.gone`); default: a log line each. */
  observe?: HubObserver;
  retry?: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
  /** The budget lane these posts take (core/budget.ts); default priority. */
  lane?: PostLane;
  /** Posts not started by then (epoch ms) come back `deferred` (a deliver invocation's time is running out). */
  deadline?: number;
  /**
   * Told the row a 410 removed (presence on: its rooms are left with `timed_out`, a connection
   * found dead without its `$disconnect`; handlers/dependencies.ts goneHookFrom). Its failure is
   * logged, never the post's.
   */
  removed?: (row: ConnectionRow) => Promise<void>;
}

/**
 * `deferred`: not delivered because the budget was busy (no token before the deadline, or
 * still 429 after the retries), not because of the connection: the caller requeues it
 * without counting it as a failure.
 */
export type PostOutcome = "delivered" | "gone" | "failed" | "deferred";

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** An SDK error (single calls through the SDK client) saying the connection is gone. */
export function isGone(err: unknown): boolean {
  return (err as Error)?.name === "GoneException" || (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 410;
}

/** Throttles, server errors and no response at all are worth another try; 4xx other than 429 are not. */
export function isRetryable(status: number): boolean {
  return status === 0 || status === 429 || status >= 500;
}

/** Full jitter: spreads retries of a big room so they don't hit the API in lockstep. */
export function backoffDelay(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(Math.random() * ceiling);
}

/**
 * One `@connections` request, made again after a full-jitter backoff while its answer is worth
 * another try (isRetryable: 429, 5xx, no answer at all) and the policy has attempts left.
 * Returns the last answer and the attempts made. A request the budget never sent (NOT_SENT) is
 * not retried: its caller defers it. A throw (signing failed: no credentials) is the caller's.
 */
export async function requestWithRetries(send: () => Promise<PostResponse>, policy: RetryPolicy, sleep: (ms: number) => Promise<void> = defaultSleep): Promise<{ response: PostResponse; attempts: number }> {
  for (let attempt = 1; ; attempt++) {
    const response = await send();
    if (response.errorType === NOT_SENT || !isRetryable(response.status) || attempt >= policy.attempts) return { response, attempts: attempt };
    await sleep(backoffDelay(attempt - 1, policy));
  }
}

/**
 * Posts one frame to one connection, retrying what is worth retrying. `via`: the room whose
 * membership led here (fan-out), so a 410 for a connection whose row is already gone also
 * drops that orphaned membership.
 */
export async function postWithRetries(deps: PostDeps, connectionId: string, frame: PreparedFrame, via?: string): Promise<PostOutcome> {
  const observe = observerOf(deps);
  const postOptions = deps.lane || deps.deadline ? { lane: deps.lane, deadline: deps.deadline } : undefined;
  let sent = 0;
  let response: PostResponse;
  let attempts: number;
  try {
    ({ response, attempts } = await requestWithRetries(() => (sent++, deps.management.post(connectionId, frame, postOptions)), deps.retry ?? DEFAULT_RETRY, deps.sleep));
  } catch (err) {
    // Signing failed (no credentials): no post can succeed; say so once per connection.
    const { name, message } = errorSummary(err);
    observe({ type: "post.failed", connectionId, attempts: sent, error: name, errorMessage: message });
    return "failed";
  }
  const { status } = response;
  if (status >= 200 && status < 300) return "delivered";
  if (response.errorType === NOT_SENT) return "deferred";
  if (status === 410) {
    let row: ConnectionRow | undefined;
    try {
      const outcome = await removeConnection(deps.db, deps.connectionsTable, connectionId, { writtenBefore: Date.now() - HANDSHAKE_GRACE_MS, via, removed: (r) => (row = r) });
      observe({ type: "post.gone", connectionId, row: outcome });
    } catch (deleteErr) {
      // The row expires by TTL anyway; the next message will try again.
      observe({ type: "post.gone", connectionId, row: "not_deleted", error: errorSummary(deleteErr) });
    }
    // A row this removed loses its rooms even when a membership delete after it failed: nothing else would find it.
    const gone: ConnectionRow | undefined = row;
    if (gone && deps.removed) await deps.removed(gone).catch((err) => deps.log.warn("presence leave after 410 failed", { connection_id: connectionId, ...describeError(err) }));
    return "gone";
  }
  // Throttled to the end (a 429 is retried while attempts last): the account's budget was busy, the connection is fine.
  if (status === 429) return "deferred";
  observe({ type: "post.failed", connectionId, attempts, httpStatus: status || undefined, error: response.errorType });
  return "failed";
}
