/** The browser client's backoff (client/connection.mjs): full jitter, so clients dropped together come back spread out. */
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";

type Backoff = (failures: number, limits: { minBackoffMs: number; maxBackoffMs: number }) => number;
let backoffDelay: Backoff;
beforeAll(async () => {
  // A plain ES module of the browser client, checked by client/tsconfig.json, not by this project.
  ({ backoffDelay } = (await import("../client/connection.mjs" as string)) as { backoffDelay: Backoff });
});

afterEach(() => vi.restoreAllMocks());

describe("backoffDelay", () => {
  const limits = { minBackoffMs: 500, maxBackoffMs: 30_000 };

  it("takes anywhere from 0 to a ceiling that doubles with each failure, up to maxBackoffMs", () => {
    vi.spyOn(Math, "random").mockReturnValue(0);
    expect([0, 1, 5, 20].map((f) => backoffDelay(f, limits))).toEqual([0, 0, 0, 0]);
    vi.spyOn(Math, "random").mockReturnValue(0.999999);
    expect([0, 1, 2, 5, 6, 20].map((f) => backoffDelay(f, limits))).toEqual([499, 999, 1999, 15999, 29999, 29999]);
  });

  it("spreads 10,000 clients dropped at once evenly over the ceiling (full jitter, not its upper half)", () => {
    const delays = Array.from({ length: 10_000 }, () => backoffDelay(6, limits));
    const buckets = new Array(10).fill(0);
    for (const d of delays) buckets[Math.floor(d / 3_000)]++;
    // Each tenth of 0–30 s gets about 1,000: no wave, and the first half is used too.
    for (const count of buckets) expect(count).toBeGreaterThan(800);
    expect(delays.filter((d) => d < 15_000).length).toBeGreaterThan(4_500);
  });
});
