/**
 * The demo page in Debian's Chromium, driven by playwright-core: connect as a user, then a
 * notification sent with the CLI appears on the page. A screenshot is kept in test-output/.
 * Under CI=true a missing browser fails the test; elsewhere it says loudly that it skipped.
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { startLocalHub, type LocalHub } from "../local";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ROOT = process.cwd();
const OUTPUT = path.join(ROOT, "test-output");
const haveBrowser = fs.existsSync(CHROMIUM);

if (!haveBrowser) {
  const message = `\n*** BROWSER TEST SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium) ***\n`;
  if (process.env.CI === "true") throw new Error(message + "CI=true: a missing browser is a failure.");
  console.warn(message);
}

describe.runIf(haveBrowser)("demo page in Chromium", () => {
  let hub: LocalHub;
  let browser: Browser;
  const stateFile = path.join(OUTPUT, "browser-hub.json");

  beforeAll(async () => {
    fs.mkdirSync(OUTPUT, { recursive: true });
    hub = await startLocalHub({ port: 0, stateFile, bcryptCost: 4 });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  it("receives a notification published with the CLI", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(hub.httpUrl);
    await page.fill("#user", "maria");
    await page.fill("#room", "ops");
    await page.click("#connect");
    await page.waitForSelector("#status[data-state=open]", { timeout: 15_000 });

    // Asynchronously: the hub runs in this process and must keep serving while the CLI talks to it.
    const published = await new Promise<string>((resolve, reject) =>
      childProcess.execFile(
        process.execPath,
        ["-r", "ts-node/register/transpile-only", "cli/index.ts", "publish", "--room", "ops", "--user", "backup-service", "--data", '{"type":"backup.done","data":"Nightly backup finished"}', "--state-file", stateFile],
        { cwd: ROOT, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } },
        (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout)),
      ),
    );
    const row = page.locator(`#log tr[data-id="${published.trim()}"]`);
    await row.waitFor({ timeout: 15_000 });
    expect(await row.locator("td.type").textContent()).toBe("backup.done");
    expect(await row.textContent()).toContain("Nightly backup finished");
    expect(await row.textContent()).toContain("backup-service");

    // The page's own publish form goes through the queue too.
    await page.fill("#type", "chat");
    await page.fill("#data", "typed in the browser");
    await page.click("#publish");
    await page.locator("#log tr", { hasText: "typed in the browser" }).waitFor({ timeout: 15_000 });

    const screenshot = path.join(OUTPUT, "demo-page.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`SUMMARY browser: notification shown in Chromium; screenshot ${path.relative(ROOT, screenshot)}`);
    expect(pageErrors).toEqual([]);
  });
});
