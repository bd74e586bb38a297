/**
 * A reconnect storm: every client of a hub reconnects at once (a deploy, a network blip),
 * API Gateway starts a cold authorizer container per concurrent $connect, and each reads the
 * signing secret from SSM, whose GetParameter rate is shared by the whole account. Here the
 * real SSM client in each cold authorizer talks to a stand-in that throttles at SSM's
 * default 40 per second.
 */
import * as crypto from "crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENV } from "../core/aws";
import { authorizerFromEnvironment } from "../handlers/authorizer";
import { readOncePerContainer, SECRET_READ_RETRY } from "../handlers/environment";
import { authorizerEvent } from "./support/events";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { testNotifier } from "./support/notifier";
import { startDynamo, type Dynamo } from "./support/services";
import { startParameterStore, type ParameterStore } from "./support/ssm";

const JWT_SECRET = "storm-secret-" + crypto.randomBytes(12).toString("hex");
const PARAMETER = "hub-jwt-secret";
const COLD_AUTHORIZERS = 200;

let dynamo: Dynamo;
let management: StandaloneConnectionsEmulator;
let ssm: ParameterStore;
const savedEnv = { ...process.env };

beforeAll(async () => {
  [dynamo, management, ssm] = await Promise.all([
    startDynamo(),
    startConnectionsEmulator(),
    startParameterStore({ [PARAMETER]: JWT_SECRET }, { perWindow: 4, windowMs: 100 }), // 40 a second
  ]);
  Object.assign(process.env, {
    [ENV.authTable]: dynamo.authTable,
    [ENV.dynamodbEndpoint]: dynamo.endpoint,
    [ENV.jwtSecretParameter]: PARAMETER,
    [ENV.ssmEndpoint]: ssm.endpoint,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
  });
});

afterAll(async () => {
  process.env = savedEnv;
  await Promise.all([dynamo?.stop(), management?.stop(), ssm?.stop()]);
});

describe("the JWT secret under a reconnect storm", () => {
  it(`${COLD_AUTHORIZERS} concurrent cold authorizers against a throttling parameter store refuse no valid token`, async () => {
    const notifier = testNotifier(dynamo, management, { jwtSecret: JWT_SECRET, passcode: "storm" });
    const tokens = await Promise.all(Array.from({ length: COLD_AUTHORIZERS }, (_, i) => notifier.issueToken({ userId: `u${i}`, roomId: "storm" })));
    const before = ssm.requests.length;
    // One handler per token, each built as a fresh container builds it (its own SSM client).
    const started = Date.now();
    const results = await Promise.all(tokens.map((token) => authorizerFromEnvironment()(authorizerEvent({ token }))));
    const secretPhaseSeconds = ((ssm.lastServedAt - started) / 1000).toFixed(1);
    const effects = results.map((r) => (r.policyDocument.Statement[0] as { Effect: string }).Effect);
    const reads = ssm.requests.length - before;
    console.log(`SUMMARY secret storm: ${COLD_AUTHORIZERS} cold authorizers, ${reads} GetParameter calls, ${ssm.throttled} throttled, last secret served after ${secretPhaseSeconds} s (budget ${SECRET_READ_RETRY.budgetMs / 1000} s), ${effects.filter((e) => e === "Allow").length} allowed`);
    expect(ssm.throttled).toBeGreaterThan(0); // the storm really was throttled
    expect(effects.filter((e) => e !== "Allow")).toEqual([]);
  }, 60_000);

  it("a warm container reads the secret once, however many connects arrive at once, and keeps it", async () => {
    const authorize = authorizerFromEnvironment();
    const notifier = testNotifier(dynamo, management, { jwtSecret: JWT_SECRET, passcode: "warm" });
    const token = await notifier.issueToken({ userId: "warm", roomId: "storm" });
    const before = ssm.requests.length;
    const first = await Promise.all(Array.from({ length: 50 }, () => authorize(authorizerEvent({ token }))));
    const later = await authorize(authorizerEvent({ token }));
    expect(ssm.requests.length - before).toBeLessThanOrEqual(1 + ssm.throttled); // one read, plus any throttled retries of it
    expect(new Set(ssm.requests.slice(before).map((r) => r)).size).toBe(1);
    expect([...first, later].every((r) => (r.policyDocument.Statement[0] as { Effect: string }).Effect === "Allow")).toBe(true);
  });

  it("retries throttling with growing jittered delays, gives up on errors that will not pass, and tries again on the next call", async () => {
    const delays: number[] = [];
    let calls = 0;
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });
    const read = readOncePerContainer(
      async () => {
        calls++;
        if (calls <= 3) throw throttled;
        return "secret";
      },
      { budgetMs: 60_000, baseDelayMs: 100, maxDelayMs: 1_000 },
      async (ms) => void delays.push(ms),
    );
    expect(await Promise.all([read(), read()])).toEqual(["secret", "secret"]);
    expect(calls).toBe(4); // concurrent callers shared one read
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => expect(d).toBeLessThan(100 * 2 ** i));

    let denied = 0;
    const notFound = Object.assign(new Error("not found"), { name: "ParameterNotFound", $metadata: { httpStatusCode: 400 } });
    const failing = readOncePerContainer(async () => {
      denied++;
      throw notFound;
    });
    await expect(failing()).rejects.toThrow("not found");
    await expect(failing()).rejects.toThrow("not found");
    expect(denied).toBe(2); // no retries for a missing parameter, and the failure is not kept
  });
});
