/**
 * A local stand-in for Amazon EventBridge's PutEvents, the one call the hub makes to it
 * (lifecycle events, core/lifecycleEvents.ts): an HTTP server speaking the same awsJson1_1
 * protocol (`POST /`, `X-Amz-Target: AWSEvents.PutEvents`), so the handlers' real client
 * (core/eventBridge.ts) talks to it unchanged, as they talk to dynalite and fauxqs.
 *
 * As strict as EventBridge, with its error names and messages:
 * - more than 10 entries, or none: the whole call is refused, 400 ValidationException
 *   ("1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to
 *   satisfy constraint: Member must have length less than or equal to 10");
 * - entries measuring 256 KB or more together (Time 14 bytes; Source, DetailType, Detail and
 *   Resources their UTF-8 bytes): 400 ValidationException "Total size of the entries in the
 *   request is over the limit.";
 * - per entry, answered 200 with FailedEntryCount and the entry's ErrorCode/ErrorMessage: a
 *   missing Source, DetailType or Detail (InvalidArgument, "Parameter Source is not valid.
 *   Reason: Source is a required argument."), a Detail that is not a JSON object
 *   (MalformedDetail, "Detail is malformed."), a bus that does not exist;
 * - SigV4 checked with the hub's dev credentials (local/sigv4.ts), as the `@connections` API does.
 *
 * What the real thing does differently:
 * - IAM is not evaluated here (test/iamSimulation.test.ts simulates each role's PutEvents on the
 *   bus ARN instead); there are no rules, targets, archives or schemas: every accepted event goes
 *   to this stand-in's listeners (the console, `--events-url`), which play one rule matching
 *   `source: notification-hub` with an API destination target;
 * - EventBridge's 400 for more than 10 entries prints every entry inside `Value '[...]'`;
 *   this one prints `[PutEventsRequestEntry]`, as moto does;
 * - a bus that does not exist: this stand-in's wording (ResourceNotFoundException, "Event bus
 *   NAME does not exist."); the real code may differ;
 * - no quota: EventBridge throttles PutEvents past the Region's rate (ThrottlingException,
 *   thousands a second); here only `failEntries` (tests) makes entries fail, `refuseCalls`
 *   refuses whole calls, and `loseAnswers`
 *   drops an answer after the events were taken (what a timeout looks like to the client);
 * - listeners hear each event at once and in the order received; EventBridge delivers to
 *   targets in no guaranteed order, at least once, and an API destination retries for up to 24 hours.
 */
import * as crypto from "crypto";
import * as http from "http";
import type { AddressInfo } from "net";
import { entrySize, PUT_EVENTS_MAX_BYTES, PUT_EVENTS_MAX_ENTRIES, type PutEventsEntry, type PutEventsResultEntry } from "../core/eventBridge";
import { verifySigV4, type DevCredentials } from "./sigv4";

/** An event as EventBridge hands it to a rule's target (an API destination POSTs this JSON). */
export interface BusEvent {
  version: "0";
  id: string;
  "detail-type": string;
  source: string;
  account: string;
  /** Second precision, as EventBridge's. */
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

export type BusEventListener = (event: BusEvent, busName: string) => void;

/** One PutEvents call as the stand-in answered it. */
export interface PutEventsCall {
  entries: number;
  status: number;
  error?: string;
  failed: number;
}

export interface EventBridgeStandIn {
  endpoint: string;
  /** Every call answered, in order (tests count them). */
  readonly calls: readonly PutEventsCall[];
  /** Hears every accepted event; returns what stops it. A listener that throws is skipped. */
  onEvent(listener: BusEventListener): () => void;
  /** The next `count` entries fail with `code` (200, FailedEntryCount), as EventBridge's partial failures. */
  failEntries(count: number, code?: string): void;
  /** The next `count` calls are taken (their events delivered) and then cut without an answer. */
  loseAnswers(count: number): void;
  /** The next `count` calls are refused whole, none of their events taken: e.g. 500 InternalFailure, 400 ThrottlingException (EventBridge's throttle), 400 ValidationException. */
  refuseCalls(count: number, status?: number, errorType?: string): void;
  stop(): Promise<void>;
}

export interface EventBridgeOptions {
  /** The buses that exist, by name (an entry may also name one by ARN). */
  buses: string[];
  region: string;
  account?: string;
  /** Verify each request's SigV4 signature with these; unset: not checked. */
  credentials?: DevCredentials;
  host?: string;
}

/** The largest request body read: PutEvents' own limit is on the entries (256 KB), a request is never near this. */
const MAX_REQUEST_BYTES = 1024 * 1024;

const secondsPrecision = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, "Z");

function entryError(entry: Partial<PutEventsEntry>, buses: Set<string>): PutEventsResultEntry | undefined {
  for (const field of ["Source", "DetailType", "Detail"] as const) {
    if (typeof entry[field] !== "string" || entry[field] === "") return { ErrorCode: "InvalidArgument", ErrorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.` };
  }
  let detail: unknown;
  try {
    detail = JSON.parse(entry.Detail!);
  } catch {
    detail = undefined;
  }
  if (typeof detail !== "object" || detail === null || Array.isArray(detail)) return { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." };
  const bus = busNameOf(entry.EventBusName);
  if (!buses.has(bus)) return { ErrorCode: "ResourceNotFoundException", ErrorMessage: `Event bus ${bus} does not exist.` };
  return undefined;
}

/** A bus named by name or ARN (`arn:aws:events:region:account:event-bus/NAME`); unset is the account's default bus. */
function busNameOf(nameOrArn: string | undefined): string {
  if (!nameOrArn) return "default";
  const at = nameOrArn.indexOf(":event-bus/");
  return nameOrArn.startsWith("arn:") && at !== -1 ? nameOrArn.slice(at + ":event-bus/".length) : nameOrArn;
}

export async function startEventBridge(options: EventBridgeOptions): Promise<EventBridgeStandIn> {
  const buses = new Set(options.buses);
  const account = options.account ?? "000000000000";
  const listeners = new Set<BusEventListener>();
  const calls: PutEventsCall[] = [];
  const faults = { failEntries: 0, failCode: "InternalFailure", loseAnswers: 0, refuseCalls: 0, refuseStatus: 500, refuseType: "InternalFailure" };

  const answer = (response: http.ServerResponse, status: number, body: unknown, errorType?: string) => {
    response.writeHead(status, { "content-type": "application/x-amz-json-1.1", ...(errorType ? { "x-amzn-errortype": errorType } : {}), "x-amzn-requestid": crypto.randomUUID() });
    response.end(JSON.stringify(body));
  };
  const refuse = (response: http.ServerResponse, status: number, type: string, message: string, entries = 0) => {
    calls.push({ entries, status, error: type, failed: 0 });
    answer(response, status, { __type: type, message }, type);
  };

  async function putEvents(request: http.IncomingMessage, response: http.ServerResponse, body: Buffer): Promise<void> {
    if (options.credentials) {
      const check = await verifySigV4({ method: request.method ?? "POST", url: request.url ?? "/", headers: request.headers, body }, options.credentials);
      if (!check.ok) return refuse(response, check.status, check.errorType, check.message);
    }
    const target = request.headers["x-amz-target"];
    if (target !== "AWSEvents.PutEvents") return refuse(response, 400, "UnknownOperationException", `this stand-in answers AWSEvents.PutEvents only, got ${String(target)}`);
    let input: { Entries?: unknown };
    try {
      input = JSON.parse(body.toString("utf8")) as { Entries?: unknown };
    } catch {
      return refuse(response, 400, "SerializationException", "Start of structure or map found where not expected.");
    }
    const entries = Array.isArray(input?.Entries) ? (input.Entries as Partial<PutEventsEntry>[]) : [];
    if (entries.length < 1) return refuse(response, 400, "ValidationException", "1 validation error detected: Value '[]' at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1");
    if (entries.length > PUT_EVENTS_MAX_ENTRIES) {
      return refuse(response, 400, "ValidationException", "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10", entries.length);
    }
    const total = entries.reduce((sum, entry) => sum + entrySize(entry), 0);
    if (total >= PUT_EVENTS_MAX_BYTES) return refuse(response, 400, "ValidationException", "Total size of the entries in the request is over the limit.", entries.length);
    if (faults.refuseCalls > 0) {
      faults.refuseCalls--;
      return refuse(response, faults.refuseStatus, faults.refuseType, faults.refuseType === "ThrottlingException" ? "Rate exceeded." : "Refused by the stand-in (refuseCalls).", entries.length);
    }

    const results: PutEventsResultEntry[] = [];
    const accepted: { event: BusEvent; bus: string }[] = [];
    const now = new Date();
    for (const entry of entries) {
      const invalid = entryError(entry, buses);
      if (invalid) {
        results.push(invalid);
        continue;
      }
      if (faults.failEntries > 0) {
        faults.failEntries--;
        results.push({ ErrorCode: faults.failCode, ErrorMessage: faults.failCode === "ThrottlingException" ? "Rate exceeded." : "Internal service error." });
        continue;
      }
      const id = crypto.randomUUID();
      results.push({ EventId: id });
      accepted.push({
        bus: busNameOf(entry.EventBusName),
        event: {
          version: "0",
          id,
          "detail-type": entry.DetailType!,
          source: entry.Source!,
          account,
          time: secondsPrecision(entry.Time ? new Date(entry.Time) : now),
          region: options.region,
          resources: entry.Resources ?? [],
          detail: JSON.parse(entry.Detail!) as Record<string, unknown>,
        },
      });
    }
    const failed = results.filter((r) => r.ErrorCode).length;
    for (const { event, bus } of accepted) {
      for (const listener of [...listeners]) {
        try {
          listener(event, bus);
        } catch {
          // A listener's fault is not the caller's.
        }
      }
    }
    if (faults.loseAnswers > 0) {
      faults.loseAnswers--;
      calls.push({ entries: entries.length, status: 0, error: "AnswerLost", failed });
      response.socket?.destroy();
      return;
    }
    calls.push({ entries: entries.length, status: 200, failed });
    answer(response, 200, { FailedEntryCount: failed, Entries: results });
  }

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on("error", () => undefined);
    request.on("end", () => {
      if (request.method !== "POST") return refuse(response, 404, "UnknownOperationException", "PutEvents is a POST");
      if (tooLarge) return refuse(response, 413, "RequestEntityTooLarge", `request body over ${MAX_REQUEST_BYTES} bytes`);
      putEvents(request, response, Buffer.concat(chunks)).catch((err: unknown) => refuse(response, 500, "InternalFailure", (err as Error)?.message ?? String(err)));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    onEvent(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    failEntries(count, code = "InternalFailure") {
      faults.failEntries = count;
      faults.failCode = code;
    },
    loseAnswers(count) {
      faults.loseAnswers = count;
    },
    refuseCalls(count, status = 500, errorType = "InternalFailure") {
      Object.assign(faults, { refuseCalls: count, refuseStatus: status, refuseType: errorType });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
