/**
 * The local hub's small HTTP helpers for its own pages and endpoints (the console's and the
 * demo's): answer, read a JSON body with a size limit, refuse what is not from this machine's
 * own pages, and map an error to its status. Not the API Gateway emulator's (local/gateway/).
 */
import * as fs from "fs";
import type * as http from "http";
import * as path from "path";
import type { LocalHubInfo } from "./index";

/** The largest JSON body the console and demo endpoints read. */
export const MAX_JSON_BODY_BYTES = 256 * 1024;

/** A request body over the limit: 400, said in words. */
export class BodyTooLargeError extends RangeError {
  override readonly name = "BodyTooLargeError";
  constructor(limit: number) {
    super(`request body too large (over ${limit} bytes)`);
  }
}

/** Valid JSON that is not an object, where the endpoint wants named fields. */
export class NotAnObjectError extends TypeError {
  override readonly name = "NotAnObjectError";
  constructor() {
    super("expected a JSON object");
  }
}

/** What an action names does not exist (any more): 404. */
export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
}

/**
 * Answers. When the request's body was not read to its end (refused past the size limit, or
 * never read), the rest of it is still on the connection, where the next request of a
 * keep-alive client would wait behind it for ever: the answer says `connection: close`, and
 * Node closes the connection once it is sent (the client opens a new one).
 */
export function send(response: http.ServerResponse, status: number, type: string, body: string | Buffer): void {
  const unread = !response.req.complete;
  response.writeHead(status, { "content-type": type, "cache-control": "no-store", ...(unread ? { connection: "close" } : {}) });
  response.end(body);
}

export function sendJson(response: http.ServerResponse, status: number, body: unknown): void {
  send(response, status, "application/json", JSON.stringify(body));
}

/** The request's body as a JSON object ("{}" when empty); stops reading past `limit` bytes (the answer then closes the connection: `send`). */
export async function readJson(request: http.IncomingMessage, limit = MAX_JSON_BODY_BYTES): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLargeError(limit);
    chunks.push(chunk as Buffer);
  }
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new NotAnObjectError();
  return parsed as Record<string, unknown>;
}

/**
 * The status an endpoint's error answers: 400 for what the caller sent (TypeError,
 * RangeError, SyntaxError: a missing field, a bad number, bad JSON), 404 for what is not
 * there (NotFoundError, the SDK's GoneException), else 500 (and the hub logs it).
 */
export function statusOfError(err: unknown): 400 | 404 | 500 {
  if (err instanceof NotFoundError || (err as Error)?.name === "GoneException") return 404;
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return 400;
  return 500;
}

/** Host headers this hub answers to: its own address, and loopback names on its port. */
function allowedHosts(info: Pick<LocalHubInfo, "httpUrl">): Set<string> {
  const url = new URL(info.httpUrl);
  return new Set([url.host, `127.0.0.1:${url.port}`, `localhost:${url.port}`, `[::1]:${url.port}`].map((h) => h.toLowerCase()));
}

/**
 * Why a request must be refused, if it must. A DNS-rebinding page reaches us under its own
 * host name (foreign Host header); a cross-site form or fetch says so in Origin or
 * Sec-Fetch-Site. The demo endpoints mint tokens and the console's revoke and publish, so
 * neither may be used from another site.
 */
export function sameOriginRefusal(request: Pick<http.IncomingMessage, "headers">, info: Pick<LocalHubInfo, "httpUrl">): string | undefined {
  const host = String(request.headers.host ?? "").toLowerCase();
  const hosts = allowedHosts(info);
  if (!hosts.has(host)) return "foreign Host header";
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return "cross-site request";
  const origin = request.headers.origin;
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      const parsed = new URL(String(origin));
      originHost = parsed.protocol === "http:" ? parsed.host.toLowerCase() : undefined;
    } catch {
      originHost = undefined;
    }
    if (!originHost || !hosts.has(originHost)) return "cross-site request";
  }
  return undefined;
}

/**
 * `sameOriginRefusal`, and a peer that is not on this machine (the hub may listen on another
 * interface with `--host`): the console's endpoints are a developer tool for this machine only.
 */
export function loopbackRefusal(request: Pick<http.IncomingMessage, "headers" | "socket">, info: Pick<LocalHubInfo, "httpUrl">): string | undefined {
  const remote = request.socket.remoteAddress ?? "";
  const loopback = remote === "::1" || remote.startsWith("127.") || remote.startsWith("::ffff:127.");
  return loopback ? sameOriginRefusal(request, info) : "not a loopback peer";
}

/**
 * A file this package ships beside the local hub: `local/<relative>` from the TypeScript
 * sources (ts-node) and from dist/local/ once built (the package ships local/pages/ and
 * client/ as they are; tsc does not copy them into dist/).
 */
export function packageFile(fromRoot: string): string {
  // __dirname is local/ (sources) or dist/local/ (built): the package root is one or two up.
  const candidates = [path.join(__dirname, "..", fromRoot), path.join(__dirname, "..", "..", fromRoot)];
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (!found) throw new Error(`${fromRoot} not found beside the local hub (looked in ${candidates.join(", ")})`);
  return found;
}

const PAGE_TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8" };

/** Answers with a file the package ships (a page, its script, the browser client), read fresh each time. */
export function sendPackageFile(response: http.ServerResponse, fromRoot: string): void {
  const file = packageFile(fromRoot);
  send(response, 200, PAGE_TYPES[path.extname(file)] ?? "application/octet-stream", fs.readFileSync(file));
}
