/**
 * The standalone `@connections` emulator the handler tests use is the hub's own module
 * (local/gateway/connectionsApi.ts): same SigV4 check when given credentials, same size
 * limit, same error types for injected faults, 404 for anything else. And the hub's public
 * options carry no test hook.
 */
import * as http from "http";
import { afterEach, describe, expect, expectTypeOf, it } from "vitest";
import { DeleteConnectionCommand, GetConnectionCommand, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { managementClient } from "../core/aws";
import { newDevCredentials } from "../local/sigv4";
import type { LocalHub, LocalHubOptions } from "../local";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";

function rawRequest(url: string, method: string, body = ""): Promise<{ status: number; errorType?: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers: { "content-length": Buffer.byteLength(body) } }, (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0, errorType: response.headers["x-amzn-errortype"] as string | undefined });
    });
    request.on("error", reject);
    request.end(body);
  });
}

describe("the standalone @connections emulator", () => {
  let emulator: StandaloneConnectionsEmulator | undefined;
  afterEach(async () => {
    await emulator?.stop();
    emulator = undefined;
  });

  it("records posts, answers GET and DELETE, and refuses unsigned or wrongly signed calls when given credentials", async () => {
    const credentials = newDevCredentials();
    emulator = await startConnectionsEmulator({ stage: "dev", credentials });
    const signed = managementClient(emulator.endpoint, { credentials, region: "us-east-1" });
    await signed.send(new PostToConnectionCommand({ ConnectionId: "c/1", Data: Buffer.from('{"n":1}') }));
    expect(emulator.received.get("c/1")).toEqual(['{"n":1}']);
    await expect(signed.send(new GetConnectionCommand({ ConnectionId: "c/1" }))).resolves.toMatchObject({ Identity: { SourceIp: "127.0.0.1" } });
    await signed.send(new DeleteConnectionCommand({ ConnectionId: "c/1" }));
    expect(emulator.deleted).toEqual(["c/1"]);

    const guessed = managementClient(emulator.endpoint, { credentials: { ...credentials, secretAccessKey: "guess" }, region: "us-east-1" });
    await expect(guessed.send(new PostToConnectionCommand({ ConnectionId: "c/1", Data: Buffer.from("x") }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    expect(await rawRequest(`${emulator.endpoint}/@connections/c1`, "POST", "x")).toEqual({ status: 403, errorType: "MissingAuthenticationTokenException" });
    expect(emulator.received.get("c/1")).toHaveLength(1);
  });

  it("answers injected faults with API Gateway's error types, counts them down, and keeps API Gateway's limits and paths", async () => {
    emulator = await startConnectionsEmulator();
    const url = `${emulator.endpoint}/@connections/c1`;
    emulator.fault("c1", { status: 429, times: 1 });
    expect(await rawRequest(url, "POST", "a")).toEqual({ status: 429, errorType: "LimitExceededException" });
    expect(await rawRequest(url, "POST", "b")).toEqual({ status: 200, errorType: undefined });
    emulator.fault("c1", { status: 410 });
    expect(await rawRequest(url, "POST", "c")).toEqual({ status: 410, errorType: "GoneException" });
    expect(await rawRequest(url, "POST", "d")).toEqual({ status: 410, errorType: "GoneException" });
    emulator.fault("c1", { status: 500, times: 0 });
    expect(await rawRequest(url, "POST", "x".repeat(128 * 1024 + 1))).toEqual({ status: 413, errorType: "PayloadTooLargeException" });
    expect(emulator.received.get("c1")).toEqual(["b"]);
    expect((await rawRequest(emulator.endpoint.replace(/\/test$/, "/other/@connections/c1"), "POST", "e")).status).toBe(404);
  });
});

describe("the hub's public options", () => {
  it("hold no test hook: fault injection and a replacement deliver module go through local/testing.ts", () => {
    expectTypeOf<LocalHubOptions>().not.toHaveProperty("faultInjection");
    expectTypeOf<LocalHubOptions>().not.toHaveProperty("deliverModule");
    expectTypeOf<LocalHubOptions>().not.toHaveProperty("deliverFactory");
    expectTypeOf<LocalHub>().not.toHaveProperty("faults");
  });
});
