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

import { CHROMIUM, haveChromium as haveBrowser, launchChromium } from "./support/chromium";
import { roomRows } from "./support/seed";

const ROOT = process.cwd();
const OUTPUT = path.join(ROOT, "test-output");

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
    // Presence on, as `notification-hub dev` runs it, with timers short enough for a test.
    hub = await startLocalHub({ port: 0, stateFile, bcryptCost: 4, presence: { enabled: true, graceSeconds: 1, sweepSeconds: 0.2 } });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  it("receives a notification published with the CLI", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(new URL("/demo", hub.httpUrl).href);
    await page.fill("#user", "maria");
    await page.fill("#room", "ops");
    await page.click("#connect");
    await page.waitForSelector("#status[data-state=open]", { timeout: 15_000 });

    // Asynchronously: the hub runs in this process and must keep serving while the CLI talks to it.
    // The installed bin (package.json "bin"), which test/support/globalSetup.ts builds once per run.
    const published = await new Promise<string>((resolve, reject) =>
      childProcess.execFile(
        process.execPath,
        ["dist/cli/index.js", "publish", "--room", "ops", "--user", "backup-service", "--data", '{"type":"backup.done","data":"Nightly backup finished"}', "--state-file", stateFile, "--json"],
        { cwd: ROOT, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } },
        (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve((JSON.parse(stdout) as { messageId: string }).messageId)),
      ),
    );
    const row = page.locator(`#log tr[data-id="${published}"]`);
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

  it("the demo's console is free of errors in Chromium: connect, a notification, a drop and a reconnect log nothing", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    page.on("console", (message) => void (message.type() === "error" && errors.push(message.text())));
    await page.goto(new URL("/demo", hub.httpUrl).href);
    await page.fill("#user", "quiet");
    await page.fill("#room", "quiet-room");
    await page.click("#connect");
    await page.waitForSelector("#status[data-state=open]", { timeout: 15_000 });
    await hub.notifier.publish({ roomId: "quiet-room", data: { type: "hello", data: "no errors" } });
    await page.locator("#log tr", { hasText: "no errors" }).waitFor({ timeout: 15_000 });
    // The console's Close (@connections DELETE): the token still passes, so the page reconnects with it.
    const state = (await (await fetch(new URL("/console/api/state", hub.httpUrl))).json()) as { connections: { connectionId: string; userId: string }[] };
    const connectionId = state.connections.find((c) => c.userId === "quiet")!.connectionId;
    await fetch(new URL("/console/api/close", hub.httpUrl), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ connectionId }) });
    await page.locator("#events li[data-kind=disconnected]", { hasText: "code 1000" }).waitFor({ timeout: 15_000 });
    await page.locator("#events li[data-kind=connected]", { hasText: "reconnected" }).waitFor({ timeout: 15_000 });
    await page.waitForSelector("#status[data-state=open]", { timeout: 15_000 });
    await page.close();
    expect(errors).toEqual([]);
  });

  it("revocation visible in the demo: Revoke token in the console ends the session with its reason, and no new token is fetched", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
    const errors: string[] = [];
    const tokenRequests: string[] = [];
    const sockets: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    page.on("console", (message) => void (message.type() === "error" && errors.push(message.text())));
    page.on("request", (request) => void (request.url().endsWith("/demo/token") && tokenRequests.push(request.url())));
    page.on("websocket", (socket) => sockets.push(socket.url()));
    await page.goto(new URL("/demo", hub.httpUrl).href);
    await page.fill("#user", "bob");
    await page.fill("#room", "bob-room");
    await page.click("#connect");
    await page.waitForSelector("#status[data-state=open]", { timeout: 15_000 });
    expect(await page.locator("#status").textContent()).toBe("connected as bob in bob-room");

    // The console, as a developer uses it: Connections tab, bob's card, Revoke token.
    const consolePage = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    await consolePage.goto(new URL("/#connections", hub.httpUrl).href);
    await consolePage.locator('.conn[data-user="bob"] button.revoke').click();
    await consolePage.close();

    await page.waitForSelector("#status[data-state=closed]", { timeout: 15_000 });
    expect(await page.locator("#status").textContent()).toMatch(/^disconnected: bob's token was revoked/);
    expect(await page.locator("#events li[data-kind=disconnected]").first().textContent()).toContain("code 1000");
    expect(await page.locator("#events li[data-kind=ended]").first().textContent()).toContain("not reconnecting: bob's token was revoked");
    expect(await page.locator("#message").textContent()).toContain("The hub closed the connection: bob's token was revoked");
    expect(await page.locator("#message").textContent()).toContain("does not fetch a new token behind your back");
    expect(tokenRequests).toHaveLength(1);
    expect(sockets).toHaveLength(1);
    await page.screenshot({ path: path.join(OUTPUT, "demo-revoked.png"), fullPage: true });
    await page.setViewportSize({ width: 375, height: 760 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(OUTPUT, "demo-revoked-375.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
    console.log("SUMMARY demo revoke: the console's Revoke token ended the demo's session with its reason; one token, one socket; screenshots demo-revoked*.png");
  });

  it("who is here: two users see each other, one closing their tab disappears, and the list is read again after a reconnect; no console errors", async () => {
    const errors: string[] = [];
    const open = async (user: string) => {
      const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
      page.on("pageerror", (err) => errors.push(`${user}: ${err.message}`));
      page.on("console", (message) => void (message.type() === "error" && errors.push(`${user}: ${message.text()}`)));
      await page.goto(new URL("/demo", hub.httpUrl).href);
      await page.fill("#user", user);
      await page.fill("#room", "meet");
      await page.click("#connect");
      await page.waitForSelector("#status[data-state=open]", { timeout: 15_000 });
      return page;
    };
    const member = (page: import("playwright-core").Page, user: string) => page.locator(`#members [data-room="meet"] li[data-user="${user}"]`);
    const ana = await open("ana");
    await member(ana, "ana").waitFor({ timeout: 15_000 });
    const ben = await open("ben");
    // ben's list starts from the room as it is (the reset); ana hears ben join (an event).
    await member(ben, "ana").waitFor({ timeout: 15_000 });
    await member(ben, "ben").waitFor({ timeout: 15_000 });
    await member(ana, "ben").waitFor({ timeout: 15_000 });
    expect(await member(ana, "ana").textContent()).toBe("ana (you)");

    // ben closes his tab: after the grace he leaves, and ana's list drops him.
    await ben.close();
    await member(ana, "ben").waitFor({ state: "detached", timeout: 15_000 });

    // ana's connection is closed (the console's Close); cara joins meanwhile. After the
    // reconnect ana's list is read again: cara is there however her join's event fell.
    const state = (await (await fetch(new URL("/console/api/state", hub.httpUrl))).json()) as { connections: { connectionId: string; userId: string }[] };
    const connectionId = state.connections.find((c) => c.userId === "ana")!.connectionId;
    await fetch(new URL("/console/api/close", hub.httpUrl), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ connectionId }) });
    const cara = await open("cara");
    await ana.locator("#events li[data-kind=connected]", { hasText: "reconnected" }).waitFor({ timeout: 15_000 });
    await member(ana, "cara").waitFor({ timeout: 15_000 });
    await ana.locator('#members [data-room="meet"]:not([data-stale])').waitFor({ timeout: 15_000 });
    expect((await ana.locator('#members [data-room="meet"] li').allTextContents()).sort()).toEqual(["ana (you)", "cara"]);
    expect(await ana.locator('#members [data-room="meet"] h3').textContent()).toBe("meet · 2 members");
    // Member events are not notifications: the log has none.
    expect(await ana.locator("#log tr").count()).toBe(0);

    await ana.screenshot({ path: path.join(OUTPUT, "demo-presence.png"), fullPage: true });
    await ana.setViewportSize({ width: 375, height: 760 });
    expect(await ana.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await ana.screenshot({ path: path.join(OUTPUT, "demo-presence-375.png"), fullPage: true });
    await cara.close();
    await ana.close();
    expect(errors).toEqual([]);
    console.log("SUMMARY demo presence: two users saw each other, a closed tab left, the list was read again after a reconnect; screenshots demo-presence*.png");
  });

  it("joins and leaves rooms its token grants, shows each notification's room, and publishes to a user", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 720 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    await page.goto(new URL("/demo", hub.httpUrl).href);
    await page.fill("#user", "ivy");
    await page.fill("#room", "ivy-home");
    await page.fill("#grants", "ivy-team, ivy-proj/*");
    await page.click("#connect");
    await page.waitForSelector("#status[data-state=open]", { timeout: 15_000 });
    // A rooms token: the room is joined, and the user channel is there from $connect.
    await page.locator('#rooms li[data-room="ivy-home"] button').waitFor({ timeout: 15_000 });
    await page.locator('#rooms li[data-room="user:ivy"]').waitFor();

    await page.fill("#join-room", "ivy-proj/x");
    await page.click("#join");
    await page.locator('#rooms li[data-room="ivy-proj/x"]').waitFor({ timeout: 15_000 });
    await page.fill("#join-room", "elsewhere");
    await page.click("#join");
    await expect.poll(() => page.locator("#message").textContent(), { timeout: 15_000 }).toContain("Cannot join elsewhere: forbidden");

    await hub.notifier.publish({ roomId: "ivy-proj/x", data: { type: "build", data: "green" } });
    await page.locator("#log tr", { hasText: "green" }).locator("td", { hasText: "ivy-proj/x" }).waitFor({ timeout: 15_000 });
    // To a user, from the page's form: it arrives through the user channel.
    await page.selectOption("#publish-to", "user");
    await page.fill("#data", "just for ivy");
    await page.click("#publish");
    await page.locator("#log tr", { hasText: "just for ivy" }).locator("td", { hasText: "user:ivy" }).waitFor({ timeout: 15_000 });
    // The filter shows one room's notifications.
    await page.selectOption("#show", "user:ivy");
    expect(await page.locator("#log tr:not([hidden])").count()).toBe(1);
    await page.selectOption("#show", "");

    await page.click('#rooms li[data-room="ivy-proj/x"] button');
    await page.locator('#rooms li[data-room="ivy-proj/x"]').waitFor({ state: "detached", timeout: 15_000 });
    await page.screenshot({ path: path.join(OUTPUT, "demo-rooms.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
    console.log("SUMMARY demo rooms: joined a granted room, refused one outside the grants, notifications per room, published to a user, left");
  });

  it("the client module connects with the token in Sec-WebSocket-Protocol and gets a notification; the token is in no URL, timing entry or console line", async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    const urls: string[] = [];
    const consoleLines: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("request", (request) => urls.push(request.url()));
    page.on("websocket", (socket) => urls.push(socket.url()));
    page.on("console", (message) => consoleLines.push(message.text()));
    await page.goto(hub.httpUrl);
    const token = await hub.notifier.issueToken({ userId: "proto", roomId: "chromium-proto", ttlSeconds: 600 });
    // Passed as text: vitest rewrites import() in functions of this file, and the page has no vitest.
    await page.evaluate(`(async () => {
      const { connect } = await import("/client.mjs");
      const sockets = [];
      window.protoTest = { got: [], sockets };
      const hub = connect({ url: ${JSON.stringify(hub.websocketUrl)}, token: ${JSON.stringify(token)}, WebSocket: class extends WebSocket {
        constructor(url, protocols) { super(url, protocols); sockets.push(this); }
      } });
      hub.subscribe("proto", (data) => window.protoTest.got.push(data));
    })()`);
    await expect.poll(() => page.evaluate("window.protoTest.sockets[0]?.readyState"), { timeout: 15_000 }).toBe(1);
    expect(await page.evaluate("window.protoTest.sockets[0].protocol")).toBe("notification-hub");
    await hub.notifier.publish({ roomId: "chromium-proto", data: { type: "proto", data: "by subprotocol" } });
    await expect.poll(() => page.evaluate("window.protoTest.got"), { timeout: 15_000 }).toEqual(["by subprotocol"]);
    const entries = (await page.evaluate("performance.getEntries().map((entry) => entry.name)")) as string[];
    expect(urls).toContain(hub.websocketUrl);
    for (const seen of [...urls, ...entries, ...consoleLines]) expect(seen).not.toContain(token);

    // Offered protocols, none named back (a $connect without the header, here: a ?token= client
    // that also offers another protocol): Chromium fails the handshake, in the console with the
    // URL, token included (why the header way is the default); the hub cleans up its row.
    const outcome = await page.evaluate(`new Promise((resolve) => {
      const events = [];
      const ws = new WebSocket(${JSON.stringify(hub.websocketUrl)} + "?token=" + ${JSON.stringify(token)}, ["graphql-ws"]);
      ws.onopen = () => events.push("open");
      ws.onerror = () => events.push("error");
      ws.onclose = (event) => (events.push("close " + event.code), resolve(events));
    })`);
    expect(outcome).toEqual(["error", "close 1006"]);
    await expect.poll(() => consoleLines.find((line) => line.includes("Sent non-empty 'Sec-WebSocket-Protocol' header but no response was received"))).toContain(token);
    await expect.poll(async () => (await roomRows(hub.dynamodbEndpoint, hub.connectionsTableName, "chromium-proto")).length, { timeout: 15_000 }).toBe(1);
    expect(pageErrors).toEqual([]);
    await page.close();
    console.log("SUMMARY browser subprotocol: Chromium connected with [notification-hub, token], got the notification; token in no URL; un-echoed protocol refused by Chromium");
  });

  it("shows any JSON, folds big payloads, publishes to the joined room, and says what went wrong on the page", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    const pageErrors: string[] = [];
    const dialogs: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(new URL("/demo", hub.httpUrl).href);

    // An empty user field: a message naming the field, not "connecting" forever.
    await page.fill("#user", "");
    await page.click("#connect");
    await expect.poll(() => page.locator("#message").textContent()).toContain("Type a user id");
    expect(await page.locator("#status").getAttribute("data-state")).toBe("closed");

    await page.fill("#user", "zoe");
    await page.fill("#room", "joined-room");
    await page.click("#connect");
    await page.waitForSelector("#status[data-state=open]", { timeout: 15_000 });

    // Strings, numbers, null and a 130 KB value: every one shows; the big one folded.
    for (const data of ["hello", 42, null, { type: "big", data: "x".repeat(120_000) }]) await hub.notifier.publish({ roomId: "joined-room", data });
    await expect.poll(() => page.locator("#log tr").count(), { timeout: 15_000 }).toBe(4);
    const texts = await page.locator("#log tr td:nth-child(4)").allTextContents();
    expect(texts.some((t) => t.includes('"hello"'))).toBe(true);
    expect(texts).toContain("42");
    expect(texts).toContain("null");
    expect(texts.some((t) => t.includes("120,002 characters"))).toBe(true);
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    expect(height).toBeLessThan(2_000);

    // Publish goes to the joined room even after the Room field changed.
    await page.fill("#room", "somewhere-else");
    await page.fill("#data", "to the joined room");
    await page.click("#publish");
    await page.locator("#log tr", { hasText: "to the joined room" }).waitFor({ timeout: 15_000 });

    // Revoked: the page says the hub closed the connection.
    await hub.notifier.revokeToken({ userId: "zoe", roomId: "joined-room" });
    await expect.poll(() => page.locator("#message").textContent(), { timeout: 15_000 }).toContain("The hub closed the connection");

    fs.mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT, "demo-page-edge-cases.png"), fullPage: true });
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
    console.log("SUMMARY demo page: text, number, null and a 120 KB payload shown (folded); empty user and revoke explained on the page; no alert");
  });
});
