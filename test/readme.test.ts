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
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = process.cwd();

interface Block {
  marker: string;
  lang: string;
  code: string;
  line: number;
}

/** Fenced blocks with the marker comment just above each (diagrams need none). */
function readmeBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^```(\w*)\s*$/);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]);
    let j = start - 1;
    while (j >= 0 && lines[j].trim() === "") j--;
    const marker = lines[j]?.match(/^<!-- readme-test: (.+) -->$/)?.[1] ?? "";
    blocks.push({ marker, lang: open[1], code: body.join("\n") + "\n", line: start + 1 });
  }
  return blocks;
}

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

/** Commands of the quick start that keep running, and the output that says they are ready. */
const LONG_RUNNING: [RegExp, string][] = [
  [/^npm run dev\b/, "local hub is ready"],
  [/examples\/listen\.mjs/, "connected;"],
];

const shellQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** The quick start's blocks as one bash script: comments dropped, long-running lines in the background. */
function quickStartScript(blocks: Block[]): string {
  const out = [
    "set -euo pipefail",
    // Waits for a background command's ready line, or fails with its output.
    'ready() { for i in $(seq 1 600); do grep -q "$2" "$1" && return 0; sleep 0.1; done; echo "not ready: $1"; cat "$1"; exit 1; }',
  ];
  let n = 0;
  for (const block of blocks) {
    for (const raw of block.code.split("\n")) {
      const line = raw.replace(/\s+#\s.*$/, "").trim();
      if (!line) continue;
      const long = LONG_RUNNING.find(([pattern]) => pattern.test(line));
      if (long) {
        const log = `.readme-test/bg-${++n}.log`;
        out.push(`${line} > ${log} 2>&1 &`, `ready ${log} ${JSON.stringify(long[1])}`);
      } else out.push(`echo ${shellQuote("$ " + line)}`, line);
    }
  }
  return out.join("\n") + "\n";
}

const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
const blocks = readmeBlocks(readme);
const clone = fs.mkdtempSync(path.join(os.tmpdir(), "hub-readme-"));
// Like a user's shell: no switch that hides the SDK's Node.js notice (our code must), any free port.
// npm's own variables (vitest runs under `npm test`) would steer the nested npm.
const env: NodeJS.ProcessEnv = { ...process.env, NOTIFICATION_HUB_PORT: "0" };
for (const key of Object.keys(env)) {
  if (key.startsWith("npm_") || (key.startsWith("NOTIFICATION_HUB_") && key !== "NOTIFICATION_HUB_PORT") || key === "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED") delete env[key];
}
let quickStart: { code: number | null; stdout: string; stderr: string; pid: number };

beforeAll(async () => {
  // A fresh clone: what git tracks or would add, nothing it ignores (no dist/, no state files).
  const files = childProcess.execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
  for (const file of files) {
    if (!fs.existsSync(path.join(ROOT, file))) continue; // deleted, not yet committed
    fs.mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), path.join(clone, file));
    fs.chmodSync(path.join(clone, file), fs.statSync(path.join(ROOT, file)).mode);
  }
  childProcess.execFileSync("cp", ["-al", path.join(ROOT, "node_modules"), path.join(clone, "node_modules")]);
  // npm rewrites its hidden lockfile in place: give the copy its own, never the checkout's inode.
  const hidden = path.join(clone, "node_modules/.package-lock.json");
  if (fs.existsSync(hidden)) {
    const text = fs.readFileSync(hidden);
    fs.rmSync(hidden);
    fs.writeFileSync(hidden, text);
  }
  fs.mkdirSync(path.join(clone, ".readme-test"));
  const script = path.join(clone, ".readme-test/quickstart.sh");
  const quick = blocks.filter((b) => b.marker === "quickstart");
  fs.writeFileSync(script, quickStartScript(quick));
  // Its own process group: afterAll stops the hub and the listener like Ctrl-C would.
  const child = childProcess.spawn("bash", [script], { cwd: clone, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  quickStart = { code, stdout, stderr, pid: child.pid! };
  // The transcript, for a person to read what a newcomer would have seen.
  fs.mkdirSync(path.join(ROOT, "test-output"), { recursive: true });
  fs.writeFileSync(path.join(ROOT, "test-output/readme-quickstart.log"), `${stdout}\n--- stderr ---\n${stderr}`);
}, 240_000);

afterAll(async () => {
  if (quickStart?.pid) {
    try {
      process.kill(-quickStart.pid, "SIGINT");
    } catch {
      // already gone
    }
    // The hub removes its own state file on the way out; wait for that, then clean up.
    const stateDir = path.join(clone, ".notification-hub");
    for (let i = 0; i < 100 && fs.existsSync(stateDir) && fs.readdirSync(stateDir).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    try {
      process.kill(-quickStart.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  fs.rmSync(clone, { recursive: true, force: true });
}, 30_000);

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
