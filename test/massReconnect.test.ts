/**
 * A mass drop, counted: a few hundred browser clients (the real client module over `ws`) on a
 * local hub with `dataDir`, whose account allows 20 new connections a second (under what this machine handshakes, so the budget binds). The hub restarts;
 * every client reconnects, spread out by its full-jitter backoff, past 429 refusals, within the
 * account's rate, and resumes its room: each ends with every notification exactly once,
 * including those published while it was away.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { mapWithConcurrency } from "../core/fanout";
import { startLocalHub, type LocalHub, type LocalHubOptions } from "../local";
import { until } from "./support/wait";

type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });
let connect: ClientModule["connect"];
beforeAll(async () => {
  ({ connect } = await import("../client/index.mjs"));
});

const CLIENTS = 200;
const RATE = 20;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mass-reconnect-"));
let hub: LocalHub | undefined;
afterAll(async () => {
  await hub?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("a hub restart with every client connected", () => {
  it("every client reconnects within the account's new-connection rate and resumes with nothing lost", async () => {
    const options = (port: number): LocalHubOptions => ({
      port,
      dataDir,
      bcryptCost: 4,
      queue: { waitTimeSeconds: 1 },
      limits: { account: { newConnectionsPerSecond: RATE } },
    });
    hub = await startLocalHub(options(0));
    const port = Number(new URL(hub.websocketUrl).port);
    const url = hub.websocketUrl;
    // Ten tabs per user: the tokens survive the restart (the dev secrets are kept in dataDir).
    const tokens = await mapWithConcurrency(Array.from({ length: CLIENTS / 10 }, (_, i) => i), 4, (i) => hub!.notifier.issueToken({ userId: `mass-${i}`, roomId: "mass", ttlSeconds: 3600 }));
    const got: number[][] = Array.from({ length: CLIENTS }, () => []);
    const clients = tokens.flatMap((token, u) =>
      Array.from({ length: 10 }, (_, t) => {
        const index = u * 10 + t;
        const client = connect({ url, token, room: "mass", minBackoffMs: 250, maxBackoffMs: 8_000, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
        client.subscribe("n", (data) => got[index].push(data as number));
        return client;
      }),
    );
    try {
      // Even the first connect meets the account's rate: refused handshakes are retried.
      await until(() => clients.every((c) => c.state === "open"), 90_000);
      const first = hub.accountUsage().newConnections;
      expect(first.accepted).toBeGreaterThanOrEqual(CLIENTS);
      await hub.notifier.publish({ roomId: "mass", data: { type: "n", data: 1 } });
      await until(() => got.every((g) => g.length === 1), 30_000);

      await hub.stop();
      hub = await startLocalHub(options(port));
      // Published while every client is away: only a resume brings them.
      await hub.notifier.publish({ roomId: "mass", data: { type: "n", data: 2 } });
      await hub.notifier.publish({ roomId: "mass", data: { type: "n", data: 3 } });
      await until(() => got.every((g) => g.length >= 3), 120_000);
      await until(() => clients.every((c) => c.state === "open"), 30_000);

      for (const g of got) expect(g).toEqual([1, 2, 3]);
      const after = hub.accountUsage().newConnections;
      expect(after.accepted).toBeGreaterThanOrEqual(CLIENTS);
      // They came back at once and were refused past the rate, then spread out under it.
      expect(after.throttled).toBeGreaterThan(0);
      // A full bucket (one second's worth) plus one second's refill is the most any 1 s span admits.
      expect(after.peakPerSecond).toBeLessThanOrEqual(2 * RATE);
    } finally {
      for (const client of clients) client.close();
    }
  }, 300_000);
});
