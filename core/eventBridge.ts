/**
 * Amazon EventBridge's PutEvents: one signed JSON request (the awsJson1_1 protocol: `POST /`,
 * `X-Amz-Target: AWSEvents.PutEvents`), and the limits EventBridge puts on it.
 *
 * Not the SDK's EventBridge client: the handlers' only EventBridge call is this one, and the
 * SDK layer (handlers/manifest.ts LAYER_PACKAGES) already has what it needs: the SDK's own
 * SigV4 signer (`@smithy/signature-v4`) and credential chain, as the `@connections` post path
 * (core/connections.ts) uses them. One package less in every emitting function's layer.
 *
 * The SDK's own retries are not here either: core/lifecycleEvents.ts retries, within the
 * route's time, and retries the entries a 200 answer reports failed, which the SDK never does.
 */
import * as http from "http";
import * as https from "https";
import { SignatureV4 } from "@smithy/signature-v4";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { explicitCredentials, regionFor, type ClientOptions, type Credentials } from "./aws";
import { sha256Class } from "./connections";

/** Entries one PutEvents call may hold (more: the whole call is refused, ValidationException). */
export const PUT_EVENTS_MAX_ENTRIES = 10;
/** The calls' entries together must measure less than this (entrySize), or the whole call is refused. */
export const PUT_EVENTS_MAX_BYTES = 256 * 1024;

export interface PutEventsEntry {
  Source: string;
  DetailType: string;
  /** A JSON object, as text. */
  Detail: string;
  /** A bus name or ARN. */
  EventBusName: string;
  Resources?: string[];
  /** Unset: the time EventBridge receives it. */
  Time?: string;
}

/** Per entry, in the request's order: its EventId, or why it failed (the call itself answered 200). */
export interface PutEventsResultEntry {
  EventId?: string;
  ErrorCode?: string;
  ErrorMessage?: string;
}

export interface PutEventsOutput {
  FailedEntryCount: number;
  Entries: PutEventsResultEntry[];
}

const utf8 = (text: string | undefined) => (text === undefined ? 0 : Buffer.byteLength(text, "utf8"));

/**
 * An entry's size as EventBridge measures it against PUT_EVENTS_MAX_BYTES ("Calculating
 * PutEvents event entry size"): Time counts 14 bytes when set; Source, DetailType, Detail and
 * each of Resources their UTF-8 bytes. EventBusName and the JSON around them do not count.
 */
export function entrySize(entry: Partial<PutEventsEntry>): number {
  let size = entry.Time !== undefined ? 14 : 0;
  size += utf8(entry.Source) + utf8(entry.DetailType) + utf8(entry.Detail);
  for (const resource of entry.Resources ?? []) size += utf8(resource);
  return size;
}

/**
 * A whole PutEvents call that was refused (`name`: EventBridge's error type, `status` its HTTP
 * status) or never answered (`status` 0, `name` the network error's code).
 */
export class PutEventsError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface EventBridgeApi {
  readonly endpoint: string;
  putEvents(entries: PutEventsEntry[]): Promise<PutEventsOutput>;
  /** Closes the keep-alive sockets. */
  destroy(): void;
}

/** How long one PutEvents request may take before it is cut (socket destroyed): EventBridge answers in tens of milliseconds. */
export const PUT_EVENTS_TIMEOUT_MS = 2_000;

/** EventBridge's regional endpoint; China's regions are under amazonaws.com.cn. */
export function eventBridgeEndpoint(region: string): string {
  return `https://events.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
}

/**
 * A PutEvents client for one endpoint (`options.endpoint`: the local hub's stand-in; unset:
 * the Region's EventBridge). Credentials: `options.credentials`, else the SDK's default chain
 * (on Lambda the function role's).
 */
export function createEventBridgeApi(options: ClientOptions = {}): EventBridgeApi {
  const region = regionFor(options);
  const endpoint = options.endpoint ?? eventBridgeEndpoint(region);
  const url = new URL(endpoint);
  const secure = url.protocol === "https:";
  if (!secure && url.protocol !== "http:") throw new Error(`EventBridge endpoint must be http(s)://, got "${endpoint}"`);
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const path = url.pathname || "/";
  const timeoutMs = options.timeoutMs ?? PUT_EVENTS_TIMEOUT_MS;
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 8 }) : new http.Agent({ keepAlive: true, maxSockets: 8 });
  const request = secure ? https.request : http.request;
  const fixed = explicitCredentials({ ...options, endpoint });
  const credentials: () => Promise<Credentials> = fixed ? () => Promise.resolve(fixed) : defaultProvider();
  const signer = new SignatureV4({ credentials, region, service: "events", sha256: sha256Class() });

  const send = (headers: Record<string, string>, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> =>
    new Promise((resolve, reject) => {
      // Declared before use: Pulumi's closure serializer cannot see later declarations.
      let timer: NodeJS.Timeout | undefined;
      const req = request({ agent, hostname, port, method: "POST", path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.once("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") });
        });
        res.once("error", (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          reject(new PutEventsError(err.code ?? err.name, err.message, 0));
        });
      });
      timer = setTimeout(() => req.destroy(Object.assign(new Error(`no response within ${timeoutMs} ms`), { code: "TimeoutError" })), timeoutMs);
      req.once("error", (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new PutEventsError(err.code ?? err.name, err.message, 0));
      });
      req.end(body);
    });

  return {
    endpoint,
    async putEvents(entries) {
      const body = JSON.stringify({ Entries: entries });
      const signed = await signer.sign({
        method: "POST",
        protocol: url.protocol,
        hostname: url.hostname,
        port,
        path,
        query: {},
        headers: {
          "content-type": "application/x-amz-json-1.1",
          "content-length": String(Buffer.byteLength(body, "utf8")),
          "x-amz-target": "AWSEvents.PutEvents",
          host: url.host,
        },
        body,
      });
      const answer = await send(signed.headers, body);
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(answer.text || "{}") as Record<string, unknown>;
      } catch {
        // An answer that is not JSON (a proxy's page): its status says enough.
      }
      if (answer.status === 200) {
        return { FailedEntryCount: Number(parsed.FailedEntryCount ?? 0), Entries: (parsed.Entries as PutEventsResultEntry[] | undefined) ?? [] };
      }
      // awsJson1_1 errors: the type in x-amzn-errortype or __type (possibly "namespace#Type"), the text in message.
      const header = answer.headers["x-amzn-errortype"];
      const type = String((typeof header === "string" ? header : undefined) ?? parsed.__type ?? `Http${answer.status}`).split(":")[0].split("#").pop()!;
      throw new PutEventsError(type, String(parsed.message ?? parsed.Message ?? `HTTP ${answer.status}`), answer.status);
    },
    destroy: () => agent.destroy(),
  };
}
