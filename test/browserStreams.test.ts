/**
 * Room streams in Chromium (docs/protocol.md#room-streams): the browser client module, loaded by the page from
 * the local hub, is cut off while notifications are published, comes back while more
 * arrive live, and hands its subscribers every one exactly once, in seq order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { startLocalHub, type LocalHub } from "../local";

import { CHROMIUM, haveChromium as haveBrowser, launchChromium } from "./support/chromium";

if (!haveBrowser) {
  const message = `\n*** BROWSER STREAMS TEST SKIPPED: no Chromium at ${CHROMIUM} ***\n`;
  if (process.env.CI === "true") throw new Error(message + "CI=true: a missing browser is a failure.");
  console.warn(message);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met in time`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.runIf(haveBrowser)("room streams in Chromium", () => {
  let hub: LocalHub;
  let browser: Browser;

  beforeAll(async () => {
    hub = await startLocalHub({ port: 0, bcryptCost: 4 });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  async function publish(room: string, from: number, count: number) {
    for (let i = 0; i < count; i += 10) {
      await hub.notifier.publishBatch(Array.from({ length: Math.min(10, count - i) }, (_, j) => ({ roomId: room, data: { type: "n", data: from + i + j } })));
    }
  }

  const state = (page: Page) =>
    page.evaluate(() => {
      const test = (window as unknown as { streamTest: { seqs: number[]; last: number | undefined } }).streamTest;
      return { seqs: [...test.seqs], last: test.last };
    });

  it("live frames racing a replay: none lost, none twice, in order", async () => {
    const room = "chromium-race";
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(hub.httpUrl);
    const token = await hub.notifier.issueToken({ userId: "chromium", roomId: room, ttlSeconds: 600 });
    // Passed as text: vitest rewrites import() in functions of this file, and the page has no vitest.
    await page.evaluate(`(async () => {
      const { connect } = await import("/client.mjs");
      const [url, token, room] = ${JSON.stringify([hub.websocketUrl, token, room])};
      // The page's own WebSocket, which the test can cut off: reconnects go to a closed port until restored.
      const gate = { closed: false, sockets: [] };
      class Gated extends WebSocket {
        constructor(target, protocols) {
          super(gate.closed ? "ws://127.0.0.1:9/" : target, protocols);
          gate.sockets.push(this);
        }
      }
      const seqs = [];
      const connection = connect({ url, token, room, WebSocket: Gated, minBackoffMs: 50, maxBackoffMs: 200 });
      connection.subscribe("n", (_data, frame) => seqs.push(frame.seq));
      window.streamTest = {
        seqs,
        get last() {
          return connection.lastSeq(room);
        },
        cut() {
          gate.closed = true;
          gate.sockets.at(-1)?.close();
        },
        restore() {
          gate.closed = false;
        },
      };
    })()`);
    await until(async () => (await state(page)).last !== undefined, 20_000, "baseline");
    await page.evaluate(() => (window as unknown as { streamTest: { cut(): void } }).streamTest.cut());
    await publish(room, 1, 100);
    await until(async () => ((await hub.notifier.history({ roomId: room, last: 1 }))[0]?.seq ?? 0) >= 100, 60_000, "100 stored");
    await page.evaluate(() => (window as unknown as { streamTest: { restore(): void } }).streamTest.restore());
    await publish(room, 101, 60); // live while the client reconnects and the replay runs
    await until(async () => (await state(page)).seqs.length >= 160, 60_000, "160 frames in the page");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await state(page)).seqs).toEqual(Array.from({ length: 160 }, (_, i) => i + 1));
    expect(pageErrors).toEqual([]);
    console.log("SUMMARY browser streams: 100 missed + 60 live during the replay, 160 frames once each in seq order in Chromium");
  }, 150_000);
});
