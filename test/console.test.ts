/**
 * The developer console in Chromium, walked as a person would: two users connect (one in the
 * console's Demo tab, one in a page of its own), a notification to the room and one to a user
 * arrive, a frame is sent to one connection, a bad handshake shows its refusal reason, one
 * user's token is revoked and the Log says why the connection closed, a bad queue record
 * lands in the dead-letter queue with its reason and is redriven. Screenshots at desktop and
 * phone width go to test-output/console-*.png. One hub, one browser.
 */
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Frame, Page } from "playwright-core";
import { WebSocket } from "ws";
import { createLogger } from "../core/log";
import { startTestHub, type TestHub } from "../local/testing";
import { startLocalHub, type BusEvent, type LocalHub } from "../local";
import { sqsClient } from "../core/aws";
import { GetQueueAttributesCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { loopbackRefusal } from "../local/http";
import { CHROMIUM, haveChromium, launchChromium } from "./support/chromium";

const OUTPUT = path.join(process.cwd(), "test-output");

if (!haveChromium) {
  const message = `\n*** CONSOLE BROWSER TEST SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium) ***\n`;
  if (process.env.CI === "true") throw new Error(message + "CI=true: a missing browser is a failure.");
  console.warn(message);
}

describe.runIf(haveChromium)("developer console in Chromium", () => {
  let hub: TestHub;
  const hubOptions = {
    port: 0,
    bcryptCost: 4,
    // A bad record reaches the dead-letter queue on its second receive, a second later.
    queue: { visibilityTimeoutSeconds: 1, maxReceiveCount: 1, waitTimeSeconds: 1 },
    // The console hears the handlers whatever the hub prints: keep the test output quiet.
    logger: createLogger({}, () => undefined, "error"),
  };
  // Fault injection: DynamoDB is cut for a moment, so a valid notification dead-letters and a redrive delivers it.
  let browser: Browser;

  beforeAll(async () => {
    fs.mkdirSync(OUTPUT, { recursive: true });
    hub = await startTestHub(hubOptions, { faultInjection: true });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(OUTPUT, `console-${name}.png`), fullPage: true });
  const card = (page: Page, user: string) => page.locator(`#panel-connections .conn[data-user="${user}"]`).first();

  async function connectDemo(demo: Page | Frame, user: string, room: string, grants = ""): Promise<void> {
    await demo.locator("#user").fill(user);
    await demo.locator("#room").fill(room);
    await demo.locator("#grants").fill(grants);
    await demo.locator("#connect").click();
    await demo.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });
  }

  it("shows connections, publishes to a room and a user, sends, revokes with a reason, and redrives a dead letter", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));
    page.on("dialog", (dialog) => {
      pageErrors.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    await page.goto(hub.httpUrl);
    await page.locator("#live[data-state=ok]").waitFor({ timeout: 15_000 });

    // Alice in the console's Demo tab (keyboard: Home/End move along the tabs).
    await page.locator("#tab-connections").focus();
    await page.keyboard.press("End");
    expect(await page.locator("#tab-demo").getAttribute("aria-selected")).toBe("true");
    await page.locator("#demo-frame").waitFor();
    const aliceDemo = page.frame({ url: /\/demo$/ })!;
    await aliceDemo.waitForLoadState();
    await connectDemo(aliceDemo, "alice", "lobby");
    // Bob in a page of his own, with a token for more rooms (docs/protocol.md#tokens), joining a second one.
    const bob = await browser.newPage({ viewport: { width: 900, height: 700 } });
    bob.on("pageerror", (err) => pageErrors.push(`bob: ${err.message}`));
    await bob.goto(new URL("/demo", hub.httpUrl).href);
    await connectDemo(bob, "bob", "lobby", "team");
    await bob.locator("#join-room").fill("team");
    await bob.locator("#join").click();

    // Both live in the Connections tab, grouped by room, with their rooms and clocks.
    await page.locator("#tab-connections").click();
    await expect.poll(() => page.locator("#panel-connections [data-group=lobby] .conn").count(), { timeout: 15_000 }).toBe(2);
    await expect.poll(() => page.locator("#panel-connections [data-group=team] .conn").count(), { timeout: 15_000 }).toBe(1);
    expect(await card(page, "alice").locator(".rooms").textContent()).toBe("lobby");
    expect(await card(page, "bob").locator(".rooms").textContent()).toBe("lobbyteam");
    expect(await card(page, "bob").locator(".grants").textContent()).toBe("lobbyteam");
    expect(await card(page, "bob").locator(".last-active").textContent()).toMatch(/\d+ s ago/);
    await page.locator("#group-user").check();
    await expect.poll(() => page.locator("#panel-connections [data-group=bob] .conn").count()).toBe(1);

    // Publish to the room: both see it.
    await page.locator("#tab-publish").click();
    await page.locator("#pub-room").fill("lobby");
    await page.locator("#pub-data").fill('{"type":"console.room","data":"to everyone in the lobby"}');
    await page.locator("#publish").click();
    await expect.poll(() => page.locator("#pub-result").textContent()).toContain("for room lobby");
    await bob.locator("#log tr", { hasText: "to everyone in the lobby" }).waitFor({ timeout: 15_000 });
    // Alice's demo sits in the Demo tab, hidden while another tab is open: the row is there, not visible.
    await aliceDemo.locator("#log tr", { hasText: "to everyone in the lobby" }).waitFor({ state: "attached", timeout: 15_000 });
    await page.locator("#tab-demo").click();
    await shot(page, "demo");
    await page.locator("#tab-publish").click();

    // Publish to a user (to_user_id, docs/protocol.md#rooms-and-user-channels): only bob sees it, in whatever room.
    await page.locator("#pub-mode-user").check();
    await page.locator("#pub-to-user").fill("bob");
    await page.locator("#pub-data").fill('{"type":"console.user","data":"for bob alone"}');
    await page.locator("#publish").click();
    await bob.locator("#log tr", { hasText: "for bob alone" }).waitFor({ timeout: 15_000 });
    expect(await aliceDemo.locator("#log tr", { hasText: "for bob alone" }).count()).toBe(0);

    // Several rooms with an idempotency key (docs/protocol.md#publishing-from-an-app-backend); a bad key is named with its rule.
    await page.locator("#pub-mode-rooms").check();
    await page.locator("#pub-rooms").fill("lobby, console-elsewhere");
    await page.locator("#pub-key").fill("two words");
    await page.locator("#pub-data").fill('{"type":"console.rooms","data":"to two rooms once"}');
    await page.locator("#publish").click();
    await expect.poll(() => page.locator("#message").textContent()).toContain("idempotencyKey holds U+0020 at 3; it may hold only 1 to 128 visible ASCII characters");
    await page.locator("#pub-key").fill("console-key-1");
    await page.locator("#publish").click();
    await expect.poll(() => page.locator("#pub-result").textContent()).toContain("for 2 rooms (key console-key-1: a retry with it is the same notification)");
    await bob.locator("#log tr", { hasText: "to two rooms once" }).waitFor({ timeout: 15_000 });
    await page.locator("#pub-key").fill("");
    await page.locator("#pub-mode-room").check();

    // Send one frame to bob's connection through @connections POST.
    await page.locator("#tab-connections").click();
    await card(page, "bob").locator("button.send").click();
    await page.keyboard.press("Escape"); // changed my mind: the form goes away
    expect(await page.locator("#send-form").isHidden()).toBe(true);
    await card(page, "bob").locator("button.send").click();
    await page.locator("#send-data").fill('{"user_id":null,"origin":"app","data":{"type":"console.hello","data":"a frame for bob\'s connection"}}');
    await page.locator("#send-submit").click();
    await bob.locator("#log tr", { hasText: "a frame for bob's connection" }).waitFor({ timeout: 15_000 });

    // The frame went out: bob's lastActiveAt (a frame in or out, as API Gateway counts) moved.
    const sentAt = Date.now() - 1_000;
    const { connections } = (await (await fetch(new URL("/console/api/state", hub.httpUrl))).json()) as { connections: { userId: string; lastActiveAt: string }[] };
    expect(Date.parse(connections.find((c) => c.userId === "bob")!.lastActiveAt)).toBeGreaterThanOrEqual(sentAt);

    // A handshake with a forged token: the Log shows the authorizer's reason, never the token.
    const forged = new WebSocket(`${hub.websocketUrl}?token=not-a-jwt`);
    await new Promise((resolve) => forged.once("error", resolve));
    // No token at all, and a path that is not the stage's.
    for (const url of [hub.websocketUrl, hub.websocketUrl.replace(/\/local$/, "/elsewhere")]) {
      const refused = new WebSocket(url);
      await new Promise((resolve) => refused.once("error", resolve));
    }
    // A client that leaves on its own: the Log says who closed.
    const carol = new WebSocket(`${hub.websocketUrl}?token=${await hub.notifier.issueToken({ userId: "carol", roomId: "lobby" })}`);
    await new Promise((resolve) => carol.once("open", resolve));
    carol.close(1000, "bye");
    await shot(page, "connections");

    // Revoke alice: her connection closes and the Log says it was a revocation.
    await page.locator("#group-room").check();
    await card(page, "alice").locator("button.revoke").click();
    await expect.poll(() => page.locator("#message").textContent(), { timeout: 15_000 }).toContain("alice's connection revoked");
    await page.locator("#tab-log").click();
    const disconnect = page.locator("#log-list li[data-kind=disconnected]", { hasText: "alice disconnected" }).first();
    await disconnect.waitFor({ timeout: 15_000 });
    expect(await disconnect.textContent()).toMatch(/token revoked from the console \(user alice in room lobby\); close code 1000/);
    const refusal = page.locator("#log-list li[data-kind=refused]").first();
    await refusal.waitFor({ timeout: 15_000 });
    const refusals = await page.locator("#log-list li[data-kind=refused]").allTextContents();
    expect(refusals.some((text) => /handshake refused 403: token_invalid/.test(text))).toBe(true);
    expect(refusals.some((text) => /handshake refused 403: missing_token/.test(text))).toBe(true);
    expect(refusals.some((text) => /handshake refused 404: not the stage's path \(\/local\)/.test(text))).toBe(true);
    expect(await page.locator("#log-list").textContent()).not.toContain("not-a-jwt");
    expect(await page.locator("#log-list li[data-kind=disconnected]", { hasText: "carol disconnected" }).textContent()).toContain('closed by the client; close code 1000 "bye"');
    // Alice's demo says so too, and stays disconnected: no new token behind her back.
    await expect.poll(() => aliceDemo.locator("#message").textContent(), { timeout: 15_000 }).toContain("The hub closed the connection: alice's token was revoked");
    expect(await aliceDemo.locator("#status").getAttribute("data-state")).toBe("closed");
    await shot(page, "log");

    // Stream of the room: head seq and a replay from a seq.
    await page.locator("#tab-streams").click();
    const lobby = page.locator('#streams tr[data-room="lobby"]');
    await lobby.waitFor({ timeout: 15_000 });
    expect(Number(await lobby.locator(".head").textContent())).toBeGreaterThanOrEqual(1);
    await page.locator("#replay-room").fill("lobby");
    await page.locator("#replay-after").fill("0");
    await page.locator("#replay-submit").click();
    await page.locator("#replay-list li[data-seq='1']", { hasText: "to everyone in the lobby" }).waitFor({ timeout: 15_000 });
    // Bob's user channel is a stream too.
    await page.locator('#streams tr[data-room="user:bob"]').waitFor({ timeout: 15_000 });
    await page.locator("#replay-room").fill("user:bob");
    await page.locator("#replay-after").fill("");
    await page.locator("#replay-submit").click();
    await page.locator("#replay-list li", { hasText: "for bob alone" }).waitFor({ timeout: 15_000 });
    await page.locator("#replay-room").fill("lobby");
    await page.locator("#replay-after").fill("0");
    await page.locator("#replay-submit").click();
    await page.locator("#replay-list li[data-seq='1']", { hasText: "to everyone in the lobby" }).waitFor({ timeout: 15_000 });
    await shot(page, "streams");

    // A bad record, sent raw: it ends in the dead-letter queue with the deliver handler's reason.
    await page.locator("#tab-publish").click();
    expect(await page.locator("#pub-to-user").isVisible()).toBe(false); // only the chosen target's fields show
    await page.locator("#pub-mode-raw").check();
    expect(await page.locator("#pub-room").isVisible()).toBe(false);
    // Markup in it stays text (an alert would fail the test through pageErrors).
    await page.locator("#pub-raw").fill('{"user_id":"<img src=x onerror=alert(1)>","data":"a record without room_id"}');
    await page.locator("#publish").click();
    await expect.poll(() => page.locator("#pub-result").textContent()).toContain("(raw)");
    const rawId = /message (\S+) \(raw\)/.exec((await page.locator("#pub-result").textContent()) ?? "")![1];
    await page.locator("#tab-dead-letters").click();
    const dead = page.locator(`#dlq-list .dead[data-message-id="${rawId}"]`);
    await dead.waitFor({ timeout: 20_000 });
    expect(await dead.locator(".reason").textContent()).toBe("missing_room_id");
    expect(await dead.textContent()).toContain("room_id is required");
    expect(await dead.textContent()).toContain('"user_id":"<img src=x onerror=alert(1)>"');
    expect(await page.locator("#dlq-list img").count()).toBe(0);
    await shot(page, "dead-letters");

    // Redrive: it leaves the dead-letter queue for the main queue (where it fails again, being bad).
    await dead.locator("button.redrive").click();
    await expect.poll(() => page.locator("#message").textContent(), { timeout: 15_000 }).toContain(`Redriven: ${rawId}`);
    await expect.poll(() => dead.count(), { timeout: 15_000 }).toBe(0);
    await page.locator("#tab-log").click();
    await page.locator("#log-list li[data-kind=action]", { hasText: `redrove dead-lettered record ${rawId}` }).waitFor({ timeout: 15_000 });

    // A good notification dead-lettered while the handlers could not reach DynamoDB: redriven once it is back, it arrives.
    hub.faults!.cutDynamo();
    await page.locator("#tab-publish").click();
    await page.locator("#pub-mode-room").check();
    await page.locator("#pub-data").fill('{"type":"console.redrive","data":"back from the dead-letter queue"}');
    await page.locator("#publish").click();
    await expect.poll(() => page.locator("#pub-result").textContent()).toContain("for room lobby");
    const goodId = /message (\S+) for room/.exec((await page.locator("#pub-result").textContent()) ?? "")![1];
    await page.locator("#tab-dead-letters").click();
    const parked = page.locator(`#dlq-list .dead[data-message-id="${goodId}"]`);
    await parked.waitFor({ timeout: 20_000 });
    // Its reason is what the deliver handler reported for that message id (record.failed's cause).
    expect(await parked.locator(".reason").textContent()).toBe("delivery_failed");
    hub.faults!.restoreDynamo();
    expect(await parked.textContent()).toContain("back from the dead-letter queue");
    await parked.locator("button.redrive").click();
    await bob.locator("#log tr", { hasText: "back from the dead-letter queue" }).waitFor({ timeout: 15_000 });

    // A client that drops while DynamoDB is cut leaves its row behind: the next post answers 410, and the Log says both.
    await page.locator("#tab-log").click();
    // Nothing so far left a row behind (a revoke, a console close, a client's close): no 410 yet.
    expect(await page.locator("#log-list li[data-kind=gone]").count()).toBe(0);
    const dave = new WebSocket(`${hub.websocketUrl}?token=${await hub.notifier.issueToken({ userId: "dave", roomId: "lobby" })}`);
    await new Promise((resolve) => dave.once("open", resolve));
    hub.faults!.cutDynamo();
    dave.terminate();
    await page.locator("#log-list li[data-kind=gone]", { hasText: "$disconnect could not delete the row" }).waitFor({ timeout: 20_000 });
    hub.faults!.restoreDynamo();
    await hub.notifier.publish({ roomId: "lobby", data: "after dave left" });
    await page.locator("#log-list li[data-kind=gone]", { hasText: "1 connection(s) of room lobby answered 410 Gone" }).waitFor({ timeout: 15_000 });
    expect(await page.locator("#log-list li[data-kind=disconnected]", { hasText: "dave disconnected" }).textContent()).toContain("connection dropped without a close frame");

    // Every token of bob, whatever room: his connection closes, and the Log says so.
    await page.locator("#tab-connections").click();
    await card(page, "bob").locator("button.revoke-user").click();
    await expect.poll(() => page.locator("#message").textContent(), { timeout: 15_000 }).toContain("revoked with every token of bob");
    await page.locator("#tab-log").click();
    await page.locator("#log-list li[data-kind=disconnected]", { hasText: "bob disconnected: token revoked from the console (every token of user bob)" }).waitFor({ timeout: 15_000 });
    // Bob's demo stays disconnected until he asks for a new token himself.
    await bob.locator("#status[data-state=closed]").waitFor({ timeout: 15_000 });
    expect(await bob.locator("#status").textContent()).toContain("bob's token was revoked");
    await bob.locator("#connect").click();
    await bob.locator("#status[data-state=open]").waitFor({ timeout: 15_000 });

    // The hub restarts on the same port: the open console says it is down, then follows the new one.
    const port = Number(new URL(hub.httpUrl).port);
    await hub.stop();
    await page.locator("#live[data-state=down]").waitFor({ timeout: 15_000 });
    hub = await startTestHub({ ...hubOptions, port }, { faultInjection: true });
    await page.locator("#live[data-state=ok]").waitFor({ timeout: 15_000 });
    await expect.poll(() => page.locator("#message").textContent(), { timeout: 15_000 }).toContain("The hub restarted");
    expect(await page.locator("#queue-url").textContent()).toBe(hub.queueUrl);
    // Bob's demo reconnects to the new hub with a fresh token (the new hub never issued his old one); the new log shows it.
    await page.locator("#log-list li[data-kind=connected]", { hasText: "bob connected" }).waitFor({ timeout: 20_000 });
    expect(await page.locator("#log-list li[data-kind=disconnected]").count()).toBe(0);

    // Phone width: the same tabs, readable.
    await page.setViewportSize({ width: 375, height: 800 });
    await page.locator("#tab-connections").click();
    await shot(page, "phone-connections");
    await page.locator("#tab-log").click();
    await shot(page, "phone-log");
    await page.locator("#tab-publish").click();
    await shot(page, "phone-publish");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);

    expect(pageErrors).toEqual([]);
    console.log("SUMMARY console: two users connected, room and user publish arrived, frame sent, revoke and refusal reasons in the Log, dead letter redriven; screenshots test-output/console-*.png");
  });

  it("console endpoints: loopback peers only, same Host and Origin checks as the demo's", async () => {
    const url = new URL("/console/api/state", hub.httpUrl);
    const own = url.host;
    const status = (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
      new Promise<number>((resolve, reject) => {
        const request = http.request({ host: url.hostname, port: url.port, path, method: init.method ?? "GET", headers: init.headers }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        request.on("error", reject);
        request.end(init.body);
      });
    const revoke = { method: "POST", body: JSON.stringify({ connectionId: "x" }) };
    expect(await status("/console/api/state", { headers: { host: own } })).toBe(200);
    expect(await status("/console/api/revoke", { ...revoke, headers: { host: own, origin: "http://evil.example" } })).toBe(403);
    expect(await status("/console/api/revoke", { ...revoke, headers: { host: own, "sec-fetch-site": "cross-site" } })).toBe(403);
    expect(await status("/console/api/state", { headers: { host: `rebind.example:${url.port}` } })).toBe(403);
    expect(await status("/", { headers: { host: `rebind.example:${url.port}` } })).toBe(403);
    // A live connection is needed to act on: a made-up id is a 404 that says so.
    expect(await status("/console/api/revoke", { ...revoke, headers: { host: own, "content-type": "application/json" } })).toBe(404);
    // A peer from the network, had the hub been started with --host 0.0.0.0.
    const fromLan = { headers: { host: own }, socket: { remoteAddress: "192.168.1.23" } } as unknown as Parameters<typeof loopbackRefusal>[0];
    expect(loopbackRefusal(fromLan, hub)).toBe("not a loopback peer");
    const fromHere = { headers: { host: own }, socket: { remoteAddress: "::ffff:127.0.0.1" } } as unknown as Parameters<typeof loopbackRefusal>[0];
    expect(loopbackRefusal(fromHere, hub)).toBeUndefined();
  });
});

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(OUTPUT, `console-${name}.png`), fullPage: true });

describe.runIf(haveChromium)("the console's Messages tab and dead letters in Chromium", () => {
  let hub: LocalHub;
  let browser: Browser;
  beforeAll(async () => {
    fs.mkdirSync(OUTPUT, { recursive: true });
    // The local defaults for retries (maxReceiveCount 5, a failed record back after 2 s).
    hub = await startLocalHub({ port: 0, bcryptCost: 4, queue: { waitTimeSeconds: 1 }, logger: createLogger({}, () => undefined, "error") });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  it("a publish's outcome in the console's message log: delivered to N with its seq, a room empty, a raw SQS body rejected with its reason, its retries, then the dead-letter queue", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    page.on("console", (message) => void (message.type() === "error" && errors.push(message.text())));
    await page.goto(new URL("/#messages", hub.httpUrl).href);
    await page.locator("#live[data-state=ok]").waitFor({ timeout: 15_000 });

    const ws = new WebSocket(`${hub.websocketUrl}?token=${await hub.notifier.issueToken({ userId: "reader", roomId: "news" })}`);
    await new Promise((resolve) => ws.once("open", resolve));
    const frame = new Promise((resolve) => ws.once("message", resolve));
    const { messageId: delivered } = await hub.notifier.publish({ roomId: "news", userId: "app", data: { type: "news", data: "to one reader" } });
    await frame;
    const { messageId: empty } = await hub.notifier.publish({ roomId: "nobody-here", data: "into an empty room" });
    // A raw body straight to the queue, as any SQS client could send: no room_id.
    const sqs = sqsClient({ endpoint: hub.sqsEndpoint, region: hub.region, credentials: hub.credentials });
    const raw = (await sqs.send(new SendMessageCommand({ QueueUrl: hub.queueUrl, MessageBody: '{"data":"no room"}' }))).MessageId!;

    const line = (selector: string) => page.locator(`#message-list li${selector}`);
    await line(`[data-notification-id="${delivered}"][data-outcome=delivered]`).waitFor({ timeout: 15_000 });
    expect(await line(`[data-notification-id="${delivered}"]`).textContent()).toMatch(/deliveredroom news\s*id \S+\s*seq 1delivered to 1 connection\(s\)/);
    await line(`[data-notification-id="${empty}"][data-outcome="room empty"]`).waitFor({ timeout: 15_000 });
    expect(await line(`[data-notification-id="${empty}"]`).textContent()).toContain("room empty: no connection in nobody-here; stored as seq 1 for resume");
    const rejected = line(`[data-key="${raw}"]`);
    await rejected.locator(".outcome-text", { hasText: /rejected on receive 1 of 5: missing_room_id: room_id is required \(or to_user_id to publish to one user's channel\); retry 1 of 4 in 2 s \(at / }).waitFor({ timeout: 15_000 });
    await shot(page, "messages-retrying");
    // Four retries later: the dead-letter queue, each receive a step of its own.
    await line(`[data-key="${raw}"][data-outcome=dead-lettered]`).waitFor({ timeout: 60_000 });
    expect(await rejected.locator(".outcome-text").textContent()).toBe("rejected on receive 5 of 5: missing_room_id: room_id is required (or to_user_id to publish to one user's channel); to the dead-letter queue");
    await rejected.locator("summary").click();
    expect(await rejected.locator("details li").count()).toBe(5);
    await shot(page, "messages");
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await shot(page, "phone-messages");
    await page.locator("#tab-streams").click();
    await page.locator('#streams tr[data-room="news"]').waitFor({ timeout: 15_000 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await shot(page, "phone-streams");
    ws.close();
    expect(errors).toEqual([]);
    console.log("SUMMARY console messages: delivered to 1 with seq, room empty, a raw body rejected, retried 4 times and dead-lettered; screenshots console-messages*.png, console-phone-messages.png");
  }, 120_000);

  it("receive counts stable across peeks: a dead letter shows the main queue's receives, however often it is looked at", async () => {
    // A hub of its own whose bad record dead-letters after 2 receives, a second apart.
    const quick = await startLocalHub({ port: 0, bcryptCost: 4, queue: { visibilityTimeoutSeconds: 1, maxReceiveCount: 2, waitTimeSeconds: 1 }, logger: createLogger({}, () => undefined, "error") });
    try {
      const sqs = sqsClient({ endpoint: quick.sqsEndpoint, region: quick.region, credentials: quick.credentials });
      const raw = (await sqs.send(new SendMessageCommand({ QueueUrl: quick.queueUrl, MessageBody: "not json" }))).MessageId!;
      // Watched through the queue's counts, which receive nothing.
      const waiting = async () => Number((await sqs.send(new GetQueueAttributesCommand({ QueueUrl: quick.deadLetterQueueUrl, AttributeNames: ["ApproximateNumberOfMessages"] }))).Attributes?.ApproximateNumberOfMessages ?? 0);
      await expect.poll(waiting, { timeout: 60_000, interval: 500 }).toBe(1);
      const peek = async () => ((await (await fetch(new URL("/console/api/dead-letters", quick.httpUrl))).json()) as { messageId: string; receiveCount: number }[]).find((d) => d.messageId === raw);
      const counts: (number | undefined)[] = [];
      for (let i = 0; i < 4; i++) counts.push((await peek())?.receiveCount);
      expect(counts).toEqual([2, 2, 2, 2]);
    } finally {
      await quick.stop();
    }
  }, 90_000);
});

describe.runIf(haveChromium)("the console's Events tab and members per room (presence on) in Chromium", () => {
  let hub: LocalHub;
  let browser: Browser;
  beforeAll(async () => {
    fs.mkdirSync(OUTPUT, { recursive: true });
    hub = await startLocalHub({ port: 0, bcryptCost: 4, presence: { enabled: true, graceSeconds: 1, sweepSeconds: 0.2 }, logger: createLogger({}, () => undefined, "error") });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  it("shows each lifecycle event live, newest first, with its id; the Connections tab names each room's members, one per user", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(new URL("/#connections", hub.httpUrl).href);
    await page.locator("#live[data-state=ok]").waitFor({ timeout: 15_000 });
    const seen: BusEvent[] = [];
    hub.onLifecycleEvent((event) => seen.push(event));

    // Two tabs of ann and one of bob in the lobby (seed tokens: connect is the join).
    const open = async (userId: string) => {
      const ws = new WebSocket(`${hub.websocketUrl}?token=${await hub.notifier.issueToken({ userId, roomId: "lobby" })}`);
      await new Promise((resolve) => ws.once("open", resolve));
      return ws;
    };
    const sockets = [await open("ann"), await open("ann"), await open("bob")];
    const members = page.locator('#panel-connections .members[data-room="lobby"]');
    await expect.poll(() => members.textContent(), { timeout: 15_000 }).toBe(" · 2 members: ann ×2, bob");

    await page.locator("#tab-events").click();
    // 3 connection.opened, 2 member.joined, 1 room.occupied.
    await expect.poll(() => page.locator("#event-list li[data-event-id]").count(), { timeout: 15_000 }).toBe(6);
    sockets[2].close();
    await page.locator('#event-list li[data-detail-type="member.left"][data-user="bob"]').waitFor({ timeout: 15_000 });
    const shown = await page.locator("#event-list li[data-event-id]").evaluateAll((items) => items.map((li) => (li as HTMLElement).dataset.eventId));
    // Every event the bus took, once, newest first.
    expect(shown).toEqual(seen.map((e) => e.detail.event_id).reverse());
    expect(await page.locator('#event-list li[data-detail-type="member.left"]').textContent()).toContain("reason closed");
    expect(await page.locator("#events-count").textContent()).toBe(String(seen.length));
    await shot(page, "events");
    for (const ws of sockets) ws.close();
    expect(errors).toEqual([]);
    console.log(`SUMMARY console events: ${seen.length} lifecycle events shown live in the Events tab; members per room in Connections; screenshot console-events.png`);
  }, 60_000);
});
