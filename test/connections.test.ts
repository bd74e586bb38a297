/**
 * The @connections post path (core/connections.ts): its signature is the SDK client's, a
 * receiver can verify it with the SDK's signer on its own, and its timeouts really cut.
 */
import * as crypto from "crypto";
import * as http from "http";
import type { AddressInfo } from "net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { GetConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { SignatureV4 } from "@smithy/signature-v4";
import { managementClient } from "../core/aws";
import { createConnectionsApi, postWithRetries, type ConnectionsApi } from "../core/connections";
import { postToConnections } from "../core/fanout";
import { getConnection } from "../core/tables";
import { recordingObserver } from "./support/hubEvents";
import { capturingLogger } from "./support/logs";
import { seedConnections } from "./support/seed";
import { startDynamo, type Dynamo } from "./support/services";

const CREDENTIALS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "session-token-example" };
const SIGNING_TIME = new Date("2026-11-21T12:34:56Z");
/** Headers the SDK adds for its own telemetry and retries; the post path sends none of them. */
const SDK_ONLY_HEADERS = ["amz-sdk-invocation-id", "amz-sdk-request", "x-amz-user-agent", "user-agent"];

/** The request the SDK client signs and would send, captured by a fake handler. */
async function sdkSignedRequest(endpoint: string, connectionId: string, body: Buffer, credentials = CREDENTIALS) {
  let captured: { path: string; headers: Record<string, string> } | undefined;
  const client = new ApiGatewayManagementApiClient({
    endpoint,
    region: "eu-west-1",
    credentials,
    maxAttempts: 1,
    requestHandler: {
      handle: async (request: { path: string; headers: Record<string, string> }) => {
        captured = { path: request.path, headers: { ...request.headers } };
        throw Object.assign(new Error("captured"), { name: "Captured" });
      },
    } as never,
  });
  // Same request as the post path's: without the SDK's telemetry headers, then signed by the client.
  type Next = (args: { request: { headers: Record<string, string> } }) => Promise<unknown>;
  client.middlewareStack.addRelativeTo(
    ((next: Next) => async (args: { request: { headers: Record<string, string> } }) => {
      for (const name of SDK_ONLY_HEADERS) delete args.request.headers[name];
      return next(args);
    }) as never,
    { relation: "before", toMiddleware: "httpSigningMiddleware", name: "dropTelemetryHeaders" } as never,
  );
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(SIGNING_TIME);
  try {
    await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: body })).catch((err: Error) => {
      if (err.name !== "Captured") throw err;
    });
  } finally {
    vi.useRealTimers();
  }
  return captured!;
}

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A @connections stand-in that records requests; `hang` ids never get an answer. */
async function startRecorder(hang: Set<string> = new Set()) {
  const received: Received[] = [];
  const closedWithoutAnswer: string[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const id = decodeURIComponent((request.url ?? "").split("/").pop() ?? "");
      received.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body: Buffer.concat(chunks) });
      if (hang.has(id)) {
        request.socket.once("close", () => closedWithoutAnswer.push(id));
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/dev`,
    received,
    closedWithoutAnswer,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The receiving side of SigV4, done with the SDK's signer alone and a hash of its own. */
async function verifySignature(request: Received, credentials: { accessKeyId: string; secretAccessKey: string }, region: string): Promise<boolean> {
  const auth = String(request.headers.authorization);
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/execute-api\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!match || match[1] !== credentials.accessKeyId || match[3] !== region) return false;
  const bodyHash = crypto.createHash("sha256").update(request.body).digest("hex");
  if (request.headers["x-amz-content-sha256"] !== bodyHash) return false;
  const headers: Record<string, string> = {};
  for (const name of match[4].split(";")) headers[name] = String(request.headers[name]);
  class Hmac {
    private readonly parts: Buffer[] = [];
    private readonly key?: string | Uint8Array;
    constructor(key?: unknown) {
      this.key = key === undefined || typeof key === "string" ? key : new Uint8Array(key as ArrayBuffer);
    }
    update(data: Uint8Array) {
      this.parts.push(Buffer.from(data));
    }
    async digest() {
      const data = Buffer.concat(this.parts);
      return new Uint8Array(this.key === undefined ? crypto.createHash("sha256").update(data).digest() : crypto.createHmac("sha256", this.key).update(data).digest());
    }
    reset() {}
  }
  const amzDate = headers["x-amz-date"];
  const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const [path] = request.url.split("?");
  const expected = await new SignatureV4({ credentials, region, service: "execute-api", sha256: Hmac }).sign(
    { method: request.method, protocol: "http:", hostname: String(request.headers.host), path, query: {}, headers, body: request.body },
    { signingDate },
  );
  return expected.headers.authorization === auth;
}

describe("signature", () => {
  const body = Buffer.from(JSON.stringify({ id: "m1", room_id: "r", user_id: null, data: { type: "t", data: "é ✓" } }));

  for (const [label, endpoint, connectionId] of [
    ["AWS endpoint", "https://abc123.execute-api.eu-west-1.amazonaws.com/production", "L0SM9cOFvHcCIhw="],
    ["local endpoint with a port, id with + / and spaces", "http://127.0.0.1:8787/local", "a+b/c= d!*"],
  ] as const) {
    it(`has the Authorization header the SDK client produces (${label})`, async () => {
      const api = createConnectionsApi(endpoint, { region: "eu-west-1", credentials: CREDENTIALS });
      const ours = await api.sign(connectionId, api.prepare(body), SIGNING_TIME);
      const sdk = await sdkSignedRequest(endpoint, connectionId, body);
      api.destroy();
      expect(ours.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261121\/eu-west-1\/execute-api\/aws4_request, /);
      expect(ours.headers.authorization).toBe(sdk.headers.authorization);
      expect(ours.path).toBe(sdk.path);
      expect(ours.headers).toEqual(sdk.headers);
    });
  }

  it("signs the hash it was given: the payload is hashed once per frame, not once per post", async () => {
    const api = createConnectionsApi("https://abc.execute-api.eu-west-1.amazonaws.com/p", { region: "eu-west-1", credentials: CREDENTIALS });
    const frame = api.prepare(body);
    expect(frame.sha256).toBe(crypto.createHash("sha256").update(body).digest("hex"));
    const fake = { ...frame, sha256: "f".repeat(64) };
    const signed = await api.sign("c1", fake, SIGNING_TIME);
    expect(signed.headers["x-amz-content-sha256"]).toBe(fake.sha256);
    expect(signed.headers.authorization).not.toBe((await api.sign("c1", frame, SIGNING_TIME)).headers.authorization);
    api.destroy();
  });

  it("without explicit credentials, signs with the default chain (Lambda's env credentials, session token included)", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: "ASIAENVKEY", AWS_SECRET_ACCESS_KEY: "env-secret", AWS_SESSION_TOKEN: "env-session" });
    delete process.env.AWS_PROFILE;
    try {
      const api = createConnectionsApi("https://abc.execute-api.eu-west-1.amazonaws.com/p", { region: "eu-west-1" });
      const signed = await api.sign("c1", api.prepare(body), SIGNING_TIME);
      api.destroy();
      expect(signed.headers.authorization).toContain("Credential=ASIAENVKEY/20261121/eu-west-1/execute-api/aws4_request");
      expect(signed.headers["x-amz-security-token"]).toBe("env-session");
      const sdk = await sdkSignedRequest("https://abc.execute-api.eu-west-1.amazonaws.com/p", "c1", body, { accessKeyId: "ASIAENVKEY", secretAccessKey: "env-secret", sessionToken: "env-session" });
      expect(signed.headers.authorization).toBe(sdk.headers.authorization);
    } finally {
      for (const key of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });

  it("what arrives on the wire verifies with @smithy/signature-v4 on the receiving side, and a wrong secret does not", async () => {
    const recorder = await startRecorder();
    const dev = { accessKeyId: "local-dev-key", secretAccessKey: "local-dev-secret" };
    const api = createConnectionsApi(recorder.endpoint, { region: "us-east-1", credentials: dev });
    try {
      const frame = api.prepare(body);
      for (const id of ["plain", "with+plus/and=slash", "ünïcödé"]) expect(await api.post(id, frame)).toEqual({ status: 200 });
      expect(recorder.received).toHaveLength(3);
      for (const request of recorder.received) {
        expect(request.body.equals(body)).toBe(true);
        expect(await verifySignature(request, dev, "us-east-1")).toBe(true);
        expect(await verifySignature(request, { ...dev, secretAccessKey: "wrong" }, "us-east-1")).toBe(false);
      }
      // Keep-alive: three posts, one socket.
      expect(new Set(recorder.received.map((r) => r.headers.connection))).toEqual(new Set(["keep-alive"]));
    } finally {
      api.destroy();
      await recorder.stop();
    }
  });
});

describe("timeouts and retries", () => {
  let dynamo: Dynamo;
  const logs = capturingLogger();
  beforeAll(async () => {
    dynamo = await startDynamo();
  });
  afterAll(async () => {
    await dynamo?.stop();
  });
  let api: ConnectionsApi | undefined;
  afterEach(() => api?.destroy());

  it("a post that hangs is cut (socket destroyed), retried, then reported failed; the other connections never wait for it", async () => {
    const recorder = await startRecorder(new Set(["stuck"]));
    api = createConnectionsApi(recorder.endpoint, { credentials: CREDENTIALS, timeoutMs: 300, maxSockets: 4 });
    try {
      const others = Array.from({ length: 40 }, (_, i) => `ok-${i}`);
      const finished: string[] = [];
      const events = recordingObserver();
      const deps = { management: api, db: dynamo.client, connectionsTable: dynamo.connectionsTable, log: logs.log, observe: events.observe, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } };
      const outcomes = await Promise.all(
        ["stuck", ...others].map((id) => postWithRetries(deps, id, api!.prepare("{}")).then((outcome) => (finished.push(id), outcome))),
      );
      expect(outcomes[0]).toBe("failed");
      expect(outcomes.slice(1).every((o) => o === "delivered")).toBe(true);
      // Every other connection was served while the stuck one held its socket.
      expect(finished.at(-1)).toBe("stuck");
      // Two attempts, each cut: the server saw both sockets closed without an answer.
      await vi.waitFor(() => expect(recorder.closedWithoutAnswer).toEqual(["stuck", "stuck"]));
      expect(events.ofType("post.failed")).toEqual([expect.objectContaining({ connectionId: "stuck", attempts: 2, error: "TimeoutError" })]);
    } finally {
      await recorder.stop();
    }
  });

  it("fan-out hands back only the connection that timed out, and 410 deletes the row", async () => {
    const recorder = await startRecorder(new Set(["t-stuck"]));
    await seedConnections(dynamo.client, dynamo.connectionsTable, [{ connectionId: "t-gone", roomId: "t", userId: "u" }]);
    const gone = http.createServer((_req, res) => {
      res.writeHead(410, { "x-amzn-errortype": "GoneException:http://internal.amazon.com/coral/" });
      res.end("{}");
    });
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    const goneApi = createConnectionsApi(`http://127.0.0.1:${(gone.address() as AddressInfo).port}/dev`, { credentials: CREDENTIALS });
    api = createConnectionsApi(recorder.endpoint, { credentials: CREDENTIALS, timeoutMs: 200 });
    try {
      const deps = { management: api, db: dynamo.client, connectionsTable: dynamo.connectionsTable, log: logs.log, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } };
      const result = await postToConnections(deps, { id: "n1", roomId: "t", userId: null, origin: "app", data: 1 }, ["t-a", "t-stuck", "t-b"]);
      expect(result).toMatchObject({ delivered: 2, gone: 0, failed: ["t-stuck"] });
      expect(await goneApi.post("t-gone", goneApi.prepare("{}"))).toEqual({ status: 410, errorType: "GoneException" });
      const goneResult = await postToConnections({ ...deps, management: goneApi }, { id: "n2", roomId: "t", userId: null, origin: "app", data: 1 }, ["t-gone"]);
      expect(goneResult).toMatchObject({ delivered: 0, gone: 1, failed: [] });
      expect(await getConnection(dynamo.client, dynamo.connectionsTable, "t-gone")).toBeUndefined();
    } finally {
      goneApi.destroy();
      gone.closeAllConnections();
      gone.close();
      await recorder.stop();
    }
  });

  it("the SDK management client's timeout throws instead of only warning (throwOnRequestTimeout)", async () => {
    const recorder = await startRecorder(new Set(["stuck"]));
    const client = managementClient(recorder.endpoint, { credentials: CREDENTIALS, timeoutMs: 300 });
    try {
      await expect(client.send(new GetConnectionCommand({ ConnectionId: "stuck" }))).rejects.toMatchObject({ name: "TimeoutError" });
      await vi.waitFor(() => expect(recorder.closedWithoutAnswer).toEqual(["stuck"]));
    } finally {
      client.destroy();
      await recorder.stop();
    }
  });
});
