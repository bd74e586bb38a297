/**
 * API Gateway's `@connections` API (`POST|GET|DELETE /{stage}/@connections/{id}`), the one
 * emulator of it: the local hub mounts it on its own server over its live sockets, and tests
 * start it standalone (`startConnectionsEmulator`) over recording connections. Same paths, size
 * limit, SigV4 check, error types and injected faults in both.
 */
import * as http from "http";
import type { AddressInfo } from "net";
import { createLogger, describeError, type Logger } from "../../core/log";
import { verifySigV4, type DevCredentials } from "../sigv4";
import { splitTarget } from "./handshake";
import { accountBudget, API_GATEWAY_LIMITS, resolveLimits, type AccountLimits, type AccountUsage } from "./limits";

/** A connection as `@connections` reaches it. */
export interface ConnectionTarget {
  /** Hands a frame to the connection; false when it is gone (the post answers 410). */
  post(body: Buffer): boolean;
  describe(): { connectedAt: string; lastActiveAt: string; identity: { sourceIp: string; userAgent?: string } };
  close(): void;
}

/** The errors a real `@connections` API answers and tests want on demand. */
export type FaultStatus = 403 | 410 | 429 | 500;
/** A fault for one connection id: the next `times` requests (every one when absent; only `method` ones when set) fail with `status`. */
export type Fault = { status: FaultStatus; times?: number; method?: "POST" | "GET" | "DELETE" };

const ERRORS: Record<FaultStatus, { type: string; message: string }> = {
  403: { type: "ForbiddenException", message: "Forbidden" },
  410: { type: "GoneException", message: "Gone" },
  429: { type: "LimitExceededException", message: "Too Many Requests" },
  500: { type: "InternalServerErrorException", message: "Internal server error" },
};

export interface ConnectionsEmulatorOptions {
  stage: string;
  /** Live connections by id; undefined (or a closed one) answers 410. */
  find(connectionId: string): ConnectionTarget | undefined;
  /** Requests must be SigV4-signed with these, as AWS checks them. Without: not checked (test stand-in only). */
  credentials?: DevCredentials;
  /** Largest body accepted; API Gateway: 128 KB. */
  maxMessageBytes?: number;
  /**
   * The account budget (gateway/limits.ts `accountBudget`): asked once per request for this
   * stage, before its signature is checked; false answers 429 `LimitExceededException`.
   * Without: every request is admitted.
   */
  admit?: () => boolean;
  /** Keeps handler work visible to the caller's shutdown. */
  track?<T>(promise: Promise<T>): Promise<T>;
  log: Logger;
}

export function createConnectionsEmulator(options: ConnectionsEmulatorOptions) {
  const faults = new Map<string, Fault>();
  const limit = options.maxMessageBytes ?? API_GATEWAY_LIMITS.maxMessageBytes;
  const track = options.track ?? (<T>(promise: Promise<T>) => promise);
  const log = options.log;

  type Reply = (status: number, body?: object, errorType?: string) => void;

  function takeFault(connectionId: string, method: string): Fault | undefined {
    const fault = faults.get(connectionId);
    if (!fault || (fault.method && fault.method !== method) || (fault.times !== undefined && fault.times <= 0)) return undefined;
    if (fault.times !== undefined) fault.times--;
    return fault;
  }

  function answer(method: string, connectionId: string, body: Buffer, reply: Reply): void {
    const connection = options.find(connectionId);
    if (!connection) {
      reply(410, { message: "Gone" }, "GoneException");
      return;
    }
    const fault = takeFault(connectionId, method);
    if (fault) {
      reply(fault.status, { message: ERRORS[fault.status].message }, ERRORS[fault.status].type);
      return;
    }
    switch (method) {
      case "POST":
        if (connection.post(body)) reply(200, {});
        else reply(410, { message: "Gone" }, "GoneException");
        return;
      case "GET":
        reply(200, connection.describe());
        return;
      case "DELETE":
        connection.close();
        reply(204);
        return;
      default:
        reply(405, { message: "Method not allowed" });
    }
  }

  /** `/{stage}/@connections/{id}`: returns false when the request is not for this API. */
  function handle(request: http.IncomingMessage, response: http.ServerResponse): boolean {
    const target = splitTarget(request.url);
    const match = target ? /^\/([^/]+)\/@connections\/([^/?]+)\/?$/.exec(target.path) : null;
    if (!match || match[1] !== options.stage) return false;
    const reply: Reply = (status, body, errorType) => {
      if (response.headersSent) return;
      response.writeHead(status, { "content-type": "application/json", ...(errorType ? { "x-amzn-errortype": errorType } : {}) });
      response.end(body ? JSON.stringify(body) : undefined);
    };
    if (options.admit && !options.admit()) {
      request.resume();
      reply(429, { message: ERRORS[429].message }, ERRORS[429].type);
      return true;
    }
    let connectionId: string;
    try {
      connectionId = decodeURIComponent(match[2]);
    } catch {
      reply(400, { message: "Invalid connection id" }, "BadRequestException");
      return true;
    }
    // Refuse what is too big before reading it: by its declared length, or once it streams past the limit.
    const tooLarge = () => {
      reply(413, { message: "Request entity too large" }, "PayloadTooLargeException");
      request.resume();
    };
    const declared = Number(request.headers["content-length"] ?? 0);
    if (!Number.isFinite(declared) || declared > limit) {
      tooLarge();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    request.on("data", (chunk: Buffer) => {
      if (overflow) return;
      size += chunk.length;
      if (size > limit) {
        overflow = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    request.on("error", () => undefined);
    request.on("end", () => {
      if (overflow) return;
      const body = Buffer.concat(chunks);
      const method = request.method ?? "GET";
      const checked = options.credentials
        ? verifySigV4({ method, url: request.url ?? "/", headers: request.headers, body }, options.credentials)
        : Promise.resolve({ ok: true as const });
      void track(
        checked.then((check) => {
          if (!check.ok) reply(check.status, { message: check.message }, check.errorType);
          else answer(method, connectionId, body, reply);
        }),
      ).catch((err: unknown) => {
        log.error("@connections request failed", describeError(err));
        reply(500, { message: "Internal server error" }, "InternalServerErrorException");
      });
    });
    return true;
  }

  return {
    handle,
    /** Makes requests to a connection fail as a throttled or failing API Gateway would (`times: 0` clears). */
    fault(connectionId: string, fault: Fault): void {
      faults.set(connectionId, { ...fault });
    },
  };
}

export type ConnectionsEmulator = ReturnType<typeof createConnectionsEmulator>;

/** The standalone emulator: every connection id is open and records what is posted to it. */
export interface StandaloneConnectionsEmulator {
  /** `http://127.0.0.1:port/{stage}`, a managementEndpoint. */
  endpoint: string;
  /** Frames received per connection id, in order. */
  received: Map<string, string[]>;
  /** Connection ids a DELETE closed, in order. */
  deleted: string[];
  fault(connectionId: string, fault: Fault): void;
  /** With `account`: what the account budget admitted and refused. */
  usage?(): AccountUsage;
  stop(): Promise<void>;
}

/**
 * Starts the `@connections` emulator on its own loopback port, for handler tests that have no
 * sockets: the same module the hub serves, over connections that record instead of sending.
 */
export async function startConnectionsEmulator(
  options: { stage?: string; credentials?: DevCredentials; log?: Logger; account?: Partial<AccountLimits> } = {},
): Promise<StandaloneConnectionsEmulator> {
  const stage = options.stage ?? "test";
  const received = new Map<string, string[]>();
  const deleted: string[] = [];
  const recorder = (id: string): ConnectionTarget => ({
    post(body) {
      const list = received.get(id) ?? [];
      list.push(body.toString("utf8"));
      received.set(id, list);
      return true;
    },
    describe: () => ({ connectedAt: new Date().toISOString(), lastActiveAt: new Date().toISOString(), identity: { sourceIp: "127.0.0.1" } }),
    close: () => deleted.push(id),
  });
  const log = options.log ?? createLogger({}, () => undefined);
  const budget = options.account ? accountBudget(resolveLimits({ account: options.account }).account) : undefined;
  const api = createConnectionsEmulator({ stage, find: recorder, credentials: options.credentials, log, admit: budget?.admitRequest });
  const server = http.createServer((request, response) => {
    if (api.handle(request, response)) return;
    request.resume();
    response.writeHead(404, { "content-type": "application/json", "x-amzn-errortype": "NotFoundException" });
    response.end(JSON.stringify({ message: "Not Found" }));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/${stage}`,
    received,
    deleted,
    fault: api.fault,
    usage: budget?.usage,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // keep-alive SDK clients would hold it open
      }),
  };
}
