/**
 * Vitest global setup, once per `vitest run`:
 * - a temp folder for this run, set as TMPDIR before the workers start (they and every
 *   process they spawn inherit it), removed at teardown: what a test process leaves when
 *   vitest kills it by signal (the `lambda-runtime-*` folders, whose exit hook never runs)
 *   goes with it, and other runs' folders in /tmp are never touched; test files that run the
 *   same Pulumi program with the same config share one run of it there (pulumiRun.ts);
 * - Node 22, the Lambda runtime's version, for the artifact tests (lambdaNode.ts);
 * - `dist/` built when it is missing or older than the sources, so the tests that run the
 *   `notification-hub` bin (dist/cli/index.js) or pack the package use one build of today's
 *   code instead of each paying for ts-node or tsc;
 * - then, in the background at the lowest CPU priority, the program runs and the README quick
 *   start that the run's late test files read (background.ts).
 */
import * as childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { TestProject } from "vitest/node" with { "resolution-mode": "import" };
import { startBackground } from "./background";
import { lambdaNode } from "./lambdaNode";
import { TEST_RUN_DIR_ENV } from "./pulumiRun";

const ROOT = path.resolve(__dirname, "../..");
// Whether dist/ is older than its sources: the build's own tools decide, npm's prepare too.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { distIsStale: staleIn } = require("../../tools/distState") as { distIsStale(root: string): boolean };

/** True when some build input changed after the oldest file of dist/ was written, or dist/ has no bin. */
export function distIsStale(root = ROOT): boolean {
  return staleIn(root);
}

export default function setup(project: TestProject): () => void {
  const runTmp = fs.mkdtempSync(path.join(os.tmpdir(), "nh-test-"));
  process.env.TMPDIR = runTmp;
  process.env[TEST_RUN_DIR_ENV] = runTmp;
  // Node 22 for the Lambda artifact tests, installed once per clone before any worker asks.
  lambdaNode();
  if (distIsStale()) childProcess.execSync("npm run build --silent", { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, npm_config_loglevel: "error" } });
  // The test files of this run (vitest collected them before this setup), and the environment its workers get.
  const background = startBackground(ROOT, runTmp, project.vitest.state.getPaths(), { ...process.env, ...project.config.env });
  return () => {
    background.stop();
    fs.rmSync(runTmp, { recursive: true, force: true });
  };
}
