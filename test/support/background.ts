/**
 * Work a test run starts at its beginning, in the background, for the test files that
 * vitest.config.mts's sequencer runs last: the shared Pulumi program runs (pulumiRun.ts) and the
 * README's quick start (quickStart.ts). Each is child processes that take tens of seconds of CPU
 * and wait on nothing else; vitest runs one test file at a time here, which leaves most of the
 * second core idle. They run at the lowest CPU priority (nice 19), so whatever a test file does
 * meanwhile (load tests, latency bars) gets the CPU first; when those files come to read the
 * results, the records are there, or being written by a process that now has the CPU to itself.
 *
 * Only what the run's own test files need is started (one file run alone starts only its own).
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SHARED_RUNS, SHARED_RUNS_OF, runSpec, type SharedRunName } from "./pulumiRun";
import { newcomerEnv, quickStartFiles } from "./quickStart";

const LOWEST = 19;
const README_TEST = "readme.test.ts";

export interface Background {
  /** Stops what still runs (a test run cut short, or files that never read it). */
  stop(): void;
}

/** Starts, for the given test files, the program runs they share and the quick start; returns at once. */
export function startBackground(root: string, runDir: string, testFiles: string[], env: NodeJS.ProcessEnv): Background {
  const names = new Set(testFiles.map((file) => path.basename(file)));
  const children = new Set<childProcess.ChildProcess>();
  const track = (child: childProcess.ChildProcess) => {
    children.add(child);
    child.on("exit", () => children.delete(child));
  };
  let stopped = false;

  // One program at a time, in the order the late files read them.
  const wanted = [...new Set(Object.entries(SHARED_RUNS_OF).flatMap(([file, runs]) => (names.has(file) ? runs : [])))] as SharedRunName[];
  void (async () => {
    for (const name of wanted) {
      if (stopped) return;
      // A failure is left for the test that reads the run: it runs it again itself, for its own error.
      await runSpec(SHARED_RUNS[name](), { priority: LOWEST, onChild: track }).catch(() => undefined);
    }
  })();

  const quickStart = quickStartFiles(runDir);
  if (names.has(README_TEST)) {
    const child = childProcess.spawn(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(__dirname, "quickStartMain.ts"), root, quickStart.result, quickStart.pid], {
      cwd: root,
      env: newcomerEnv(env),
      stdio: "ignore",
    });
    if (child.pid) os.setPriority(child.pid, LOWEST); // before it starts anything: its children inherit it
    fs.writeFileSync(quickStart.started, String(child.pid ?? 0));
    track(child);
  }

  return {
    stop() {
      stopped = true;
      for (const child of children) child.kill("SIGKILL");
      // The quick start's shell leads a process group of its own (the hub, the listener): stopped
      // by its runner once done, killed here if the test run ends first.
      if (fs.existsSync(quickStart.pid) && !fs.existsSync(quickStart.result)) {
        try {
          process.kill(-Number(fs.readFileSync(quickStart.pid, "utf8")), "SIGKILL");
        } catch {
          // already gone
        }
      }
    },
  };
}
