/**
 * The README as a newcomer meets it. A fresh copy of the repository (the files git would
 * commit, no dist/), `npm install` as written, then every code block of the README: the quick
 * start's shell blocks in one shell (its long-running commands in the background), the
 * app-backend example (which must be examples/app-backend.mjs, byte for byte), the local-hub
 * module, and the browser snippets with the globals a page would define. Each block carries
 * a `<!-- readme-test: ... -->` marker saying how it is checked, or why it cannot run here.
 *
 * node_modules is a hard-linked copy of this checkout's (no registry needed), so `npm install`
 * only verifies the tree and runs `prepare`; CI's `.ci/run` does the real install on a fresh clone.
 * In a full test run the quick start runs in the background from the run's start (see
 * test/support/quickStart.ts); this file reads its transcript and the copy it ran in.
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_RUN_DIR_ENV } from "./support/pulumiRun";
import { newcomerEnv, quickStartFiles, raiseQuickStartPriority, readmeBlocks, runQuickStart, type QuickStart } from "./support/quickStart";

const ROOT = process.cwd();

function run(command: string, args: string[], options: childProcess.SpawnOptions & { input?: string; timeoutMs?: number }) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = childProcess.spawn(command, args, { ...options, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(options.input ?? "");
  });
}

const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
const blocks = readmeBlocks(readme);
const env = newcomerEnv(process.env);
let quickStart: QuickStart;
let clone: string;

/** The quick start this test run started in the background (test/support/background.ts), or, without one, run here. */
async function theQuickStart(): Promise<QuickStart> {
  const runDir = process.env[TEST_RUN_DIR_ENV];
  const files = runDir ? quickStartFiles(runDir) : undefined;
  if (!files || !fs.existsSync(files.started)) return runQuickStart(ROOT, env);
  for (let i = 0, deadline = Date.now() + 280_000; !fs.existsSync(files.result); i++, await new Promise((resolve) => setTimeout(resolve, 250))) {
    if (Date.now() > deadline) throw new Error(`the quick start started in the background wrote no ${files.result}`);
    if (i % 8 === 0) raiseQuickStartPriority(files); // again every 2 s: its group may have grown since
  }
  return JSON.parse(fs.readFileSync(files.result, "utf8")) as QuickStart;
}

beforeAll(async () => {
  quickStart = await theQuickStart();
  clone = quickStart.clone;
}, 300_000);

afterAll(() => {
  if (clone) fs.rmSync(clone, { recursive: true, force: true });
});

describe("the README", () => {
  it("marks every code block with how it is checked", () => {
    const unmarked = blocks.filter((b) => b.lang !== "mermaid" && !b.marker);
    expect(unmarked.map((b) => `README.md:${b.line}`)).toEqual([]);
    for (const block of blocks.filter((b) => b.marker.startsWith("not run"))) {
      expect(block.marker, `README.md:${block.line} says why it cannot run here`).toMatch(/^not run \(.*(AWS|Pulumi).*\)$/);
    }
  });

  it("quick start: npm install builds the package without EBADENGINE and leaves the lockfile as committed", () => {
    const log = quickStart.stdout + quickStart.stderr;
    expect(quickStart.stdout).toContain("$ npm install");
    expect(log).not.toMatch(/EBADENGINE|ERR!/);
    expect(fs.readFileSync(path.join(clone, "package-lock.json"), "utf8")).toBe(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8"));
    expect(fs.existsSync(path.join(clone, "dist/server/index.js"))).toBe(true);
  });

  it("quick start: the hub, a captured token, the listener, the CLI and the SDK example work as written", () => {
    expect(quickStart.code, quickStart.stdout + quickStart.stderr).toBe(0);
    // No SDK notice about Node.js versions (nor any other warning of ours) in what the user sees.
    expect(quickStart.stderr).not.toMatch(/NodeVersionSupportWarning|AWS SDK/);
    const listener = fs.readFileSync(path.join(clone, ".readme-test/bg-2.log"), "utf8");
    for (const log of [listener, fs.readFileSync(path.join(clone, ".readme-test/bg-1.log"), "utf8")]) expect(log).not.toMatch(/NodeVersionSupportWarning|Warning:/);
    const frames = listener
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { data: unknown });
    expect(frames.map((f) => f.data)).toEqual([{ type: "info", data: "hello" }, "plain text works too", { type: "backup.done", data: { job: 7 } }]);
    expect(quickStart.stdout).toMatch(/published to room lobby: message id \S+/);
    expect(quickStart.stdout).toMatch(/revoked alice in lobby; closed 1 connection\(s\)/);
    console.log(`SUMMARY readme: quick start ran as written in a fresh copy; the listener got ${frames.length} notifications, then the SDK example's revoke closed it`);
  });

  it("shows the dev output it prints", () => {
    const sample = blocks.find((b) => b.marker === "output of npm run dev")!;
    const real = fs.readFileSync(path.join(clone, ".readme-test/bg-1.log"), "utf8");
    for (const line of sample.code.split("\n").filter((l) => l.trim() && !l.includes("..."))) {
      expect(real, line).toContain(line.replace(/\s+\S*(http|ws):.*$/, "").trimEnd());
    }
  });

  it("the app-backend example is examples/app-backend.mjs, which the quick start ran", () => {
    const same = blocks.filter((b) => b.marker.startsWith("same as "));
    expect(same.length).toBeGreaterThan(0);
    for (const block of same) expect(block.code, block.marker).toBe(fs.readFileSync(path.join(ROOT, block.marker.slice("same as ".length)), "utf8"));
  });

  it("the local-hub module runs as written", async () => {
    for (const [i, block] of blocks.filter((b) => b.marker === "node").entries()) {
      const file = path.join(clone, `.readme-test/node-${i}.mjs`);
      fs.writeFileSync(file, block.code);
      const result = await run(process.execPath, [file], { cwd: clone, env, timeoutMs: 60_000 });
      expect(result.code, `README.md:${block.line}\n${result.stderr}`).toBe(0);
      expect(result.stderr).toBe("");
      expect(result.stdout).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/local\?token=/);
    }
  });

  it("the browser snippets work with the globals a page defines", async () => {
    const browser = blocks.filter((b) => b.marker.startsWith("browser"));
    expect(browser).toHaveLength(4);
    for (const [i, block] of browser.entries()) {
      // What the page has: a WebSocket (Node 20 has none built in), the hub's URL, a token
      // endpoint, and somewhere to show notifications. Then publish until one is shown.
      const prelude = [
        'import { WebSocket as NodeWebSocket } from "ws";',
        'import { startLocalHub } from "notification-hub/local";',
        // Traced, so a failure says whether the socket opened, and how it closed.
        "const trace = [];",
        "class TracedWebSocket extends NodeWebSocket {",
        "  constructor(...args) {",
        "    super(...args);",
        '    const at = () => ((performance.now() / 1000) | 0) + "s";',
        '    this.addEventListener("open", () => trace.push("open " + at()));',
        '    this.addEventListener("close", (event) => trace.push("close " + event.code + " " + at()));',
        "  }",
        "}",
        "globalThis.WebSocket ??= TracedWebSocket;",
        // A hub of its own: under a full parallel run the quick start's long-lived hub once
        // stopped delivering (socket open, publishes accepted, nothing posted, nothing logged).
        "const local = await startLocalHub({ port: 0, bcryptCost: 4 });",
        "const app = local.notifier;",
        "const WEBSOCKET_URL = local.websocketUrl;",
        'const token = await app.issueToken({ userId: "reader", roomId: "lobby" });',
        "globalThis.fetch = async () => ({ text: async () => token });",
        "let shown;",
        "const show = (data) => { shown = data; };",
        // Members' chat lines, which the first snippet hands to a function of the page's own.
        "const said = [];",
        "const say = (from, data) => said.push({ from, data });",
      ].join("\n");
      const epilogue = [
        // Patient: on a busy machine the queue poller and the handshake can take seconds.
        "for (let i = 0, end = Date.now() + 45_000; !shown && Date.now() < end; i++) {",
        '  await app.publish({ roomId: "lobby", data: { type: "backup.done", data: { job: i } } });',
        "  for (let t = 0; t < 10 && !shown; t++) await new Promise((resolve) => setTimeout(resolve, 100));",
        "}",
        "console.log(JSON.stringify({ shown, trace }));",
        "process.exit(shown ? 0 : 1);",
      ].join("\n");
      const file = path.join(clone, `.readme-test/browser-${i}.mjs`);
      fs.writeFileSync(file, `${prelude}\n// --- README.md:${block.line} ---\n${block.code}// ---\n${epilogue}\n`);
      const result = await run(process.execPath, [file], { cwd: clone, env, timeoutMs: 60_000 });
      expect(result.code, `README.md:${block.line}\n${result.stdout}\n${result.stderr}`).toBe(0);
      expect(JSON.parse(result.stdout).shown).toEqual({ job: expect.any(Number) });
    }
  }, 150_000);
});
