/**
 * The account budget as the local API Gateway enforces it, counted (not timed): `@connections`
 * requests of every caller past the account's rate answer 429 `LimitExceededException`, and
 * handshakes past the new-connection rate are refused with 429 before the authorizer runs.
 */
import * as http from "http";
import { afterEach, describe, expect, it } from "vitest";
import { startLocalHub, type LocalHub } from "../local";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { resolveLimits } from "../local/gateway/limits";
import { handshakeStatus } from "./support/wsClient";

function rawPost(url: string): Promise<{ status: number; errorType?: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST", headers: { "content-length": 2 } }, (response) => {
      response.resume();
      resolve({ status: response.statusCode ?? 0, errorType: response.headers["x-amzn-errortype"] as string | undefined });
    });
    request.on("error", reject);
    request.end("{}");
  });
}

describe("the emulated account budget", () => {
  let emulator: StandaloneConnectionsEmulator | undefined;
  let hub: LocalHub | undefined;
  afterEach(async () => {
    await emulator?.stop();
    await hub?.stop();
    emulator = hub = undefined;
  });

  it("defaults to AWS's quotas; a rate given alone gets half a second's burst", () => {
    expect(resolveLimits().account).toEqual({ requestsPerSecond: 10_000, requestsBurst: 5_000, newConnectionsPerSecond: 500 });
    expect(resolveLimits({ account: { requestsPerSecond: 200 } }).account).toEqual({ requestsPerSecond: 200, requestsBurst: 100, newConnectionsPerSecond: 500 });
  });

  it("answers @connections requests past the account's rate with 429 LimitExceededException, and counts both", async () => {
    emulator = await startConnectionsEmulator({ stage: "dev", account: { requestsPerSecond: 20, requestsBurst: 50 } });
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => rawPost(`${emulator!.endpoint}/@connections/c${i}`)));
    const ok = answers.filter((a) => a.status === 200).length;
    const throttled = answers.filter((a) => a.status === 429);
    // The burst, plus what the rate refilled while 200 requests arrived (well under a second).
    expect(ok).toBeGreaterThanOrEqual(50);
    expect(ok).toBeLessThan(75);
    expect(throttled.length).toBe(200 - ok);
    expect(new Set(throttled.map((a) => a.errorType))).toEqual(new Set(["LimitExceededException"]));
    expect(emulator.usage!()).toMatchObject({ connectionsApi: { requests: ok, throttled: 200 - ok } });
    // Recorded only what was admitted.
    expect([...emulator.received.values()].flat()).toHaveLength(ok);
  });

  it("refuses handshakes past the new-connection rate with 429, before the authorizer", async () => {
    hub = await startLocalHub({ port: 0, bcryptCost: 4, limits: { account: { newConnectionsPerSecond: 5 } } });
    const token = await hub.notifier.issueToken({ userId: "u", roomId: "r" });
    const statuses = await Promise.all(Array.from({ length: 20 }, () => handshakeStatus(`${hub!.websocketUrl}?token=${token}`)));
    const refused = statuses.filter((s) => s === 429).length;
    expect(statuses.filter((s) => s === 101).length).toBeLessThanOrEqual(6);
    expect(refused).toBeGreaterThanOrEqual(14);
    expect(refused + statuses.filter((s) => s === 101).length).toBe(20);
    expect(hub.accountUsage().newConnections).toMatchObject({ throttled: refused });
    // A second later the budget has refilled.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await handshakeStatus(`${hub.websocketUrl}?token=${token}`)).toBe(101);
  });
});
