/** The `notification-hub` CLI and `npm run dev`, run as a user runs them. */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";

const ROOT = process.cwd();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hub-cli-"));
const stateFile = path.join(dir, "state.json");
const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
let dev: childProcess.ChildProcess;
let info: Record<string, string>;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    childProcess.execFile(process.execPath, ["-r", "ts-node/register/transpile-only", "cli/index.ts", ...args], { cwd: ROOT, env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Starts a long-running command and resolves with its first stdout line that matches. */
function startAndWaitFor(command: string, args: string[], pattern: RegExp): Promise<{ child: childProcess.ChildProcess; line: string; ms: number }> {
  const started = Date.now();
  // Its own process group, so a test can send Ctrl-C to it and everything it started.
  const child = childProcess.spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
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
  const started = await startAndWaitFor(process.execPath, ["-r", "ts-node/register/transpile-only", "cli/index.ts", "dev", "--port", "0", "--json", "--state-file", stateFile], /^\{/);
  dev = started.child;
  info = JSON.parse(started.line);
}, 60_000);

afterAll(() => {
  if (dev?.pid) process.kill(-dev.pid, "SIGKILL");
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

    const published = await cli(["publish", "--room", "cli-room", "--user", "ops", "--data", '{"type":"deploy","data":{"version":"1.2.3"}}', "--state-file", stateFile]);
    expect(published.code, published.stderr).toBe(0);
    const messageId = published.stdout.trim();
    const deadline = Date.now() + 10_000;
    while (frames.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(frames).toEqual([{ id: messageId, room_id: "cli-room", user_id: "ops", origin: "app", seq: 1, data: { type: "deploy", data: { version: "1.2.3" } } }]);

    // The room's stream kept it: history prints the frame the client got.
    const history = await cli(["history", "--room", "cli-room", "--last", "5", "--json", "--state-file", stateFile]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout.trim().split("\n").map((line) => JSON.parse(line))).toEqual(frames);

    const listed = await cli(["connections", "--room", "cli-room", "--json", "--state-file", stateFile]);
    expect(JSON.parse(listed.stdout)).toEqual([{ connectionId: expect.any(String), userId: "cli-user" }]);

    const revoked = await cli(["revoke", "--user", "cli-user", "--room", "cli-room", "--state-file", stateFile]);
    expect(revoked.stdout).toContain("closed 1 connection(s)");
    expect(await closed).toBe(1000);
  });

  it("work against a stack named by flags and environment variables instead", async () => {
    const published = await cli(["publish", "--queue-url", info.queueUrl, "--sqs-endpoint", info.sqsEndpoint, "--region", "us-east-1", "--room", "elsewhere", "--data", "42"]);
    expect(published.code, published.stderr).toBe(0);
    const token = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      childProcess.execFile(
        process.execPath,
        ["-r", "ts-node/register/transpile-only", "cli/index.ts", "token", "--user", "u", "--room", "r", "--auth-table", info.authTableName, "--dynamodb-endpoint", info.dynamodbEndpoint],
        { cwd: ROOT, env: { ...env, NOTIFICATION_HUB_JWT_SECRET: info.jwtSecret, NOTIFICATION_HUB_PASSCODE: info.passcode } },
        (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
      ),
    );
    expect(token.code, token.stderr).toBe(0);
    const missing = await cli(["token", "--user", "u", "--room", "r", "--auth-table", "t"]);
    expect(missing.stderr.trim()).toBe("notification-hub token: issueToken: jwtSecret is required (pass it to createNotifier)");
    expect(missing.code).toBe(2);
  });

  it("answer bad input with one line and a non-zero exit", async () => {
    const cases: [string[], RegExp][] = [
      [["token", "--bogus"], /^notification-hub token: Unknown option '--bogus' \(see notification-hub token --help\)$/],
      [["token", "--user", "u", "--state-file", stateFile], /--room is required/],
      [["publish", "--room", "r", "--data", "not json", "--state-file", stateFile], /--data must be JSON/],
      [["publish", "--room", "", "--data", "1", "--state-file", stateFile], /--room is required/],
      [["token", "--user", "u", "--room", "r", "--ttl", "soon", "--state-file", stateFile], /--ttl must be a whole number/],
      [["token", "--user", "u", "--room", "r", "--state-file", path.join(dir, "none.json")], /no local hub is running here/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["dev", "--port", "x"], /--port must be a whole number/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((result, i) => {
      expect(result.code, cases[i][0].join(" ")).toBe(2);
      expect(result.stderr.trim().split("\n"), cases[i][0].join(" ")).toHaveLength(1);
      expect(result.stderr.trim()).toMatch(cases[i][1]);
    });
    console.log(`SUMMARY cli: ${cases.length} bad invocations tried, ${cases.length} refused with one line and exit 2`);
  });

  it("has --help on every command", async () => {
    const results = await Promise.all(["dev", "token", "publish", "revoke", "connections"].map((command) => cli([command, "--help"])));
    for (const result of results) {
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^usage: notification-hub \w+/);
    }
    expect((await cli(["--help"])).stdout).toContain("connections");
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
