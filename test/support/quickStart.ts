/**
 * The README's quick start as a newcomer runs it (test/readme.test.ts): a fresh copy of the
 * repository (the files git would commit, no dist/), then the quick start's shell blocks in one
 * shell, its long-running commands in the background, then Ctrl-C for those.
 *
 * `npm install` (whose `prepare` is a full tsc build), `npm run dev` under ts-node and the CLI
 * take over a minute of CPU and wait on nothing the other tests do, so a full test run starts
 * this at its beginning (test/support/background.ts), at the lowest CPU priority, and the README
 * test reads the result; run alone, the README test runs it itself.
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { raisePriority } from "./pulumiRun";

export interface Block {
  marker: string;
  lang: string;
  code: string;
  line: number;
}

/** Fenced blocks with the marker comment just above each (diagrams need none). */
export function readmeBlocks(text: string): Block[] {
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

/**
 * Like a user's shell: no switch that hides the SDK's Node.js notice (our code must), any free
 * port. npm's own variables (vitest runs under `npm test`) would steer the nested npm.
 */
export function newcomerEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, NOTIFICATION_HUB_PORT: "0" };
  for (const key of Object.keys(env)) {
    if (key.startsWith("npm_") || (key.startsWith("NOTIFICATION_HUB_") && key !== "NOTIFICATION_HUB_PORT") || key === "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED") delete env[key];
  }
  return env;
}

export interface QuickStart {
  /** The fresh copy it ran in (its .readme-test/ holds the script and the background commands' logs). */
  clone: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Where a test run's quick start leaves its result (see background.ts), under the run's folder. */
export const quickStartFiles = (runDir: string) => ({
  started: path.join(runDir, "quickstart.started"),
  result: path.join(runDir, "quickstart.json"),
  /** The shell's pid, leader of the quick start's process group. */
  pid: path.join(runDir, "quickstart.pid"),
});

/**
 * Waited for, the background quick start gets the priority of a test's own: its runner, and
 * every process of the shell's group (npm, tsc, the hub...; what they start later inherits it).
 */
export function raiseQuickStartPriority(files: ReturnType<typeof quickStartFiles>): void {
  raisePriority(Number(fs.readFileSync(files.started, "utf8")));
  if (!fs.existsSync(files.pid)) return;
  const shell = fs.readFileSync(files.pid, "utf8").trim();
  setSessionNice(Number(shell), 0);
  // No call in Node for a whole process group; renice is util-linux's (lowering nice takes root).
  childProcess.spawnSync("renice", ["-n", "0", "-g", shell], { stdio: "ignore" });
}

/**
 * The nice value of a session leader's scheduling group. Where Linux groups the CPU by session
 * (sched_autogroup), a process's own nice value only counts within its session, and the quick
 * start's shell leads one of its own (detached, for Ctrl-C): its group gets the value too.
 */
export function setSessionNice(leader: number, nice: number): void {
  try {
    fs.writeFileSync(`/proc/${leader}/autogroup`, String(nice));
  } catch {
    // no autogroup here (or not allowed): the processes' own nice values are what counts
  }
}

export interface QuickStartLaunch {
  /** Told of the shell's pid (its own process group), to stop it early. */
  onStart?: (pid: number) => void;
}

/**
 * A fresh copy of `root`, then the quick start in it, then Ctrl-C for what it left running (the
 * hub removes its own state file on the way out; that is waited for). The transcript goes to
 * test-output/readme-quickstart.log, for a person to read what a newcomer would have seen.
 */
export async function runQuickStart(root: string, env: NodeJS.ProcessEnv, launch: QuickStartLaunch = {}): Promise<QuickStart> {
  const clone = fs.mkdtempSync(path.join(os.tmpdir(), "hub-readme-"));
  // What git tracks or would add, nothing it ignores (no dist/, no state files).
  const files = childProcess.execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);
  for (const file of files) {
    if (!fs.existsSync(path.join(root, file))) continue; // deleted, not yet committed
    fs.mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
    fs.copyFileSync(path.join(root, file), path.join(clone, file));
    fs.chmodSync(path.join(clone, file), fs.statSync(path.join(root, file)).mode);
  }
  // node_modules as hard links of this checkout's (no registry needed): `npm install` only
  // verifies the tree and runs `prepare`; CI's `.ci/run` does the real install on a fresh clone.
  childProcess.execFileSync("cp", ["-al", path.join(root, "node_modules"), path.join(clone, "node_modules")]);
  // npm rewrites its hidden lockfile in place: give the copy its own, never the checkout's inode.
  const hidden = path.join(clone, "node_modules/.package-lock.json");
  if (fs.existsSync(hidden)) {
    const text = fs.readFileSync(hidden);
    fs.rmSync(hidden);
    fs.writeFileSync(hidden, text);
  }
  fs.mkdirSync(path.join(clone, ".readme-test"));
  const script = path.join(clone, ".readme-test/quickstart.sh");
  fs.writeFileSync(script, quickStartScript(readmeBlocks(fs.readFileSync(path.join(root, "README.md"), "utf8")).filter((b) => b.marker === "quickstart")));
  // Its own process group, so Ctrl-C reaches the hub and the listener as in a terminal.
  const child = childProcess.spawn("bash", [script], { cwd: clone, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  launch.onStart?.(child.pid!);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  await stopGroup(child.pid!, path.join(clone, ".notification-hub"));
  fs.mkdirSync(path.join(root, "test-output"), { recursive: true });
  fs.writeFileSync(path.join(root, "test-output/readme-quickstart.log"), `${stdout}\n--- stderr ---\n${stderr}`);
  return { clone, code, stdout, stderr };
}

/** Ctrl-C for a process group, time for the hub to remove its state file, then whatever is left killed. */
export async function stopGroup(pid: number, stateDir: string): Promise<void> {
  try {
    process.kill(-pid, "SIGINT");
  } catch {
    return; // already gone
  }
  for (let i = 0; i < 100 && fs.existsSync(stateDir) && fs.readdirSync(stateDir).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}
