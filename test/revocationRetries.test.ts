/**
 * revokeToken against an API Gateway that throttles or fails its `@connections` DELETEs
 * (dynalite and the standalone emulator's injected faults; every request counted by the
 * emulator's account meter): a 429 storm still closes every connection; a connection whose
 * DELETE keeps failing is reported by RevocationIncompleteError after every other one is
 * closed, its items kept so that a second revokeToken closes it. And the retry loop itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NOT_SENT, requestWithRetries, type PostResponse } from "../core/connections";
import { userChannel } from "../core/rooms";
import { getAuthRow, putConnection, roomPages } from "../core/tables";
import { startConnectionsEmulator, type StandaloneConnectionsEmulator } from "../local/testing";
import { createNotifier, RevocationIncompleteError, type Notifier } from "../server";
import { testNotifierOptions } from "./support/notifier";
import { startDynamo, type Dynamo } from "./support/services";

const ATTEMPTS = 5;
let dynamo: Dynamo;
let management: StandaloneConnectionsEmulator;
let notifier: Notifier;

beforeAll(async () => {
  // An account budget no test reaches: the emulator only counts the requests.
  [dynamo, management] = await Promise.all([startDynamo(), startConnectionsEmulator({ account: { requestsPerSecond: 1_000_000 } })]);
  notifier = createNotifier({ ...testNotifierOptions(dynamo, management, { jwtSecret: "revoke-retries-secret", passcode: "p" }), revokeRetry: { attempts: ATTEMPTS, baseDelayMs: 1, maxDelayMs: 5 } });
}, 60_000);

afterAll(async () => {
  await Promise.all([management?.stop(), dynamo?.stop()]);
});

/** `count` live connections of a user, written as `$connect` writes them, with a seed token for `roomId`. */
async function connectionsOf(userId: string, roomId: string, count: number): Promise<string[]> {
  await notifier.issueToken({ userId, roomId });
  const { generation } = (await getAuthRow(dynamo.client, dynamo.authTable, userId, roomId))!;
  const ids = Array.from({ length: count }, (_, i) => `${userId}-${i}`);
  for (const connectionId of ids) {
    await putConnection(dynamo.client, dynamo.connectionsTable, { connectionId, userId, rooms: [roomId], grants: [roomId], connectedAt: Date.now() - 60_000, generation, authKey: roomId });
  }
  return ids;
}

/** The user's connections still listed in their user channel, as revocation finds them. */
async function listed(userId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of roomPages(dynamo.client, dynamo.connectionsTable, userChannel(userId))) ids.push(...page.connections.map((c) => c.connectionId));
  return ids.sort();
}

const requests = () => management.usage!().connectionsApi.requests;

describe("revokeToken when API Gateway throttles or fails its DELETEs", () => {
  it("a 429 storm (every DELETE refused 3 times, some 500 on top) still closes every connection: each retried until it closed, none left listed", async () => {
    const ids = await connectionsOf("storm", "r1", 8);
    for (const id of ids) management.fault(id, { status: 429, times: 3, method: "DELETE" });
    management.fault(ids[0], { status: 500, times: 2, method: "DELETE" });
    const before = requests();
    const deletedBefore = management.deleted.length;

    expect(await notifier.revokeToken({ userId: "storm" })).toEqual({ closedConnections: 8 });
    expect(management.deleted.slice(deletedBefore).sort()).toEqual([...ids].sort());
    // 7 connections × (3 refused + 1 closed) + 1 × (2 refused + 1 closed); the second look finds nothing.
    expect(requests() - before).toBe(7 * 4 + 3);
    expect(await listed("storm")).toEqual([]);
  });

  it("a connection whose DELETE keeps failing (500 every time; 403 once) is reported after every other one is closed; a second revokeToken closes it", async () => {
    const ids = await connectionsOf("stuck", "r2", 5);
    const [failing, forbidden] = [ids[1], ids[3]];
    management.fault(failing, { status: 500, method: "DELETE" });
    management.fault(forbidden, { status: 403, method: "DELETE" });
    const before = requests();
    const deletedBefore = management.deleted.length;

    const error = await notifier.revokeToken({ userId: "stuck" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(RevocationIncompleteError);
    const incomplete = error as RevocationIncompleteError;
    expect(incomplete.closedConnections).toBe(3);
    expect([...incomplete.notClosed].sort((a, b) => a.connectionId.localeCompare(b.connectionId))).toEqual([
      { connectionId: failing, status: 500, error: "InternalServerErrorException" },
      { connectionId: forbidden, status: 403, error: "ForbiddenException" },
    ]);
    expect(incomplete.message).toContain("revokeToken: 2 connection(s) not closed");
    expect(management.deleted.slice(deletedBefore).sort()).toEqual(ids.filter((id) => id !== failing && id !== forbidden).sort());
    // 3 closed at once; the 500 retried to the end and the 403 not retried, in each of the two looks.
    expect(requests() - before).toBe(3 + 2 * ATTEMPTS + 2 * 1);
    // Left as they were, so a retry finds them.
    expect(await listed("stuck")).toEqual([failing, forbidden].sort());

    management.fault(failing, { status: 500, times: 0 });
    management.fault(forbidden, { status: 403, times: 0 });
    expect(await notifier.revokeToken({ userId: "stuck" })).toEqual({ closedConnections: 2 });
    expect(management.deleted.slice(-2).sort()).toEqual([failing, forbidden].sort());
    expect(await listed("stuck")).toEqual([]);
  });
});

describe("requestWithRetries", () => {
  const answers = (...statuses: PostResponse[]) => {
    const sent: PostResponse[] = [];
    return { sent, send: () => Promise.resolve(sent[sent.push(statuses[sent.length]) - 1]) };
  };
  const policy = { attempts: 4, baseDelayMs: 1, maxDelayMs: 2 };
  const noWait = () => Promise.resolve();

  it("retries 429, 5xx and no answer until an answer that is not worth another try", async () => {
    const { sent, send } = answers({ status: 429 }, { status: 503 }, { status: 0, errorType: "ECONNRESET" }, { status: 204 });
    expect(await requestWithRetries(send, policy, noWait)).toEqual({ response: { status: 204 }, attempts: 4 });
    expect(sent).toHaveLength(4);
  });

  it("stops at once on a 410 or a 403, and on a request the budget did not send", async () => {
    for (const response of [{ status: 410 }, { status: 403 }, { status: 0, errorType: NOT_SENT }]) {
      const { sent, send } = answers(response, { status: 204 });
      expect(await requestWithRetries(send, policy, noWait)).toEqual({ response, attempts: 1 });
      expect(sent).toHaveLength(1);
    }
  });

  it("gives up after the policy's attempts with the last answer", async () => {
    const { sent, send } = answers({ status: 429 }, { status: 429 }, { status: 429 }, { status: 429 }, { status: 204 });
    expect(await requestWithRetries(send, policy, noWait)).toEqual({ response: { status: 429 }, attempts: 4 });
    expect(sent).toHaveLength(4);
  });
});

describe("createNotifier revokeRetry", () => {
  it("refuses attempts or delays out of range, naming the key and the range", () => {
    expect(() => createNotifier({ revokeRetry: { attempts: 0 } })).toThrow("createNotifier: revokeRetry.attempts must be a whole number from 1 to 20");
    expect(() => createNotifier({ revokeRetry: { maxDelayMs: -1 } })).toThrow("createNotifier: revokeRetry.maxDelayMs must be a number of milliseconds from 0 to 60000");
  });
});
