/**
 * SigV4 verification for the local `@connections` API, as AWS does it: the request is
 * signed again with the hub's dev credentials by `@smithy/signature-v4` (the SDK's own
 * signer) over exactly the headers the caller says it signed, and the two Authorization
 * values must match. A signed payload hash must also match the body actually received.
 */
import * as crypto from "crypto";
import { SignatureV4 } from "@smithy/signature-v4";

export interface DevCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Fresh credentials for one local hub; its handlers, notifier and CLI sign with them. */
export function newDevCredentials(): DevCredentials {
  return { accessKeyId: "LOCALHUB" + crypto.randomBytes(6).toString("hex").toUpperCase(), secretAccessKey: crypto.randomBytes(30).toString("base64") };
}

/** The Checksum shape the signer wants, on Node's crypto (SHA-256, or HMAC-SHA-256 with a key). */
type SourceData = string | ArrayBuffer | ArrayBufferView;

class NodeSha256 {
  private readonly hash: crypto.Hash | crypto.Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? crypto.createHash("sha256") : crypto.createHmac("sha256", toBuffer(secret));
  }
  update(data: SourceData): void {
    this.hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    // Each signer call builds a new instance; nothing to reset.
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  return data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request, ?SignedHeaders=([a-z0-9;_.-]+), ?Signature=([0-9a-f]{64})$/;
/** AWS refuses requests signed more than 15 minutes off its clock. */
const MAX_SKEW_MS = 15 * 60_000;

export type SigV4Check = { ok: true } | { ok: false; status: 403; errorType: string; message: string };

const refuse = (errorType: string, message: string): SigV4Check => ({ ok: false, status: 403, errorType, message });

export interface SignedRequest {
  method: string;
  /** The raw request target as received: path and query, still percent-encoded. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function parseAmzDate(value: string): Date | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match;
  const date = new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** One signer per (credentials, region, service): it caches the derived signing key per day. */
const signers = new WeakMap<DevCredentials, Map<string, SignatureV4>>();
function signerFor(credentials: DevCredentials, region: string, service: string): SignatureV4 {
  let byScope = signers.get(credentials);
  if (!byScope) signers.set(credentials, (byScope = new Map()));
  const key = `${region}\n${service}`;
  let signer = byScope.get(key);
  if (!signer) {
    signer = new SignatureV4({ credentials, region, service, sha256: NodeSha256, applyChecksum: false, uriEscapePath: true });
    if (byScope.size < 64) byScope.set(key, signer); // scopes come from callers: don't let them grow the cache
  }
  return signer;
}

export async function verifySigV4(request: SignedRequest, credentials: DevCredentials, now = Date.now()): Promise<SigV4Check> {
  const header = request.headers.authorization;
  if (typeof header !== "string" || !header.startsWith("AWS4-HMAC-SHA256")) return refuse("MissingAuthenticationTokenException", "Missing Authentication Token");
  const match = AUTHORIZATION.exec(header);
  if (!match) return refuse("IncompleteSignatureException", "Authorization header is malformed");
  const [, accessKeyId, shortDate, region, service, signedHeaderList] = match;
  if (accessKeyId !== credentials.accessKeyId) return refuse("UnrecognizedClientException", "The security token included in the request is invalid");
  const amzDate = request.headers["x-amz-date"];
  const signingDate = typeof amzDate === "string" ? parseAmzDate(amzDate) : undefined;
  if (!signingDate || typeof amzDate !== "string" || !amzDate.startsWith(shortDate)) return refuse("IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope");
  if (Math.abs(now - signingDate.getTime()) > MAX_SKEW_MS) return refuse("InvalidSignatureException", "Signature expired");

  const signedNames = signedHeaderList.split(";");
  if (!signedNames.includes("host")) return refuse("IncompleteSignatureException", "the host header must be signed");
  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = request.headers[name];
    if (value === undefined) return refuse("IncompleteSignatureException", `signed header ${name} is missing`);
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  const payloadHash = crypto.createHash("sha256").update(request.body).digest("hex");
  const claimedHash = headers["x-amz-content-sha256"];
  if (claimedHash !== undefined && claimedHash !== payloadHash) return refuse("InvalidSignatureException", "The payload hash does not match the body");

  const target = request.url;
  const queryAt = target.indexOf("?");
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query: Record<string, string | string[]> = {};
  if (queryAt !== -1) {
    for (const [key, value] of new URLSearchParams(target.slice(queryAt + 1))) {
      const previous = query[key];
      query[key] = previous === undefined ? value : ([] as string[]).concat(previous, value);
    }
  }
  const signed = await signerFor(credentials, region, service).sign(
    { method: request.method, protocol: "http:", hostname: headers.host, path, query, headers: { ...headers }, body: request.body },
    { signingDate },
  );
  const expected = Buffer.from(String(signed.headers.authorization ?? signed.headers.Authorization ?? ""));
  const presented = Buffer.from(header);
  if (expected.length !== presented.length || !crypto.timingSafeEqual(expected, presented)) {
    return refuse("InvalidSignatureException", "The request signature we calculated does not match the signature you provided");
  }
  return { ok: true };
}
