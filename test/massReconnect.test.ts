/**
 * A mass drop, counted: 1,000 browser clients (the real client module over `ws`, in this
 * process) on a local hub with `dataDir`. The hub restarts with an account that admits 20 new
 * connections a second, under what this machine handshakes even when busy (about 60 attempts
 * a second reach it with load 20 on 2 cores), so the budget binds: every client reconnects,
 * spread out by its full-jitter backoff, past 429 refusals, within the account's rate, and
 * resumes its room through the protocol (`resume`, `hub.resumed`): each ends with every
 * notification exactly once, in seq order with no gap, including those published while it
 * was away.
 *
 * Counted, not timed: reconnects (one per client), handshakes refused with 429, the busiest
 * second of new connections, seq gaps (0) and frames (3 per client). The first connect runs at
 * AWS's default 500 a second, so only the reconnect pays the small budget: at least 50 s of
 * it (1,000 at 20 a second), the run's bulk (76 s in all with load 5 to 10 on 2 cores; at 30 a
 * second it took 64 s, but only 2,577 refusals against 10,304: too close to what the machine
 * handshakes under heavier load for the refusals to be certain). The hub logs nothing: under
 * load each timed-out stand-in request logged a line, and vitest's console made the load worse.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { mapWithConcurrency } from "../core/fanout";
import { createLogger } from "../core/log";
import { startLocalHub, type LocalHub, type LocalHubOptions } from "../local";
import { until } from "./support/wait";

type ClientModule = typeof import("../client/index.mjs", { with: { "resolution-mode": "import" } });
let connect: ClientModule["connect"];
beforeAll(async () => {
  ({ connect } = await import("../client/index.mjs"));
});

const CLIENTS = 1_000;
const TABS = 10;
/** New connections a second the account admits after the restart. */
const RATE = 20;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mass-reconnect-"));
let hub: LocalHub | undefined;
afterAll(async () => {
  await hub?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe("a hub restart with 1,000 clients connected", () => {
  it("every client reconnects within the account's new-connection rate and resumes with nothing lost and no seq gap", async () => {
    const options = (port: number, newConnectionsPerSecond: number): LocalHubOptions => ({
      port,
      dataDir,
      bcryptCost: 4,
      // Silent: under this load every timed-out request of the stand-ins would log a line (vitest's console is costly).
      logger: createLogger({}, () => undefined, "error"),
      queue: { waitTimeSeconds: 1 },
      limits: { account: { newConnectionsPerSecond } },
    });
    hub = await startLocalHub(options(0, 500));
    const port = Number(new URL(hub.websocketUrl).port);
    const url = hub.websocketUrl;
    // Ten tabs per user: the tokens survive the restart (the dev secrets are kept in dataDir).
    const tokens = await mapWithConcurrency(Array.from({ length: CLIENTS / TABS }, (_, i) => i), 4, (i) => hub!.notifier.issueToken({ userId: `mass-${i}`, roomId: "mass", ttlSeconds: 3600 }));
    const frames: { n: number; seq: number }[][] = Array.from({ length: CLIENTS }, () => []);
    const opens = new Array<number>(CLIENTS).fill(0);
    let gaps = 0;
    const clients = tokens.flatMap((token, u) =>
      Array.from({ length: TABS }, (_, t) => {
        const index = u * TABS + t;
        const client = connect({
          url,
          token,
          room: "mass",
          minBackoffMs: 250,
          maxBackoffMs: 4_000,
          // The local stand-ins answer a thousand resumes at once slowly: a 10 s timeout retried them all, again and again.
          resumeTimeoutMs: 60_000,
          WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
          onStateChange: (state) => {
            if (state === "open") opens[index]++;
          },
          onGap: () => gaps++,
        });
        client.subscribe("n", (data, frame) => frames[index].push({ n: data as number, seq: frame.seq! }));
        return client;
      }),
    );
    try {
      await until(() => clients.every((c) => c.state === "open"), 90_000);
      await hub.notifier.publish({ roomId: "mass", data: { type: "n", data: 1 } });
      await until(() => frames.every((f) => f.length === 1), 60_000);

      await hub.stop();
      hub = await startLocalHub(options(port, RATE));
      // Published while every client is away: only a resume brings them.
      await hub.notifier.publish({ roomId: "mass", data: { type: "n", data: 2 } });
      await hub.notifier.publish({ roomId: "mass", data: { type: "n", data: 3 } });
      await until(() => frames.every((f) => f.length >= 3), 180_000);
      await until(() => clients.every((c) => c.state === "open"), 30_000);

      // Nothing lost, nothing twice, in order, and the three seqs consecutive in every client.
      for (const f of frames) {
        expect(f.map((x) => x.n)).toEqual([1, 2, 3]);
        expect(f.map((x) => x.seq - f[0].seq)).toEqual([0, 1, 2]);
      }
      expect(gaps).toBe(0);
      // One reconnect each: the first open, then one after the restart.
      expect(opens.filter((n) => n !== 2)).toEqual([]);
      const after = hub.accountUsage().newConnections;
      expect(after.accepted).toBeGreaterThanOrEqual(CLIENTS);
      // They came back at once and were refused past the rate, then spread out under it.
      expect(after.throttled).toBeGreaterThan(0);
      // A full bucket (one second's worth) plus one second's refill is the most any 1 s span admits.
      expect(after.peakPerSecond).toBeLessThanOrEqual(2 * RATE);
      console.log(`mass reconnect: ${CLIENTS} clients, ${after.accepted} reconnects, ${after.throttled} handshakes refused with 429, busiest second ${after.peakPerSecond} (rate ${RATE}/s), ${gaps} seq gaps`);
    } finally {
      for (const client of clients) client.close();
    }
  }, 300_000);
});
