/** The `notification-hub` CLI and `npm run dev`, run as a user runs them. */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { mapWithConcurrency } from "../core/fanout";
import { keyedMessageId, keyedPublishId } from "../core/messages";

const ROOT = process.cwd();
// The installed bin (package.json "bin"), built once per run by test/support/globalSetup.ts:
// each call starts in plain Node, not ts-node. `npm run dev` (ts-node) has a test of its own below.
const BIN = path.join(ROOT, "dist/cli/index.js");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-cli-"));
const stateFile = path.join(dir, "state.json");
// Without the switch vitest sets: the CLI itself must keep the SDK's Node.js notice out of our output.
const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined, TS_NODE_PROJECT: path.join(process.cwd(), "tsconfig.json") };
delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
let dev: childProcess.ChildProcess;
let info: Record<string, string>;

function cli(args: string[], options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = childProcess.execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: options.cwd ?? ROOT, env: { ...env, ...options.env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(options.input ?? "");
  });
}

/** Starts a long-running command and resolves with its first stdout line that matches. */
function startAndWaitFor(command: string, args: string[], pattern: RegExp, cwd = ROOT): Promise<{ child: childProcess.ChildProcess; line: string; ms: number }> {
  const started = Date.now();
  // Its own process group, so a test can send Ctrl-C to it and everything it started.
  const child = childProcess.spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  return new Promise((resolve, reject) => {
    let buffered = "";
    let errors = "";
    child.stderr!.on("data", (chunk: Buffer) => (errors += chunk.toString()));
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split("\n").find((l) => pattern.test(l));
      if (line) resolve({ child, line, ms: Date.now() - started });
    });
    child.on("exit", (code) => reject(new Error(`${command} exited (${code}) before it was ready:\n${buffered}\n${errors}`)));
  });
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

beforeAll(async () => {
  const started = await startAndWaitFor(process.execPath, [BIN, "dev", "--port", "0", "--json", "--state-file", stateFile], /^\{/);
  dev = started.child;
  info = JSON.parse(started.line);
}, 60_000);

afterAll(() => {
  if (dev?.pid) process.kill(-dev.pid, "SIGKILL");
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("notification-hub dev --json", () => {
  it("prints one JSON line with the endpoints once ready, and writes the state file for the other commands", () => {
    for (const key of ["websocketUrl", "managementEndpoint", "queueUrl", "dynamodbEndpoint", "sqsEndpoint", "connectionsTableName", "authTableName", "jwtSecret", "passcode"]) {
      expect(info[key], key).toBeTruthy();
    }
    expect(JSON.parse(fs.readFileSync(stateFile, "utf8"))).toMatchObject({ websocketUrl: info.websocketUrl });
  });
});

describe("token, publish, connections, revoke", () => {
  it("work against the running local hub", async () => {
    const token = await cli(["token", "--user", "cli-user", "--room", "cli-room", "--ttl", "600", "--state-file", stateFile]);
    expect(token.code, token.stderr).toBe(0);
    expect(token.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

    const ws = new WebSocket(`${info.websocketUrl}?token=${token.stdout.trim()}`);
    const frames: unknown[] = [];
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
    await new Promise((resolve) => ws.on("open", resolve));

    const published = await cli(["publish", "--room", "cli-room", "--user", "ops", "--data", '{"type":"deploy","data":{"version":"1.2.3"}}', "--state-file", stateFile, "--json"]);
    expect(published.code, published.stderr).toBe(0);
    expect(published.stderr).toBe(""); // no SDK notice about Node.js versions
    const { messageId } = JSON.parse(published.stdout) as { messageId: string };
    const deadline = Date.now() + 10_000;
    while (frames.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(frames).toEqual([{ id: messageId, room_id: "cli-room", user_id: "ops", origin: "app", seq: 1, data: { type: "deploy", data: { version: "1.2.3" } } }]);

    // The room's stream kept it: history prints the frame the client got.
    const history = await cli(["history", "--room", "cli-room", "--last", "5", "--json", "--state-file", stateFile]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout.trim().split("\n").map((line) => JSON.parse(line))).toEqual(frames);

    const listed = await cli(["connections", "--room", "cli-room", "--json", "--state-file", stateFile]);
    expect(JSON.parse(listed.stdout)).toEqual([{ connectionId: expect.any(String), userId: "cli-user" }]);

    // A token for several rooms prints its normalized grants; revoking by user alone ends both.
    const grants = await cli(["token", "--user", "cli-user", "--rooms", "ops/*, cli-room", "--json", "--state-file", stateFile]);
    expect(grants.code, grants.stderr).toBe(0);
    expect(JSON.parse(grants.stdout)).toMatchObject({ token: expect.any(String), userId: "cli-user", rooms: ["cli-room", "ops/*"] });
    const revoked = await cli(["revoke", "--user", "cli-user", "--state-file", stateFile]);
    expect(revoked.stdout).toBe("revoked every token of cli-user; closed 1 connection(s)\n");
    expect(await closed).toBe(1000);
  });

  it("publish --to-user reaches the user's connection through their channel, and history --user shows it", async () => {
    const token = await cli(["token", "--user", "cli-dm", "--room", "cli-dm-room", "--state-file", stateFile]);
    expect(token.code, token.stderr).toBe(0);
    const ws = new WebSocket(`${info.websocketUrl}?token=${token.stdout.trim()}`);
    const frames: { room_id: string }[] = [];
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve) => ws.on("open", resolve));
    const published = await cli(["publish", "--to-user", "cli-dm", "--user", "billing", "--data", '{"type":"export.ready"}', "--json", "--state-file", stateFile]);
    expect(published.code, published.stderr).toBe(0);
    const { messageId, roomId } = JSON.parse(published.stdout) as { messageId: string; roomId: string };
    expect(roomId).toBe("user:cli-dm");
    const deadline = Date.now() + 10_000;
    while (frames.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(frames).toEqual([{ id: messageId, room_id: "user:cli-dm", user_id: "billing", origin: "app", seq: 1, data: { type: "export.ready" } }]);
    const history = await cli(["history", "--user", "cli-dm", "--json", "--state-file", stateFile]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout.trim().split("\n").map((line) => JSON.parse(line))).toEqual(frames);
    ws.close();
  });

  it("publish --rooms --idempotency-key, twice: each room gets it once, with the same message id both times", async () => {
    const token = await cli(["token", "--user", "cli-multi", "--rooms", "cli-m/*", "--state-file", stateFile]);
    expect(token.code, token.stderr).toBe(0);
    const ws = new WebSocket(`${info.websocketUrl}?token=${token.stdout.trim()}`);
    const frames: { id: string; room_id: string; seq: number; origin?: string }[] = [];
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve) => ws.on("open", resolve));
    for (const room of ["cli-m/a", "cli-m/b"]) ws.send(JSON.stringify({ action: "subscribe", room_id: room }));
    const args = ["publish", "--rooms", "cli-m/a,cli-m/b", "--idempotency-key", "cli-deploy-7", "--data", '{"type":"deploy"}', "--json", "--state-file", stateFile];
    const first = await cli(args);
    expect(first.code, first.stderr).toBe(0);
    const second = await cli(args);
    expect(JSON.parse(second.stdout)).toEqual(JSON.parse(first.stdout));
    expect(JSON.parse(first.stdout)).toEqual({ messageId: keyedPublishId("cli-deploy-7"), roomIds: ["cli-m/a", "cli-m/b"] });
    // Not the hub's member events (dev has presence on): those are not notifications.
    const notifications = () => frames.filter((f) => f.id !== undefined && f.origin !== "hub" && f.room_id?.startsWith("cli-m/"));
    const deadline = Date.now() + 10_000;
    while (notifications().length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    // Stored once (test/publishing.test.ts counts what the duplicates' records did).
    const history = await cli(["history", "--room", "cli-m/b", "--json", "--state-file", stateFile]);
    expect(history.stdout.trim().split("\n")).toHaveLength(1);
    expect(notifications().map((f) => [f.room_id, f.id, f.seq]).sort()).toEqual([
      ["cli-m/a", keyedMessageId("cli-m/a", "cli-deploy-7"), 1],
      ["cli-m/b", keyedMessageId("cli-m/b", "cli-deploy-7"), 1],
    ]);
    ws.close();
  });

  it("publish --data with an emoji and U+FFFF exits 0 and the room gets that one frame", async () => {
    const token = await cli(["token", "--user", "cli-emoji", "--room", "party 🎉", "--state-file", stateFile]);
    expect(token.code, token.stderr).toBe(0);
    const ws = new WebSocket(`${info.websocketUrl}?token=${token.stdout.trim()}`);
    const frames: { data: unknown }[] = [];
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve) => ws.on("open", resolve));
    const data = { type: "note", data: "🎉 export ready \uFFFF" };
    const published = await cli(["publish", "--room", "party 🎉", "--data", JSON.stringify(data), "--json", "--state-file", stateFile]);
    expect([published.code, published.stderr]).toEqual([0, ""]);
    const deadline = Date.now() + 10_000;
    while (frames.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(frames.map((f) => f.data)).toEqual([data]);
    ws.close();
  });

  it("work against a stack named by flags and environment variables instead", async () => {
    const published = await cli(["publish", "--queue-url", info.queueUrl, "--sqs-endpoint", info.sqsEndpoint, "--region", "us-east-1", "--room", "elsewhere", "--data", "42"]);
    expect(published.code, published.stderr).toBe(0);
    const token = await cli(["token", "--user", "u", "--room", "r", "--auth-table", info.authTableName, "--dynamodb-endpoint", info.dynamodbEndpoint], {
      env: { NOTIFICATION_HUB_JWT_SECRET: info.jwtSecret, NOTIFICATION_HUB_PASSCODE: info.passcode },
    });
    expect(token.code, token.stderr).toBe(0);
    const missing = await cli(["token", "--user", "u", "--room", "r", "--auth-table", "t"]);
    expect(missing.stderr.trim()).toMatch(/^notification-hub token: token needs NOTIFICATION_HUB_JWT_SECRET/);
    expect(missing.code).toBe(2);
    const noCredentials = await cli(["publish", "--room", "r", "--data", "1", "--queue-url", "https://sqs.eu-west-1.amazonaws.com/123456789012/q"], {
      env: { HOME: dir, AWS_CONFIG_FILE: path.join(dir, "none"), AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "none"), AWS_EC2_METADATA_DISABLED: "true" },
    });
    expect(noCredentials.stderr).toMatch(/set AWS_PROFILE/);
  });

  it("answer bad input with one line and a non-zero exit", async () => {
    const cases: [string[], RegExp][] = [
      [["token", "--bogus"], /^notification-hub token: Unknown option '--bogus' \(see notification-hub token --help\)$/],
      [["token", "--user", "u", "--state-file", stateFile], /pass exactly one of --room \(one room\) or --rooms/],
      [["publish", "--room", "r", "--data", "not json", "--state-file", stateFile], /--data must be JSON/],
      [["publish", "--room", "", "--data", "1", "--state-file", stateFile], /--room is required \(or --to-user U for one user's channel\)/],
      [["token", "--user", "u", "--room", "r", "--ttl", "soon", "--state-file", stateFile], /--ttl must be a whole number of seconds from 1 to 604800, got "soon"/],
      [["token", "--user", "u", "--room", "r", "--ttl", "-5", "--state-file", stateFile], /--ttl must be a whole number of seconds from 1 to 604800, got "-5"/],
      [["token", "--user", "u", "--room", "r", "--ttl", "0", "--state-file", stateFile], /--ttl must be a whole number of seconds from 1 to 604800, got "0"/],
      [["token", "--user", "u", "--room", "r", "--state-file", path.join(dir, "none.json")], /no local hub state in .*none\.json; start one with `npx notification-hub dev`/],
      [["publish", "--room", "r", "--data", "@" + path.join(dir, "missing.json"), "--state-file", stateFile], /--data @.*missing\.json: cannot read .* \(ENOENT\)/],
      [["publish", "--room", "r", "--user", "x".repeat(300), "--data", "1", "--state-file", stateFile], /--user is longer than/],
      [["publish", "--room", "r", "--idempotency-key", "two words", "--data", "1", "--state-file", stateFile], /--idempotency-key holds U\+0020 at 3; it may hold only 1 to 128 visible ASCII characters/],
      [["publish", "--rooms", "a,b,a", "--data", "1", "--state-file", stateFile], /--rooms entry 3 repeats --rooms entry 1 \("a"\)/],
      [["publish", "--rooms", "a", "--room", "b", "--data", "1", "--state-file", stateFile], /pass one of --room, --rooms and --to-user/],
      [["revoke", "--user", "u", "--room", "r", "--auth-table", "t"], /revoke needs --connections-table or NOTIFICATION_HUB_CONNECTIONS_TABLE, and --management-endpoint or NOTIFICATION_HUB_MANAGEMENT_ENDPOINT/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["dev", "--port", "0", "--state-file", stateFile], /state\.json belongs to the hub at http:\/\/127\.0\.0\.1:\d+\/ \(pid \d+\); pass another --state-file/],
      [["dev", "--port", "x"], /--port must be a whole number/],
      [["dev", "--port", "0", "--no-presence", "--events-url", "http://127.0.0.1:9/hook"], /--events-url needs presence: lifecycle events exist only with presence on \(drop --no-presence\)/],
      [["dev", "--port", "0", "--drop-disconnect", "1.5"], /--drop-disconnect must be a share from 0 to 1 \(0\.1 is one close in ten\), got "1\.5"/],
      [["dev", "--port", "0", "--no-presence", "--drop-disconnect", "1"], /--drop-disconnect needs presence: without it no sweep removes the connections whose \$disconnect was dropped \(drop --no-presence\)/],
    ];
    // Four at a time: all at once, each CLI (compiling TypeScript on start) outran its 60 s timeout on a busy 2-core machine.
    const results = await mapWithConcurrency(cases, 4, ([args]) => cli(args));
    results.forEach((result, i) => {
      expect(result.code, cases[i][0].join(" ")).toBe(2);
      expect(result.stderr.trim().split("\n"), cases[i][0].join(" ")).toHaveLength(1);
      expect(result.stderr.trim()).toMatch(cases[i][1]);
    });
    console.log(`SUMMARY cli: ${cases.length} bad invocations tried, ${cases.length} refused with one line and exit 2`);
  }, 180_000); // a CLI process per case, four at a time, each compiling TypeScript on start: slow on a busy 2-core machine

  it("has --help on every command", async () => {
    const results = await Promise.all(["dev", "token", "publish", "revoke", "connections"].map((command) => cli([command, "--help"])));
    for (const result of results) {
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^usage: notification-hub \w+/);
    }
    expect((await cli(["--help"])).stdout).toContain("connections");
    expect(results[0].stdout).toMatch(/--drop-disconnect SHARE\n\s+never run \$disconnect for this share of closes, 0 to 1/);
  });
});

describe("presence, occupancy", () => {
  it("list a room's members per user and count them, readable and --json, against dev (presence on); a stack without a presence table is told what to set", async () => {
    const sockets: WebSocket[] = [];
    for (const user of ["cli-ann", "cli-ann", "cli-bob"]) {
      const token = await cli(["token", "--user", user, "--room", "cli-presence", "--state-file", stateFile]);
      const ws = new WebSocket(`${info.websocketUrl}?token=${token.stdout.trim()}`);
      await new Promise((resolve) => ws.on("open", resolve));
      sockets.push(ws);
    }
    // $connect's presence join finishes after the handshake: wait for the third connection.
    const deadline = Date.now() + 10_000;
    let counts = { connections: 0, users: 0 };
    while (counts.connections < 3 && Date.now() < deadline) counts = JSON.parse((await cli(["occupancy", "--room", "cli-presence", "--json", "--state-file", stateFile])).stdout);
    expect(counts).toEqual({ connections: 3, users: 2 });
    expect((await cli(["occupancy", "--room", "cli-presence", "--state-file", stateFile])).stdout).toBe("room cli-presence: 2 user(s), 3 connection(s)\n");

    const page = await cli(["presence", "--room", "cli-presence", "--limit", "1", "--json", "--state-file", stateFile]);
    expect(page.code, page.stderr).toBe(0);
    const first = JSON.parse(page.stdout) as { members: { user_id: string; connections: number }[]; count: number; next: string };
    expect(first).toMatchObject({ count: 2, members: [{ user_id: "cli-ann", connections: 2 }], next: expect.any(String) });
    const rest = await cli(["presence", "--room", "cli-presence", "--after", first.next, "--state-file", stateFile]);
    expect(rest.stdout).toMatch(/^2 member\(s\) in room cli-presence \(this page: 1\)\n  cli-bob  1 connection\(s\)  since \d{4}-/);
    for (const ws of sockets) ws.close();

    const missing = await cli(["presence", "--room", "r", "--queue-url", info.queueUrl]);
    expect(missing.stderr.trim()).toMatch(/^notification-hub presence: presence needs --presence-table or NOTIFICATION_HUB_PRESENCE_TABLE/);
    expect(missing.code).toBe(2);
    const badLimit = await cli(["presence", "--room", "r", "--limit", "1001", "--state-file", stateFile]);
    expect(badLimit.stderr).toMatch(/--limit must be a whole number from 1 to 1000, got "1001"/);
  });
});

describe("publish --data", () => {
  it("takes JSON from a file (@file) or standard input (-), and prints a labeled id", async () => {
    const ws = new WebSocket(`${info.websocketUrl}?token=${(await cli(["token", "--user", "d", "--room", "data-room", "--state-file", stateFile])).stdout.trim()}`);
    const frames: { id: string; data: unknown }[] = [];
    ws.on("message", (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve) => ws.on("open", resolve));
    const file = path.join(dir, "payload.json");
    fs.writeFileSync(file, '{"type":"from-file","data":[1,2]}');
    const fromFile = await cli(["publish", "--room", "data-room", "--data", `@${file}`, "--state-file", stateFile]);
    expect(fromFile.stdout).toMatch(/^published to room data-room: message id \S+\n$/);
    const fromStdin = await cli(["publish", "--room", "data-room", "--data", "-", "--state-file", stateFile], { input: '"hello"' });
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    const deadline = Date.now() + 10_000;
    while (frames.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(frames.map((f) => f.data).sort()).toEqual([{ type: "from-file", data: [1, 2] }, "hello"].sort());
    expect(fromFile.stdout).toContain(frames.find((f) => typeof f.data === "object")!.id);
    ws.close();
  });
});

describe("one state file per running hub", () => {
  it("two hubs in one folder keep their own files; the CLI asks which, and finds the other once one stops", async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), "hub-folder-"));
    const devArgs = [BIN, "dev", "--port", "0", "--json"];
    const [first, second] = await Promise.all([startAndWaitFor(process.execPath, devArgs, /^\{/, folder), startAndWaitFor(process.execPath, devArgs, /^\{/, folder)]);
    try {
      const files = fs.readdirSync(path.join(folder, ".notification-hub"));
      expect(files).toHaveLength(2);
      expect((fs.statSync(path.join(folder, ".notification-hub")).mode & 0o777).toString(8)).toBe("700");
      const ambiguous = await cli(["token", "--user", "u", "--room", "r"], { cwd: folder });
      expect(ambiguous.code).toBe(2);
      expect(ambiguous.stderr).toMatch(/2 local hubs are running here: .*; pick one with --hub <port>/);
      const secondUrl = new URL(JSON.parse(second.line).httpUrl as string);
      const picked = await cli(["connections", "--room", "r", "--hub", secondUrl.port], { cwd: folder });
      expect(picked.code, picked.stderr).toBe(0);

      // The second stops: its file goes, the first's stays, and the CLI finds the first alone.
      const exited = new Promise((resolve) => second.child.on("exit", resolve));
      process.kill(-second.child.pid!, "SIGINT");
      await exited;
      expect(fs.readdirSync(path.join(folder, ".notification-hub"))).toHaveLength(1);
      const found = await cli(["token", "--user", "u", "--room", "r", "--json"], { cwd: folder });
      expect(found.code, found.stderr).toBe(0);
      expect(JSON.parse(found.stdout)).toMatchObject({ token: expect.any(String), userId: "u", roomId: "r" });

      // Killed without cleanup: the file stays, and the CLI says no hub runs rather than ECONNREFUSED.
      const killed = new Promise((resolve) => first.child.on("exit", resolve));
      process.kill(-first.child.pid!, "SIGKILL");
      await killed;
      const none = await cli(["token", "--user", "u", "--room", "r"], { cwd: folder });
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/no local hub is running in .* \(.* only holds files of stopped hubs: http:\/\/127\.0\.0\.1:\d+\/ \(pid \d+/);
      console.log("SUMMARY state files: 2 hubs in one folder kept 2 files; the CLI asked which, then found the survivor, then said none ran");
    } finally {
      for (const hub of [first, second]) if (hub.child.exitCode === null && hub.child.signalCode === null) process.kill(-hub.child.pid!, "SIGKILL");
      fs.rmSync(folder, { recursive: true, force: true });
    }
  }, 90_000);

  it("a state file whose hub no longer answers gets a clear message", async () => {
    const stale = path.join(dir, "stale.json");
    // Our own pid is alive, but nothing listens on the port the file names.
    fs.writeFileSync(stale, JSON.stringify({ ...info, httpUrl: "http://127.0.0.1:9/", pid: process.pid, startedAt: "earlier" }));
    const result = await cli(["token", "--user", "u", "--room", "r", "--state-file", stale]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/no hub answers at http:\/\/127\.0\.0\.1:9\/ \(ECONNREFUSED; state file .*stale\.json/);
  });
});

describe("npm run dev", () => {
  it("prints a working URL, serves the demo page, and stops cleanly on Ctrl-C", async () => {
    const npmState = path.join(dir, "npm-dev.json");
    const { child, line, ms } = await startAndWaitFor("npm", ["run", "dev", "--", "--port", "0", "--state-file", npmState], /demo page\s+http:/);
    const url = line.match(/(http:\/\/\S+)/)![1];
    const page = await get(url);
    expect(page.status).toBe(200);
    expect(page.body).toContain("notification-hub — local hub");
    console.log(`SUMMARY npm run dev: ready with ${url} after ${(ms / 1000).toFixed(1)} s`);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    // npm runs the hub as a child; Ctrl-C reaches the whole foreground group.
    process.kill(-child.pid!, "SIGINT");
    await exited;
    const deadline = Date.now() + 10_000;
    while (fs.existsSync(npmState) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fs.existsSync(npmState)).toBe(false);
  }, 60_000);
});

describe("the bin after a build", () => {
  it("a build then the bin's --help: npm run build leaves the bin executable, npx runs it from a subfolder without rebuilding, and a first npx call that must build says so", async () => {
    // A copy of what the build reads (node_modules linked), so this checkout's dist/, which the
    // other tests run, is never deleted under them.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "hub-build-"));
    const npxCache = path.join(copy, ".npm-cache");
    const run = (command: string, args: string[], cwd: string) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        childProcess.execFile(command, args, { cwd, env: { ...env, npm_config_cache: npxCache, npm_config_update_notifier: "false" }, timeout: 240_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
        ),
      );
    try {
      for (const entry of ["components", "handlers", "core", "server", "local", "client", "cli", "tools", "tsconfig.json", "tsconfig.build.json", "package.json"]) {
        fs.cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
      }
      fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(copy, "node_modules"));
      const built = await run("npm", ["run", "-s", "build"], copy);
      expect(built.code, built.stderr).toBe(0);
      const bin = path.join(copy, "dist/cli/index.js");
      // Run as a program (its shebang), as npx's link runs it: without the execute bit, EACCES.
      const direct = await run(bin, ["--help"], copy);
      expect(direct.code, direct.stderr).toBe(0);
      expect(direct.stdout).toMatch(/^usage: notification-hub <command>/);

      // npx from a subfolder links the clone into its cache; its prepare keeps the current dist/.
      const before = fs.statSync(bin).mtimeMs;
      const viaNpx = await run("npx", ["notification-hub", "--help"], path.join(copy, "cli"));
      expect(viaNpx.code, viaNpx.stderr).toBe(0);
      expect(viaNpx.stdout).toMatch(/^usage: notification-hub <command>/);
      expect(viaNpx.stderr).not.toContain("built dist/");
      expect(fs.statSync(bin).mtimeMs).toBe(before);

      // The packed tarball's bin is executable too.
      const packed = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], copy);
      const files = (JSON.parse(packed.stdout) as { files: { path: string; mode: number }[] }[])[0].files;
      expect(files.find((f) => f.path === "dist/cli/index.js")!.mode & 0o111).toBe(0o111);

      // A source newer than dist/ and a new npx cache: the first call builds, and says so once.
      fs.rmSync(npxCache, { recursive: true, force: true });
      const later = new Date(Date.now() + 60_000);
      fs.utimesSync(path.join(copy, "core/log.ts"), later, later);
      const first = await run("npx", ["notification-hub", "--help"], copy);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain("notification-hub: this first npx call built dist/");
      const second = await run("npx", ["notification-hub", "--help"], copy);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toBe("");
      console.log("SUMMARY bin: built bin runs as a program and through npx from a subfolder without a rebuild; packed mode 755; a first npx build says so once");
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  }, 300_000);
});

describe("finding the hub", () => {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), "hub-project-"));
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), "hub-elsewhere-"));
  let started: Awaited<ReturnType<typeof startAndWaitFor>>;
  let port: string;
  beforeAll(async () => {
    fs.writeFileSync(path.join(project, "package.json"), '{"name":"some-app","private":true}\n');
    fs.mkdirSync(path.join(project, "src", "deep"), { recursive: true });
    // Started in a subfolder of the project, without --state-file: its file goes to the project's root.
    started = await startAndWaitFor(process.execPath, [BIN, "dev", "--port", "0"], /console\s+http:/, path.join(project, "src"));
    port = new URL(started.line.match(/(http:\/\/\S+)/)![1]).port;
  }, 60_000);
  afterAll(() => {
    if (started && started.child.exitCode === null && started.child.signalCode === null) process.kill(-started.child.pid!, "SIGKILL");
    fs.rmSync(project, { recursive: true, force: true });
    fs.rmSync(elsewhere, { recursive: true, force: true });
  });

  it("discovery from a subfolder: dev keeps its file in the project's root, and the CLI finds it from any folder below", async () => {
    expect(fs.readdirSync(path.join(project, ".notification-hub"))).toEqual([expect.stringMatching(new RegExp(`^hub-\\d+-${port}\\.json$`))]);
    const fromSubfolder = await cli(["token", "--user", "u", "--room", "r", "--json"], { cwd: path.join(project, "src", "deep") });
    expect(fromSubfolder.code, fromSubfolder.stderr).toBe(0);
    expect(JSON.parse(fromSubfolder.stdout)).toMatchObject({ userId: "u", roomId: "r" });
  });

  it("--hub PORT reaches a running hub started in another folder; a port where none answers says so in one line", async () => {
    const byPort = await cli(["connections", "--room", "r", "--hub", port], { cwd: elsewhere });
    expect(byPort.code, byPort.stderr).toBe(0);
    expect(byPort.stdout).toBe("0 connection(s) in room r\n");
    const wrongPort = await cli(["connections", "--room", "r", "--hub", "9"], { cwd: elsewhere });
    expect(wrongPort.code).toBe(2);
    expect(wrongPort.stderr.trim().split("\n")).toEqual([expect.stringMatching(/no local hub answers at http:\/\/127\.0\.0\.1:9\//)]);
  });

  it("EPIPE: when the reader of dev's output goes away (dev | head -2), the hub still stops cleanly on Ctrl-C", async () => {
    started.child.stdout!.destroy();
    let stderr = "";
    started.child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => started.child.on("exit", (code) => resolve(code)));
    // Ctrl-C: the hub says "stopping…" to the closed pipe, then stops and removes its file.
    process.kill(-started.child.pid!, "SIGINT");
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(/EPIPE|Error/);
    expect(fs.readdirSync(path.join(project, ".notification-hub"))).toEqual([]);
  });

  it("the examples print one clear line when no hub runs", async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "hub-none-"));
    try {
      for (const [example, args] of [["app-backend.mjs", []], ["listen.mjs", ["some-token"]]] as const) {
        const result = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
          childProcess.execFile(process.execPath, [path.join(ROOT, "examples", example), ...args], { cwd: empty, env }, (error, _stdout, stderr) =>
            resolve({ code: error ? (error.code as number) : 0, stderr }),
          ),
        );
        expect(result.code, example).toBe(2);
        expect(result.stderr.trim().split("\n"), example).toEqual([expect.stringMatching(new RegExp(`^${example.replace(".", "\\.")}: no local hub is running in .*; start one with \`npx notification-hub dev\``))]);
      }
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
